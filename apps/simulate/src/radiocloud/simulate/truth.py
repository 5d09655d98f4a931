"""Ground truth written beside the MS: the gains as a zarr dataset and the manifest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
from astropy.time import Time

from radiocloud.core.skymodel import SkyModel
from radiocloud.simulate import geometry
from radiocloud.simulate.config import SimulateConfig
from radiocloud.simulate.plan import Instrument, Plan

RFI_MASK_SIGMA = 1.0  # rfi_mask marks samples whose injected RFI is at least this many sigma


def gains_dataset(plan: Plan, inst: Instrument, row_chunk: int) -> xr.Dataset:
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


def manifest(cfg: SimulateConfig, plan: Plan, sky: SkyModel, chunks) -> dict:
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
            "row_chunk": chunks.rows,
            "chan_chunk": chunks.chans,
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
