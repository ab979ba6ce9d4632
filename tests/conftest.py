from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.helpers import ServerThread
from tests.lab import Lab, LabUnavailable, empty_netns


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`windows`-marked tests are deselected elsewhere: reported as deselected, never as a
    skip that CI would have to accept; the Windows job runs them."""
    if sys.platform == "win32":
        return
    off = [item for item in items if item.get_closest_marker("windows") is not None]
    if off:
        config.hook.pytest_deselected(items=off)
        items[:] = [item for item in items if item.get_closest_marker("windows") is None]


# CI sets this, so that a lab that cannot be built fails instead of skipping.
LAB_REQUIRED = os.environ.get("WSLNET_LAB_REQUIRED") == "1"


def _unavailable(exc: LabUnavailable) -> NoReturn:
    if LAB_REQUIRED:
        pytest.fail(f"lab unavailable (WSLNET_LAB_REQUIRED=1): {exc}")
    pytest.skip(f"lab unavailable: {exc}")


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    try:
        the_lab = Lab()
    except LabUnavailable as exc:
        _unavailable(exc)
    try:
        yield the_lab
    finally:
        the_lab.destroy()


@pytest.fixture(scope="session")
def netns() -> tuple[str, ...]:
    """Runs a command in an empty network namespace of its own (tests/lab.py:
    empty_netns): as root or an ordinary user; skipped like the lab where neither works."""
    try:
        return empty_netns()
    except LabUnavailable as exc:
        _unavailable(exc)


@pytest.fixture
def servers() -> Iterator[ServerThread]:
    st = ServerThread()
    try:
        yield st
    finally:
        st.close()
