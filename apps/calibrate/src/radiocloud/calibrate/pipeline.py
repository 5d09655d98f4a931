"""rc-calibrate's pipeline: read -> one pass per term solve -> gain table and output columns.

Each entry of the iteration recipe is one pass over the visibilities that reduces them to the
solved term's sufficient statistics (the other terms at their current gains), followed by
Gauss-Newton iterations on those statistics alone. Solution intervals are decoupled from
chunks: a pass sums any number of chunks into an interval.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import dask
import dask.array as da
import numpy as np

from radiocloud.calibrate import tables
from radiocloud.calibrate.options import CalibrateConfig, TermSpec, samples
from radiocloud.calibrate.plan import STATS_BYTES, Plan, make_plan
from radiocloud.core import dims, io
from radiocloud.core.errors import ColumnError, OptionError, UnsupportedLayoutError
from radiocloud.core.kernels.calibrate import (
    TERM_TYPES,
    FreqBins,
    Geometry,
    Lookup,
    Partition,
    Reweight,
    Solution,
    Stats,
    TimeIntervals,
    apply_chain,
    apply_full_chain,
    freq_bins,
    full_stats,
    gain_flags,
    solve,
    term_stats,
    time_intervals,
)
from radiocloud.core.kernels.calibrate.full import solve_full
from radiocloud.core.kernels.dft.dask import predict_skymodel
from radiocloud.core.kernels.jones import corr_feeds
from radiocloud.core.progress import compute

log = logging.getLogger("radiocloud.calibrate")
PROTECTED_COLUMNS = ("DATA", "FLAG", "WEIGHT", "WEIGHT_SPECTRUM", "SIGMA", "UVW", "MODEL_DATA")


@dataclass
class Layout:
    """What the metadata pass found: partitions' unique times, baselines, the spectrum."""

    utimes: list[np.ndarray]
    fields: list[int]
    scans: list[int]
    pairs: np.ndarray  # (baseline, 2) ordered antenna pairs present, no autocorrelations
    lut: np.ndarray  # (ant, ant) -> baseline index or -1
    nant: int
    freq: np.ndarray
    chan_width: float
    corr_names: tuple[str, ...]
    feeds: np.ndarray
    n_row: int
    dt: float
    ddid: int


@dataclass
class TermState:
    spec: TermSpec
    kind: type
    times: TimeIntervals
    bins: FreqBins
    theta: np.ndarray
    flags: np.ndarray  # (time, freq interval, ant, feed)
    solutions: list[Solution] = field(default_factory=list)
    full: np.ndarray | None = None  # a full-Jones term's gains (time, freq interval, ant, 2, 2)

    @property
    def gains(self) -> np.ndarray:
        return self.kind.gains(self.theta, self.bins.fmap, self.bins.nu)

    @property
    def bin_flags(self) -> np.ndarray:
        return self.flags[:, self.bins.fmap]


def model_terms(expression: str) -> list[tuple[int, str]]:
    """'MODEL_DATA', 'A+B' or 'A-B' as [(sign, column)]."""
    text = expression.replace(" ", "")
    out, sign, name = [], 1, ""
    for ch in text + "+":
        if ch in "+-":
            if not name:
                raise OptionError(
                    f"--model-column '{expression}': give a column or a sum/difference of "
                    "columns, e.g. MODEL_DATA or MODEL_DATA+MODEL_2"
                )
            out.append((sign, name))
            sign, name = (1 if ch == "+" else -1), ""
        else:
            name += ch
    return out


def open_meta(dataset: str, ddid: int | None) -> tuple[list, list[int]]:
    """The partitions' TIME, ANTENNA1, ANTENNA2 (lazy), and the DATA_DESC_IDs to calibrate."""
    meta = io.open_dataset(dataset, columns=["TIME", "ANTENNA1", "ANTENNA2"], row_chunk=2**20,
                           sort_by=("TIME",))  # fmt: skip
    ddids = sorted({int(ds.attrs["DATA_DESC_ID"]) for ds in meta})
    if ddid is not None and ddid not in ddids:
        raise OptionError(f"--ddid {ddid}: the dataset has DATA_DESC_IDs {ddids}")
    return meta, [ddid] if ddid is not None else ddids


def read_layout(meta: list, sub: io.Subtables, ddid: int, fields) -> tuple:
    """The metadata pass (TIME, ANTENNA1, ANTENNA2) of one DATA_DESC_ID's partitions."""
    keep = [i for i, ds in enumerate(meta) if int(ds.attrs["DATA_DESC_ID"]) == ddid
            and (fields is None or int(ds.attrs["FIELD_ID"]) in fields)]  # fmt: skip
    if not keep:
        raise OptionError(f"no rows of DATA_DESC_ID {ddid} in fields {fields}")
    cols = compute(*[(meta[i].TIME.data, meta[i].ANTENNA1.data, meta[i].ANTENNA2.data)
                     for i in keep], description="reading the layout")  # fmt: skip
    nant = len(sub.antennas.names)
    present = np.zeros((nant, nant), bool)
    for _, a1, a2 in cols:
        present[a1, a2] = True
    np.fill_diagonal(present, False)
    pairs = np.argwhere(present)
    lut = np.full((nant, nant), -1, np.int64)
    lut[pairs[:, 0], pairs[:, 1]] = np.arange(len(pairs))
    utimes = [np.unique(t) for t, _, _ in cols]
    steps = np.concatenate([np.diff(u) for u in utimes] + [np.zeros(0)])
    freq = sub.frequencies(ddid)
    corr_names = sub.corr_names(ddid)
    layout = Layout(
        utimes=utimes,
        fields=[int(meta[i].attrs["FIELD_ID"]) for i in keep],
        scans=[int(meta[i].attrs["SCAN_NUMBER"]) for i in keep],
        pairs=pairs, lut=lut, nant=nant, freq=freq,
        chan_width=float(np.abs(sub.spws[sub.ddid_spw[ddid]].chan_width).mean()),
        corr_names=corr_names, feeds=corr_feeds(corr_names),
        n_row=sum(len(t) for t, _, _ in cols),
        dt=float(steps[steps > 0].min()) if (steps > 0).any() else 1.0, ddid=ddid,
    )  # fmt: skip
    return layout, keep


def term_state(spec: TermSpec, layout: Layout) -> TermState:
    kind = TERM_TYPES[spec.type]
    if kind.shared and not (layout.feeds[:, 0] != layout.feeds[:, 1]).any():
        raise UnsupportedLayoutError(
            f"term {spec.name} ({spec.type}) is solved from the cross-hand correlations, and "
            f"the data have only {' '.join(layout.corr_names)}: drop it or use 4-correlation data"
        )
    nt = samples(f"time-interval {spec.name}=", spec.time_interval, layout.dt, "s")
    nf = samples(f"freq-interval {spec.name}=", spec.freq_interval, layout.chan_width, "Hz")
    times = time_intervals(layout.utimes, nt)
    bins = freq_bins(layout.freq, nf, kind.per_channel)
    shape = (times.n, bins.n, layout.nant, 2)
    theta = kind.initial(shape)
    if spec.load_from:
        theta = tables.initial_params(spec, kind, times, bins, layout)
    return TermState(spec, kind, times, bins, theta, np.zeros(shape, bool))


def lookup_of(states: list[TermState], layout: Layout) -> Lookup:
    return Lookup(
        utimes=layout.utimes,
        tmaps=[s.times.tmaps for s in states],
        chan_bins=[s.bins.chan_bin for s in states],
        gains=[s.gains for s in states],
        flags=[s.bin_flags for s in states],
    )


def read_partitions(cfg, sub, keep: list[int], plan: Plan, model_cols, columns, layout):
    """The partitions' columns, rows in time order, weights zero where flagged; the model
    is the model columns' sum or the sky model predicted on the fly."""
    weight_col = "WEIGHT_SPECTRUM" if "WEIGHT_SPECTRUM" in columns else "WEIGHT"
    always = ["TIME", "ANTENNA1", "ANTENNA2", *(["UVW"] if cfg.sky_model else [])]
    wanted = [cfg.data_column, *(c for _, c in model_cols), "FLAG", "FLAG_ROW", weight_col]
    wanted = [c for c in dict.fromkeys(wanted) if c in columns] + always
    sky = load_sky(cfg.sky_model) if cfg.sky_model else None
    dss = io.open_dataset(cfg.dataset, columns=wanted, row_chunk=plan.rows, sort_by=("TIME",))
    dss = [dss[i] for i in keep]
    parts = []
    for ds in dss:
        vis = ds[cfg.data_column].data
        if sky is None:
            model = sum(sign * ds[c].data for sign, c in model_cols)
        else:
            model = predict_skymodel(
                ds.UVW.data, da.from_array(layout.freq, chunks=-1), sky,
                phase_centre=tuple(sub.fields[int(ds.attrs["FIELD_ID"])].phase_dir),
                corr_names=layout.corr_names,
            )  # fmt: skip
        flag = ds.FLAG.data
        if "FLAG_ROW" in ds:
            flag = flag | ds.FLAG_ROW.data[:, None, None]
        weight = ds[weight_col].data
        if weight.ndim == 2:
            weight = weight[:, None, :]
        good = ~flag & da.isfinite(vis) & da.isfinite(model)
        weight = da.where(good, weight, 0).astype(np.float32)
        clean_vis = da.where(good, vis, 0).astype(np.complex64)
        clean_model = da.where(good, model, 0).astype(np.complex64)
        parts.append((clean_vis, clean_model, weight, ds, vis, model))
    return parts


def make_partitions(parts, layout: Layout, keep_in_memory: bool) -> list[Partition]:
    arrays = [(v, m, w, ds.TIME.data, ds.ANTENNA1.data, ds.ANTENNA2.data)
              for v, m, w, ds, _, _ in parts]  # fmt: skip
    if keep_in_memory:
        arrays = dask.persist(*arrays)
    return [Partition(*a, utimes=u) for a, u in zip(arrays, layout.utimes, strict=True)]


def ref_index(ref: str, sub: io.Subtables, layout: Layout) -> int:
    names = sub.antennas.names
    idx = names.index(ref) if ref in names else int(ref) if ref.isdigit() else -1
    if not 0 <= idx < layout.nant or not (layout.pairs == idx).any():
        raise OptionError(
            f"--ref-ant {ref}: no such antenna in the data; give an index (0-{layout.nant - 1}) "
            f"or a name such as {names[int(layout.pairs[0, 0])]}"
        )
    return idx


@dataclass
class SpwRun:
    """One DATA_DESC_ID's solve."""

    layout: Layout
    keep: list[int]
    states: list[TermState]
    report: list[dict]
    plan: Plan
    raw: list


@dataclass
class Result:
    runs: list[SpwRun]
    outputs: dict[str, str]
    backup: str | None = None

    @property
    def report(self) -> list[dict]:
        return [r for run in self.runs for r in run.report]

    @property
    def rows(self) -> int:
        return sum(run.layout.n_row for run in self.runs)

    @property
    def visibilities(self) -> int:
        return sum(run.plan.n_vis for run in self.runs)


def solve_chain(cfg: CalibrateConfig, states, parts, layout, ref: int, sub) -> list[dict]:
    report = []
    n = len(states)
    for step, n_iter in enumerate(cfg.iter_recipe):
        k, cycle = step % n, step // n
        state = states[k]
        if n_iter == 0:
            continue
        if state.kind.full:
            report.append(solve_full_term(state, parts, layout, ref, n_iter, cfg.tol, step))
            continue
        how = None
        if cycle >= 1 and (cfg.robust or cfg.mad_threshold > 0):
            how = Reweight(cfg.dof if cfg.robust else None, cfg.mad_threshold or None)
        lookup = lookup_of(states, layout)
        tree = term_stats(parts, k, lookup, layout.lut, layout.feeds, len(state.bins.fmap), how)
        ((t0, *sums),) = compute(tree, description=f"{state.spec.name}: pass {step + 1}")
        stats = _placed(t0, sums, state.times.n)
        if step == 0 and not _has_data(stats, layout, ref):
            raise OptionError(
                f"--ref-ant {cfg.ref_ant}: the reference antenna has no unflagged data: "
                "choose another antenna"
            )
        geo = Geometry(layout.pairs, layout.feeds, layout.nant, state.bins.fmap, state.bins.nu,
                       state.bins.freq)  # fmt: skip
        sol = solve(state.kind, state.theta, stats, geo, max_iter=n_iter, tol=cfg.tol, ref=ref,
                    min_baselines=cfg.min_baselines,
                    initialise=cycle == 0 and not state.spec.load_from)  # fmt: skip
        state.theta, state.flags = sol.theta, sol.flags
        state.solutions.append(sol)
        report.append(_step_report(state, sol, cycle, how))
    return report


def solve_full_term(state: TermState, parts, layout, ref, n_iter, tol, step) -> dict:
    """One pass for a full-Jones term's statistics, then alternating least squares."""
    tree = full_stats(parts, state.times.tmaps, state.bins.chan_bin, layout.lut, layout.feeds,
                      state.bins.n)  # fmt: skip
    ((t0, *sums),) = compute(tree, description=f"{state.spec.name}: pass {step + 1}")
    placed = _placed(t0, sums, state.times.n)  # S, W hold T1, T2 here
    T1, T2, D, C = placed.S, placed.W, placed.D, placed.C
    G, flags, iters, converged, chi2_0, chi2_1 = solve_full(
        T1, T2, D, C, layout.pairs, layout.nant, max_iter=n_iter, tol=tol, ref=ref
    )
    state.full = G
    state.flags = np.repeat(flags[..., None], 2, axis=-1)
    state.theta = np.stack([G.real, G.imag], axis=-1).reshape(*G.shape[:3], 4, 2)
    sol = Solution(
        theta=state.theta,
        gains=G,
        flags=state.flags,
        iterations=iters,
        converged=converged,
        chi2_before=chi2_0,
        chi2_after=chi2_1,
        samples=C,
        starved=np.zeros(C.shape, bool),  # only antennas without data are flagged here
    )
    state.solutions.append(sol)
    return _step_report(state, sol, 0, None)


def _stats_scale(state: TermState, layout: Layout) -> int:
    """Statistics per bin and baseline relative to a diagonal term's (S, W per correlation):
    a full-Jones term keeps 80 complex numbers (T1, T2)."""
    return -(-80 * 16 // (STATS_BYTES * len(layout.corr_names))) if state.kind.full else 1


def check_full(cfg: CalibrateConfig, layout: Layout) -> None:
    full = [s for s in cfg.terms if TERM_TYPES[s.type].full]
    if not full:
        return
    name = full[0].name
    if len(cfg.terms) > 1:
        raise OptionError(
            f"term {name} ({full[0].type}) is solved alone: give --terms {name} and apply the "
            "other terms' tables first (rc-calibrate-apply)"
        )
    if sorted(map(tuple, layout.feeds)) != [(0, 0), (0, 1), (1, 0), (1, 1)]:
        raise UnsupportedLayoutError(
            f"term {name} (complex) needs all four correlations; the data have "
            f"{' '.join(layout.corr_names)}: use diag-complex"
        )
    if cfg.robust or cfg.mad_threshold > 0 or full[0].load_from:
        raise OptionError(
            f"term {name} (complex): --robust, --mad-threshold and --load-from are not "
            "available for full-Jones terms yet"
        )


def _placed(t0, arrays, nt):
    if t0 == 0 and len(arrays[0]) == nt:
        return Stats(*arrays)
    out = []
    for a in arrays:
        full = np.zeros((nt, *a.shape[1:]), a.dtype)
        full[t0 : t0 + len(a)] = a
        out.append(full)
    return Stats(*out)


def _has_data(stats: Stats, layout: Layout, ref: int) -> bool:
    bl = np.flatnonzero((layout.pairs == ref).any(axis=1))
    return bool((stats.W[:, :, bl] > 0).any())


def _step_report(state: TermState, sol: Solution, cycle: int, how) -> dict:
    active = sol.samples > 0
    # χ² of the intervals whose every antenna with data has its gain solved: elsewhere the
    # samples of a starved (flagged) antenna would count as unexplained
    solved = active & ~sol.starved
    dof = 2 * sol.samples[solved].sum()
    entry = {
        "term": state.spec.name,
        "type": state.spec.type,
        "cycle": cycle + 1,
        "intervals": int(active.sum()),
        "iterations_max": int(sol.iterations.max(initial=0)),
        "iterations_mean": float(sol.iterations[active].mean()) if active.any() else 0.0,
        "converged_fraction": float(sol.converged[active].mean()) if active.any() else 0.0,
        "chi2_before": float(sol.chi2_before[solved].sum() / dof) if dof else None,
        "chi2_after": float(sol.chi2_after[solved].sum() / dof) if dof else None,
        "chi2_intervals": int(solved.sum()),
        "flagged_fraction": float(sol.flags.mean()),
        "robust": how is not None,
    }
    log.info(
        "%s (%s), cycle %d: %d intervals, %d iterations at most, %.1f%% converged, "
        "reduced chi2 %.4g -> %.4g", entry["term"], entry["type"], entry["cycle"],
        entry["intervals"], entry["iterations_max"], 100 * entry["converged_fraction"],
        entry["chi2_before"] or 0, entry["chi2_after"] or 0,
    )  # fmt: skip
    return entry


def load_sky(path: str):
    from pathlib import Path

    from radiocloud.core.skymodel import read_skymodel

    if not Path(path).is_file():
        raise OptionError(f"--sky-model {path} does not exist: give a WSClean component list")
    return read_skymodel(path)


def check_columns(cfg: CalibrateConfig, columns: set[str]) -> list[tuple[int, str]]:
    if cfg.data_column not in columns:
        raise ColumnError(
            f"--data-column {cfg.data_column}: '{cfg.dataset}' has no such column "
            f"(it has {', '.join(sorted(c for c in columns if 'DATA' in c))})"
        )
    model_cols = [] if cfg.sky_model else model_terms(cfg.model_column)
    for _, c in model_cols:
        if c not in columns:
            raise ColumnError(
                f"--model-column {cfg.model_column}: '{cfg.dataset}' has no column {c}; "
                "predict one with rc-predict"
            )
    for col in cfg.output_columns:
        if col.upper() in PROTECTED_COLUMNS or col == cfg.data_column:
            raise OptionError(
                f"--output-column {col} would overwrite the observation's data or model: "
                "write to CORRECTED_DATA or another new column"
            )
    return model_cols


def run(cfg: CalibrateConfig, *, memory_budget: int, threads: int) -> Result:
    sub = io.open_subtables(cfg.dataset)
    columns = io.column_names(cfg.dataset)
    model_cols = check_columns(cfg, columns)
    if cfg.gain_table and os.path.exists(cfg.gain_table) and not io.is_gain_table(cfg.gain_table):
        raise OptionError(
            f"--gain-table {cfg.gain_table} exists and is not a radiocloud gain table: "
            "choose a new path"
        )
    meta, ddids = open_meta(cfg.dataset, cfg.ddid)
    runs = [solve_spw(cfg, sub, meta, d, columns, model_cols, memory_budget, threads)
            for d in ddids]  # fmt: skip
    if cfg.gain_table:
        tables.write(cfg.gain_table, runs, sub, cfg)
    outputs, backup = {}, None
    if cfg.output_columns:
        new_columns = [c for c in cfg.output_columns if c not in columns]
        keep = sorted(i for run in runs for i in run.keep)
        others = uncalibrated(cfg, keep, runs[0].plan, new_columns)
        if others:
            log.info("rows not calibrated (other fields or DATA_DESC_IDs) get %s = %s in the "
                     "new column(s)", cfg.data_column, ", ".join(new_columns))  # fmt: skip
        backup = write_outputs(cfg, runs, memory_budget, threads, others)
        outputs = dict(zip(cfg.output_columns, cfg.output_products, strict=True))
    return Result(runs, outputs, backup)


def solve_spw(cfg, sub, meta, ddid, columns, model_cols, memory_budget, threads) -> SpwRun:
    """Read one DATA_DESC_ID's layout, plan, and solve its chain."""
    layout, keep = read_layout(meta, sub, ddid, cfg.fields)
    check_full(cfg, layout)
    states = [term_state(spec, layout) for spec in cfg.terms]
    ref = ref_index(cfg.ref_ant, sub, layout)
    log.info("DATA_DESC_ID %d: %d partitions, %d rows", ddid, len(keep), layout.n_row)
    passes = sum(1 for n in cfg.iter_recipe if n) + (1 if cfg.output_columns else 0)
    plan = make_plan(
        n_row=layout.n_row, nchan=len(layout.freq), ncorr=len(layout.corr_names),
        stats_bins=[s.times.n * len(s.bins.fmap) * _stats_scale(s, layout) for s in states],
        nbl=len(layout.pairs),
        chunk_bins=[len(s.bins.fmap) for s in states], memory_budget=memory_budget,
        threads=threads, passes=passes,
    )  # fmt: skip
    log.info(plan.describe())
    raw = read_partitions(cfg, sub, keep, plan, model_cols, columns, layout)
    parts = make_partitions(raw, layout, plan.keep and passes > 1)
    report = solve_chain(cfg, states, parts, layout, ref, sub)
    for r in report:
        r["ddid"] = ddid
    return SpwRun(layout, keep, states, report, plan, raw)


def write_outputs(cfg, runs: list[SpwRun], memory_budget, threads, others) -> str | None:
    """Write the output products; where a sample's gains are flagged its products are 0 and
    (with ``propagate_flags``) FLAG is set, after FLAG is saved as a flag version (returned).
    ``others``: partitions not calibrated whose new output columns get a copy of the data
    (as CASA initialises CORRECTED_DATA), so no row of a new column is left unwritten."""
    flag = cfg.propagate_flags and any(s.flags.any() for run in runs for s in run.states)
    columns = [*cfg.output_columns, *(["FLAG"] if flag else [])]
    outs = []
    for run in runs:
        layout = run.layout
        lookup = None if run.states[0].kind.full else lookup_of(run.states, layout)
        for i, (_, _, w, ds, vis, model) in enumerate(run.raw):
            p = Partition(vis, model, w, ds.TIME.data, ds.ANTENNA1.data, ds.ANTENNA2.data,
                          layout.utimes[i])  # fmt: skip
            chunks = ds[cfg.data_column].data.chunks
            if run.states[0].kind.full:
                outs.append(_full_outputs(cfg, run.states[0], p, i, layout, ds, flag))
                continue
            new = {
                col: (dims.VIS, apply_chain(p, i, lookup, layout.feeds, prod).rechunk(chunks))
                for col, prod in zip(cfg.output_columns, cfg.output_products, strict=True)
            }
            if flag:
                new["FLAG"] = (dims.VIS, ds.FLAG.data | gain_flags(p, i, lookup, layout.feeds))
            outs.append(ds.assign(new))
    for ds in others:
        outs.append(ds.assign({col: ds[cfg.data_column] for col in cfg.output_columns}))
    backup = _backup(cfg, memory_budget, threads) if flag else None
    with io.column_transaction(cfg.dataset, columns):
        writes = io.write_columns(outs, cfg.dataset, columns)
        compute(writes, description=f"writing {', '.join(columns)}")
    return backup


def _full_outputs(cfg, state: TermState, p: Partition, i: int, layout, ds, flag: bool):
    args = (state.times.tmaps[i], state.bins.chan_bin, layout.feeds, state.full,
            state.flags[..., 0])  # fmt: skip
    chunks = ds[cfg.data_column].data.chunks
    new = {col: (dims.VIS, apply_full_chain(p, *args, prod).rechunk(chunks))
           for col, prod in zip(cfg.output_columns, cfg.output_products, strict=True)}  # fmt: skip
    if flag:
        new["FLAG"] = (dims.VIS, ds.FLAG.data | apply_full_chain(p, *args, "corrected", True))
    return ds.assign(new)


def uncalibrated(cfg, keep: list[int], plan: Plan, new_columns: list[str]) -> list:
    """The partitions left out of the solve, when the output columns are new."""
    if not new_columns:
        return []
    dss = io.open_dataset(cfg.dataset, columns=[cfg.data_column, "FLAG"], row_chunk=plan.rows,
                          sort_by=("TIME",))  # fmt: skip
    return [ds for i, ds in enumerate(dss) if i not in set(keep)]


def _backup(cfg, memory_budget: int, threads: int) -> str:
    from datetime import UTC, datetime

    name = "rc-calibrate-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    io.save_version(cfg.dataset, name, description="before rc-calibrate flagged samples of "
                    "flagged gains", memory_budget=memory_budget, threads=threads)  # fmt: skip
    log.info("FLAG saved as flag version %s (restore: rc-flag-versions %s restore %s)",
             name, cfg.dataset, name)  # fmt: skip
    return name
