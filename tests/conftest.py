from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers import ServerThread
from tests.lab import Lab, LabUnavailable

# CI sets this, so that a lab that cannot be built fails instead of skipping.
LAB_REQUIRED = os.environ.get("WSLNET_LAB_REQUIRED") == "1"


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    try:
        the_lab = Lab()
    except LabUnavailable as exc:
        if LAB_REQUIRED:
            pytest.fail(f"lab unavailable (WSLNET_LAB_REQUIRED=1): {exc}")
        pytest.skip(f"lab unavailable: {exc}")
    try:
        yield the_lab
    finally:
        the_lab.destroy()


@pytest.fixture
def servers() -> Iterator[ServerThread]:
    st = ServerThread()
    try:
        yield st
    finally:
        st.close()
