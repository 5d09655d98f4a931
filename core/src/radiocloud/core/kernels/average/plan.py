"""Which input rows go into which output row: the bin plan of one partition (numpy, eager).

A *segment* is a run of rows that may be averaged together: one field, scan, state,
observation, array and feed pair. Within a segment, integration ``k`` (counted from the
segment's first time in units of the sampling interval) of a baseline averaged by ``n`` in
time belongs to time bin ``k // n``. Bins never span segments, so nothing is averaged across
a scan, field or state change.

Rows are split into row chunks at *slab* boundaries, a slab being the rows of one segment
within the span of the largest time bin: every bin then lies within one chunk, and chunks are
averaged independently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from radiocloud.core.errors import BadInputError

# Times are on the sampling grid if within this fraction of an interval of it.
GRID_TOLERANCE = 0.01


class TimeSamplingError(BadInputError, ValueError):
    """Rows whose times or intervals are not on one uniform grid."""


class RowOrderError(BadInputError, ValueError):
    """Rows of one time bin that are not contiguous (a dataset not sorted by time)."""


@dataclass(frozen=True)
class ChunkBins:
    """The bins of one input row chunk for one output group."""

    rows: np.ndarray  # (k,) int64 rows of the chunk that take part
    out_row: np.ndarray  # (k,) int64 output row (within the chunk's output) of each
    n_out: int


@dataclass(frozen=True)
class BinPlan:
    """Row chunks of an input partition and, per output group, the bins of each chunk."""

    chunks: tuple[int, ...]
    groups: dict[int, tuple[ChunkBins, ...]]  # group key (e.g. channel factor) -> per chunk
    interval: float  # the input sampling interval, s

    def n_out(self, group: int) -> tuple[int, ...]:
        return tuple(b.n_out for b in self.groups[group])


def sampling_interval(interval: np.ndarray, what: str) -> float:
    """The one INTERVAL of all rows, or a :class:`TimeSamplingError` naming ``what``."""
    dt = float(np.median(interval))
    if not dt > 0:
        raise TimeSamplingError(f"{what}: INTERVAL is {dt} s; averaging needs positive intervals")
    spread = float(np.max(np.abs(interval - dt)))
    if spread > GRID_TOLERANCE * dt:
        raise TimeSamplingError(
            f"{what}: integrations of {np.min(interval):g} s to {np.max(interval):g} s; "
            "averaging needs one uniform sampling (average each part separately, or undo a "
            "baseline-dependent averaging first)"
        )
    return dt


def segments(keys: Mapping[str, np.ndarray], nrow: int) -> np.ndarray:
    """Segment index (nrow,) from the row-key columns (FIELD_ID, SCAN_NUMBER, STATE_ID...)."""
    segment = np.zeros(nrow, dtype=np.int64)
    for values in keys.values():
        values = np.asarray(values)
        if nrow and values.min() == values.max():
            continue  # one value: splits nothing
        _, code = np.unique(values, return_inverse=True)
        segment = segment * (int(code.max()) + 1) + code.reshape(-1)
    if nrow and segment.max() >= nrow:  # keep the numbers small
        _, segment = np.unique(segment, return_inverse=True)
    return segment.reshape(-1).astype(np.int64)


def plan_bins(
    *,
    time: np.ndarray,
    interval: np.ndarray,
    antenna1: np.ndarray,
    antenna2: np.ndarray,
    segment: np.ndarray,
    time_factor: np.ndarray,
    group: np.ndarray,
    keep: np.ndarray,
    target_rows: int,
    what: str = "dataset",
) -> BinPlan:
    """Plan the bins of one partition.

    ``time_factor`` and ``group`` are per row (from each row's baseline): the integrations
    averaged and the output group the row goes to. ``keep`` (bool per row) leaves rows out
    (autocorrelations). Chunks hold about ``target_rows`` rows, and always whole slabs.
    Time factors must divide the largest one (powers of two do), so slabs align all bins.
    """
    nrow = time.shape[0]
    dt = sampling_interval(interval, what)
    time_factor = np.asarray(time_factor, dtype=np.int64)
    span = int(time_factor.max()) if nrow else 1
    if np.any(span % time_factor):
        raise ValueError("time factors must divide the largest one")

    # integration index within each segment
    t0 = np.full(segment.max() + 1 if nrow else 0, np.inf)
    np.minimum.at(t0, segment, time)
    steps = (time - t0[segment]) / dt
    k = np.rint(steps).astype(np.int64)
    off = np.abs(steps - k)
    if nrow and off.max() > GRID_TOLERANCE:
        bad = int(np.argmax(off))
        raise TimeSamplingError(
            f"{what}: row {bad} is {off[bad] * dt:.3g} s off the {dt:g} s grid of its scan; "
            "averaging needs times on one uniform grid"
        )

    # slabs: contiguous runs of rows of one segment and one span of the largest bin
    slab = segment * (int(k.max()) // span + 2 if nrow else 1) + k // span
    starts = np.flatnonzero(np.r_[True, slab[1:] != slab[:-1]]) if nrow else np.zeros(0, int)
    if len(np.unique(slab[starts])) != len(starts):
        raise RowOrderError(
            f"{what}: rows of one time bin are not together (the rows are not in time order); "
            "convert it from a Measurement Set, which rc-average reads in time order"
        )
    chunk_starts = _chunk_starts(starts, nrow, max(int(target_rows), 1))
    bounds = np.r_[chunk_starts, nrow]
    chunks = tuple(int(n) for n in np.diff(bounds))
    chunk_of_row = np.repeat(np.arange(len(chunks)), chunks)

    tbin = k // time_factor
    bin_start = t0[segment] + tbin * time_factor * dt  # orders output rows by time
    groups: dict[int, tuple[ChunkBins, ...]] = {}
    for g in np.unique(group[keep]) if keep.any() else []:
        sel = np.flatnonzero(keep & (group == g))
        order = np.lexsort(
            (antenna2[sel], antenna1[sel], segment[sel], tbin[sel], bin_start[sel],
             chunk_of_row[sel])
        )  # fmt: skip
        sel = sel[order]
        key = np.stack(
            [chunk_of_row[sel], segment[sel], tbin[sel], antenna1[sel], antenna2[sel]], axis=1
        )
        new = np.r_[True, np.any(key[1:] != key[:-1], axis=1)] if len(sel) else np.zeros(0, bool)
        out_global = np.cumsum(new) - 1
        per_chunk = []
        for c in range(len(chunks)):
            lo, hi = np.searchsorted(chunk_of_row[sel], [c, c + 1])
            rows = sel[lo:hi]
            out = out_global[lo:hi]
            first = out[0] if len(out) else 0
            per_chunk.append(
                ChunkBins(
                    rows=(rows - bounds[c]).astype(np.int64),
                    out_row=(out - first).astype(np.int64),
                    n_out=int(out[-1] - first + 1) if len(out) else 0,
                )
            )
        groups[int(g)] = tuple(per_chunk)
    return BinPlan(chunks=chunks, groups=groups, interval=dt)


def _chunk_starts(slab_starts: np.ndarray, nrow: int, target: int) -> np.ndarray:
    """Chunk boundaries at slab starts, each chunk about ``target`` rows (at least one slab)."""
    if nrow == 0:
        return np.zeros(0, dtype=np.int64)
    out = [0]
    for s in slab_starts[1:]:
        if s - out[-1] >= target:
            out.append(int(s))
    return np.asarray(out, dtype=np.int64)


def channel_map(nchan: int, factor: int) -> tuple[np.ndarray, int]:
    """Output channel of each input channel, and the output channel count (a last, narrower
    channel takes the remainder)."""
    factor = max(int(factor), 1)
    return (np.arange(nchan) // factor).astype(np.int64), -(-nchan // factor)


def average_channels(
    chan_freq: np.ndarray, chan_width: np.ndarray, factor: int, **columns: np.ndarray
) -> dict[str, np.ndarray]:
    """SPECTRAL_WINDOW columns of the averaged channels.

    CHAN_FREQ is the width-weighted centre of each bin, CHAN_WIDTH the summed width (keeping
    its sign for descending frequencies); each of ``columns`` (EFFECTIVE_BW, RESOLUTION) is
    summed over the bin too, RESOLUTION being at least the new channel's width.
    """
    cmap, nout = channel_map(chan_freq.shape[0], factor)
    width = np.bincount(cmap, weights=chan_width, minlength=nout)
    abs_w = np.abs(chan_width)
    freq = np.bincount(cmap, weights=chan_freq * abs_w, minlength=nout) / np.bincount(
        cmap, weights=abs_w, minlength=nout
    )
    out = {"CHAN_FREQ": freq, "CHAN_WIDTH": width}
    for name, values in columns.items():
        summed = np.bincount(cmap, weights=np.asarray(values, dtype=np.float64), minlength=nout)
        if name == "RESOLUTION":
            summed = np.maximum(np.abs(summed), np.abs(width))
        out[name] = summed
    return out
