"""Fixtures shared by every member's tests."""

from __future__ import annotations

import os

# Count numba's allocations so the leak check below can compare before and after each test.
os.environ.setdefault("NUMBA_NRT_STATS", "1")

import pytest  # noqa: E402
from numba.core.runtime import rtsys  # noqa: E402


@pytest.fixture(autouse=True)
def numba_allocations_balanced():
    """Every numba allocation a test makes is freed by its end (no leaked NRT memory)."""
    before = rtsys.get_allocation_stats()
    yield
    after = rtsys.get_allocation_stats()
    leaked = (after.alloc - before.alloc) - (after.free - before.free)
    assert leaked == 0, f"numba leaked {leaked} allocations"
