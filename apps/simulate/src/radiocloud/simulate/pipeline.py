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
from radiocloud.core.io import new_dataset, rows_per_chunk, store_npy, write_tables, write_zarr
from radiocloud.core.kernels.dft import brightness
from radiocloud.core.kernels.dft.dask import predict_vis
from radiocloud.core.kernels.jones import apply_diag_jones, corr_feeds
from radiocloud.core.progress import compute
from radiocloud.core.skymodel import SkyModel, write_skymodel
from radiocloud.simulate import corruptions, geometry, rfi, truth
from radiocloud.simulate.config import SimulateConfig
from radiocloud.simulate.plan import Instrument, Plan, make_instrument, make_plan
from radiocloud.simulate.sky import load_sky

log = logging.getLogger("radiocloud.simulate")
# bytes in flight per visibility: model, corrupted, rfi, noise (complex128), data, flag
BYTES_PER_VIS = 8 + 8 + 8 + 16 + 8 + 1


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


def _corrupt(model, time_index, ant1, ant2, *, gain_time, gain_freq, feeds):
    n_chan = model.shape[1]
    out = apply_diag_jones(
        model,
        gain_time[:, None],
        time_index=time_index,
        chan_index=np.zeros(n_chan, np.int64),
        ant1=ant1,
        ant2=ant2,
        feeds=feeds,
    )
    return apply_diag_jones(
        out,
        gain_freq[None],
        time_index=np.zeros_like(time_index),
        chan_index=np.arange(n_chan),
        ant1=ant1,
        ant2=ant2,
        feeds=feeds,
        out=out,
    )


def add_simulation_graph(
    cfg: SimulateConfig, plan: Plan, sky: SkyModel, inst: Instrument, row_chunk: int
):
    """Lazy MODEL, DATA, WEIGHT/SIGMA and the RFI mask, chunked by whole integrations."""
    rows = _row_arrays(plan, row_chunk)
    n_chan, n_corr = len(plan.freq), len(plan.corr_names)
    feeds = corr_feeds(plan.corr_names)
    coherency = brightness(sky.flux(plan.freq), plan.corr_names).astype(np.complex64)
    model = predict_vis(
        rows["uvw"],
        da.from_array(sky.lm(plan.ra, plan.dec)),
        da.from_array(sky.shape),
        da.from_array(plan.freq),
        da.from_array(coherency),
        source_chunk=256,
    )
    vis_axes = {dims.CHAN: n_chan, dims.CORR: n_corr}
    data = da.blockwise(
        _corrupt,
        dims.VIS,
        model,
        dims.VIS,
        rows["time_index"],
        (dims.ROW,),
        rows["ant1"],
        (dims.ROW,),
        rows["ant2"],
        (dims.ROW,),
        gain_time=inst.gain_time,
        gain_freq=inst.freq_gains(plan.freq),
        feeds=feeds,
        dtype=np.complex64,
    )
    mask = None
    if inst.rfi is not None:
        interference = da.blockwise(
            rfi.rfi_block,
            dims.VIS,
            rows["time_index"],
            (dims.ROW,),
            rows["ant1"],
            (dims.ROW,),
            rows["ant2"],
            (dims.ROW,),
            rows["uvw"],
            (dims.ROW, dims.UVW),
            new_axes=vis_axes,
            concatenate=True,
            model=inst.rfi,
            freq=plan.freq,
            dec=plan.dec,
            integration_time=cfg.integration_time,
            dtype=np.complex64,
        )
        data = data + interference
        threshold = truth.RFI_MASK_SIGMA * plan.sigma if plan.sigma.any() else np.zeros(n_chan)
        mask = (abs(interference) >= threshold[None, :, None]) & (interference != 0)
    if plan.sigma.any():
        noise = da.blockwise(
            corruptions.noise_block,
            dims.VIS,
            rows["time_index"],
            (dims.ROW,),
            rows["baseline"],
            (dims.ROW,),
            new_axes=vis_axes,
            seed=cfg.seed,
            n_baseline=plan.n_baseline,
            sigma=plan.sigma,
            n_corr=n_corr,
            dtype=np.complex64,
        )
        data = data + noise
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
        extra["WEIGHT_SPECTRUM"] = (dims.VIS, ws.rechunk((chunks, n_chan, n_corr)))
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


def _write(cfg, plan, sky, inst, row_chunk, tmp, fmt, tmp_truth) -> float | None:
    """Build the graph and compute it: the MS, gains.zarr and rfi_mask.npy in one pass.
    Returns the RFI fraction only, so no dataset (and no open table) outlives the call."""
    rows, model, data, mask = add_simulation_graph(cfg, plan, sky, inst, row_chunk)
    main = _main_dataset(cfg, plan, rows, model, data)
    graphs = [
        write_tables([main], _subtables(cfg, plan), tmp, fmt),
        write_zarr(truth.gains_dataset(plan, inst, row_chunk), str(tmp_truth / "gains.zarr")),
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
    row_chunk: int
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
    per_row = len(plan.freq) * len(plan.corr_names) * BYTES_PER_VIS
    rows = rows_per_chunk(per_row, memory_budget=memory_budget, threads=threads)
    n_int = min(max(1, rows // plan.n_baseline), len(plan.times))
    row_chunk = n_int * plan.n_baseline  # whole integrations
    log.info(
        "simulating %d antennas x %d channels x %d integrations (%d rows, %d rows per chunk)",
        len(plan.array),
        len(plan.freq),
        len(plan.times),
        plan.n_row,
        row_chunk,
    )
    with new_dataset(cfg.output, overwrite=cfg.overwrite) as (tmp, fmt):
        tmp_truth = Path(f"{tmp.url}.truth")
        tmp_truth.mkdir()
        try:
            rfi_fraction = _write(cfg, plan, sky, inst, row_chunk, tmp, fmt, tmp_truth)
            manifest = truth.manifest(cfg, plan, sky, row_chunk)
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
    return Result(cfg.output, str(truth_dir), plan.n_row, n_vis, row_chunk, rfi_fraction)
