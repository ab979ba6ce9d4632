"""The CLI's side of the control API: find a running forwarder and call it.

Standard library only, so `wslnet status` and `wslnet dashboard` start fast."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wslnet.errors import WslnetError
from wslnet.registry import RegisteredRule


@dataclass(frozen=True)
class ApiClient:
    url: str
    token: str | None  # None: none found; the forwarder's refusal then says where we looked

    @classmethod
    def locate(cls, url: str | None) -> ApiClient:
        """`url` as given (or None: the newest running forwarder with an API), the token
        from WSLNET_API_TOKEN or from that forwarder's registration."""
        from wslnet.forward.control.statefile import find_api
        from wslnet.registry import running

        env_token = os.environ.get("WSLNET_API_TOKEN") or None
        served = [r for r in running() if r.api]
        if url is None:
            if served:
                return cls(str(served[-1].api), env_token or served[-1].token)
            found_url, found_token = find_api()  # a forwarder that predates registration
            return cls(found_url.rstrip("/"), env_token or found_token)
        url = url.rstrip("/")
        mine = next((r.token for r in served if r.api == url), None)
        return cls(url, env_token or mine)

    def call(self, path: str, method: str = "GET") -> Any:
        import urllib.error
        import urllib.request

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        req = urllib.request.Request(f"{self.url}{path}", method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 401 and self.token is None:
                from wslnet.forward.control.statefile import state_dir

                raise WslnetError(
                    f"{self.url} wants the API token, and none was found: set "
                    f"WSLNET_API_TOKEN, or run this as the user who started the forwarder "
                    f"(its token is looked for in {state_dir()})"
                ) from None
            raise WslnetError(f"{self.url}: HTTP {exc.code} (wrong token?)") from None
        except (OSError, ValueError) as exc:
            raise WslnetError(f"{self.url}: cannot reach the forwarder ({exc})") from None


@dataclass(frozen=True)
class Seen:
    """One running forwarder as `wslnet status` shows it."""

    pid: int | None
    api: str | None
    rules: tuple[RegisteredRule, ...]  # as registered at start
    status: dict[str, Any] | None  # its /v1/status document, when its API answered
    error: str | None = None  # why its API did not answer

    def as_json(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "api": self.api,
            "rules": [r.as_json() for r in self.rules],
            "status": self.status,
            "error": self.error,
        }


def survey(api: str | None) -> list[Seen]:
    """Every running forwarder (or the one at `api`), with its live status when it serves
    the API. One named with --api that does not answer is an error; others say why."""
    from wslnet.registry import running

    regs = running()
    if api is not None:
        client = ApiClient.locate(api)
        reg = next((r for r in regs if r.api == client.url), None)
        rules = reg.rules if reg is not None else ()
        return [Seen(reg.pid if reg else None, client.url, rules, client.call("/v1/status"))]
    env_token = os.environ.get("WSLNET_API_TOKEN") or None
    seen = []
    for reg in regs:
        doc, error = None, None
        if reg.api:
            try:
                doc = ApiClient(reg.api, env_token or reg.token).call("/v1/status")
            except WslnetError as exc:
                error = exc.message
        seen.append(Seen(reg.pid, reg.api, reg.rules, doc, error))
    return seen


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
