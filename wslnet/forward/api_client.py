"""Finds a running forwarder's API from its state file (no aiohttp needed)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from wslnet.errors import WslnetError


def state_dir() -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "wslnet"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "wslnet" if runtime else Path.home() / ".config" / "wslnet"


def find_api() -> tuple[str, str]:
    """(url, token) of the forwarder that last started with --api."""
    state = state_dir() / "api.json"
    try:
        doc = json.loads(state.read_text())
        token_file = doc.get("token_file")
        token = Path(token_file).read_text().strip() if token_file else ""
        return str(doc["url"]), token
    except (OSError, ValueError, KeyError) as exc:
        raise WslnetError(
            f"no running forwarder with --api found ({state}: {exc}); "
            "pass --api URL and set WSLNET_API_TOKEN"
        ) from None
