"""The CLI's side of the control API: find a running forwarder and call it.

Standard library only, so `wslnet status` and `wslnet dashboard` start fast."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wslnet.errors import WslnetError


@dataclass(frozen=True)
class ApiClient:
    url: str
    token: str

    @classmethod
    def locate(cls, url: str | None) -> ApiClient:
        """`url` as given (or None), the token from WSLNET_API_TOKEN; whatever is missing
        comes from the state file of the forwarder that last started with --api."""
        token = os.environ.get("WSLNET_API_TOKEN")
        if url is None or token is None:
            from wslnet.forward.control.statefile import find_api

            found_url, found_token = find_api()
            url, token = url or found_url, token or found_token
        return cls(url.rstrip("/"), token)

    def call(self, path: str, method: str = "GET") -> Any:
        import urllib.error
        import urllib.request

        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"Bearer {self.token}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise WslnetError(f"{self.url}: HTTP {exc.code} (wrong token?)") from None
        except (OSError, ValueError) as exc:
            raise WslnetError(f"{self.url}: cannot reach the forwarder ({exc})") from None


def redirect_page(link: str) -> str:
    """A page that sends the browser on to `link` (as Jupyter's redirect file does)."""
    import html

    quoted = html.escape(link, quote=True)
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={quoted}">'
        "<title>wslnet dashboard</title></head>\n"
        f'<body><p>Opening <a href="{quoted}">the wslnet dashboard</a>…</p></body></html>\n'
    )


def open_privately(link: str) -> Path | None:
    """Opens `link` in the browser through a redirect file only this user can read (in
    the state folder), so that the link is on no command line; the file, or None when no
    browser could be started (then the caller shows the link)."""
    import webbrowser

    from wslnet.forward.control.statefile import state_dir, write_private

    path = state_dir() / "dashboard-open.html"
    write_private(path, redirect_page(link))
    return path if webbrowser.open(path.as_uri()) else None
