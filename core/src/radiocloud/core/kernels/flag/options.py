"""Argument checks and option plans of the flagging kernels: plain Python, no numba.

The public functions in :mod:`.kernels` turn their keyword options into the arrays and integer
codes the numba kernels take (strings do not cross into numba) through the functions here,
which raise ValueError with the option's name for anything unusable.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numba
import numpy as np

from radiocloud.core.kernels.flag import planes

DEFAULT_WINDOWS = (1, 2, 4, 8, 16, 32, 64)
"""SumThreshold window sizes (samples), AOFlagger's: single samples to runs of 64."""

_DIRECTIONS = {
    "time": planes.ALONG_TIME,
    "freq": planes.ALONG_CHAN,
    "chan": planes.ALONG_CHAN,
    "both": planes.ALONG_TIME | planes.ALONG_CHAN,
}
_AXES = {"time": planes.OVER_TIME, "chan": planes.OVER_CHAN}

_SHAPES = {2: "(time, chan)", 3: "(baseline, time, chan)"}


def pair(data, flags, ndim: int | None) -> tuple[np.ndarray, np.ndarray]:
    """C-contiguous float32/float64 data and bool flags of one shape (``ndim`` None: any)."""
    data = np.asarray(data)
    if np.iscomplexobj(data):
        raise ValueError("data must be real-valued (e.g. the amplitude np.abs(vis))")
    if ndim is not None and data.ndim != ndim:
        raise ValueError(f"data must have shape {_SHAPES[ndim]}, got {data.shape}")
    flags = flag_array(flags, data.ndim)
    if flags.shape != data.shape:
        raise ValueError(f"flags must have data's shape {data.shape}, got {flags.shape}")
    dtype = np.float32 if data.dtype == np.float32 else np.float64
    return np.ascontiguousarray(data, dtype=dtype), flags


def flag_array(flags, ndim: int) -> np.ndarray:
    """C-contiguous bool flags of ``ndim`` dimensions."""
    flags = np.asarray(flags)
    if flags.dtype != np.bool_:
        raise ValueError(f"flags must be a bool array, got dtype {flags.dtype}")
    if flags.ndim != ndim:
        raise ValueError(f"flags must have shape {_SHAPES.get(ndim, ndim)}, got {flags.shape}")
    return np.ascontiguousarray(flags)


def sum_threshold_plan(threshold, windows=DEFAULT_WINDOWS, rho=1.5, direction="both"):
    """(windows int64, per-window thresholds float64, direction code) for the kernels."""
    threshold = positive(threshold, "threshold")
    rho = positive(rho, "rho")
    try:
        sizes = [reach(w, "window") for w in np.atleast_1d(np.asarray(windows, dtype=object))]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise ValueError(f"windows must be a non-empty sequence of integers >= 1, got {windows!r}")
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {sorted(_DIRECTIONS)}, got {direction!r}")
    chis = np.array([threshold / rho ** math.log2(w) for w in sizes], dtype=np.float64)
    return np.array(sizes, dtype=np.int64), chis, _DIRECTIONS[direction]


def flag_plan(threshold, iterations, windows, rho, time_sigma, chan_sigma, direction):
    """Arguments of ``planes.flag_plane`` after ``data, flags``, except ``absolute``."""
    if reach(iterations, "iterations") < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
    sizes, chis, code = sum_threshold_plan(threshold, windows, rho, direction)
    return (iterations, sizes, chis, code, *gaussians(time_sigma, chan_sigma))


def gaussians(time_sigma, chan_sigma) -> tuple[np.ndarray, np.ndarray]:
    """The smoothing kernels along time and along frequency."""
    return _gaussian(time_sigma, "time_sigma"), _gaussian(chan_sigma, "chan_sigma")


def _gaussian(sigma, name: str) -> np.ndarray:
    """exp(-k² / 2 sigma²) for |k| <= ceil(3 sigma); [1.0] for sigma 0."""
    sigma = float(sigma)
    if not (math.isfinite(sigma) and sigma >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {sigma!r}")
    if sigma == 0.0:
        return np.ones(1)
    k = np.arange(-math.ceil(3.0 * sigma), math.ceil(3.0 * sigma) + 1, dtype=np.float64)
    return np.exp(-(k**2) / (2.0 * sigma**2))


def positive(value, name: str) -> float:
    """``value`` as a float, if it is finite and > 0."""
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def fraction(value) -> float:
    """``value`` as a float, if it lies in [0, 1]."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"max_fraction must lie in [0, 1], got {value!r}")
    return value


def reach(value, name: str) -> int:
    """``value`` as an int, if it is a whole number >= 0 (not a bool)."""
    try:
        whole = not isinstance(value, bool | np.bool_) and int(value) == value and value >= 0
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def axis_code(axis) -> int:
    """The kernels' code of an ``axis`` option ("time" or "chan")."""
    if axis not in _AXES:
        raise ValueError(f"axis must be one of {sorted(_AXES)}, got {axis!r}")
    return _AXES[axis]


@contextmanager
def numba_threads(nthreads: int | None):
    """Run the block with ``nthreads`` numba threads (numba's setting is per calling thread)."""
    if nthreads is None:
        yield
        return
    if reach(nthreads, "nthreads") < 1:
        raise ValueError(f"nthreads must be an integer >= 1 or None, got {nthreads!r}")
    previous = numba.get_num_threads()
    numba.set_num_threads(min(int(nthreads), numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)
