"""Engine test fixtures; helpers live in _engine_testing (unique module names)."""

from __future__ import annotations

import pathlib
import sys

import pytest
from zarr.storage import MemoryStore

_here = str(pathlib.Path(__file__).parent)
if _here not in sys.path:
    sys.path.insert(0, _here)

from _engine_testing import CountingStore  # noqa: E402


@pytest.fixture
def store():
    return MemoryStore()


@pytest.fixture
def counting_store():
    return CountingStore()
