"""rc-plot's pipeline: read -> select -> axes -> ranges (one compute) -> grids (one compute)
-> PNG.

Each plot's points are aggregated chunk by chunk into grids of (ny, nx) pixels, one per
category (a colour category, an iteration value, or both), so memory holds grids and chunks,
never the points: every visibility of an observation can be drawn. The ranges pass is
skipped for plots whose --xlim and --ylim are both given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import dask.array as da
import numpy as np

from radiocloud.core import io
from radiocloud.core.errors import ColumnError, OptionError
from radiocloud.core.kernels.plot import aggregate_all, data_extent
from radiocloud.core.progress import compute
from radiocloud.core.units import format_size
from radiocloud.plot.axes import CATEGORIES, Axis, Source, baseline_index, values
from radiocloud.plot.correlations import Product, flagged, product, products
from radiocloud.plot.html import Panel, write_html
from radiocloud.plot.render import render
from radiocloud.plot.select import Selection

log = logging.getLogger("radiocloud.plot")
MARGIN = 0.02  # of each axis's span, around the data


@dataclass(frozen=True)
class PlotSpec:
    x: Axis
    y: Axis
    output: str  # may hold {field} {scan} {spw} {corr} {antenna} {baseline} when iterating


@dataclass(frozen=True)
class PlotConfig:
    dataset: str
    plots: tuple[PlotSpec, ...]
    corr: tuple[str, ...] | None = None
    colour_by: Axis | None = None  # a category (CATEGORIES) or any axis (the pixel's mean)
    iterate: str | None = None  # one of ITERATIONS: a plot per value
    selection: Selection = field(default_factory=Selection)
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    pixels: tuple[int, int] = (400, 300)
    size: tuple[int, int] = (800, 600)
    html: str | None = None  # also one interactive page of every plot

    @property
    def category(self) -> str | None:
        c = self.colour_by
        return c.name if c is not None and c.name in CATEGORIES else None

    @property
    def continuous(self) -> Axis | None:
        c = self.colour_by
        return c if c is not None and c.name not in CATEGORIES else None


@dataclass
class Part:
    """One partition of the dataset, selected, with what every plot needs from it."""

    src: Source
    stored: tuple[str, ...]  # its correlations
    flag: object  # (row, chan, corr) lazy bool, FLAG | FLAG_ROW
    keep: object  # (row, chan or 1, 1) lazy bool: the rows/channels the selection keeps
    scan: int
    field: int


def _columns(cfg: PlotConfig) -> list[str]:
    cols = {"FLAG", "ANTENNA1", "ANTENNA2", "TIME"}
    for p in cfg.plots:
        cols |= set(p.x.columns) | set(p.y.columns)
    if cfg.colour_by is not None:
        cols |= set(cfg.colour_by.columns)
    if cfg.selection.uv_range is not None:
        cols.add("UVW")
    return sorted(cols)


@dataclass
class Grids:
    """The aggregated plots, before drawing. Per plot: ``ranges`` (x0, x1, y0, y1) or None
    (no points), and ``grids``: counts (niter, ncolour, ny, nx), or with a continuous colour
    its sums and counts (2, niter, ncolour, ny, nx); None without points."""

    layout: Layout
    plots: list[list[Points]]
    ranges: list[tuple | None]
    grids: list[np.ndarray | None]


def aggregate_plots(cfg: PlotConfig, *, memory_budget: int, threads: int) -> Grids:
    """Every plot of ``cfg`` aggregated into its grids, in two passes over the data (one when
    --xlim and --ylim are both given)."""
    have = io.column_names(cfg.dataset)
    missing = [c for c in _columns(cfg) if c not in have]
    if missing:
        raise ColumnError(
            f"'{cfg.dataset}' has no column {missing[0]} (it has {', '.join(sorted(have))})"
        )
    sub = io.open_subtables(cfg.dataset)
    cols = _columns(cfg) + (["FLAG_ROW"] if "FLAG_ROW" in have else [])
    dss = io.open_dataset(cfg.dataset, columns=cols, memory_budget=memory_budget,
                          threads=threads)  # fmt: skip
    parts, layout = _select(cfg, dss, sub)
    plots = [_points(cfg, p, parts, layout) for p in cfg.plots]
    for per in plots:
        niter, ncolour = _ncat(cfg, layout, per[0].names)
        _check_memory(cfg, niter * ncolour, memory_budget, threads)
    ranges = _ranges(cfg, plots)
    grids = _grids(cfg, plots, ranges, layout, memory_budget, threads)
    return Grids(layout, plots, ranges, grids)


def run(cfg: PlotConfig, *, memory_budget: int, threads: int) -> list[str]:
    """Aggregate and draw every plot; the files written."""
    done = aggregate_plots(cfg, memory_budget=memory_budget, threads=threads)
    return _draw(cfg, done.plots, done.grids, done.ranges, done.layout)


# -- selection -------------------------------------------------------------------------------


@dataclass
class Layout:
    """The selected data's categories: antennas, baselines, fields, scans, spws, products."""

    nant: int
    all_antennas: list[str]
    antennas: list[str]  # those in the selection
    antenna_index: np.ndarray  # (nant,) index among selected antennas or -1
    baselines: np.ndarray  # (nant * nant,) index among all baselines p <= q
    baseline_names: list[str]  # of the selected baselines
    selected_baselines: np.ndarray  # (nant * nant,) index among selected baselines or -1
    fields: list[int]
    scans: list[int]
    spws: list[int]
    field_names: list[str]

    def count(self, key: str, corr: tuple[str, ...]) -> int:
        return len(self.names(key, corr))

    def names(self, key: str, corr: tuple[str, ...]) -> list[str]:
        """What each index of category ``key`` stands for (``corr``: the plot's products)."""
        key = key.upper()
        if key in ("ANTENNA1", "ANTENNA2", "ANTENNA"):
            return list(self.antennas) if key == "ANTENNA" else self.all_antennas
        if key == "BASELINE":
            return self.baseline_names
        if key == "FIELD":
            return [self.field_names[f] for f in self.fields]
        if key == "SCAN":
            return [str(s) for s in self.scans]
        if key == "SPW":
            return [str(s) for s in self.spws]
        return list(corr)


def _select(cfg: PlotConfig, dss, sub) -> tuple[list[Part], Layout]:
    sel = cfg.selection
    names = list(sub.antennas.names)
    nant = len(names)
    allowed = sel.baseline_mask(names)  # (nant, nant) bool, symmetric
    pairs = [(p, q) for p in range(nant) for q in range(p, nant)]
    every = np.full(nant * nant, -1, np.int64)
    chosen = np.full(nant * nant, -1, np.int64)
    bl_names = []
    for i, (p, q) in enumerate(pairs):
        every[p * nant + q] = every[q * nant + p] = i
        if allowed[p, q]:
            chosen[p * nant + q] = chosen[q * nant + p] = len(bl_names)
            bl_names.append(f"{names[p]}-{names[q]}")
    # the antennas to iterate over: those --ant names, else every one with a selected baseline
    ants = sel.antenna_ids(names)
    ants = ants if ants is not None else list(np.flatnonzero(allowed.any(axis=1)))
    antenna_index = np.full(nant, -1, np.int64)
    antenna_index[ants] = np.arange(len(ants))
    field_ids = sel.field_ids([f.name for f in sub.fields])
    t0 = float(compute(*[ds.TIME.data.min() for ds in dss], description="reading times")[0])
    parts = []
    for ds in dss:
        ddid, scan, fld = (int(ds.attrs[k]) for k in ("DATA_DESC_ID", "SCAN_NUMBER", "FIELD_ID"))
        spw = sub.ddid_spw[ddid]
        if not sel.keeps(field_ids, fld, scan, spw):
            continue
        freq = sub.frequencies(ddid)
        chans = sel.channel_slice(len(freq))
        freq = freq[chans]
        if not len(freq):
            continue
        ds = ds.isel(chan=chans)
        flag = ds.FLAG.data
        if "FLAG_ROW" in ds:
            flag = flag | ds.FLAG_ROW.data[:, None, None]
        src = Source(ds, freq, chans.start or 0, t0, nant, spw, every)
        rows = baseline_index(ds, nant, chosen) >= 0
        keep = rows[:, None, None]
        if sel.uv_range is not None:
            keep = keep & sel.uv_keep(ds.UVW.data, freq)
        parts.append(Part(src, sub.corr_names(ddid), flag, keep, scan, fld))
    if not parts:
        raise OptionError(f"the selection ({sel.describe()}) keeps no data of {cfg.dataset}")
    layout = Layout(
        nant=nant,
        all_antennas=names,
        antennas=[names[a] for a in ants],
        antenna_index=antenna_index,
        baselines=every,
        baseline_names=bl_names,
        selected_baselines=chosen,
        fields=sorted({p.field for p in parts}),
        scans=sorted({p.scan for p in parts}),
        spws=sorted({p.src.spw for p in parts}),
        field_names=[f.name for f in sub.fields],
    )
    return parts, layout


# -- points ----------------------------------------------------------------------------------


@dataclass
class Points:
    """One plot's lazy points in one partition, with what to aggregate them by."""

    x: object
    y: object
    valid: object
    categories: list  # one or two (antenna iteration) lazy category arrays, or [None]
    extra: list  # validity to add to each category pass (antenna iteration: not autos twice)
    value: object  # the continuous colour, or None
    names: tuple[str, ...]  # the products on the correlation axis


def _products_for(cfg: PlotConfig, spec: PlotSpec, stored) -> tuple[tuple[Product, ...], dict]:
    """The plot's correlation axis and, for a data axis with its own correlation, that one."""
    axes = [a for a in (spec.x, spec.y, cfg.colour_by) if a is not None]
    own = {a.name: (product(a.corr, stored, f"axis {a.name}"),) for a in axes if a.corr}
    named = list(dict.fromkeys(a.corr for a in axes if a.corr))
    if named:
        chosen = own[next(a.name for a in axes if a.corr == named[0])]
    else:
        chosen = products(cfg.corr, stored, "--corr")
    return chosen, own


def _points(cfg: PlotConfig, spec: PlotSpec, parts: list[Part], layout: Layout) -> list[Points]:
    out, first_error = [], None
    for part in parts:
        try:
            chosen, own = _products_for(cfg, spec, part.stored)
        except OptionError as exc:
            first_error = first_error or exc
            continue
        src = part.src

        def axis(a: Axis, src=src, chosen=chosen, own=own):
            return values(a, src, own.get(a.name, chosen))

        bad = flagged(part.flag, chosen)
        for a in (spec.x, spec.y):
            if a.name in own and own[a.name] != chosen:
                bad = bad | flagged(part.flag, own[a.name])
        colour = cfg.continuous
        value = None
        if colour is not None and colour.name == "FLAG":
            value, valid = bad, part.keep  # the flagged fraction: flagged points count
        else:
            valid = ~bad & part.keep
            value = None if colour is None else axis(colour)
        cats, extra = _categories(cfg, part, chosen, layout)
        out.append(Points(axis(spec.x), axis(spec.y), valid, cats, extra, value,
                          tuple(p.name for p in chosen)))  # fmt: skip
    if not out:
        raise first_error
    return out


def _category(key: str, part: Part, chosen, layout: Layout):
    """Index of each point's category for ``key`` (broadcastable), -1 where not selected."""
    ds = part.src.ds
    if key == "CORR":
        return np.arange(len(chosen))[None, None, :]
    if key in ("ANTENNA1", "ANTENNA2"):
        return ds[key].data[:, None, None]
    if key == "BASELINE":
        return baseline_index(ds, layout.nant, layout.selected_baselines)[:, None, None]
    index = {"FIELD": (layout.fields, part.field), "SCAN": (layout.scans, part.scan),
             "SPW": (layout.spws, part.src.spw)}[key]  # fmt: skip
    return np.full((1, 1, 1), index[0].index(index[1]))


def _categories(cfg: PlotConfig, part: Part, chosen, layout: Layout):
    """The category passes of one partition: colour category c and iteration i combine into
    i * ncolour + c; iterating over antennas takes two passes (ANTENNA1, then ANTENNA2 without
    the autocorrelations, which the first pass counted)."""
    colour = cfg.category
    names = tuple(p.name for p in chosen)
    ncolour = layout.count(colour, names) if colour else 1
    c = _category(colour, part, chosen, layout) if colour else 0
    if cfg.iterate is None:
        return [c if colour else None], [None]
    if cfg.iterate == "antenna":
        ds = part.src.ds
        lookup = layout.antenna_index
        a1 = ds.ANTENNA1.data.map_blocks(lambda a: lookup[a], dtype=lookup.dtype)
        a2 = ds.ANTENNA2.data.map_blocks(lambda a: lookup[a], dtype=lookup.dtype)
        cross = (ds.ANTENNA1.data != ds.ANTENNA2.data)[:, None, None]
        passes = [_combine(a[:, None, None], ncolour, c) for a in (a1, a2)]
        return passes, [None, cross]
    it = _category(cfg.iterate.upper(), part, chosen, layout)
    return [_combine(it, ncolour, c)], [None]


def _combine(it, ncolour: int, c):
    """i * ncolour + c, -1 where either is -1 (not selected)."""
    both = it * ncolour + c
    if isinstance(both, np.ndarray):
        return np.where((it < 0) | (np.asarray(c) < 0), -1, both)
    return da.where((it < 0) | (c < 0), -1, both)


# -- ranges and grids ------------------------------------------------------------------------


def _ranges(cfg: PlotConfig, plots: list[list[Points]]):
    """Each plot's (x0, x1, y0, y1): --xlim/--ylim where given, else the extent of its valid
    points with a margin; None where it has none."""
    fixed = cfg.xlim is not None and cfg.ylim is not None
    lazy = [[] if fixed else [data_extent(p.x, p.y, p.valid) for p in per] for per in plots]
    if any(lazy):
        (lazy,) = compute(lazy, description="finding the axes' ranges")
    out = []
    for per in lazy:
        a = np.array(per, float).reshape(-1, 4)
        x0, x1 = (a[:, 0].min(), a[:, 1].max()) if len(a) else (np.inf, -np.inf)
        y0, y1 = (a[:, 2].min(), a[:, 3].max()) if len(a) else (np.inf, -np.inf)
        xr = cfg.xlim or (_pad(x0, x1) if x0 <= x1 else None)
        yr = cfg.ylim or (_pad(y0, y1) if y0 <= y1 else None)
        out.append(None if xr is None or yr is None else (*xr, *yr))
    return out


def _pad(lo, hi):
    span = hi - lo
    pad = MARGIN * span if span > 0 else max(abs(lo) * MARGIN, 0.5)
    return float(lo - pad), float(hi + pad)


def _ncat(cfg: PlotConfig, layout: Layout, corr: tuple[str, ...]) -> tuple[int, int]:
    ncolour = layout.count(cfg.category, corr) if cfg.category else 1
    niter = layout.count(cfg.iterate, corr) if cfg.iterate else 1
    return niter, ncolour


def _grids(cfg, plots, ranges, layout, memory_budget, threads):
    nx, ny = cfg.pixels
    lazy = []
    for per, r in zip(plots, ranges, strict=True):
        if r is None or not per:
            lazy.append(None)
            continue
        niter, ncolour = _ncat(cfg, layout, per[0].names)
        shape = (niter * ncolour, ny, nx)
        sources = []
        for p in per:
            for cat, extra in zip(p.categories, p.extra, strict=True):
                valid = p.valid if extra is None else p.valid & extra
                sources.append((p.x, p.y, valid, cat, p.value))
        grid = aggregate_all(sources, ranges=r, shape=shape, value=cfg.continuous is not None,
                             lanes=_lanes(cfg, shape, memory_budget, threads))  # fmt: skip
        lazy.append((grid, niter, ncolour))
    (done,) = compute([None if t is None else t[0] for t in lazy], description="drawing")
    out = []
    for t, total in zip(lazy, done, strict=True):
        if t is None:
            out.append(None)
            continue
        niter, ncolour = t[1], t[2]
        # counts (niter, ncolour, ny, nx), or sums and counts (2, niter, ncolour, ny, nx)
        lead = (2,) if cfg.continuous is not None else ()
        out.append(total.reshape(*lead, niter, ncolour, ny, nx))
    return out


def _lanes(cfg: PlotConfig, shape, memory_budget: int, threads: int) -> int | None:
    """Lanes (a grid per thread, blocks added in place) when the grids of a tree (about
    threads + 8 alive at once) would not fit in a quarter of the budget; else None, the tree,
    which reads nothing ahead."""
    grid_bytes = int(np.prod(shape)) * (16 if cfg.continuous is not None else 8)
    return threads if grid_bytes * (threads + 8) > memory_budget / 4 else None


def _check_memory(cfg: PlotConfig, ncat: int, memory_budget: int, threads: int) -> None:
    nx, ny = cfg.pixels
    each = ncat * nx * ny * (16 if cfg.continuous is not None else 8)
    need = each * (threads + 1)  # a grid per thread (the lanes), and the result
    if need > memory_budget:
        raise OptionError(
            f"{ncat} grids of {nx}x{ny} pixels need {format_size(need)} with {threads} threads, "
            f"over the memory budget of {format_size(memory_budget)}: select fewer antennas or "
            "baselines, use fewer --pixels, or raise --memory-budget"
        )


# -- drawing ---------------------------------------------------------------------------------


def _draw(cfg: PlotConfig, plots, grids, ranges, layout: Layout) -> list[str]:
    written, panels = [], []
    name = cfg.dataset.rstrip("/").split("/")[-1]
    for spec, per, r, g in zip(cfg.plots, plots, ranges, grids, strict=True):
        corr = per[0].names
        iterations = layout.names(cfg.iterate, corr) if cfg.iterate else [""]
        cats = layout.names(cfg.category, corr) if cfg.category else None
        vrange = _value_range(g) if cfg.continuous is not None and g is not None else None
        for i, value in enumerate(iterations):
            title = f"{name}: {spec.y.name} vs {spec.x.name} ({','.join(corr)})"
            if cfg.iterate:
                title += f", {cfg.iterate} {value}"
            if g is None:
                grid = None
            elif cfg.continuous is not None:
                grid = g[:, i, 0]  # sums and counts
            else:
                grid = g[i] if cats else g[i, 0]
            path = output_name(spec, cfg.iterate, value)
            box = render(path, grid, r, spec.x, spec.y, title=title, size=cfg.size,
                         categories=cats, colour=cfg.continuous, colour_range=vrange)  # fmt: skip
            written.append(path)
            if cfg.html:
                panels.append(_panel(cfg, spec, path, title, box, r, grid, cats))
    if cfg.html:
        written.append(write_html(cfg.html, name, panels))
    return written


def _panel(cfg: PlotConfig, spec: PlotSpec, path, title, box, ranges, grid, cats) -> Panel:
    """What the interactive page shows of one plot: its pixels' counts (and mean colour)."""
    counts = mean = None
    if grid is not None and cfg.continuous is not None:
        sums, counts = grid
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(counts > 0, sums / counts, np.nan)
    elif grid is not None:
        counts = grid.sum(axis=0) if cats else grid
    value = "" if cfg.continuous is None else cfg.continuous.text
    return Panel(path, title, box, ranges, counts, mean, spec.x.text, spec.y.text, value)


def _value_range(g) -> tuple[float, float] | None:
    """The range of the pixels' mean values over all iterations (one colour scale)."""
    sums, counts = g
    mean = sums[counts > 0] / counts[counts > 0]
    return (float(mean.min()), float(mean.max())) if mean.size else None


def output_name(spec: PlotSpec, iterate: str | None, value: str) -> str:
    """The plot's file: its template filled, with ``-VALUE`` added when iterating and the
    template does not name the iteration."""
    safe = value.replace("/", "_").replace(" ", "_")
    if iterate is None:
        return spec.output
    key = "{" + iterate + "}"
    if key in spec.output:
        return spec.output.replace(key, safe)
    stem, dot, ext = spec.output.rpartition(".")
    return f"{stem}-{safe}.{ext}" if dot else f"{spec.output}-{safe}"
