"""Fixtures shared by every member's tests: numba's allocation check, and an S3-compatible
server (moto's server mode) on loopback."""

from __future__ import annotations

import gc

import pytest
from numba.core.runtime import _nrt_python, rtsys

# Count numba's allocations so the leak check below can compare before and after each test
# (what NUMBA_NRT_STATS=1 does, switched on here so no environment variable is needed).
_nrt_python.memsys_enable_stats()


@pytest.fixture(autouse=True)
def numba_allocations_balanced():
    """Every numba allocation a test makes is freed by its end (no leaked NRT memory)."""
    before = rtsys.get_allocation_stats()
    yield
    if _leaked(before):
        # Compiling a kernel leaves reference cycles through numba's compiler frames that can
        # keep a caller's array alive until the garbage collector runs: collect, then judge.
        gc.collect()
    leaked = _leaked(before)
    assert leaked == 0, f"numba leaked {leaked} allocations"


def _leaked(before) -> int:
    after = rtsys.get_allocation_stats()
    return (after.alloc - before.alloc) - (after.free - before.free)


REGION = "af-south-1"  # not us-east-1: s3fs creates buckets with a location constraint there


@pytest.fixture(scope="module")
def s3_server():
    """Start ``moto_server`` on 127.0.0.1, yield fsspec storage options, stop it after."""
    import s3fs

    from radiocloud.core.testing.s3 import moto_server

    with moto_server() as endpoint:
        options = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": REGION},
        }
        s3fs.S3FileSystem(**options).mkdir("radiocloud", region_name=REGION)
        yield options
