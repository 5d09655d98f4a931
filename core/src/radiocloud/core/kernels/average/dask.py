"""Dask wrapper of the averaging kernels: one task per input row chunk and output group.

Input arrays are chunked along row only (the row chunks of a :class:`BinPlan`); output arrays
are chunked along row by the plan's output rows per chunk. Per chunk, one task bins weights,
flags, row metadata and every visibility column, so a chunk's inputs are read once and can be
freed as soon as that task ends; the outputs are picked from its result.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import getitem

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from radiocloud.core.kernels.average import kernels
from radiocloud.core.kernels.average.plan import ChunkBins

ROW_FLOATS = ("TIME", "INTERVAL", "EXPOSURE", "TIME_CENTROID")


def _first_keys(array: da.Array) -> list:
    """One key per row chunk of an array that has one chunk along its other axes."""
    keys = []
    for key in array.__dask_keys__():
        while isinstance(key, list):
            key = key[0]
        keys.append(key)
    return keys


def _spectrum(array):
    """A (row, chan, corr) view of a weight or sigma given per sample, per row or not at all."""
    if array is None:
        return np.ones((1, 1, 1), dtype=np.float32)
    return array[:, None, :] if array.ndim == 2 else array


def _weights_task(bins: ChunkBins, chan_out, n_chan_out, flag, flag_row, weight, sigma,
                  time, interval, exposure, centroid, uvw, want_sigma_spectrum):  # fmt: skip
    rows, out_row, n_out = bins.rows, bins.out_row, bins.n_out
    w_in = _spectrum(weight)
    s_in = np.sqrt(1.0 / np.maximum(w_in, 1e-30)) if sigma is None else _spectrum(sigma)
    w_out, s_out, f_out, row_good = kernels.bin_weights(
        rows, out_row, n_out, chan_out, n_chan_out, flag, flag_row, w_in, s_in
    )
    t, iv, ex, tc, uvw_out, first = kernels.bin_rows(
        rows, out_row, n_out, row_good, time, interval, exposure, centroid, uvw
    )
    # per-row WEIGHT and SIGMA: the mean output weight (mean sigma²) over the row's good
    # channels, over all of its channels if it has none
    good = ~f_out
    row_has_good = good.any(axis=1, keepdims=True)
    use = np.where(row_has_good, good, True)
    n_use = np.maximum(use.sum(axis=1), 1)
    weight_row = (np.where(use, w_out, 0.0).sum(axis=1) / n_use).astype(np.float32)
    sigma_row = np.sqrt(np.where(use, s_out.astype(np.float64) ** 2, 0.0).sum(axis=1) / n_use)
    out = {
        "FLAG": f_out,
        "FLAG_ROW": f_out.all(axis=(1, 2)),
        "WEIGHT_SPECTRUM": w_out,
        "WEIGHT": weight_row,
        "SIGMA": sigma_row.astype(np.float32),
        "TIME": t,
        "INTERVAL": iv,
        "EXPOSURE": ex,
        "TIME_CENTROID": tc,
        "UVW": uvw_out,
        "first": first,
    }
    if want_sigma_spectrum:
        out["SIGMA_SPECTRUM"] = s_out
    return out


def _chunk_task(bins: ChunkBins, chan_out, n_chan_out, sigma_spectrum, vis_names, row_names,
                flag, flag_row, weight, sigma, time, interval, exposure, centroid, uvw,
                *columns):  # fmt: skip
    """Everything one input chunk gives: weights, flags, row metadata, each visibility column
    and each copied row column. One task, so the chunk's inputs are freed as soon as it ends."""
    if flag_row is None:
        flag_row = np.zeros(flag.shape[0], dtype=np.bool_)
    out = _weights_task(bins, chan_out, n_chan_out, flag, flag_row, weight, sigma, time,
                        interval, exposure, centroid, uvw, sigma_spectrum)  # fmt: skip
    w_in = _spectrum(weight)
    for name, data in zip(vis_names, columns[: len(vis_names)], strict=True):
        out[name] = kernels.bin_visibilities(
            bins.rows, bins.out_row, bins.n_out, chan_out, n_chan_out, flag, flag_row, w_in,
            data,
        )  # fmt: skip
    for name, column in zip(row_names, columns[len(vis_names) :], strict=True):
        out[name] = column[out["first"]]
    return out


def average_chunks(
    bins: tuple[ChunkBins, ...],
    *,
    chan_out: np.ndarray,
    n_chan_out: int,
    flag: da.Array,
    flag_row: da.Array | None,
    weight: da.Array | None,
    sigma: da.Array | None,
    time: da.Array,
    interval: da.Array,
    exposure: da.Array,
    time_centroid: da.Array,
    uvw: da.Array,
    visibilities: Mapping[str, da.Array],
    row_columns: Mapping[str, da.Array],
    sigma_spectrum: bool,
) -> dict[str, da.Array]:
    """Lazy averaged columns of one output group.

    ``bins`` holds the group's bins for each row chunk of the inputs (all chunked alike along
    row, one chunk along their other axes). ``weight``/``sigma`` are (row, corr) or
    (row, chan, corr) or None (natural weights; sigma from weights). ``visibilities`` are the
    (row, chan, corr) columns to average; ``row_columns`` are per-row columns constant within
    a bin (ANTENNA1, FIELD_ID...), copied from each bin's first row. Returns the averaged
    columns by name (FLAG, FLAG_ROW, WEIGHT, SIGMA, WEIGHT_SPECTRUM, optionally
    SIGMA_SPECTRUM, TIME, INTERVAL, EXPOSURE, TIME_CENTROID, UVW, the visibilities and the row
    columns).
    """
    ncorr = flag.shape[2]
    inputs = [flag, flag_row, weight, sigma, time, interval, exposure, time_centroid, uvw]
    arrays = [a for a in inputs if a is not None]
    chunks = arrays[0].chunks[0]
    for a in [*arrays, *visibilities.values(), *row_columns.values()]:
        if a.chunks[0] != chunks or any(len(c) != 1 for c in a.chunks[1:]):
            raise ValueError("inputs must share row chunks and have one chunk on other axes")
    if len(bins) != len(chunks):
        raise ValueError(f"{len(bins)} bin plans for {len(chunks)} row chunks")
    keys = [_first_keys(a) if a is not None else [None] * len(chunks) for a in inputs]
    # chunks without an output row for this group make no output block
    live = [i for i, b in enumerate(bins) if b.n_out > 0]
    n_out = tuple(bins[i].n_out for i in live)
    token = tokenize(bins, chan_out, n_chan_out, *arrays, sigma_spectrum)

    vis_names, row_names = list(visibilities), list(row_columns)
    column_keys = [_first_keys(a) for a in (*visibilities.values(), *row_columns.values())]
    name = f"average-chunk-{token}"
    layers = {
        name: {
            (name, i): (
                _chunk_task, bins[i], chan_out, n_chan_out, sigma_spectrum, vis_names,
                row_names, *(k[i] for k in keys), *(k[i] for k in column_keys),
            )
            for i in live
        }
    }  # fmt: skip
    deps = {name: {a.name for a in (*arrays, *visibilities.values(), *row_columns.values())}}
    specs: dict[str, tuple[str, tuple, np.dtype]] = {}  # column -> (layer, chunks, dtype)

    def extract(field: str, tail: tuple[int, ...], dtype) -> None:
        out_name = f"average-{field.lower()}-{token}"
        zeros = (0,) * len(tail)
        layers[out_name] = {
            (out_name, j, *zeros): (getitem, (name, i), field) for j, i in enumerate(live)
        }
        deps[out_name] = {name}
        specs[field] = (out_name, (n_out, *((t,) for t in tail)), np.dtype(dtype))

    vis_tail = (n_chan_out, ncorr)
    extract("FLAG", vis_tail, np.bool_)
    extract("WEIGHT_SPECTRUM", vis_tail, np.float32)
    if sigma_spectrum:
        extract("SIGMA_SPECTRUM", vis_tail, np.float32)
    extract("FLAG_ROW", (), np.bool_)
    extract("WEIGHT", (ncorr,), np.float32)
    extract("SIGMA", (ncorr,), np.float32)
    for field in ROW_FLOATS:
        extract(field, (), np.float64)
    extract("UVW", (3,), np.float64)
    for column, array in visibilities.items():
        extract(column, vis_tail, array.dtype)
    for column, array in row_columns.items():
        extract(column, (), array.dtype)

    # one graph holds every output layer and every input's layers
    for a in [*arrays, *visibilities.values(), *row_columns.values()]:
        hlg = a.__dask_graph__()
        for layer_name, layer in hlg.layers.items():
            layers.setdefault(layer_name, layer)
            deps.setdefault(layer_name, hlg.dependencies.get(layer_name, set()))
    graph = HighLevelGraph(layers, deps)
    return {
        column: da.Array(graph, layer, chunks=chunks_, dtype=dtype)
        for column, (layer, chunks_, dtype) in specs.items()
    }
