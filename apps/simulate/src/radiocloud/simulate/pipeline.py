"""rc-simulate's pipeline: plan -> sky and instrument -> add_simulation_graph -> write -> one
compute. Writes OUT.ms and the ground truth in OUT.truth/ (see ``truth``)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from radiocloud.core import dims, msdef
from radiocloud.core.errors import OutputExistsError
from radiocloud.core.io import new_dataset, store_npy, write_tables, write_zarr
from radiocloud.core.kernels.dft.dask import predict_skymodel
from radiocloud.core.kernels.jones import apply_diag_jones, corr_feeds
from radiocloud.core.progress import compute
from radiocloud.core.skymodel import SkyModel, write_skymodel
from radiocloud.simulate import corruptions, geometry, rfi, truth
from radiocloud.simulate.config import SimulateConfig
from radiocloud.simulate.plan import Instrument, Plan, make_instrument, make_plan
from radiocloud.simulate.sky import load_sky

log = logging.getLogger("radiocloud.simulate")
# bytes in flight per visibility: model, corrupted, rfi, noise, data (complex64), the
# complex128 temporaries of the DFT and the noise draw, flag and mask
BYTES_PER_VIS = 5 * 8 + 2 * 16 + 2
# chunks held beyond one per thread: results shared by several outputs (the RFI feeds DATA
# and the mask) wait for their last consumer; measured peaks were threads + 1 to 1.5 chunks
CHUNKS_HELD = 2


def _row_arrays(plan: Plan, row_chunk: int) -> dict[str, da.Array]:
    n_time, nbl = len(plan.times), plan.n_baseline
    ant_uvw = geometry.antenna_uvw(
        plan.array.itrf, plan.array.reference_itrf, plan.times, plan.ra, plan.dec
    )
    arrays = {
        "time_index": np.repeat(np.arange(n_time), nbl),
        "baseline": np.tile(np.arange(nbl), n_time),
        "ant1": np.tile(plan.ant1, n_time),
        "ant2": np.tile(plan.ant2, n_time),
        "uvw": geometry.row_uvw(ant_uvw, plan.ant1, plan.ant2),
    }
    return {k: da.from_array(v, chunks=(row_chunk, *v.shape[1:])) for k, v in arrays.items()}


def _data_block(
    model, time_index, ant1, ant2, baseline, uvw, freq, chans, gain_freq, *,
    gain_time, feeds, rfi_model, dec, integration_time, seed, sigma, n_baseline,
):  # fmt: skip
    """DATA of one block: J_p V J_q^H (time gains, then delays and bandpass of the block's
    channels) + RFI + noise, in one task so that no part waits in memory for another."""
    n_chan = model.shape[1]
    out = apply_diag_jones(
        model, gain_time[:, None], time_index=time_index, chan_index=np.zeros(n_chan, np.int64),
        ant1=ant1, ant2=ant2, feeds=feeds,
    )  # fmt: skip
    apply_diag_jones(
        out, gain_freq[None], time_index=np.zeros_like(time_index), chan_index=np.arange(n_chan),
        ant1=ant1, ant2=ant2, feeds=feeds, out=out,
    )  # fmt: skip
    if rfi_model is not None:
        out += rfi.rfi_block(time_index, ant1, ant2, uvw, freq, chans, model=rfi_model, dec=dec,
                             integration_time=integration_time)  # fmt: skip
    if sigma.any():
        out += corruptions.noise_block(
            time_index, baseline, chans, seed=seed, n_baseline=n_baseline, sigma=sigma,
            n_corr=out.shape[2],
        )  # fmt: skip
    return out


@dataclass(frozen=True)
class Chunking:
    """Whole integrations per row chunk; channels split only when one integration of all
    channels would not fit (in multiples of the noise key block, so data do not change)."""

    rows: int
    chans: int

    @classmethod
    def plan(cls, plan: Plan, *, memory_budget: int, threads: int) -> Chunking:
        n_chan, n_corr, nbl = len(plan.freq), len(plan.corr_names), plan.n_baseline
        vis_per_chunk = max(1, memory_budget // ((max(threads, 1) + CHUNKS_HELD) * BYTES_PER_VIS))
        per_integration = nbl * n_chan * n_corr
        if per_integration <= vis_per_chunk:
            n_int = min(vis_per_chunk // per_integration, len(plan.times))
            return cls(rows=n_int * nbl, chans=n_chan)
        block = corruptions.NOISE_CHAN_BLOCK
        chans = max(block, vis_per_chunk // (nbl * n_corr) // block * block)
        return cls(rows=nbl, chans=min(chans, n_chan))


def add_simulation_graph(
    cfg: SimulateConfig, plan: Plan, sky: SkyModel, inst: Instrument, chunks: Chunking
):
    """Lazy MODEL, DATA and the RFI mask (row, chan, corr), chunked as ``chunks`` says."""
    rows = _row_arrays(plan, chunks.rows)
    n_chan, n_corr = len(plan.freq), len(plan.corr_names)
    freq = da.from_array(plan.freq, chunks=chunks.chans)
    chan = da.arange(n_chan, chunks=chunks.chans)
    model = predict_skymodel(
        rows["uvw"], freq, sky, phase_centre=(plan.ra, plan.dec), corr_names=plan.corr_names
    )
    row, vis = (dims.ROW,), dims.VIS
    gain_freq = da.from_array(inst.freq_gains(plan.freq), chunks=(chunks.chans, -1, -1))
    per_row = (rows["time_index"], row, rows["ant1"], row, rows["ant2"], row)
    per_chan = (freq, (dims.CHAN,), chan, (dims.CHAN,))
    data = da.blockwise(
        _data_block, vis, model, vis, *per_row, rows["baseline"], row,
        rows["uvw"], (dims.ROW, dims.UVW), *per_chan, gain_freq, (dims.CHAN, dims.ANT, "feed"),
        gain_time=inst.gain_time, feeds=corr_feeds(plan.corr_names), rfi_model=inst.rfi,
        dec=plan.dec, integration_time=cfg.integration_time, seed=cfg.seed, sigma=plan.sigma,
        n_baseline=plan.n_baseline, concatenate=True, dtype=np.complex64,
    )  # fmt: skip
    mask = None
    if inst.rfi is not None:
        # the mask computes its block's RFI again (cheap next to the DFT): an RFI array shared
        # with DATA would wait in memory for whichever output dask orders last
        mask = da.blockwise(
            rfi.mask_block, vis, *per_row, rows["uvw"], (dims.ROW, dims.UVW), *per_chan,
            new_axes={dims.CORR: n_corr}, concatenate=True, model=inst.rfi, dec=plan.dec,
            integration_time=cfg.integration_time,
            threshold=truth.RFI_MASK_SIGMA * plan.sigma, dtype=bool,
        )  # fmt: skip
    return rows, model, data, mask


def _subtables(cfg: SimulateConfig, plan: Plan) -> dict[str, list[xr.Dataset]]:
    arr = plan.array
    name = "ESO137-006" if cfg.sky == "eso137" else Path(cfg.sky).stem
    t0, t1 = plan.times[0] - cfg.integration_time / 2, plan.times[-1] + cfg.integration_time / 2
    return {
        "ANTENNA": [msdef.antenna_dataset(arr.names, arr.itrf, arr.diameter)],
        "SPECTRAL_WINDOW": [
            msdef.spectral_window_dataset(plan.freq, plan.chan_width, name="L-band")
        ],
        "POLARIZATION": [msdef.polarization_dataset(plan.corr_names)],
        "DATA_DESCRIPTION": [msdef.data_description_dataset([0], [0])],
        "FIELD": [msdef.field_dataset([name], np.array([[plan.ra, plan.dec]]), time=t0)],
        "FEED": [msdef.feed_dataset(len(arr), "XY", time=t0)],
        "OBSERVATION": [
            msdef.observation_dataset(
                "MeerKAT", (t0, t1), observer="rc-simulate", project="radiocloud"
            )
        ],
    }


def _main_dataset(cfg, plan, rows, model, data) -> xr.Dataset:
    n_chan, n_corr = len(plan.freq), len(plan.corr_names)
    chunks = rows["ant1"].chunks[0]
    sigma_row = float(np.sqrt(np.mean(plan.sigma**2))) if plan.sigma.any() else 1.0
    sigma = da.full((plan.n_row, n_corr), sigma_row, dtype=np.float32, chunks=(chunks, n_corr))
    extra = {}
    if cfg.weight_spectrum:
        w = 1.0 / np.where(plan.sigma > 0, plan.sigma, 1.0) ** 2
        ws = da.broadcast_to(w.astype(np.float32)[None, :, None], (plan.n_row, n_chan, n_corr))
        extra["WEIGHT_SPECTRUM"] = (dims.VIS, ws.rechunk(data.chunks))
    visibilities = {"DATA": data}
    if cfg.model_data:
        visibilities["MODEL_DATA"] = model
    return msdef.main_dataset(
        time=np.repeat(plan.times, plan.n_baseline),
        interval=cfg.integration_time,
        antenna1=rows["ant1"].compute(),
        antenna2=rows["ant2"].compute(),
        uvw=rows["uvw"].compute(),
        visibilities=visibilities,
        flag=da.zeros(data.shape, bool, chunks=data.chunks),
        weight=1.0 / sigma**2,
        sigma=sigma,
        extra=extra,
    )


def _write(cfg, plan, sky, inst, chunks, tmp, fmt, tmp_truth) -> float | None:
    """Build the graph and compute it: the MS, gains.zarr and rfi_mask.npy in one pass.
    Returns the RFI fraction only, so no dataset (and no open table) outlives the call."""
    rows, model, data, mask = add_simulation_graph(cfg, plan, sky, inst, chunks)
    main = _main_dataset(cfg, plan, rows, model, data)
    graphs = [
        write_tables([main], _subtables(cfg, plan), tmp, fmt),
        write_zarr(truth.gains_dataset(plan, inst, chunks.rows), str(tmp_truth / "gains.zarr")),
    ]
    if mask is not None:
        graphs += [store_npy(mask, tmp_truth / "rfi_mask.npy"), mask.sum()]
    results = compute(*graphs, description=f"simulating {cfg.output}")
    return None if mask is None else float(results[-1]) / mask.size


@dataclass(frozen=True)
class Result:
    ms: str
    truth: str
    n_row: int
    n_vis: int
    chunks: Chunking
    rfi_fraction: float | None


def run(cfg: SimulateConfig, *, memory_budget: int, threads: int) -> Result:
    """Simulate and write OUT.ms and OUT.truth/; nothing is in place unless all succeeded."""
    truth_dir = truth.truth_path(cfg.output)
    if truth_dir.exists() and not cfg.overwrite:
        raise OutputExistsError(
            f"'{truth_dir}' exists: choose another output name or pass --overwrite"
        )
    plan = make_plan(cfg)
    sky = load_sky(cfg.sky)
    inst = make_instrument(cfg, plan)
    chunks = Chunking.plan(plan, memory_budget=memory_budget, threads=threads)
    log.info(
        "simulating %d antennas x %d channels x %d integrations: %d rows in chunks of %d rows"
        " x %d channels",
        len(plan.array), len(plan.freq), len(plan.times), plan.n_row, chunks.rows, chunks.chans,
    )  # fmt: skip
    with new_dataset(cfg.output, overwrite=cfg.overwrite) as (tmp, fmt):
        tmp_truth = Path(f"{tmp.url}.truth")
        tmp_truth.mkdir()
        try:
            rfi_fraction = _write(cfg, plan, sky, inst, chunks, tmp, fmt, tmp_truth)
            manifest = truth.manifest(cfg, plan, sky, chunks)
            if rfi_fraction is not None:
                manifest["rfi_mask_fraction"] = rfi_fraction
            write_skymodel(sky, tmp_truth / "skymodel.txt")
            (tmp_truth / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            if truth_dir.exists():
                shutil.rmtree(truth_dir)
            os.rename(tmp_truth, truth_dir)
        except BaseException:
            shutil.rmtree(tmp_truth, ignore_errors=True)
            raise
    n_vis = plan.n_row * len(plan.freq) * len(plan.corr_names)
    return Result(cfg.output, str(truth_dir), plan.n_row, n_vis, chunks, rfi_fraction)
