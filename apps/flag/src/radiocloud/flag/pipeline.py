"""rc-flag's pipeline: read -> back up FLAG -> add_flag_graph -> write -> one compute.

Rows are cut into windows of whole integrations (all baselines, a range of channels) sized
from the memory budget; each window is flagged as a (baseline, time, chan, corr) cube by the
strategy's steps, and its flags go back to their rows. FLAG only grows: a window's result is
the dataset's flags plus what the steps found. FLAG_ROW is set where every flag of a row is.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np

from radiocloud.core import dims, io
from radiocloud.core.errors import ColumnError, OptionError, UnsupportedLayoutError
from radiocloud.core.progress import compute
from radiocloud.core.units import format_size
from radiocloud.flag.steps import Window
from radiocloud.flag.strategy import Strategy, parse_column
from radiocloud.flag.summary import FlagSummary, flag_counts
from radiocloud.flag.window import flag_block

log = logging.getLogger("radiocloud.flag")
GOOD_TIMES = 16  # integrations per window below which time-direction flagging weakens
MIN_TIMES = 4  # fewer integrations than this, and windows split the channels instead
MIN_CHANS = 16
# bytes per visibility and correlation in a window: the column(s) read (complex64), FLAG read
# and written, the cube of data and flags, the amplitude plane (float32), and the kernel's
# background, residual and weights (float64 each)
BYTES_PER_VIS = 8 + 2 + 9 + 4 + 24
BYTES_PER_EXTRA_COLUMN = 8


@dataclass(frozen=True)
class FlagConfig:
    dataset: str
    strategy: Strategy
    fields: tuple[int, ...] | None = None
    scans: tuple[int, ...] | None = None
    ddids: tuple[int, ...] | None = None
    backup: bool = True  # save FLAG as a flag version before changing it


@dataclass(frozen=True)
class WindowPlan:
    times: int  # integrations per window
    chans: int  # channels per window
    rows_per_time: int

    @classmethod
    def make(cls, n_time, rows_per_time, n_chan, n_corr, *, columns, memory_budget, threads):
        """Whole spectra first (band-filling emitters are found across channels), as many
        integrations as fit; channels are split only when not even MIN_TIMES fit."""
        per_vis = (BYTES_PER_VIS + BYTES_PER_EXTRA_COLUMN * (columns - 1)) * n_corr
        budget = memory_budget / max(threads, 1)
        per_time = rows_per_time * per_vis
        times = int(budget // (per_time * n_chan))
        if times >= min(MIN_TIMES, n_time):
            return cls(max(1, min(times, n_time)), n_chan, rows_per_time)
        times = min(MIN_TIMES, n_time)
        chans = max(MIN_CHANS, int(budget // (per_time * times)))
        return cls(times, min(chans, n_chan), rows_per_time)

    def describe(self, n_corr: int) -> str:
        size = self.times * self.rows_per_time * self.chans * n_corr * BYTES_PER_VIS
        return (f"windows of {self.times} integrations x {self.chans} channels x "
                f"{self.rows_per_time} baselines ({format_size(size)} each)")  # fmt: skip


@dataclass(frozen=True)
class Result:
    rows: int
    before: FlagSummary  # of the selected rows
    after: FlagSummary
    backup: str | None  # the flag version FLAG was saved as
    plan: WindowPlan


SELECTION = (("fields", "FIELD_ID"), ("scans", "SCAN_NUMBER"), ("ddids", "DATA_DESC_ID"))


def select(cfg: FlagConfig, dss):
    """The groups the selection keeps (where the keys partition the dataset; zarr and parquet
    datasets may hold them as columns instead, see :func:`row_selection`)."""
    keep = []
    for ds in dss:
        wanted = (getattr(cfg, option) for option, _ in SELECTION)
        if all(ids is None or key not in ds.attrs or int(ds.attrs[key]) in ids
               for ids, (_, key) in zip(wanted, SELECTION, strict=True)):  # fmt: skip
            keep.append(ds)
    if not keep:
        raise OptionError("the field/scan/spw selection matches no rows of the dataset")
    return keep


def row_selection(cfg: FlagConfig, ds) -> da.Array | None:
    """(row,) bool of the rows the selection keeps, where its keys are columns; else None."""
    keep = None
    for option, key in SELECTION:
        ids = getattr(cfg, option)
        if ids is not None and key not in ds.attrs and key in ds:
            rows = da.isin(ds[key].data, list(ids))
            keep = rows if keep is None else keep & rows
    return keep


def check_steps(strategy: Strategy, corr_names, frequency) -> None:
    """Run every step on a small window of noise with the dataset's correlations, so a step
    that cannot work on them fails before anything is backed up or written."""
    rng = np.random.default_rng(0)
    shape = (2, 4, len(frequency), len(corr_names))
    window = Window(
        data=(rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64),
        flags=np.zeros(shape, bool), frequency=np.asarray(frequency), corr_names=corr_names,
        antenna1=np.array([0, 0]), antenna2=np.array([0, 1]), uv_distance=np.ones((2, 4)),
    )  # fmt: skip
    for number, step in enumerate(strategy.steps, start=1):
        try:
            step.apply(window)
        except ValueError as exc:
            raise OptionError(f"strategy {strategy.name}, step {number} ({step.name}): {exc} "
                              f"in this dataset; choose another amplitude") from None  # fmt: skip


def partition_ddid(ds, column, url: str) -> int:
    """The one DATA_DESC_ID of a group: its partition key, or the value of its column."""
    if "DATA_DESC_ID" in ds.attrs:
        return int(ds.attrs["DATA_DESC_ID"])
    values = np.unique(column)
    if len(values) != 1:
        raise UnsupportedLayoutError(
            f"a partition of '{url}' mixes DATA_DESC_IDs {values.tolist()}: rc-flag needs one "
            "spectral window per partition; convert it with rc-data convert to an MS"
        )
    return int(values[0])


def window_rows(time: np.ndarray, times_per_window: int) -> tuple[int, ...]:
    """Row chunk sizes cutting ``time`` (row,) every ``times_per_window`` distinct times, at
    time boundaries when rows are in time order (else by position, a window's worth)."""
    n = len(time)
    if n == 0:
        return (0,)
    if np.all(np.diff(time) >= 0):
        starts = np.flatnonzero(np.r_[True, time[1:] != time[:-1]])
        cuts = starts[::times_per_window][1:]
    else:
        rows = math.ceil(n / len(np.unique(time))) * times_per_window
        cuts = np.arange(rows, n, rows)
    return tuple(int(d) for d in np.diff(np.r_[0, cuts, n]))


def column_data(ds, column: str) -> da.Array:
    first, op, second = parse_column(column)
    data = ds[first].data
    if op:
        data = data - ds[second].data if op == "-" else data + ds[second].data
    return data


def add_flag_graph(cfg: FlagConfig, groups, sub: io.Subtables) -> list:
    """Each group (dataset, its TIME, its DATA_DESC_ID, its window plan) with FLAG (and
    FLAG_ROW) replaced by the strategy's lazy result."""
    out = []
    for ds, time, ddid, plan in groups:
        freq, corr_names = sub.frequencies(ddid), sub.corr_names(ddid)
        rows = window_rows(time, plan.times)
        ds = ds.chunk({dims.ROW: rows})
        data = column_data(ds, cfg.strategy.column).rechunk({1: plan.chans, 2: -1})
        flag = ds.FLAG.data.rechunk(data.chunks)
        keep = row_selection(cfg, ds)
        if keep is not None:  # rows left out count as flagged, and keep their flags
            keep = keep.rechunk(data.chunks[0])[:, None, None]
            flag = flag | ~keep
        chan_chunks = data.chunks[1]
        new = da.blockwise(
            flag_block, dims.VIS,
            data, dims.VIS, flag, dims.VIS,
            ds.TIME.data, (dims.ROW,), ds.ANTENNA1.data, (dims.ROW,), ds.ANTENNA2.data, (dims.ROW,),
            ds.UVW.data.rechunk({1: -1}), (dims.ROW, dims.UVW),
            da.from_array(freq, chunks=(chan_chunks,)), (dims.CHAN,),
            da.arange(len(freq), chunks=(chan_chunks,)), (dims.CHAN,),
            steps=cfg.strategy.steps, corr_names=corr_names,
            dtype=bool, concatenate=True, meta=np.empty((0, 0, 0), bool),
        )  # fmt: skip
        if keep is not None:
            new = da.where(keep, new, ds.FLAG.data.rechunk(new.chunks))
        new = new.rechunk(ds.FLAG.data.chunks)
        update = {"FLAG": (dims.VIS, new)}
        if "FLAG_ROW" in ds:
            update["FLAG_ROW"] = ((dims.ROW,), new.all(axis=(1, 2)) | ds.FLAG_ROW.data)
        out.append(ds.assign(update))
    return out


def run(cfg: FlagConfig, *, memory_budget: int, threads: int) -> Result:
    sub = io.open_subtables(cfg.dataset)
    strategy = cfg.strategy
    names = io.column_names(cfg.dataset)
    has_flag_row = "FLAG_ROW" in names
    write = ["FLAG", "FLAG_ROW"] if has_flag_row else ["FLAG"]
    columns = [*strategy.columns, *write, "TIME", "ANTENNA1", "ANTENNA2", "UVW"]
    keys = []
    if io.detect_format(cfg.dataset) != "ms":  # partition keys may be columns there
        keys = [key for _, key in SELECTION if key in names]
    columns += keys
    index_columns = ["TIME"] + [k for k in keys if k == "DATA_DESC_ID"]
    index = select(cfg, io.open_dataset(cfg.dataset, columns=index_columns, row_chunk=1_000_000))
    (times, ddids) = dask.compute([ds.TIME.data for ds in index],
                                  [ds.DATA_DESC_ID.data if "DATA_DESC_ID" in ds else None
                                   for ds in index])  # fmt: skip
    ddids = [partition_ddid(ds, d, cfg.dataset) for ds, d in zip(index, ddids, strict=True)]

    def plan_for(ddid, time):
        n_time = max(len(np.unique(time)), 1)
        n_chan, n_corr = len(sub.frequencies(ddid)), len(sub.corr_names(ddid))
        return WindowPlan.make(
            n_time, math.ceil(len(time) / n_time), n_chan, n_corr,
            columns=len(strategy.columns), memory_budget=memory_budget, threads=threads,
        )  # fmt: skip

    plans = [plan_for(d, t) for d, t in zip(ddids, times, strict=True)]
    window = max(p.times * p.rows_per_time for p in plans)
    dss = select(cfg, io.open_dataset(cfg.dataset, columns=columns, row_chunk=window))
    for name in strategy.columns:
        if dss[0][name].dtype.kind != "c":
            raise ColumnError(f"column {name} holds {dss[0][name].dtype}, not visibilities")
    for ddid in sorted(set(ddids)):
        check_steps(strategy, sub.corr_names(ddid), sub.frequencies(ddid))
    plan = max(plans, key=lambda p: p.times * p.rows_per_time * p.chans)
    log.info("strategy %s: %s", strategy.name, ", ".join(s.name for s in strategy.steps))
    log.info(plan.describe(max(len(c) for c in sub.correlations)))
    if plan.times < min(GOOD_TIMES, max(len(np.unique(t)) for t in times)):
        log.warning("windows of only %d integrations: flagging along time is weaker; raise "
                    "--memory-budget for longer windows", plan.times)  # fmt: skip
    backup = _backup(cfg, memory_budget, threads) if cfg.backup else None
    n_ant = len(sub.antennas.names)
    with io.column_transaction(cfg.dataset, write):
        out = add_flag_graph(cfg, list(zip(dss, times, ddids, plans, strict=True)), sub)
        writes = io.write_columns(out, cfg.dataset, write)
        before, after = flag_counts(dss, n_ant=n_ant), flag_counts(out, n_ant=n_ant)
        _, before, after = compute(writes, before, after, description="flagging")
    return Result(sum(ds.sizes[dims.ROW] for ds in out), FlagSummary.build(before, sub),
                  FlagSummary.build(after, sub), backup, plan)  # fmt: skip


def _backup(cfg: FlagConfig, memory_budget: int, threads: int) -> str:
    """Save the current FLAG as a flag version named after this run."""
    from datetime import UTC, datetime

    name = "rc-flag-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    description = f"before rc-flag --strategy {cfg.strategy.name}"
    io.save_version(
        cfg.dataset, name, description=description, memory_budget=memory_budget, threads=threads
    )
    log.info("FLAG saved as flag version %s (restore: rc-flag-versions %s restore %s)",
             name, cfg.dataset, name)  # fmt: skip
    return name
