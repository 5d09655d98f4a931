"""Dask wrapper of the iterated flagging strategy: one blockwise call over baseline chunks."""

from __future__ import annotations

import math
from functools import partial

import dask.array as da
import numpy as np

from radiocloud.core.dims import BASELINE_PLANES
from radiocloud.core.kernels.flag import kernels


def flag_cube(data: da.Array, flags: da.Array, *, nthreads: int = 1, **options) -> da.Array:
    """Lazy :func:`radiocloud.core.kernels.flag.kernels.flag_cube` (baseline, time, chan) bool.

    ``data`` (baseline, time, chan) real and ``flags`` of the same shape, bool: dask or numpy
    arrays. ``options`` are :func:`~radiocloud.core.kernels.flag.kernels.flag_plane`'s and are
    checked now, not at compute. Time and chan are rechunked to one chunk each (``-1``): the
    background smoothing and the SumThreshold runs span whole planes, so a block holds whole
    (time, chan) planes of its baselines; size the baseline chunks for memory (the kernel's
    working memory is about 40 bytes per sample of a block, plus the block itself). Baseline
    chunks follow ``data``; ``flags`` is rechunked to match. Each block runs on ``nthreads``
    numba threads (default 1, as dask already runs blocks side by side).
    """
    data, flags = da.asarray(data), da.asarray(flags)
    _check(data, flags)
    kernels.check_flag_options(**options)
    data = data.rechunk({1: -1, 2: -1})
    flags = flags.rechunk(data.chunks)
    return da.blockwise(
        partial(kernels.flag_cube, nthreads=nthreads, **options), BASELINE_PLANES,
        data, BASELINE_PLANES,
        flags, BASELINE_PLANES,
        dtype=np.bool_,
        meta=np.empty((0, 0, 0), dtype=np.bool_),
    )  # fmt: skip


def _check(data: da.Array, flags: da.Array) -> None:
    if data.ndim != 3:
        raise ValueError(f"data must have shape (baseline, time, chan), got {data.shape}")
    if np.issubdtype(data.dtype, np.complexfloating):
        raise ValueError("data must be real-valued (e.g. the amplitude abs(vis))")
    if flags.shape != data.shape:
        raise ValueError(f"flags must have data's shape {data.shape}, got {flags.shape}")
    if flags.dtype != np.bool_:
        raise ValueError(f"flags must be a bool array, got dtype {flags.dtype}")
    for name, array in (("data", data), ("flags", flags)):
        if any(math.isnan(size) for sizes in array.chunks for size in sizes):
            raise ValueError(f"{name} has unknown chunk sizes; call compute_chunk_sizes() first")
