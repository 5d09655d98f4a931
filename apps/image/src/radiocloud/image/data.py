"""What rc-image grids: Stokes I visibilities, their weights and flags, per partition, lazily.

Stokes I is formed from the parallel hands, I = (XX + YY)/2 or (RR + LL)/2, with the weight of
that mean, 4 / (1/w_XX + 1/w_YY); a point is dropped where either hand is flagged, where its
row is flagged, and on autocorrelations. Data with one parallel hand image that hand. Weights
come from WEIGHT_SPECTRUM when the dataset has it, else WEIGHT per row, else 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np

from radiocloud.core import io
from radiocloud.core.errors import ColumnError, OptionError

PAIRS = (("XX", "YY"), ("RR", "LL"))


@dataclass
class Part:
    """One partition's lazy Stokes I: ``vis`` (row, chan) complex64, ``weight`` (row, chan)
    float32, zero where not to be imaged; ``uvw`` (row, 3); ``freq`` (chan,) Hz."""

    vis: da.Array
    weight: da.Array
    uvw: da.Array
    freq: np.ndarray
    ds: object  # the partition as read, for writing back


def stokes_i_parts(dataset: str, *, column: str, field: int, channels: slice,
                   memory_budget: int, threads: int, spws: tuple[int, ...] | None = None,
                   interval: tuple[int | None, int | None] | None = None,
                   ) -> tuple[list[Part], object]:  # fmt: skip
    """Every selected partition's Stokes I, and the dataset's subtables. ``spws`` keeps those
    spectral windows; ``interval`` (START, STOP) the integrations START to STOP - 1 of the
    field (WSClean's -interval), counted over its distinct times."""
    have = io.column_names(dataset)
    if column not in have:
        raise ColumnError(f"'{dataset}' has no column {column} (it has {', '.join(sorted(have))})")
    sub = io.open_subtables(dataset)
    if not 0 <= field < len(sub.fields):
        raise OptionError(
            f"--field {field}: the dataset has fields 0 to {len(sub.fields) - 1} "
            f"({', '.join(f.name for f in sub.fields)})"
        )
    weights = (
        "WEIGHT_SPECTRUM" if "WEIGHT_SPECTRUM" in have else "WEIGHT" if "WEIGHT" in have else None
    )
    cols = [column, "FLAG", "UVW", "ANTENNA1", "ANTENNA2", "TIME"] + [
        c for c in ("FLAG_ROW", weights) if c and c in have
    ]
    dss = io.open_dataset(dataset, columns=cols, memory_budget=memory_budget, threads=threads)
    dss = [ds for ds in dss if int(ds.attrs["FIELD_ID"]) == field]
    if spws is not None:
        have_spws = sorted({sub.ddid_spw[int(ds.attrs["DATA_DESC_ID"])] for ds in dss})
        unknown = [s for s in spws if s not in have_spws]
        if unknown:
            raise OptionError(f"--spw {unknown[0]}: field {field} has spectral windows "
                              f"{', '.join(map(str, have_spws))}")  # fmt: skip
        dss = [ds for ds in dss if sub.ddid_spw[int(ds.attrs["DATA_DESC_ID"])] in spws]
    window = _interval_times(dss, interval) if interval is not None else None
    parts = []
    for ds in dss:
        ddid = int(ds.attrs["DATA_DESC_ID"])
        freq = sub.frequencies(ddid)
        chans = range(len(freq))[channels]
        if not len(chans):
            continue
        ds = ds.isel(chan=slice(chans.start, chans.stop, chans.step))
        hands = _hands(sub.corr_names(ddid), dataset)
        data = ds[column].data
        flag = ds.FLAG.data[:, :, hands].any(axis=2)
        if "FLAG_ROW" in ds:
            flag = flag | ds.FLAG_ROW.data[:, None]
        flag = flag | (ds.ANTENNA1.data == ds.ANTENNA2.data)[:, None]
        if window is not None:
            t = ds.TIME.data
            flag = flag | ((t < window[0]) | (t > window[1]))[:, None]
        vis = data[:, :, hands].mean(axis=2).astype(np.complex64)
        w = _weights(ds, weights, hands)
        weight = da.where(flag | ~da.isfinite(vis), 0, w).astype(np.float32)
        parts.append(Part(vis, weight, ds.UVW.data, freq[channels], ds))
    if not parts:
        raise OptionError(f"field {field} has no data in '{dataset}' for the chosen channels")
    return parts, sub


def _interval_times(dss, interval) -> tuple[float, float]:
    """The first and last TIME of integrations START to STOP - 1 of these partitions."""
    import dask

    times = np.unique(np.concatenate(dask.compute(*[da.unique(ds.TIME.data) for ds in dss])))
    chosen = times[slice(*interval)]
    if not chosen.size:
        start, stop = ("" if v is None else v for v in interval)
        raise OptionError(
            f"--interval {start}:{stop} selects no integration of the {times.size} there are"
        )
    return float(chosen[0]), float(chosen[-1])


def _hands(names: tuple[str, ...], dataset: str) -> list[int]:
    for a, b in PAIRS:
        if a in names and b in names:
            return [names.index(a), names.index(b)]
    single = [i for i, n in enumerate(names) if n in ("XX", "YY", "RR", "LL")]
    if single:
        return single[:1]
    raise ColumnError(
        f"'{dataset}' has correlations {' '.join(names)}: rc-image needs a parallel hand "
        "(XX, YY, RR or LL) to form Stokes I"
    )


def _weights(ds, name: str | None, hands: list[int]):
    """(row, chan or 1) weight of the mean of the hands: 1 / Σ_h (1 / (n² w_h))."""
    if name is None:
        return da.ones((ds.sizes["row"], 1), np.float32, chunks=(ds.chunks["row"], 1))
    if name == "WEIGHT_SPECTRUM":
        w = ds[name].data[..., hands]
    else:  # (row, corr) -> (row, 1, hands); indexing both at once trips dask 2026.8
        w = ds[name].data[:, hands][:, None, :]
    n = len(hands)
    inverse = da.where(w > 0, 1.0 / (n * n * da.maximum(w, 1e-30)), np.inf).sum(axis=2)
    return 1.0 / inverse
