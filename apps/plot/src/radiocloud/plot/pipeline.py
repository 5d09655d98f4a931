"""rc-plot's pipeline: read -> axes -> ranges (one compute) -> grids (one compute) -> PNG.

Each plot's points are aggregated chunk by chunk into a (ny, nx) grid, so memory holds grids
and chunks, never the points: every visibility of an observation can be drawn."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dask.array as da
import numpy as np

from radiocloud.core import io
from radiocloud.core.errors import ColumnError, OptionError
from radiocloud.core.kernels.plot import aggregate, data_range
from radiocloud.core.progress import compute
from radiocloud.plot.axes import Axis, parse_axis, values
from radiocloud.plot.render import render

log = logging.getLogger("radiocloud.plot")
MARGIN = 0.02  # of each axis's span, around the data


@dataclass(frozen=True)
class PlotSpec:
    x: Axis
    y: Axis
    output: str


@dataclass(frozen=True)
class PlotConfig:
    dataset: str
    plots: tuple[PlotSpec, ...]
    corr: tuple[str, ...] | None = None
    colour_by: str | None = None
    pixels: tuple[int, int] = (400, 300)
    size: tuple[int, int] = (800, 600)


def _columns(cfg: PlotConfig) -> list[str]:
    cols = {"FLAG", "FLAG_ROW"}
    for p in cfg.plots:
        cols |= set(p.x.columns) | set(p.y.columns)
    if cfg.colour_by:
        cols |= set(parse_axis(cfg.colour_by).columns)
    return sorted(cols)


def _corr_index(cfg: PlotConfig, names: tuple[str, ...]) -> np.ndarray:
    if cfg.corr is None:
        return np.arange(len(names))
    return np.array([names.index(c) for c in cfg.corr if c in names], dtype=int)


def _ncat(key: str, nant: int, dss, ncorr: int) -> int:
    if key in ("ANTENNA1", "ANTENNA2"):
        return nant
    if key == "BASELINE":
        return nant * nant
    if key == "CORR":
        return ncorr
    attr = "SCAN_NUMBER" if key == "SCAN" else "FIELD_ID"
    return max(int(ds.attrs[attr]) for ds in dss) + 1


def _category_names(key: str, n: int, sub, corr_names) -> list[str]:
    names = sub.antennas.names
    if key in ("ANTENNA1", "ANTENNA2"):
        return list(names)
    if key == "BASELINE":
        return [f"{names[i // len(names)]}-{names[i % len(names)]}" for i in range(n)]
    if key == "CORR":
        return list(corr_names)
    return [f"{key.lower()} {i}" for i in range(n)]


def run(cfg: PlotConfig, *, memory_budget: int, threads: int) -> list[str]:
    have = io.column_names(cfg.dataset)
    wanted = _columns(cfg)
    missing = [c for c in wanted if c not in have and c != "FLAG_ROW"]
    if missing:
        raise ColumnError(
            f"'{cfg.dataset}' has no column {missing[0]} (it has {', '.join(sorted(have))})"
        )
    sub = io.open_subtables(cfg.dataset)
    nant = len(sub.antennas.names)
    cols = [c for c in wanted if c in have] + ["TIME", "ANTENNA1", "ANTENNA2", "UVW"]
    dss = io.open_dataset(cfg.dataset, columns=list(dict.fromkeys(cols)),
                          memory_budget=memory_budget, threads=threads)  # fmt: skip
    t0 = float(compute(*[ds.TIME.data.min() for ds in dss], description="reading times")[0])
    parts = []
    for ds in dss:
        ddid = int(ds.attrs["DATA_DESC_ID"])
        names = sub.corr_names(ddid)
        corr = _corr_index(cfg, names)
        if not len(corr):
            continue
        flag = ds.FLAG.data[:, :, corr]
        if "FLAG_ROW" in ds:
            flag = flag | ds.FLAG_ROW.data[:, None, None]
        parts.append((ds, sub.frequencies(ddid), corr, ~flag, names))
    if not parts:
        raise OptionError(f"--corr {','.join(cfg.corr or ())}: no such correlation in the data")
    points = []
    for p in cfg.plots:
        per = []
        for ds, freq, corr, good, _ in parts:
            x = values(p.x, ds, freq, corr, t0=t0, nant=nant)
            y = values(p.y, ds, freq, corr, t0=t0, nant=nant)
            valid = good & da.isfinite(x) & da.isfinite(y)
            per.append((x, y, valid))
        points.append(per)
    ranges = _ranges(points)
    grids = _grids(cfg, points, ranges, parts, nant, dss)
    written = []
    for p, r, g in zip(cfg.plots, ranges, grids, strict=True):
        cats = None
        if cfg.colour_by and g is not None:
            key = parse_axis(cfg.colour_by).name
            cats = _category_names(key, len(g), sub, parts[0][4])
        corr_text = ",".join(cfg.corr) if cfg.corr else "all correlations"
        title = f"{cfg.dataset.rstrip('/').split('/')[-1]}: {p.y.name} vs {p.x.name} ({corr_text})"
        render(p.output, g, r, p.x, p.y, title=title, size=cfg.size, categories=cats)
        written.append(p.output)
    return written


def _ranges(points):
    """Each plot's (x0, x1, y0, y1) over its valid points, with a margin; None if empty."""
    lazy = [[data_range(x, v) + data_range(y, v) for x, y, v in per] for per in points]
    (done,) = compute(lazy, description="finding the axes' ranges")
    out = []
    for per in done:
        a = np.array(per, float).reshape(-1, 4)
        if np.isnan(a).all():
            out.append(None)
            continue
        x0, x1, y0, y1 = (
            np.nanmin(a[:, 0]),
            np.nanmax(a[:, 1]),
            np.nanmin(a[:, 2]),
            np.nanmax(a[:, 3]),
        )
        out.append((*_pad(x0, x1), *_pad(y0, y1)))
    return out


def _pad(lo, hi):
    span = hi - lo
    pad = MARGIN * span if span > 0 else max(abs(lo) * MARGIN, 0.5)
    return float(lo - pad), float(hi + pad)


def _grids(cfg, points, ranges, parts, nant, dss):
    nx, ny = cfg.pixels
    ncorr = max(len(c) for _, _, c, _, _ in parts)
    key = parse_axis(cfg.colour_by).name if cfg.colour_by else None
    lazy = []
    for per, r in zip(points, ranges, strict=True):
        if r is None:
            lazy.append(None)
            continue
        shape = (ny, nx) if key is None else (_ncat(key, nant, dss, ncorr), ny, nx)
        terms = []
        for (x, y, v), (ds, freq, corr, _, _) in zip(per, parts, strict=True):
            cat = None
            if key is not None:
                cat = values(parse_axis(key), ds, freq, corr, t0=0.0, nant=nant)
                cat = np.arange(len(corr))[None, None, :] if key == "CORR" else cat
            terms.append(aggregate(x, y, v, ranges=r, shape=shape, category=cat))
        lazy.append(terms)
    (done,) = compute(lazy, description="drawing")
    return [None if t is None else np.sum(t, axis=0) for t in done]
