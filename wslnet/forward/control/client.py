"""The CLI's side of the control API: find a running forwarder and call it.

Standard library only, so `wslnet status` and `wslnet dashboard` start fast."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
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
