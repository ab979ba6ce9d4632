"""Errors that end a command with one clear line and an exit code."""

from __future__ import annotations


class WslnetError(Exception):
    """A failure the user can act on: printed as one line, never as a traceback."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(WslnetError):
    """Bad input from the command line or a config file."""

    exit_code = 2


class ListenError(WslnetError):
    """A listening socket could not be opened; `errno` says why, for code to branch on."""

    exit_code = 2

    def __init__(self, message: str, errno: int | None = None, port: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno
        self.port = port
