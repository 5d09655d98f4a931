"""Measurement-Set-shaped xarray datasets: the main table and the subtables that WSClean,
QuartiCal, tricolour and CASA expect. Written by :func:`radiocloud.core.io.write_tables`.

Conventions (MSv2): TIME is the mid-point of the integration in MJD seconds (UTC); UVW of a
row is uvw(ANTENNA2) - uvw(ANTENNA1) in the J2000 frame of the phase centre, as casacore's
``mscal.uvwj2000`` computes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dask.array as da
import numpy as np
import xarray as xr

from radiocloud.core import dims
from radiocloud.core.io.subtables import STOKES_NAMES

ROW_VAR = (dims.ROW,)


def _v(dimnames, values) -> tuple:
    return (dimnames, values)


def main_dataset(
    *,
    time: np.ndarray,
    interval: float | np.ndarray,
    antenna1: np.ndarray,
    antenna2: np.ndarray,
    uvw: np.ndarray,
    field_id: int | np.ndarray = 0,
    data_desc_id: int | np.ndarray = 0,
    scan_number: int | np.ndarray = 1,
    visibilities: Mapping[str, da.Array | np.ndarray],
    flag: da.Array | np.ndarray,
    weight: da.Array | np.ndarray,
    sigma: da.Array | np.ndarray,
    extra: Mapping[str, tuple] | None = None,
) -> xr.Dataset:
    """The main table of one (field, spw, scan) partition.

    ``visibilities`` maps column names (DATA, MODEL_DATA, ...) to (row, chan, corr) arrays;
    ``flag`` is (row, chan, corr) bool, ``weight``/``sigma`` are (row, corr).
    """
    nrow = len(time)

    def per_row(value, dtype):
        return np.broadcast_to(np.asarray(value, dtype=dtype), (nrow,)).copy()

    interval = per_row(interval, np.float64)
    flag = flag if isinstance(flag, da.Array) else np.asarray(flag, dtype=bool)
    flag_row = flag.all(axis=(1, 2))
    data_vars = {
        "TIME": _v(ROW_VAR, per_row(time, np.float64)),
        "TIME_CENTROID": _v(ROW_VAR, per_row(time, np.float64)),
        "INTERVAL": _v(ROW_VAR, interval),
        "EXPOSURE": _v(ROW_VAR, interval.copy()),
        "ANTENNA1": _v(ROW_VAR, per_row(antenna1, np.int32)),
        "ANTENNA2": _v(ROW_VAR, per_row(antenna2, np.int32)),
        "FEED1": _v(ROW_VAR, per_row(0, np.int32)),
        "FEED2": _v(ROW_VAR, per_row(0, np.int32)),
        "ARRAY_ID": _v(ROW_VAR, per_row(0, np.int32)),
        "OBSERVATION_ID": _v(ROW_VAR, per_row(0, np.int32)),
        "PROCESSOR_ID": _v(ROW_VAR, per_row(-1, np.int32)),
        "STATE_ID": _v(ROW_VAR, per_row(-1, np.int32)),
        "FIELD_ID": _v(ROW_VAR, per_row(field_id, np.int32)),
        "DATA_DESC_ID": _v(ROW_VAR, per_row(data_desc_id, np.int32)),
        "SCAN_NUMBER": _v(ROW_VAR, per_row(scan_number, np.int32)),
        "UVW": _v((dims.ROW, dims.UVW), np.asarray(uvw, dtype=np.float64)),
        "FLAG": _v(dims.VIS, flag),
        "FLAG_ROW": _v(ROW_VAR, flag_row),
        "WEIGHT": _v((dims.ROW, dims.CORR), weight),
        "SIGMA": _v((dims.ROW, dims.CORR), sigma),
    }
    for name, values in visibilities.items():
        data_vars[name] = _v(dims.VIS, values)
    for name, (dimnames, values) in (extra or {}).items():
        data_vars[name] = _v(dimnames, values)
    return xr.Dataset(data_vars)


def antenna_dataset(
    names: Sequence[str],
    positions: np.ndarray,
    diameters: float | np.ndarray,
    *,
    stations: Sequence[str] | None = None,
    mount: str = "ALT-AZ",
) -> xr.Dataset:
    n = len(names)
    return xr.Dataset(
        {
            "NAME": _v(ROW_VAR, np.asarray(names, dtype=object)),
            "STATION": _v(ROW_VAR, np.asarray(stations or names, dtype=object)),
            "TYPE": _v(ROW_VAR, np.full(n, "GROUND-BASED", dtype=object)),
            "MOUNT": _v(ROW_VAR, np.full(n, mount, dtype=object)),
            "POSITION": _v((dims.ROW, "xyz"), np.asarray(positions, dtype=np.float64)),
            "OFFSET": _v((dims.ROW, "xyz"), np.zeros((n, 3))),
            "DISH_DIAMETER": _v(ROW_VAR, np.broadcast_to(diameters, (n,)).astype(np.float64)),
            "FLAG_ROW": _v(ROW_VAR, np.zeros(n, bool)),
        }
    )


def spectral_window_dataset(
    chan_freq: np.ndarray, chan_width: np.ndarray, *, name: str = ""
) -> xr.Dataset:
    """One SPECTRAL_WINDOW row (rows of different channel counts go in separate datasets)."""
    freq = np.asarray(chan_freq, dtype=np.float64)[None, :]
    width = np.broadcast_to(np.asarray(chan_width, dtype=np.float64), freq.shape[1:])[None, :]
    nchan = freq.shape[1]
    one = (dims.ROW,)
    two = (dims.ROW, dims.CHAN)
    return xr.Dataset(
        {
            "CHAN_FREQ": _v(two, freq),
            "CHAN_WIDTH": _v(two, width.copy()),
            "EFFECTIVE_BW": _v(two, np.abs(width)),
            "RESOLUTION": _v(two, np.abs(width)),
            "NUM_CHAN": _v(one, np.array([nchan], np.int32)),
            "REF_FREQUENCY": _v(one, np.array([freq[0, nchan // 2]])),
            "TOTAL_BANDWIDTH": _v(one, np.array([np.abs(width).sum()])),
            "MEAS_FREQ_REF": _v(one, np.array([5], np.int32)),  # TOPO
            "NET_SIDEBAND": _v(one, np.array([1], np.int32)),
            "FREQ_GROUP": _v(one, np.array([0], np.int32)),
            "FREQ_GROUP_NAME": _v(one, np.array([""], dtype=object)),
            "IF_CONV_CHAIN": _v(one, np.array([0], np.int32)),
            "NAME": _v(one, np.array([name], dtype=object)),
            "FLAG_ROW": _v(one, np.array([False])),
        }
    )


def polarization_dataset(corr_names: Sequence[str]) -> xr.Dataset:
    """One POLARIZATION row: CORR_TYPE codes and the receptor pairs they correlate."""
    codes = np.array([[STOKES_NAMES[c] for c in corr_names]], np.int32)
    feeds = "XY" if corr_names[0][0] in "XY" else "RL"
    product = np.array([[[feeds.index(c[0]), feeds.index(c[1])] for c in corr_names]], np.int32)
    return xr.Dataset(
        {
            "CORR_TYPE": _v((dims.ROW, dims.CORR), codes),
            "CORR_PRODUCT": _v((dims.ROW, dims.CORR, "pair"), product),
            "NUM_CORR": _v((dims.ROW,), np.array([len(corr_names)], np.int32)),
            "FLAG_ROW": _v((dims.ROW,), np.array([False])),
        }
    )


def field_dataset(names: Sequence[str], phase_dirs: np.ndarray, time: float = 0.0) -> xr.Dataset:
    """FIELD rows; ``phase_dirs`` is (field, 2) J2000 RA/Dec in radians."""
    n = len(names)
    dirs = np.asarray(phase_dirs, dtype=np.float64).reshape(n, 1, 2)
    three = (dims.ROW, "poly", "radec")
    return xr.Dataset(
        {
            "NAME": _v(ROW_VAR, np.asarray(names, dtype=object)),
            "CODE": _v(ROW_VAR, np.full(n, "", dtype=object)),
            "TIME": _v(ROW_VAR, np.full(n, time)),
            "NUM_POLY": _v(ROW_VAR, np.zeros(n, np.int32)),
            "DELAY_DIR": _v(three, dirs.copy()),
            "PHASE_DIR": _v(three, dirs.copy()),
            "REFERENCE_DIR": _v(three, dirs.copy()),
            "SOURCE_ID": _v(ROW_VAR, np.arange(n, dtype=np.int32)),
            "FLAG_ROW": _v(ROW_VAR, np.zeros(n, bool)),
        }
    )


def data_description_dataset(spw_ids: Sequence[int], pol_ids: Sequence[int]) -> xr.Dataset:
    return xr.Dataset(
        {
            "SPECTRAL_WINDOW_ID": _v(ROW_VAR, np.asarray(spw_ids, np.int32)),
            "POLARIZATION_ID": _v(ROW_VAR, np.asarray(pol_ids, np.int32)),
            "FLAG_ROW": _v(ROW_VAR, np.zeros(len(spw_ids), bool)),
        }
    )


def feed_dataset(n_ant: int, receptors: str = "XY", time: float = 0.0) -> xr.Dataset:
    """One feed per antenna with two receptors (X, Y or R, L), valid for all SPWs and times."""
    pol_type = np.tile(np.array(list(receptors), dtype=object), (n_ant, 1))
    response = np.tile(np.eye(2, dtype=np.complex64), (n_ant, 1, 1))
    return xr.Dataset(
        {
            "ANTENNA_ID": _v(ROW_VAR, np.arange(n_ant, dtype=np.int32)),
            "FEED_ID": _v(ROW_VAR, np.zeros(n_ant, np.int32)),
            "SPECTRAL_WINDOW_ID": _v(ROW_VAR, np.full(n_ant, -1, np.int32)),
            "TIME": _v(ROW_VAR, np.full(n_ant, time)),
            "INTERVAL": _v(ROW_VAR, np.full(n_ant, 1e30)),
            "NUM_RECEPTORS": _v(ROW_VAR, np.full(n_ant, 2, np.int32)),
            "BEAM_ID": _v(ROW_VAR, np.full(n_ant, -1, np.int32)),
            "BEAM_OFFSET": _v((dims.ROW, "receptor", "radec"), np.zeros((n_ant, 2, 2))),
            "POLARIZATION_TYPE": _v((dims.ROW, "receptor"), pol_type),
            "POL_RESPONSE": _v((dims.ROW, "receptor", "receptor2"), response),
            "POSITION": _v((dims.ROW, "xyz"), np.zeros((n_ant, 3))),
            "RECEPTOR_ANGLE": _v((dims.ROW, "receptor"), np.tile([0.0, np.pi / 2], (n_ant, 1))),
        }
    )


def observation_dataset(
    telescope: str, time_range: tuple[float, float], *, observer: str = "", project: str = ""
) -> xr.Dataset:
    one = (dims.ROW,)
    return xr.Dataset(
        {
            "TELESCOPE_NAME": _v(one, np.array([telescope], dtype=object)),
            "TIME_RANGE": _v((dims.ROW, "range"), np.array([time_range], np.float64)),
            "OBSERVER": _v(one, np.array([observer], dtype=object)),
            "PROJECT": _v(one, np.array([project], dtype=object)),
            "SCHEDULE_TYPE": _v(one, np.array([""], dtype=object)),
            # array columns left undefined make casacore's getcol fail on the whole column
            "LOG": _v((dims.ROW, "log"), np.array([[""]], dtype=object)),
            "SCHEDULE": _v((dims.ROW, "schedule"), np.array([[""]], dtype=object)),
            "RELEASE_DATE": _v(one, np.array([0.0])),
            "FLAG_ROW": _v(one, np.array([False])),
        }
    )
