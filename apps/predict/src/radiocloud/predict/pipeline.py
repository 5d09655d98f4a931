"""rc-predict's pipeline: read -> add_predict_graph -> write -> one compute.

Component lists are predicted with the shared DFT kernel; FITS model images by degridding
(ducc0's wgridder). Memory is planned from the budget whatever the number of components: a
block (rows x channels) holds its visibilities and the spectra and coherency of one chunk of
components at a time, and the plan keeps ``threads`` such blocks within the budget."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np

from radiocloud.core import dims, io
from radiocloud.core.errors import ColumnError, OptionError, UnsupportedLayoutError
from radiocloud.core.fitsmodel import ImageModel, read_fits_model
from radiocloud.core.kernels.degrid.dask import degrid_vis
from radiocloud.core.kernels.dft import earth_rotation_uvw_rate
from radiocloud.core.kernels.dft.dask import predict_skymodel
from radiocloud.core.progress import compute
from radiocloud.core.skymodel import SkyModel, read_skymodel
from radiocloud.predict.config import PredictConfig, Selection
from radiocloud.predict.select import check_visible, select

log = logging.getLogger("radiocloud.predict")
SOURCE_CHUNK = 1024  # components per kernel call inside a block
MIN_ROWS = 256  # rows per block below which channels are split instead
BLOCKS_PER_THREAD = 4  # keep every thread busy to the end
# bytes per visibility in flight in a block: the prediction (complex64), the column read for
# add/subtract and the sum written (complex64 each), kernel temporaries
BYTES_PER_VIS = 4 * 8
SOURCE_BYTES = 8 + 16 + 8 + 16  # per component, channel and correlation in a block
PREDICTABLE_CORRELATIONS = ("XX", "XY", "YX", "YY", "RR", "RL", "LR", "LL")
PROTECTED_COLUMNS = ("DATA", "FLAG", "WEIGHT", "WEIGHT_SPECTRUM", "SIGMA", "UVW")


@dataclass(frozen=True)
class ChunkPlan:
    rows: int
    chans: int
    sources: int

    @classmethod
    def make(cls, n_source, n_chan, n_corr, *, memory_budget, threads, n_row=None) -> ChunkPlan:
        """Blocks of rows x channels such that ``threads`` of them, with one source chunk's
        coherency each, fit the budget (the model's own arrays, a few tens of bytes per
        component, are not counted), and small enough that ``n_row`` rows make at least
        BLOCKS_PER_THREAD blocks per thread: each block runs on one core."""
        threads = max(threads, 1)
        sources = min(SOURCE_CHUNK, max(n_source, 1))
        per_thread = memory_budget // threads
        # bytes per channel and correlation of a block: its visibilities, and the spectra
        # and coherency of one source chunk (float64 flux, complex128 and complex64
        # coherency, the kernel's complex128 source-major copy)
        chans = n_chan
        rows = (per_thread // (chans * n_corr) - sources * SOURCE_BYTES) // BYTES_PER_VIS
        if rows < MIN_ROWS:  # wide band: split channels rather than go below MIN_ROWS rows
            rows = MIN_ROWS
            per_chan = n_corr * (MIN_ROWS * BYTES_PER_VIS + sources * SOURCE_BYTES)
            chans = int(max(1, min(n_chan, per_thread // per_chan)))
        if n_row:
            rows = min(rows, max(MIN_ROWS, -(-n_row // (BLOCKS_PER_THREAD * threads))))
        return cls(rows=int(max(rows, 1)), chans=chans, sources=sources)

    def describe(self, n_source: int, n_chan: int) -> str:
        return (
            f"chunk plan: {self.rows:,} rows x {self.chans} of {n_chan} channels per block, "
            f"{n_source:,} components in chunks of {self.sources}"
        )


def load_model(path: str) -> SkyModel | ImageModel:
    """A WSClean component list, or a FITS model image (Jy/pixel) for ``*.fits``."""
    if not Path(path).exists():
        raise OptionError(
            f"sky model '{path}' does not exist: give a WSClean component list or a FITS model"
        )
    if path.lower().endswith((".fits", ".fit", ".fts")):
        return read_fits_model(path)
    return read_skymodel(path)


def add_predict_graph(cfg: PredictConfig, dss, sub: io.Subtables, model, plan_for, exists):
    """The output column of every group: the prediction, or the existing column plus or minus
    it. Groups of fields not selected keep their values (zeros if the column is new)."""
    out = []
    models: dict[int, SkyModel] = {}
    for ds in dss:
        field, ddid = int(ds.attrs["FIELD_ID"]), int(ds.attrs["DATA_DESC_ID"])
        freq, corr_names = sub.frequencies(ddid), sub.corr_names(ddid)
        shape = (ds.sizes[dims.ROW], len(freq), len(corr_names))
        if cfg.fields is not None and field not in cfg.fields:
            if not exists:
                chunks = (ds.UVW.data.chunks[0], len(freq), len(corr_names))
                zeros = da.zeros(shape, np.complex64, chunks=chunks)
                out.append(ds.assign({cfg.output_column: (dims.VIS, zeros)}))
            continue
        centre = tuple(sub.fields[field].phase_dir)
        if isinstance(model, ImageModel):
            plan = plan_for(1, len(freq), len(corr_names))
            vis = degrid_vis(
                ds.UVW.data, da.from_array(freq, chunks=plan.chans), model,
                phase_centre=centre, corr_names=corr_names, epsilon=cfg.epsilon,
            )  # fmt: skip
            out.append(_combine(cfg, ds, vis))
            continue
        if field not in models:
            models[field] = select(model, cfg.selection, centre)
            check_visible(models[field], centre)
        plan = plan_for(len(models[field]), len(freq), len(corr_names))
        vis = predict_skymodel(
            ds.UVW.data, da.from_array(freq, chunks=plan.chans), models[field],
            phase_centre=centre, corr_names=corr_names, source_chunk=plan.sources,
            **_smearing(cfg, ds, sub, ddid, centre),
        )  # fmt: skip
        out.append(_combine(cfg, ds, vis))
    return out, models


def _smearing(cfg: PredictConfig, ds, sub: io.Subtables, ddid: int, centre) -> dict:
    """predict_skymodel's smearing arguments: the SPW's channel width, and each row's change
    of UVW over its EXPOSURE from Earth's rotation."""
    args = {}
    if cfg.frequency_smearing:
        width = np.abs(sub.spws[sub.ddid_spw[ddid]].chan_width)
        if np.ptp(width) > 1e-6 * width.max():
            raise UnsupportedLayoutError(
                f"--smearing frequency needs equal channel widths, but DATA_DESC_ID {ddid} has "
                f"widths from {width.min():.6g} to {width.max():.6g} Hz: predict without it"
            )
        args["chan_width"] = float(width[0])
    if cfg.time_smearing:
        uvw = ds.UVW.data
        rate = uvw.map_blocks(earth_rotation_uvw_rate, dec=float(centre[1]), dtype=np.float64)
        args["uvw_delta"] = rate * ds.EXPOSURE.data[:, None]
    return args


def _combine(cfg: PredictConfig, ds, vis: da.Array):
    """The group with its output column: ``vis``, or the existing column plus/minus it."""
    if cfg.mode != "replace":
        existing = ds[cfg.output_column].data
        vis = vis.rechunk(existing.chunks)
        vis = existing + vis if cfg.mode == "add" else existing - vis
        vis = vis.astype(existing.dtype)
    return ds.assign({cfg.output_column: (dims.VIS, vis)})


@dataclass(frozen=True)
class Result:
    rows: int
    visibilities: int
    components: int
    plan: ChunkPlan


def run(cfg: PredictConfig, *, memory_budget: int, threads: int) -> Result:
    if cfg.output_column.upper() in PROTECTED_COLUMNS:
        raise OptionError(
            f"--output-column {cfg.output_column} would overwrite the observation's own data: "
            "write to MODEL_DATA or another column"
        )
    model = load_model(cfg.model)
    if isinstance(model, ImageModel) and (cfg.time_smearing or cfg.frequency_smearing):
        raise OptionError(
            "--smearing applies to component lists; a FITS model image is degridded without "
            "smearing: drop --smearing"
        )
    if isinstance(model, ImageModel) and cfg.selection != Selection():
        raise OptionError(
            "--within, --brightest and --points-only select components of a component list, "
            "not pixels of a FITS model image: drop them"
        )
    sub = io.open_subtables(cfg.dataset)
    columns_now, n_row = _columns_and_rows(cfg.dataset)
    exists = cfg.output_column in columns_now
    if cfg.mode != "replace" and not exists:
        raise ColumnError(
            f"--mode {cfg.mode} needs the column {cfg.output_column}, which '{cfg.dataset}' "
            "does not have: predict it with --mode replace first"
        )
    if cfg.fields is not None:
        unknown = sorted(set(cfg.fields) - set(range(len(sub.fields))))
        if unknown:
            raise OptionError(
                f"--field {unknown[0]}: the dataset has fields 0 to {len(sub.fields) - 1}"
            )
    for corrs in sub.correlations:
        unknown = [c for c in corrs if c not in PREDICTABLE_CORRELATIONS]
        if unknown or len({c[0] in "XY" for c in corrs}) > 1:
            raise ColumnError(
                f"'{cfg.dataset}' has correlations {' '.join(corrs)}: rc-predict maps Stokes "
                "to linear (XX XY YX YY) or circular (RR RL LR LL) correlations only"
            )
    n_chan = max(len(s.chan_freq) for s in sub.spws)
    n_corr = max(len(c) for c in sub.correlations)
    n_source = 1 if isinstance(model, ImageModel) else len(model)
    plan = ChunkPlan.make(
        n_source, n_chan, n_corr, memory_budget=memory_budget, threads=threads, n_row=n_row
    )
    log.info(plan.describe(n_source, n_chan))
    columns = ["UVW"] + ([cfg.output_column] if cfg.mode != "replace" else [])
    columns += ["EXPOSURE"] if cfg.time_smearing else []
    dss = io.open_dataset(cfg.dataset, columns=columns, row_chunk=plan.rows)

    def plan_for(n_source, n_chan, n_corr):
        return ChunkPlan.make(
            n_source, n_chan, n_corr, memory_budget=memory_budget, threads=threads, n_row=n_row
        )

    with io.column_transaction(cfg.dataset, [cfg.output_column]):
        out, models = add_predict_graph(cfg, dss, sub, model, plan_for, exists)
        writes = io.write_columns(out, cfg.dataset, [cfg.output_column])
        compute(writes, description=f"predicting {cfg.output_column}")
    n_vis = sum(ds[cfg.output_column].size for ds in out)
    n_comp = (
        int(np.count_nonzero(model.image.any(axis=(0, 1))))
        if isinstance(model, ImageModel)
        else max((len(m) for m in models.values()), default=0)
    )
    return Result(sum(ds.sizes[dims.ROW] for ds in out), n_vis, n_comp, plan)


def _columns_and_rows(url: str) -> tuple[set[str], int]:
    probe = io.open_dataset(url, group_cols=("DATA_DESC_ID",), row_chunk=100_000)
    return set(probe[0].data_vars), sum(ds.sizes[dims.ROW] for ds in probe)
