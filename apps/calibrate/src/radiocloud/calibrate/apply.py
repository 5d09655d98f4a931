"""rc-calibrate-apply: the gains of a table, resampled onto a dataset, applied."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radiocloud.calibrate.pipeline import check_columns, open_meta, read_layout
from radiocloud.calibrate.plan import CHUNK_BYTES_PER_VIS, MIN_ROWS
from radiocloud.calibrate.tables import freq_index, resample, time_index
from radiocloud.core import dims, io
from radiocloud.core.errors import OptionError
from radiocloud.core.kernels.calibrate import Lookup, Partition, apply_chain, apply_full_chain
from radiocloud.core.progress import compute


@dataclass(frozen=True)
class ApplyConfig:
    dataset: str
    gain_table: str
    output_column: str
    output_product: str
    terms: tuple[str, ...]
    data_column: str = "DATA"
    model_column: str = "MODEL_DATA"
    ddid: int | None = None


def run_apply(cfg: ApplyConfig, *, memory_budget: int, threads: int):
    tables, _ = io.read_gain_table(cfg.gain_table)
    names = cfg.terms or tuple(tables)
    missing = [n for n in names if n not in tables]
    if missing:
        raise OptionError(
            f"--terms {','.join(names)}: the table has no term {missing[0]} "
            f"(it has {', '.join(tables)})"
        )
    sub = io.open_subtables(cfg.dataset)
    columns = io.column_names(cfg.dataset)
    needs_model = cfg.output_product != "corrected"
    model_cols = check_columns(_as_cal(cfg, needs_model), columns) if needs_model else []
    check_columns(_as_cal(cfg, False), columns)
    meta, ddids = open_meta(cfg.dataset, cfg.ddid)
    outs, kept = [], set()
    for ddid in ddids:
        layout, keep = read_layout(meta, sub, ddid, None)
        kept |= set(keep)
        outs += _spw_outputs(cfg, tables, names, layout, keep, model_cols, memory_budget, threads)
    if cfg.output_column not in columns and len(kept) < len(meta):
        # a new column's rows of the DATA_DESC_IDs left out hold the data, not zeros
        dss = io.open_dataset(cfg.dataset, columns=[cfg.data_column], sort_by=("TIME",))
        outs += [ds.assign({cfg.output_column: ds[cfg.data_column]})
                 for i, ds in enumerate(dss) if i not in kept]  # fmt: skip
    with io.column_transaction(cfg.dataset, [cfg.output_column]):
        writes = io.write_columns(outs, cfg.dataset, [cfg.output_column])
        compute(writes, description=f"writing {cfg.output_column}")
    n_vis = sum(int(np.prod(ds[cfg.output_column].shape)) for ds in outs)
    return sum(ds.sizes[dims.ROW] for ds in outs), n_vis, names


def _spw_outputs(cfg, tables, names, layout, keep, model_cols, memory_budget, threads) -> list:
    """One DATA_DESC_ID's partitions with the output column, lazily."""
    for n in names:
        if len(tables[n].ant) != layout.nant:
            raise OptionError(
                f"gain table {cfg.gain_table} has {len(tables[n].ant)} antennas, the dataset "
                f"{layout.nant}: apply a table solved on this array"
            )
    full = [n for n in names if tables[n].attrs.get("type") == "complex"]
    if full:
        return _full_outputs(cfg, tables, names, full[0], layout, keep, model_cols, memory_budget,
                             threads)  # fmt: skip
    res = [resample(tables[n], layout.utimes, layout.freq, layout.chan_width) for n in names]
    lookup = Lookup(
        utimes=layout.utimes,
        tmaps=[r[0] for r in res],
        chan_bins=[r[1] for r in res],
        gains=[r[2] for r in res],
        flags=[r[3] for r in res],
    )
    nchan, ncorr = len(layout.freq), len(layout.corr_names)
    rows = max(MIN_ROWS, memory_budget // (max(threads, 1) * nchan * ncorr * CHUNK_BYTES_PER_VIS))
    wanted = [cfg.data_column, *dict.fromkeys(c for _, c in model_cols), "TIME", "ANTENNA1",
              "ANTENNA2"]  # fmt: skip
    dss = io.open_dataset(cfg.dataset, columns=wanted, row_chunk=int(rows), sort_by=("TIME",))
    outs = []
    for i, k in enumerate(keep):
        ds = dss[k]
        vis = ds[cfg.data_column].data
        model = sum(s * ds[c].data for s, c in model_cols) if model_cols else vis
        p = Partition(vis, model, vis.real, ds.TIME.data, ds.ANTENNA1.data, ds.ANTENNA2.data,
                      layout.utimes[i])  # fmt: skip
        out = apply_chain(p, i, lookup, layout.feeds, cfg.output_product)
        outs.append(ds.assign({cfg.output_column: (dims.VIS, out.astype(vis.dtype))}))
    return outs


def _partitions(cfg, layout, keep, model_cols, memory_budget, threads):
    nchan, ncorr = len(layout.freq), len(layout.corr_names)
    rows = max(MIN_ROWS, memory_budget // (max(threads, 1) * nchan * ncorr * CHUNK_BYTES_PER_VIS))
    wanted = [cfg.data_column, *dict.fromkeys(c for _, c in model_cols), "TIME", "ANTENNA1",
              "ANTENNA2"]  # fmt: skip
    dss = io.open_dataset(cfg.dataset, columns=wanted, row_chunk=int(rows), sort_by=("TIME",))
    for i, k in enumerate(keep):
        ds = dss[k]
        vis = ds[cfg.data_column].data
        model = sum(s * ds[c].data for s, c in model_cols) if model_cols else vis
        yield ds, Partition(vis, model, vis.real, ds.TIME.data, ds.ANTENNA1.data,
                            ds.ANTENNA2.data, layout.utimes[i])  # fmt: skip


def _full_outputs(cfg, tables, names, name, layout, keep, model_cols, memory_budget, threads):
    """A full-Jones table applied: each integration and channel takes its interval's and
    bin's gain (the one holding it, else the nearest), without interpolation."""
    if len(names) > 1:
        raise OptionError(
            f"term {name} of {cfg.gain_table} is a full-Jones term: apply it on its own "
            f"(--terms {name})"
        )
    tab = tables[name]
    G = tab.gains.values[:, :, :, 0, :].reshape(*tab.gains.shape[:3], 2, 2)
    flags = tab.gain_flags.values[:, :, :, 0, :].any(axis=-1)
    chan_bin = freq_index(tab, layout.freq)
    outs = []
    for i, (ds, p) in enumerate(_partitions(cfg, layout, keep, model_cols, memory_budget,
                                            threads)):  # fmt: skip
        out = apply_full_chain(p, time_index(tab, layout.utimes[i]), chan_bin, layout.feeds, G,
                               flags, cfg.output_product)  # fmt: skip
        outs.append(ds.assign({cfg.output_column: (dims.VIS, out.astype(p.vis.dtype))}))
    return outs


def _as_cal(cfg: ApplyConfig, with_model: bool):
    from radiocloud.calibrate.options import CalibrateConfig

    return CalibrateConfig(
        dataset=cfg.dataset, terms=(), iter_recipe=(),
        data_column=cfg.data_column,
        model_column=cfg.model_column if with_model else cfg.data_column,
        output_columns=(cfg.output_column,), output_products=(cfg.output_product,),
    )  # fmt: skip
