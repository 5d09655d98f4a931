"""Dask wrapper of the DFT predict: one blockwise call, summing over source chunks in the block."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np

from radiocloud.core.dims import CHAN, CORR, ROW, SOURCE, UVW, VIS, L, M
from radiocloud.core.kernels.dft import kernels

# The component axes of lm (l, m) and shape (major, minor, position angle).
LM = L + M
GAUSS_SHAPE = "gauss_shape"


def predict_vis(
    uvw: da.Array,
    lm: da.Array,
    shape: da.Array,
    frequency: da.Array,
    coherency: da.Array,
    *,
    source_chunk: int | None = None,
) -> da.Array:
    """Lazy :func:`radiocloud.core.kernels.dft.kernels.predict_vis` (row, chan, corr).

    ``uvw`` (row, 3), ``lm`` (source, 2), ``shape`` (source, 3), ``frequency`` (chan,),
    ``coherency`` (source, chan, corr): dask or numpy arrays, units and conventions as in the
    numpy kernel. The output is chunked like ``uvw`` in row, ``frequency`` in chan and
    ``coherency`` in corr. The source axis of ``lm``, ``shape`` and ``coherency`` is rechunked to
    ``source_chunk`` sources (default: ``lm``'s source chunks). Each output block loops over the
    source chunks, so its working memory is one output block plus one source chunk; its inputs
    hold every source's ``coherency`` for its channels, so chunk chan when that is large.
    """
    uvw, lm, shape, frequency, coherency = (
        da.asarray(a) for a in (uvw, lm, shape, frequency, coherency)
    )
    _check(uvw, lm, shape, frequency, coherency, source_chunk)
    src_chunks = source_chunk if source_chunk is not None else lm.chunks[0]
    # The component axes are tiny, so one chunk each is always right.
    uvw = uvw.rechunk({1: -1})
    lm = lm.rechunk({0: src_chunks, 1: -1})
    shape = shape.rechunk({0: src_chunks, 1: -1})
    coherency = coherency.rechunk({0: lm.chunks[0], 1: frequency.chunks[0]})
    dtype = np.complex64 if coherency.dtype == np.complex64 else np.complex128
    return da.blockwise(
        _predict_block, VIS,
        uvw, (ROW, UVW),
        lm, (SOURCE, LM),
        shape, (SOURCE, GAUSS_SHAPE),
        frequency, (CHAN,),
        coherency, (SOURCE, CHAN, CORR),
        concatenate=False,
        dtype=dtype,
        meta=np.empty((0, 0, 0), dtype=dtype),
    )  # fmt: skip


def _check(uvw, lm, shape, frequency, coherency, source_chunk) -> None:
    if uvw.ndim != 2 or uvw.shape[1] != 3:
        raise ValueError(f"uvw must have shape (row, 3), got {uvw.shape}")
    if lm.ndim != 2 or lm.shape[1] != 2:
        raise ValueError(f"lm must have shape (source, 2), got {lm.shape}")
    if shape.ndim != 2 or shape.shape != (lm.shape[0], 3):
        raise ValueError(f"shape must have shape (source={lm.shape[0]}, 3), got {shape.shape}")
    if frequency.ndim != 1:
        raise ValueError(f"frequency must have shape (chan,), got {frequency.shape}")
    if coherency.ndim != 3 or coherency.shape[:2] != (lm.shape[0], frequency.shape[0]):
        raise ValueError(
            f"coherency must have shape (source={lm.shape[0]}, chan={frequency.shape[0]}, "
            f"corr), got {coherency.shape}"
        )
    for name, array in (("uvw", uvw), ("lm", lm), ("frequency", frequency)):
        if any(math.isnan(size) for sizes in array.chunks for size in sizes):
            raise ValueError(f"{name} has unknown chunk sizes; call compute_chunk_sizes() first")
    if source_chunk is not None and (not isinstance(source_chunk, int) or source_chunk < 1):
        raise ValueError(f"source_chunk must be a positive integer, got {source_chunk!r}")


def _predict_block(uvw, lm, shape, frequency, coherency):
    """Sum the numpy kernel over source chunks.

    With ``concatenate=False`` every contracted index arrives as a list of its chunks: ``uvw``
    as [block] (over UVW), ``lm`` and ``shape`` as [[block]] (over SOURCE, then the component
    axis) and ``coherency`` as [block] (over SOURCE).
    """
    (uvw,) = uvw
    out = None
    for (lm_s,), (shape_s,), coh_s in zip(lm, shape, coherency, strict=True):
        out = kernels.predict_vis(
            uvw, lm_s, shape_s, frequency, coh_s, out=out, accumulate=out is not None
        )
    return out


def predict_skymodel(
    uvw: da.Array,
    frequency: da.Array,
    model,
    *,
    phase_centre: tuple[float, float],
    corr_names,
    source_chunk: int = 1024,
    dtype=np.complex64,
    chan_width: float = 0.0,
    uvw_delta: da.Array | None = None,
) -> da.Array:
    """Lazy visibilities (row, chan, corr) of a :class:`radiocloud.core.skymodel.SkyModel`.

    Each block computes the coherency of ``source_chunk`` components at a time for its own
    channels and runs the numpy kernel on them, so its memory is one output block plus one
    source chunk, whatever the size of the model, and nothing model-sized waits in the
    scheduler between tasks (a coherency array as a graph input would be computed ahead and
    held). Output chunks follow ``uvw`` in row and ``frequency`` in chan.

    ``chan_width`` and ``uvw_delta`` (row, 3) apply bandwidth and time smearing as in the numpy
    kernel; ``uvw_delta`` is rechunked like ``uvw``.
    """
    uvw, frequency = da.asarray(uvw), da.asarray(frequency)
    if uvw.ndim != 2 or uvw.shape[1] != 3:
        raise ValueError(f"uvw must have shape (row, 3), got {uvw.shape}")
    uvw = uvw.rechunk({1: -1})
    smear_args = ()
    if uvw_delta is not None:
        uvw_delta = da.asarray(uvw_delta)
        if uvw_delta.shape != uvw.shape:
            raise ValueError(f"uvw_delta must have shape {uvw.shape}, got {uvw_delta.shape}")
        smear_args = (uvw_delta.rechunk(uvw.chunks), (ROW, UVW))
    lm = model.lm(*phase_centre)
    return da.blockwise(
        _skymodel_block, VIS,
        uvw, (ROW, UVW),
        frequency, (CHAN,),
        *smear_args,
        new_axes={CORR: len(corr_names)}, concatenate=True,
        model=model, lm=lm, corr_names=tuple(corr_names), source_chunk=source_chunk,
        chan_width=float(chan_width),
        out_dtype=np.dtype(dtype), dtype=dtype, meta=np.empty((0, 0, 0), dtype=dtype),
    )  # fmt: skip


def _skymodel_block(
    uvw, frequency, uvw_delta=None, *, model, lm, corr_names, source_chunk, out_dtype, chan_width
):
    out = None
    for start in range(0, len(model), source_chunk):
        index = np.arange(start, min(start + source_chunk, len(model)))
        sub = model.select(index)
        coherency = kernels.brightness(sub.flux(frequency), corr_names).astype(out_dtype)
        out = kernels.predict_vis(
            uvw, lm[index], sub.shape, frequency, coherency, out=out,
            accumulate=out is not None, chan_width=chan_width, uvw_delta=uvw_delta,
        )  # fmt: skip
    if out is None:  # an empty model
        out = np.zeros((uvw.shape[0], frequency.shape[0], len(corr_names)), out_dtype)
    return out
