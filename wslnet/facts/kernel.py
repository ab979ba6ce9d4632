"""Kernel release strings: WSL2 ('microsoft-standard'), WSL1 ('-Microsoft'), or neither."""

from __future__ import annotations

import re
from typing import Literal

KernelKind = Literal["wsl2", "wsl1", "other"]
_WSL1 = re.compile(r"\d-Microsoft\b")  # 4.4.0-19041-Microsoft: capital M, no "standard"


def classify(release: str) -> KernelKind:
    """Classifies /proc/sys/kernel/osrelease (or /proc/version, or `uname -a`)."""
    text = release.replace("*", "")  # users bold version numbers in pasted issues
    if "microsoft-standard" in text.lower() or "wsl2" in text.lower():
        return "wsl2"
    if _WSL1.search(text) or text.strip().endswith("-Microsoft"):
        return "wsl1"
    return "other"
