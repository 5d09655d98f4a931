"""Gain tables of a solve, and a table's gains resampled onto a dataset.

Where every integration of the dataset lies inside one of the table's solution intervals (the
table was solved on this dataset, or one with the same sampling), each takes its interval's
gain; otherwise gains are interpolated linearly between interval centres, in amplitude and
phase. Likewise each channel takes the table's frequency bin it falls in when the bins match
the channels (or one bin spans the band), else gains are interpolated across frequency. A
delay term's gains are recomputed from its (interpolated) delays at the dataset's channels.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import version
from itertools import pairwise

import numpy as np
import xarray as xr

from radiocloud.core import io
from radiocloud.core.errors import DatasetNotFoundError, OptionError
from radiocloud.core.kernels.calibrate import TERM_TYPES
from radiocloud.core.kernels.calibrate.interpolate import lerp_gains, lerp_params

TIME_TOL = 1e-3  # s: an integration inside an interval's [first, last] integration


def term_dataset(state, layout, sub) -> xr.Dataset:
    """One term's solutions as the table's xarray dataset (a full-Jones term's corr axis is
    its four elements, XX XY YX YY)."""
    times, bins = state.times, state.bins
    feeds = ["X", "Y"] if layout.corr_names[0][0] in "XY" else ["R", "L"]
    if state.full is None:
        gains, bin_flags, flags = state.gains, state.bin_flags, state.flags
    else:  # a full-Jones term: corr is its four elements, its flags are per antenna
        gains = state.full.reshape(*state.full.shape[:3], 4)
        bin_flags = flags = np.repeat(state.flags[..., :1], 4, axis=-1)
        feeds = [a + b for a in feeds for b in feeds]
    sols = state.solutions
    last = sols[-1] if sols else None
    ntime, nfi = state.theta.shape[:2]

    def per_interval(name, default):
        return getattr(last, name) if last is not None else np.full((ntime, nfi), default)

    gdims = ("gain_time", "gain_freq", "ant", "dir", "corr")
    pdims = ("gain_time", "param_freq", "ant", "dir", "corr", "param")
    idims = ("gain_time", "param_freq")
    part = times.partition
    return xr.Dataset(
        {
            "gains": (gdims, gains[:, :, :, None, :]),
            "gain_flags": (gdims, bin_flags[:, :, :, None, :]),
            "params": (pdims, state.theta[:, :, :, None, :, :]),
            "param_flags": (pdims[:-1], flags[:, :, :, None, :]),
            "iterations": (idims, per_interval("iterations", 0)),
            "converged": (idims, per_interval("converged", False)),
            "chi2_before": (idims, per_interval("chi2_before", np.nan)),
            "chi2_after": (idims, per_interval("chi2_after", np.nan)),
        },
        coords={
            "gain_time": ("gain_time", times.centre, {"units": "s (MJD, UTC)"}),
            "gain_time_lo": ("gain_time", times.lo),
            "gain_time_hi": ("gain_time", times.hi),
            "field_id": ("gain_time", np.asarray(layout.fields)[part]),
            "scan_number": ("gain_time", np.asarray(layout.scans)[part]),
            "gain_freq": ("gain_freq", bins.freq, {"units": "Hz"}),
            "param_freq": ("param_freq", bins.interval_freq, {"units": "Hz"}),
            "ant": ("ant", np.asarray(sub.antennas.names, dtype=str)),
            "dir": ("dir", [0]),
            "corr": ("corr", feeds),
            "param": ("param", list(state.kind.params)),
        },
        attrs={
            "name": state.spec.name,
            "type": state.spec.type,
            "time_interval": str(state.spec.time_interval),
            "freq_interval": str(state.spec.freq_interval),
        },
    )


def spw_dataset(state, layout, sub) -> xr.Dataset:
    """A term's dataset for one DATA_DESC_ID, each interval labelled with its band."""
    ds = term_dataset(state, layout, sub)
    half = layout.chan_width / 2
    n = len(ds.gain_time)
    return ds.assign_coords(
        ddid=("gain_time", np.full(n, layout.ddid)),
        band_lo=("gain_time", np.full(n, layout.freq.min() - half)),
        band_hi=("gain_time", np.full(n, layout.freq.max() + half)),
    )


def merged(datasets: list[xr.Dataset]) -> xr.Dataset:
    """One term's datasets of several DATA_DESC_IDs as one: intervals and bins of every band,
    a band's gains flagged (and 1) at the other bands' frequencies."""
    if len(datasets) == 1:
        return datasets[0]
    fill = {
        "gains": 1.0 + 0j,
        "gain_flags": True,
        "params": 0.0,
        "param_flags": True,
        "iterations": 0,
        "converged": False,
        "chi2_before": np.nan,
        "chi2_after": np.nan,
    }
    out = xr.concat(
        datasets,
        dim="gain_time",
        join="outer",
        fill_value=fill,
        data_vars="all",
        coords="minimal",
        compat="override",
        combine_attrs="drop_conflicts",
    )
    flags = {"gain_flags": out.gain_flags.astype(bool), "param_flags": out.param_flags.astype(bool)}
    return out.assign(flags)


def write(path: str, runs, sub, cfg) -> None:
    names = [s.spec.name for s in runs[0].states]
    io.write_gain_table(
        path,
        {
            name: merged([spw_dataset(run.states[k], run.layout, sub) for run in runs])
            for k, name in enumerate(names)
        },
        {
            "dataset": cfg.dataset,
            "ref_ant": cfg.ref_ant,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "radiocloud_calibrate": version("radiocloud-calibrate"),
        },
    )


def time_index(table: xr.Dataset, utimes: np.ndarray) -> np.ndarray:
    """(utime,) the table interval of each time: the one whose span holds it, else nearest."""
    centre = table.gain_time.values
    lo, hi = table.gain_time_lo.values, table.gain_time_hi.values
    order = np.argsort(centre)
    nearest = order[np.abs(centre[order][None, :] - utimes[:, None]).argmin(axis=1)]
    tol = 1e-3
    inside = (utimes[:, None] >= lo[None, :] - tol) & (utimes[:, None] <= hi[None, :] + tol)
    return np.where(inside.any(axis=1), inside.argmax(axis=1), nearest)


def freq_index(table: xr.Dataset, freq: np.ndarray) -> np.ndarray:
    return np.abs(table.gain_freq.values[None, :] - freq[:, None]).argmin(axis=1)


def _inside(table: xr.Dataset, times: np.ndarray) -> bool:
    lo, hi = table.gain_time_lo.values, table.gain_time_hi.values
    inside = (times[:, None] >= lo[None, :] - TIME_TOL) & (times[:, None] <= hi[None, :] + TIME_TOL)
    return bool(inside.any(axis=1).all())


def _channels_match(table: xr.Dataset, freq: np.ndarray, width: float) -> bool:
    f = table.gain_freq.values
    return len(f) == 1 or bool((np.abs(f[freq_index(table, freq)] - freq) < 1e-3 * width).all())


def band_of(table: xr.Dataset, freq: np.ndarray) -> xr.Dataset:
    """The table's intervals and bins of the band holding ``freq`` (tables of several
    DATA_DESC_IDs); the whole table if no band holds it."""
    if "band_lo" not in table.coords or len(np.unique(table.band_lo.values)) < 2:
        return table
    centre = float(np.mean(freq))
    rows = (table.band_lo.values <= centre) & (centre <= table.band_hi.values)
    if not rows.any():
        return table
    lo, hi = table.band_lo.values[rows].min(), table.band_hi.values[rows].max()
    f, pf = table.gain_freq.values, table.param_freq.values
    return table.isel(gain_time=rows, gain_freq=(f >= lo) & (f <= hi),
                      param_freq=(pf >= lo) & (pf <= hi))  # fmt: skip


def resample(table: xr.Dataset, utimes: list[np.ndarray], freq: np.ndarray, width: float):
    """A table term on a dataset: (tmaps per partition, chan_bins, gains, flags) for
    :class:`radiocloud.core.kernels.calibrate.Lookup`, gains (time, bin, ant, feed)."""
    kind = TERM_TYPES.get(table.attrs.get("type", ""))
    table = band_of(table, freq)
    gains = table.gains.values[:, :, :, 0, :]
    flags = table.gain_flags.values[:, :, :, 0, :]
    params = table.params.values[:, :, :, 0]
    pflags = table.param_flags.values[:, :, :, 0]
    times = np.concatenate(utimes)
    if len(table.gain_time) == 1 or _inside(table, times):
        tmaps = [time_index(table, u) for u in utimes]
    else:
        centre = table.gain_time.values
        gains, flags = lerp_gains(gains, flags, centre, times, axis=0)
        params, pflags = lerp_params(params, pflags, centre, times, axis=0)
        offsets = np.cumsum([0, *map(len, utimes)])
        tmaps = [np.arange(a, b) for a, b in pairwise(offsets)]
    if kind is not None and kind.per_channel:  # recomputed from its parameters
        pf = table.param_freq.values
        fi = np.abs(pf[None, :] - freq[:, None]).argmin(axis=1)
        gains = kind.gains(params, fi, (freq - pf[fi]) / 1e9)
        return tmaps, np.arange(len(freq)), gains, pflags[:, fi]
    if _channels_match(table, freq, width):
        return tmaps, freq_index(table, freq), gains, flags
    gains, flags = lerp_gains(gains, flags, table.gain_freq.values, freq, axis=1)
    return tmaps, np.arange(len(freq)), gains, flags


def open_term(spec_text: str, default_name: str) -> xr.Dataset:
    """The term of a table given as PATH or PATH:TERM."""
    path, _, name = spec_text.partition(":") if ":" in spec_text.split("/")[-1] else (
        spec_text, "", "")  # fmt: skip
    try:
        terms, _ = io.read_gain_table(path)
    except DatasetNotFoundError as exc:
        raise OptionError(f"--load-from {default_name}={spec_text}: {exc}") from None
    name = name or default_name
    if name not in terms:
        raise OptionError(
            f"--load-from {spec_text}: the table has terms {', '.join(terms)}, not {name}; "
            f"give {path}:TERM"
        )
    return terms[name]


def initial_params(spec, kind, times, bins, layout) -> np.ndarray:
    """Starting parameters of a term from another table (--load-from): the same type's
    parameters where the table has that type (interpolated to this solve's intervals),
    else parameters fitted to its gains there."""
    table = band_of(open_term(spec.load_from, spec.name), layout.freq)
    if table.attrs.get("type") == spec.type:
        params = table.params.values[:, :, :, 0]
        flags = table.param_flags.values[:, :, :, 0]
        if len(table.gain_time) > 1 and not _inside(table, times.centre):
            params, _ = lerp_params(params, flags, table.gain_time.values, times.centre, axis=0)
        else:
            params = params[time_index(table, times.centre)]
        f = np.abs(table.param_freq.values[None, :] - bins.interval_freq[:, None]).argmin(axis=1)
        return params[:, f]
    tmaps, chans, g, _ = resample(table, [times.centre], bins.interval_freq, layout.chan_width)
    g = g[tmaps[0]][:, chans]
    try:
        return kind.from_gains(g)
    except NotImplementedError:
        raise OptionError(
            f"--load-from {spec.load_from}: a {spec.type} term starts only from a {spec.type} "
            f"table (that term is {table.attrs.get('type')})"
        ) from None
