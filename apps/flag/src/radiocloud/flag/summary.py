"""Flag summaries: flagged and total visibilities per antenna, baseline, channel, scan, field
and correlation, counted lazily so that a flagging run computes its "before" and "after"
summaries in the same dask compute as its flagging::

    before = flag_counts(dss, n_ant=n_ant)
    after = flag_counts(flagged_dss, n_ant=n_ant)
    b, a, _ = dask.compute(before, after, writes)
    render_comparison(FlagSummary.build(b, sub), FlagSummary.build(a, sub))

Counts are of FLAG cells (one per visibility and correlation), as CASA's flagdata summary
counts them; FLAG_ROW is not consulted. An antenna counts the visibilities of every baseline
it is on (an autocorrelation once).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import dask
import numpy as np
import xarray as xr
from dask.delayed import Delayed

from radiocloud.core import io
from radiocloud.core.errors import ColumnError, OverflaggedError
from radiocloud.core.progress import compute

log = logging.getLogger("radiocloud.flag")
MERGE_FAN_IN = 16  # counts merged per task in the reduction tree
COUNT_COLUMNS = ("FLAG", "ANTENNA1", "ANTENNA2")
KEY_COLUMNS = ("FIELD_ID", "SCAN_NUMBER", "DATA_DESC_ID")


@dataclass
class FlagCounts:
    """The raw numbers (numpy): what computing :func:`flag_counts` gives. Mergeable with +."""

    n_ant: int
    baseline_flagged: np.ndarray  # (ant1, ant2) int64
    baseline_total: np.ndarray
    chan_flagged: dict[int, np.ndarray] = field(default_factory=dict)  # DDID -> (chan, corr)
    chan_total: dict[int, np.ndarray] = field(default_factory=dict)
    scans: dict[int, np.ndarray] = field(default_factory=dict)  # scan -> [flagged, total]
    fields: dict[int, np.ndarray] = field(default_factory=dict)  # FIELD_ID -> [flagged, total]

    @classmethod
    def empty(cls, n_ant: int) -> FlagCounts:
        zeros = np.zeros((n_ant, n_ant), np.int64)
        return cls(n_ant, zeros, zeros.copy())

    def __add__(self, other: FlagCounts) -> FlagCounts:
        def add(a: dict, b: dict) -> dict:
            return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(a.keys() | b.keys())}

        return FlagCounts(
            self.n_ant,
            self.baseline_flagged + other.baseline_flagged,
            self.baseline_total + other.baseline_total,
            add(self.chan_flagged, other.chan_flagged),
            add(self.chan_total, other.chan_total),
            add(self.scans, other.scans),
            add(self.fields, other.fields),
        )


# -- counting, lazily -------------------------------------------------------------------------


def _keyed(keys: np.ndarray, flagged: np.ndarray, cells: int) -> dict[int, np.ndarray]:
    values, inverse = np.unique(keys, return_inverse=True)
    f = np.bincount(inverse, weights=flagged, minlength=len(values))
    t = np.bincount(inverse, minlength=len(values)) * cells
    return {int(v): np.array([round(f[i]), t[i]], np.int64) for i, v in enumerate(values)}


def _block_counts(flag, a1, a2, *keys, shape, offset, n_ant, fields) -> FlagCounts:
    """The counts of one (row, chan, corr) block of FLAG. ``keys``: FIELD_ID, SCAN_NUMBER and
    DATA_DESC_ID, each per row or a constant; ``offset``: the block's first channel and
    correlation within ``shape`` (chan, corr)."""
    nrow = flag.shape[0]
    fld, scan, ddid = (np.broadcast_to(np.asarray(k), (nrow,)) for k in keys)
    if fields is not None:
        keep = np.isin(fld, fields)
        flag, a1, a2, fld, scan, ddid = (x[keep] for x in (flag, a1, a2, fld, scan, ddid))
        nrow = flag.shape[0]
    counts = FlagCounts.empty(n_ant)
    if nrow == 0:
        return counts
    if max(a1.max(), a2.max()) >= n_ant or min(a1.min(), a2.min()) < 0:
        raise ColumnError(
            f"ANTENNA1/ANTENNA2 hold antenna {max(a1.max(), a2.max())}, but the ANTENNA table "
            f"has {n_ant} rows: the dataset is inconsistent"
        )
    cells = flag.shape[1] * flag.shape[2]
    per_row = np.count_nonzero(flag.reshape(nrow, cells), axis=1)
    baseline = a1.astype(np.int64) * n_ant + a2
    bf = np.bincount(baseline, weights=per_row, minlength=n_ant * n_ant)
    counts.baseline_flagged = np.rint(bf).astype(np.int64).reshape(n_ant, n_ant)
    counts.baseline_total = (np.bincount(baseline, minlength=n_ant * n_ant) * cells).reshape(
        n_ant, n_ant
    )
    window = tuple(slice(o, o + n) for o, n in zip(offset, flag.shape[1:], strict=True))
    for d in np.unique(ddid):  # one, but for partitions not grouped by DATA_DESC_ID
        rows = ddid == d
        counts.chan_flagged[int(d)] = np.zeros(shape, np.int64)
        counts.chan_flagged[int(d)][window] = np.count_nonzero(flag[rows], axis=0)
        counts.chan_total[int(d)] = np.zeros(shape, np.int64)
        counts.chan_total[int(d)][window] = np.count_nonzero(rows)
    counts.scans = _keyed(scan, per_row, cells)
    counts.fields = _keyed(fld, per_row, cells)
    return counts


def _merge(*counts: FlagCounts) -> FlagCounts:
    total = counts[0]
    for c in counts[1:]:
        total = total + c
    return total


def _tree(parts: list, n_ant: int) -> Delayed:
    if not parts:
        return dask.delayed(FlagCounts.empty)(n_ant)
    while len(parts) > 1:
        parts = [
            dask.delayed(_merge, pure=True)(*parts[i : i + MERGE_FAN_IN])
            for i in range(0, len(parts), MERGE_FAN_IN)
        ]
    return parts[0]


def _per_row(ds: xr.Dataset, name: str, rows: tuple[int, ...]):
    """A grouping column as delayed row blocks, or its constant (from the partition attrs)."""
    if name in ds.data_vars or name in ds.coords:
        return ds[name].data.rechunk((rows,)).to_delayed(optimize_graph=False)
    if name in ds.attrs:
        return [int(ds.attrs[name])] * len(rows)
    raise ColumnError(f"the datasets have no {name} (neither a column nor a partition key)")


def flag_counts(
    datasets: Sequence[xr.Dataset], *, n_ant: int, fields: Sequence[int] | None = None
) -> Delayed:
    """Lazy flag counts of ``datasets`` (from open_dataset, with FLAG, ANTENNA1, ANTENNA2 and
    FIELD_ID, SCAN_NUMBER, DATA_DESC_ID as columns or partition attributes).

    Returns one dask Delayed that computes to :class:`FlagCounts`; compute it together with
    other work (its FLAG blocks are the same dask keys as the datasets'). ``fields`` counts
    only rows of those FIELD_IDs. Any chunking of FLAG works, also along channels.
    """
    fields = None if fields is None else np.asarray(sorted(fields), np.int64)
    parts = []
    for ds in datasets:
        flag = ds.FLAG.data
        rows = flag.chunks[0]
        a1, a2, *keys = (_per_row(ds, c, rows) for c in (*COUNT_COLUMNS[1:], *KEY_COLUMNS))
        starts = [np.cumsum((0, *c))[:-1] for c in flag.chunks]
        blocks = flag.to_delayed(optimize_graph=False)
        for (i, j, c), block in np.ndenumerate(blocks):
            offset = (int(starts[1][j]), int(starts[2][c]))
            parts.append(
                dask.delayed(_block_counts, pure=True)(
                    block, a1[i], a2[i], *(key[i] for key in keys), shape=flag.shape[1:],
                    offset=offset, n_ant=n_ant, fields=fields,
                )
            )  # fmt: skip
    return _tree(parts, n_ant)


# -- the summary ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    flagged: int
    total: int

    @property
    def fraction(self) -> float:
        return self.flagged / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return {"flagged": self.flagged, "total": self.total, "fraction": self.fraction}


@dataclass(frozen=True)
class SpwFlags:
    """Per-channel counts of one spectral window."""

    spw: int
    name: str
    frequency: np.ndarray  # (chan,) Hz
    flagged: np.ndarray  # (chan,)
    total: np.ndarray  # (chan,)

    @property
    def count(self) -> Count:
        return Count(int(self.flagged.sum()), int(self.total.sum()))

    @property
    def fraction(self) -> np.ndarray:
        return self.flagged / np.maximum(self.total, 1)


def _count(pair) -> Count:
    return Count(int(pair[0]), int(pair[1]))


@dataclass(frozen=True)
class FlagSummary:
    """Flagged and total visibilities (FLAG cells) by antenna, baseline, field, scan,
    correlation and channel, with names and frequencies from the subtables."""

    total: Count
    antennas: dict[str, Count]  # in ANTENNA order
    baselines: dict[tuple[str, str], Count]  # baselines with data only
    fields: dict[str, Count]  # by field name
    scans: dict[int, Count]
    correlations: dict[str, Count]
    spws: tuple[SpwFlags, ...]

    @classmethod
    def build(cls, counts: FlagCounts, sub: io.Subtables) -> FlagSummary:
        names = sub.antennas.names
        bf, bt = counts.baseline_flagged, counts.baseline_total
        diag_f, diag_t = np.diag(bf), np.diag(bt)
        ant_f = bf.sum(axis=0) + bf.sum(axis=1) - diag_f
        ant_t = bt.sum(axis=0) + bt.sum(axis=1) - diag_t
        corr: dict[str, list[int]] = {}
        spw_f: dict[int, np.ndarray] = {}
        spw_t: dict[int, np.ndarray] = {}
        for ddid, flagged in counts.chan_flagged.items():
            total = counts.chan_total[ddid]
            for name, f, t in zip(sub.corr_names(ddid), flagged.sum(0), total.sum(0), strict=True):
                corr.setdefault(name, [0, 0])
                corr[name][0] += int(f)
                corr[name][1] += int(t)
            spw = sub.ddid_spw[ddid]
            spw_f[spw] = spw_f.get(spw, 0) + flagged.sum(1)
            spw_t[spw] = spw_t.get(spw, 0) + total.sum(1)
        spws = tuple(
            SpwFlags(s, sub.spws[s].name, sub.spws[s].chan_freq, spw_f[s], spw_t[s])
            for s in sorted(spw_f)
        )
        field_names = _unique([f.name for f in sub.fields])
        return cls(
            total=Count(int(bf.sum()), int(bt.sum())),
            antennas={n: Count(int(ant_f[i]), int(ant_t[i])) for i, n in enumerate(names)},
            baselines={
                (names[i], names[j]): Count(int(bf[i, j]), int(bt[i, j]))
                for i, j in zip(*np.nonzero(bt), strict=True)
            },
            fields={field_names[f]: _count(c) for f, c in counts.fields.items()},
            scans={s: _count(c) for s, c in counts.scans.items()},
            correlations={n: Count(*c) for n, c in corr.items()},
            spws=spws,
        )

    def to_dict(self) -> dict:
        """Plain JSON-ready numbers: lists of records, fractions of FLAG cells."""

        def records(key: str, items) -> list[dict]:
            return [{key: k, **c.to_dict()} for k, c in items]

        return {
            "total": self.total.to_dict(),
            "field": records("name", self.fields.items()),
            "scan": records("scan", self.scans.items()),
            "correlation": records("name", self.correlations.items()),
            "antenna": records("name", self.antennas.items()),
            "baseline": [
                {"antenna1": a, "antenna2": b, **c.to_dict()}
                for (a, b), c in self.baselines.items()
            ],
            "spw": [
                {
                    "spw": s.spw,
                    "name": s.name,
                    **s.count.to_dict(),
                    "frequency_hz": s.frequency.tolist(),
                    "chan_flagged": s.flagged.tolist(),
                    "chan_total": s.total.tolist(),
                }
                for s in self.spws
            ],
        }


def _unique(names: Sequence[str]) -> list[str]:
    """Field names, with the FIELD_ID appended where two fields share a name."""
    return [f"{n} ({i})" if names.count(n) > 1 else n for i, n in enumerate(names)]


def summarise(
    url: str,
    *,
    fields: Sequence[int] | None = None,
    memory_budget: int = io.DEFAULT_MEMORY_BUDGET,
    threads: int = 1,
) -> FlagSummary:
    """Read a dataset's flags and summarise them (one compute, on the caller's scheduler)."""
    sub = io.open_subtables(url)
    keys = []
    if io.detect_format(url) != "ms":  # zarr and parquet may keep them as columns
        keys = [c for c in KEY_COLUMNS if c in io.column_names(url)]
    dss = io.open_dataset(
        url, columns=[*COUNT_COLUMNS, *keys], memory_budget=memory_budget, threads=threads
    )
    lazy = flag_counts(dss, n_ant=len(sub.antennas.names), fields=fields)
    (counts,) = compute(lazy, description="counting flags")
    return FlagSummary.build(counts, sub)


def check_max_flagged(
    summary: FlagSummary, max_flagged: float | None, *, fail: bool = True
) -> None:
    """Guard against over-flagging: more than ``max_flagged`` (a fraction) of the visibilities
    flagged raises :class:`OverflaggedError` (``fail``), or logs a warning."""
    if max_flagged is None or summary.total.fraction <= max_flagged:
        return
    message = (
        f"{summary.total.fraction:.2%} of the visibilities are flagged, more than "
        f"--max-flagged {max_flagged:.2%} allows: check the flagging (or raise the limit)"
    )
    if fail:
        raise OverflaggedError(message)
    log.warning(message)
