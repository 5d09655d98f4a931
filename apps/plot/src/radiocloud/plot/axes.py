"""Plot axes: columns and quantities derived from them, as lazy arrays that broadcast to
(row, chan, corr).

Row axes (U, V, W, UV, TIME, ANTENNA1, ANTENNA2, BASELINE, SCAN, FIELD) are (row, 1, 1);
channel axes (FREQ, CHAN, UVWAVE needs both) (1, chan, 1) or (row, chan, 1); CORR is
(1, 1, corr); data axes ``EXPR:amp|phase|real|imag`` are (row, chan, corr), where EXPR is a
column or a sum/difference of columns (``CORRECTED_DATA-MODEL_DATA``).
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np

from radiocloud.core.errors import OptionError

C = 299_792_458.0
PARTS = {"amp": "amplitude", "phase": "phase", "real": "real", "imag": "imaginary"}
PLAIN = {
    "U": ("u", "m"), "V": ("v", "m"), "W": ("w", "m"), "UV": ("uv distance", "m"),
    "UVWAVE": ("uv distance", "wavelengths"), "TIME": ("time", "s since start"),
    "FREQ": ("frequency", "GHz"), "CHAN": ("channel", ""), "CORR": ("correlation", ""),
    "ANTENNA1": ("antenna 1", ""), "ANTENNA2": ("antenna 2", ""), "BASELINE": ("baseline", ""),
    "SCAN": ("scan", ""), "FIELD": ("field", ""),
}  # fmt: skip
CATEGORIES = ("ANTENNA1", "ANTENNA2", "BASELINE", "SCAN", "FIELD", "CORR")


@dataclass(frozen=True)
class Axis:
    name: str  # as given, upper-cased: UV, DATA:amp, CORRECTED_DATA-MODEL_DATA:phase
    label: str
    unit: str
    columns: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


def valid_axes() -> str:
    return ", ".join([*PLAIN, "COLUMN:amp|phase|real|imag"])


def parse_axis(text: str) -> Axis:
    name = text.strip()
    if ":" in name:
        expr, _, part = name.rpartition(":")
        part = part.lower()
        if part not in PARTS:
            raise OptionError(f"axis '{text}': the part after ':' is one of {', '.join(PARTS)}")
        cols = tuple(c for c in expr.replace("+", "-").upper().split("-") if c)
        if not cols:
            raise OptionError(f"axis '{text}': give a column before ':', e.g. DATA:amp")
        unit = "deg" if part == "phase" else "Jy"
        return Axis(f"{expr.upper()}:{part}", f"{expr.upper()} {PARTS[part]}", unit, cols)
    key = name.upper()
    if key not in PLAIN:
        raise OptionError(f"unknown axis '{text}': valid axes are {valid_axes()}")
    label, unit = PLAIN[key]
    needs = {"U": ("UVW",), "V": ("UVW",), "W": ("UVW",), "UV": ("UVW",), "UVWAVE": ("UVW",),
             "TIME": ("TIME",), "ANTENNA1": ("ANTENNA1",), "ANTENNA2": ("ANTENNA2",),
             "BASELINE": ("ANTENNA1", "ANTENNA2")}.get(key, ())  # fmt: skip
    return Axis(key, label, unit, needs)


def values(axis: Axis, ds, freq: np.ndarray, corr: np.ndarray, *, t0: float, nant: int):
    """The axis of one partition, broadcastable to (row, chan, len(corr))."""
    key = axis.name
    if ":" in key:
        expr, _, part = key.rpartition(":")
        data = _expression(expr, ds)[:, :, corr]
        return {"amp": da.absolute, "real": da.real, "imag": da.imag}.get(
            part, lambda d: da.degrees(da.angle(d)))(data)  # fmt: skip
    row = ds.UVW.data if key in ("U", "V", "W", "UV", "UVWAVE") else None
    if key in ("U", "V", "W"):
        return row[:, "UVW".index(key)][:, None, None]
    if key in ("UV", "UVWAVE"):
        uv = da.sqrt(row[:, 0] ** 2 + row[:, 1] ** 2)[:, None, None]
        return uv * (freq[None, :, None] / C) if key == "UVWAVE" else uv
    if key == "TIME":
        return (ds.TIME.data - t0)[:, None, None]
    if key == "FREQ":
        return (freq / 1e9)[None, :, None]
    if key == "CHAN":
        return np.arange(len(freq), dtype=float)[None, :, None]
    if key == "CORR":
        return np.asarray(corr, float)[None, None, :]
    if key in ("ANTENNA1", "ANTENNA2"):
        return ds[key].data[:, None, None].astype(float)
    if key == "BASELINE":
        return (ds.ANTENNA1.data * nant + ds.ANTENNA2.data)[:, None, None].astype(float)
    value = float(ds.attrs["SCAN_NUMBER" if key == "SCAN" else "FIELD_ID"])
    return np.full((1, 1, 1), value)


def _expression(expr: str, ds):
    total, sign, name = None, 1, ""
    for ch in expr + "+":
        if ch in "+-":
            col = ds[name].data * sign
            total = col if total is None else total + col
            sign, name = (1 if ch == "+" else -1), ""
        else:
            name += ch
    return total
