"""rc-simulate's pipeline: plan -> sky and instrument -> add_simulation_graph -> write -> one
compute. Writes OUT.ms and the ground truth in OUT.truth/ (see ``write_truth``)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
from astropy.time import Time

from radiocloud.core import dims, msdef
from radiocloud.core.errors import OptionError, OutputExistsError
from radiocloud.core.io import new_dataset, rows_per_chunk, store_npy, write_tables, write_zarr
from radiocloud.core.kernels.dft import brightness
from radiocloud.core.kernels.dft.dask import predict_vis
from radiocloud.core.kernels.jones import apply_diag_jones, corr_feeds
from radiocloud.core.progress import compute
from radiocloud.core.skymodel import SkyModel, write_skymodel
from radiocloud.simulate import array as mk_array
from radiocloud.simulate import corruptions, geometry, rfi
from radiocloud.simulate.config import DEFAULT_DATE_MJD, SimulateConfig
from radiocloud.simulate.sky import ESO137_DEC, ESO137_RA, load_sky

log = logging.getLogger("radiocloud.simulate")
CORRELATIONS = {1: ("XX",), 2: ("XX", "YY"), 4: ("XX", "XY", "YX", "YY")}
# bytes in flight per visibility: model, corrupted, rfi, noise (complex128), data, flag
BYTES_PER_VIS = 8 + 8 + 8 + 16 + 8 + 1
RFI_MASK_SIGMA = 1.0  # rfi_mask marks samples whose injected RFI is at least this many sigma


@dataclass(frozen=True)
class Plan:
    """The observation's axes, derived from the config."""

    array: mk_array.Array
    freq: np.ndarray
    chan_width: np.ndarray
    times: np.ndarray  # MJD seconds, integration mid-points
    ra: float
    dec: float
    ant1: np.ndarray
    ant2: np.ndarray
    corr_names: tuple[str, ...]
    sigma: np.ndarray  # (chan,) Jy

    @property
    def n_baseline(self) -> int:
        return len(self.ant1)

    @property
    def n_row(self) -> int:
        return len(self.times) * self.n_baseline


def make_plan(cfg: SimulateConfig) -> Plan:
    if cfg.channels < 1 or cfg.integrations < 1 or cfg.integration_time <= 0:
        raise OptionError("--channels, --integrations and --integration-time must be positive")
    if cfg.correlations not in CORRELATIONS:
        raise OptionError("--correlations must be 1 (XX), 2 (XX YY) or 4 (XX XY YX YY)")
    arr = mk_array.select(cfg.antennas)
    width = cfg.bandwidth / cfg.channels
    freq = cfg.freq_start + width * (np.arange(cfg.channels) + 0.5)
    ra, dec = cfg.pointing or (ESO137_RA, ESO137_DEC)
    duration = cfg.integrations * cfg.integration_time
    if cfg.start_time:
        try:
            start = Time(cfg.start_time, scale="utc").mjd * geometry.SECONDS_PER_DAY
        except ValueError:
            raise OptionError(
                f"cannot read --start-time '{cfg.start_time}': write e.g. 2019-05-14T18:00:00"
            ) from None
    else:
        lon = np.radians(mk_array.REFERENCE_LON_DEG)
        start = geometry.transit_start(DEFAULT_DATE_MJD, ra, lon, duration)
    times = start + cfg.integration_time * (np.arange(cfg.integrations) + 0.5)
    ant1, ant2 = geometry.baselines(len(arr))
    if cfg.noise is None:
        sigma = corruptions.thermal_sigma(
            cfg.sefd, np.full(cfg.channels, width), cfg.integration_time
        )
    else:
        sigma = np.full(cfg.channels, float(cfg.noise))
    return Plan(
        arr,
        freq,
        np.full(cfg.channels, width),
        times,
        ra,
        dec,
        ant1,
        ant2,
        CORRELATIONS[cfg.correlations],
        sigma,
    )


@dataclass(frozen=True)
class Instrument:
    gain_time: np.ndarray  # (time, ant, feed)
    delay_ns: np.ndarray  # (ant, feed)
    bandpass: np.ndarray  # (chan, ant, feed)
    rfi: rfi.RFIModel | None

    def jones(self, freq: np.ndarray) -> np.ndarray:
        """(time, chan, ant, feed) total gains."""
        return self.gain_time[:, None] * self.freq_gains(freq)[None]

    def freq_gains(self, freq: np.ndarray) -> np.ndarray:
        """(chan, ant, feed) delays and bandpass together."""
        return corruptions.delay_gains(self.delay_ns, freq) * self.bandpass


def make_instrument(cfg: SimulateConfig, plan: Plan) -> Instrument:
    n_ant, n_time, s = len(plan.array), len(plan.times), cfg.gain_settings
    gain_time = (
        corruptions.time_gains(cfg.seed, n_time, n_ant, cfg.integration_time, s)
        if cfg.gains
        else np.ones((n_time, n_ant, 2), np.complex128)
    )
    delay = corruptions.delays_ns(cfg.seed, n_ant, s) if cfg.delays else np.zeros((n_ant, 2))
    bp = (
        corruptions.bandpass(cfg.seed, plan.freq, n_ant, s)
        if cfg.bandpass
        else np.ones((len(plan.freq), n_ant, 2), np.complex128)
    )
    feeds = corr_feeds(plan.corr_names)
    interference = (
        rfi.draw(cfg.seed, plan.freq, plan.chan_width, plan.times, n_ant, feeds)
        if cfg.rfi
        else None
    )
    return Instrument(gain_time, delay, bp, interference)


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
        threshold = RFI_MASK_SIGMA * plan.sigma if plan.sigma.any() else np.zeros(n_chan)
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


def _gains_dataset(plan: Plan, inst: Instrument, row_chunk: int) -> xr.Dataset:
    tchunk = max(1, row_chunk // plan.n_baseline)
    jones = (
        da.from_array(inst.gain_time, chunks=(tchunk, -1, -1))[:, None]
        * inst.freq_gains(plan.freq)[None]
    )
    coords = {
        "time": (
            "time",
            plan.times,
            {"units": "s", "description": "MJD seconds (UTC), mid-integration"},
        ),
        "chan": ("chan", plan.freq, {"units": "Hz"}),
        "ant": ("ant", np.array(plan.array.names, dtype=object)),
        "corr": ("corr", np.array(["X", "Y"], dtype=object)),
    }
    return xr.Dataset(
        {
            "gains": (
                ("time", "chan", "ant", "corr"),
                jones.astype(np.complex64),
                {
                    "description": "J_p(t, nu) = gain_time * exp(2 pi i delay nu) * bandpass; "
                    "V_pq -> J_p V_pq J_q^H"
                },
            ),
            "gain_time": (("time", "ant", "corr"), inst.gain_time),
            "delay": (("ant", "corr"), inst.delay_ns, {"units": "ns"}),
            "bandpass": (("chan", "ant", "corr"), inst.bandpass),
        },
        coords=coords,
    )


def truth_path(output: str) -> Path:
    out = Path(output.rstrip("/"))
    return out.with_name(out.stem + ".truth")


def _manifest(cfg: SimulateConfig, plan: Plan, sky: SkyModel, row_chunk: int) -> dict:
    from importlib.metadata import version

    iso = Time(plan.times[[0, -1]] / geometry.SECONDS_PER_DAY, format="mjd", scale="utc").isot
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": cfg.as_dict(),
        "observation": {
            "telescope": "MeerKAT",
            "antennas": list(plan.array.names),
            "n_rows": plan.n_row,
            "n_baselines": plan.n_baseline,
            "correlations": list(plan.corr_names),
            "freq_first_hz": float(plan.freq[0]),
            "freq_last_hz": float(plan.freq[-1]),
            "chan_width_hz": float(plan.chan_width[0]),
            "first_integration_utc": str(iso[0]),
            "last_integration_utc": str(iso[-1]),
            "phase_centre_rad": [plan.ra, plan.dec],
            "noise_sigma_jy": [float(plan.sigma.min()), float(plan.sigma.max())],
            "row_chunk": row_chunk,
        },
        "sky": {
            "components": len(sky),
            "gaussians": int(sky.is_gaussian.sum()),
            "total_stokes_i_jy_at_ref": float(sky.stokes[:, 0].sum()),
        },
        "conventions": {
            "uvw": "J2000, uvw(ANTENNA2) - uvw(ANTENNA1), as casacore mscal.uvwj2000",
            "visibility": "V = sum B exp(+2 pi i (ul + vm + w(n-1)) nu/c), l east, XX = I + Q",
            "gains": "V_pq -> J_p V_pq J_q^H with J_p diagonal (X, Y)",
            "noise": "sigma = SEFD / sqrt(2 dnu dt) in each of real and imaginary parts",
            "rfi_mask": f"|injected RFI| >= {RFI_MASK_SIGMA} sigma; [row, chan, corr] in row order",
        },
        "versions": {
            p: version(p)
            for p in (
                "radiocloud-core",
                "radiocloud-simulate",
                "numpy",
                "dask",
                "dask-ms",
                "python-casacore",
                "numba",
            )
        },
    }


def _write(cfg, plan, sky, inst, row_chunk, tmp, fmt, tmp_truth) -> float | None:
    """Build the graph and compute it: the MS, gains.zarr and rfi_mask.npy in one pass.
    Returns the RFI fraction only, so no dataset (and no open table) outlives the call."""
    rows, model, data, mask = add_simulation_graph(cfg, plan, sky, inst, row_chunk)
    main = _main_dataset(cfg, plan, rows, model, data)
    graphs = [
        write_tables([main], _subtables(cfg, plan), tmp, fmt),
        write_zarr(_gains_dataset(plan, inst, row_chunk), str(tmp_truth / "gains.zarr")),
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
    truth = truth_path(cfg.output)
    if truth.exists() and not cfg.overwrite:
        raise OutputExistsError(f"'{truth}' exists: choose another output name or pass --overwrite")
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
            manifest = _manifest(cfg, plan, sky, row_chunk)
            if rfi_fraction is not None:
                manifest["rfi_mask_fraction"] = rfi_fraction
            write_skymodel(sky, tmp_truth / "skymodel.txt")
            (tmp_truth / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            if truth.exists():
                shutil.rmtree(truth)
            os.rename(tmp_truth, truth)
        except BaseException:
            shutil.rmtree(tmp_truth, ignore_errors=True)
            raise
    n_vis = plan.n_row * len(plan.freq) * len(plan.corr_names)
    return Result(cfg.output, str(truth), plan.n_row, n_vis, row_chunk, rfi_fraction)
