"""Gain tables of a solve, and gains looked up from a table onto a dataset.

A table's gains are looked up, not interpolated: each integration takes the solution interval
whose span holds it (or the nearest interval's centre outside every span), each channel the
nearest frequency bin. This is exact for the dataset the table was solved on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import version

import numpy as np
import xarray as xr

from radiocloud.core import io
from radiocloud.core.errors import OptionError


def term_dataset(state, layout, sub) -> xr.Dataset:
    """One term's solutions as the table's xarray dataset."""
    times, bins = state.times, state.bins
    feeds = ["X", "Y"] if layout.corr_names[0][0] in "XY" else ["R", "L"]
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
            "gains": (gdims, state.gains[:, :, :, None, :]),
            "gain_flags": (gdims, state.bin_flags[:, :, :, None, :]),
            "params": (pdims, state.theta[:, :, :, None, :, :]),
            "param_flags": (pdims[:-1], state.flags[:, :, :, None, :]),
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
            "ddid": int(layout.ddid),
        },
    )


def write(path: str, states, layout, sub, cfg) -> None:
    io.write_gain_table(
        path,
        {s.spec.name: term_dataset(s, layout, sub) for s in states},
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


def open_term(spec_text: str, default_name: str) -> xr.Dataset:
    """The term of a table given as PATH or PATH:TERM."""
    path, _, name = spec_text.partition(":") if ":" in spec_text.split("/")[-1] else (
        spec_text, "", "")  # fmt: skip
    terms, _ = io.read_gain_table(path)
    name = name or default_name
    if name not in terms:
        raise OptionError(
            f"--load-from {spec_text}: the table has terms {', '.join(terms)}, not {name}; "
            f"give {path}:TERM"
        )
    return terms[name]


def initial_params(spec, kind, times, bins, layout) -> np.ndarray:
    """Starting parameters of a term from another table (--load-from): the same type's
    parameters where the table has that type, else parameters fitted to its gains."""
    table = open_term(spec.load_from, spec.name)
    t = time_index(table, times.centre)
    if table.attrs.get("type") == spec.type:
        f = np.abs(table.param_freq.values[None, :] - bins.interval_freq[:, None]).argmin(axis=1)
        return table.params.values[t][:, f][:, :, :, 0]
    g = table.gains.values[t][:, freq_index(table, bins.interval_freq)][:, :, :, 0]
    try:
        return kind.from_gains(g)
    except NotImplementedError:
        raise OptionError(
            f"--load-from {spec.load_from}: a {spec.type} term starts only from a {spec.type} "
            f"table (that term is {table.attrs.get('type')})"
        ) from None
