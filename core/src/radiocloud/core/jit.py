"""Numba options, in one place.

Every kernel uses ``njit`` from here: ``cache=True`` (compiled code is kept in a per-user folder
so the second run starts at once) and ``nogil=True`` (dask's threads run kernels side by side).
``parallel`` and ``fastmath`` are opt-in per kernel, with a comment at the call site saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

import numba


def _cache_dir() -> str:
    """A writable per-user folder for numba's cache (honours NUMBA_CACHE_DIR if set)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "radiocloud" / "numba"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home (containers): fall back to a temporary folder
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"radiocloud-numba-{os.getuid()}"
        path.mkdir(parents=True, exist_ok=True)
    return str(path)


# numba reads NUMBA_CACHE_DIR when a cached function is first compiled, so set it on import.
os.environ.setdefault("NUMBA_CACHE_DIR", _cache_dir())
numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]

BASE_OPTIONS = {"cache": True, "nogil": True}


def njit(*, parallel: bool = False, fastmath: bool | set[str] = False):
    """``numba.njit`` with the project's options; ``parallel``/``fastmath`` must be asked for
    (``fastmath`` may name single LLVM flags, e.g. ``{"reassoc", "contract"}``)."""
    return numba.njit(parallel=parallel, fastmath=fastmath, **BASE_OPTIONS)
