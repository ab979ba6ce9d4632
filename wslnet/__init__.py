"""wslnet: makes WSL2 networking work, and explains it when it doesn't."""

__version__ = "0.1.0"
