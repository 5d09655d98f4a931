"""Dask wrapper of the degridder: one blockwise call over row and channel chunks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import dask
import dask.array as da
import numpy as np

from radiocloud.core.dims import CHAN, CORR, ROW, UVW, VIS
from radiocloud.core.fitsmodel import ImageModel
from radiocloud.core.kernels.degrid import kernels
from radiocloud.core.kernels.dft.kernels import brightness


def degrid_vis(
    uvw: da.Array,
    freq: da.Array,
    model: ImageModel,
    *,
    phase_centre: tuple[float, float],
    corr_names: Sequence[str],
    epsilon: float = 1e-6,
    nthreads: int = 1,
    dtype: type = np.complex64,
) -> da.Array:
    """Lazy :func:`radiocloud.core.kernels.degrid.kernels.degrid_vis` (row, chan, corr).

    ``uvw`` (row, 3) and ``freq`` (chan,): dask or numpy arrays; the output is chunked like
    ``uvw`` in row and ``freq`` in chan, with all correlations in one chunk. ``model`` enters the
    graph once. Every block repeats the image's FFTs (once per Stokes parameter and frequency
    plane it needs), so large row chunks, and channel chunks that each span few of the model's
    planes, keep that overhead small. Other arguments as in the numpy kernel.
    """
    uvw, freq = da.asarray(uvw), da.asarray(freq)
    if uvw.ndim != 2 or uvw.shape[1] != 3:
        raise ValueError(f"uvw must have shape (row, 3), got {uvw.shape}")
    if freq.ndim != 1:
        raise ValueError(f"freq must have shape (chan,), got {freq.shape}")
    for name, array in (("uvw", uvw), ("freq", freq)):
        if any(math.isnan(size) for sizes in array.chunks for size in sizes):
            raise ValueError(f"{name} has unknown chunk sizes; call compute_chunk_sizes() first")
    ncorr = brightness(np.eye(4), corr_names).shape[1]  # checks the names now, not at compute
    dtype = np.dtype(dtype).type
    block = partial(
        kernels.degrid_vis,
        phase_centre=tuple(float(a) for a in phase_centre),
        corr_names=tuple(corr_names),
        epsilon=epsilon,
        nthreads=nthreads,
        dtype=dtype,
    )
    return da.blockwise(
        block, VIS,
        uvw.rechunk({1: -1}), (ROW, UVW),
        freq, (CHAN,),
        dask.delayed(model, pure=True), None,
        new_axes={CORR: ncorr},
        concatenate=True,
        dtype=dtype,
        meta=np.empty((0, 0, 0), dtype=dtype),
    )  # fmt: skip
