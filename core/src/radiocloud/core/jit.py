"""Numba options, in one place.

Every kernel uses ``njit`` from here: ``cache=True`` (compiled code is kept in a per-user folder
so the second run starts at once) and ``nogil=True`` (dask's threads run kernels side by side).
``parallel`` and ``fastmath`` are opt-in per kernel, with a comment at the call site saying why.

Parallel kernels need a thread-safe numba threading layer, OpenMP (libgomp) or TBB, because
dask's threads launch them side by side; numba's fallback, workqueue, aborts the process when
two threads launch at once. Where neither loads (a slim container without libgomp), kernels
are compiled serial: dask's threads still run them in parallel, one chunk each.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path

import numba


def _threadsafe_layer() -> str | None:
    """``omp`` or ``tbb``, the first of numba's thread-safe threading layers that loads."""
    for name in ("omp", "tbb"):
        try:
            importlib.import_module(f"numba.np.ufunc.{name}pool")
        except ImportError:  # its library (libgomp, libtbb) is not installed
            continue
        return name
    return None


#: the threading layer parallel kernels use; None: there is none and kernels run serial
THREADING_LAYER = _threadsafe_layer()
if THREADING_LAYER is not None:
    numba.config.THREADING_LAYER = THREADING_LAYER


def _sources_digest() -> str:
    """A digest of every kernel's source. numba keys a cached function on its own file only,
    so a kernel whose callee in another module changed would load stale machine code; a cache
    folder per digest makes any change of kernel source (an upgrade, an edit) recompile."""
    root = Path(__file__).parent
    digest = hashlib.sha1(usedforsecurity=False)
    for path in [*sorted(root.joinpath("kernels").rglob("*.py")), Path(__file__)]:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cache_dir() -> str:
    """A writable per-user folder for numba's cache, one per kernel-source digest (under
    NUMBA_CACHE_DIR if set; dask workers inherit the folder through that variable)."""
    name = _sources_digest() + ("" if THREADING_LAYER else "-serial")  # other machine code
    given = os.environ.get("NUMBA_CACHE_DIR")
    if given and Path(given).name == name:
        return given
    base = (
        Path(given)
        if given
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "radiocloud"
        / "numba"
    )
    path = base / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home (containers): fall back to a temporary folder
        tmp = Path(os.environ.get("TMPDIR", "/tmp"))
        path = tmp / f"radiocloud-numba-{os.getuid()}" / path.name
        path.mkdir(parents=True, exist_ok=True)
    return str(path)


# numba reads NUMBA_CACHE_DIR when a cached function is first compiled, so set it on import.
os.environ["NUMBA_CACHE_DIR"] = _cache_dir()
numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]

BASE_OPTIONS = {"cache": True, "nogil": True}


def njit(*, parallel: bool = False, fastmath: bool | set[str] = False):
    """``numba.njit`` with the project's options; ``parallel``/``fastmath`` must be asked for
    (``fastmath`` may name single LLVM flags, e.g. ``{"reassoc", "contract"}``). Without a
    thread-safe threading layer, ``parallel`` is dropped (see the module's docstring)."""
    parallel = parallel and THREADING_LAYER is not None
    return numba.njit(parallel=parallel, fastmath=fastmath, **BASE_OPTIONS)
