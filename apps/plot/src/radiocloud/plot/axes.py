"""Plot axes: columns and quantities derived from them, as lazy arrays that broadcast to
(row, chan, corr).

Row axes (U, V, W, UV, TIME, ANTENNA1, ANTENNA2, BASELINE, SCAN, FIELD, SPW) are (row, 1, 1)
or (1, 1, 1); channel axes (FREQ, CHAN, UVWAVE needs both) (1, chan, 1) or (row, chan, 1);
CORR is (1, 1, corr); data axes ``EXPR:amp|phase|real|imag[:CORR]`` are (row, chan, corr),
where EXPR is a column or a sum/difference of columns (``CORRECTED_DATA-MODEL_DATA``) and CORR
a stored correlation or a Stokes parameter (``DATA:amp:I``). FLAG (1 where flagged) colours
plots by the flagged fraction of each pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np

from radiocloud.core.errors import OptionError
from radiocloud.plot.correlations import Product, combine

C = 299_792_458.0
PARTS = {"amp": "amplitude", "phase": "phase", "real": "real", "imag": "imaginary"}
PLAIN = {
    "U": ("u", "m"), "V": ("v", "m"), "W": ("w", "m"), "UV": ("uv distance", "m"),
    "UVWAVE": ("uv distance", "wavelengths"), "TIME": ("time", "s since start"),
    "FREQ": ("frequency", "GHz"), "CHAN": ("channel", ""), "CORR": ("correlation", ""),
    "ANTENNA1": ("antenna 1", ""), "ANTENNA2": ("antenna 2", ""), "BASELINE": ("baseline", ""),
    "SCAN": ("scan", ""), "FIELD": ("field", ""), "SPW": ("spectral window", ""),
}  # fmt: skip
_NEEDS = {
    "U": ("UVW",), "V": ("UVW",), "W": ("UVW",), "UV": ("UVW",), "UVWAVE": ("UVW",),
    "TIME": ("TIME",), "ANTENNA1": ("ANTENNA1",), "ANTENNA2": ("ANTENNA2",),
    "BASELINE": ("ANTENNA1", "ANTENNA2"), "FLAG": ("FLAG",),
}  # fmt: skip
CATEGORIES = ("ANTENNA1", "ANTENNA2", "BASELINE", "SCAN", "FIELD", "SPW", "CORR")
ITERATIONS = ("field", "scan", "spw", "corr", "antenna", "baseline")  # --iter: a plot for each


@dataclass(frozen=True)
class Axis:
    name: str  # as given, upper-cased: UV, DATA:amp, CORRECTED_DATA-MODEL_DATA:phase:I
    label: str
    unit: str
    columns: tuple[str, ...]
    corr: str | None = None  # a data axis's own correlation or Stokes parameter

    @property
    def text(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def is_data(self) -> bool:
        return ":" in self.name

    @property
    def safe(self) -> str:
        """The name as it may appear in a file name."""
        return self.name.replace(":", "-").replace("/", "_")


@dataclass(frozen=True)
class Source:
    """What the axes of one partition are computed from."""

    ds: object  # the partition's lazy xarray dataset
    freq: np.ndarray  # (chan,) Hz, after channel selection
    chan0: int  # the first selected channel
    t0: float  # seconds, the start of the observation
    nant: int
    spw: int
    baselines: np.ndarray  # (nant * nant,) index of baseline (p, q) among all, p <= q


def valid_axes() -> str:
    return ", ".join([*PLAIN, "COLUMN:amp|phase|real|imag[:CORR]"])


def parse_axis(text: str, *, colour: bool = False) -> Axis:
    """An axis from its spec; ``colour`` also allows FLAG (the flagged fraction)."""
    name = text.strip()
    if ":" in name:
        return _data_axis(text)
    key = name.upper()
    if colour and key == "FLAG":
        return Axis("FLAG", "flagged fraction", "", ("FLAG",))
    if key not in PLAIN:
        raise OptionError(f"unknown axis '{text}': valid axes are {valid_axes()}")
    label, unit = PLAIN[key]
    return Axis(key, label, unit, _NEEDS.get(key, ()))


def _data_axis(text: str) -> Axis:
    expr, part, *rest = text.strip().split(":")
    part = part.lower()
    if part not in PARTS or len(rest) > 1:
        raise OptionError(
            f"axis '{text}': write COLUMN:PART[:CORR] with PART one of {', '.join(PARTS)}"
        )
    cols = tuple(c for c in expr.replace("+", "-").upper().split("-") if c)
    if not cols:
        raise OptionError(f"axis '{text}': give a column before ':', e.g. DATA:amp")
    corr = rest[0].upper() if rest else None
    unit = "deg" if part == "phase" else "Jy"
    label = f"{expr.upper()} {PARTS[part]}" + (f" {corr}" if corr else "")
    name = f"{expr.upper()}:{part}" + (f":{corr}" if corr else "")
    return Axis(name, label, unit, cols, corr)


def values(axis: Axis, src: Source, chosen: tuple[Product, ...]):
    """The axis of one partition for the products ``chosen``, broadcastable to
    (row, chan, len(chosen))."""
    ds, key = src.ds, axis.name
    if axis.is_data:
        expr, part = key.split(":")[:2]
        data = combine(_expression(expr, ds), chosen)
        if part == "phase":
            return da.degrees(da.angle(data))
        return {"amp": da.absolute, "real": da.real, "imag": da.imag}[part](data)
    if key in ("U", "V", "W"):
        return ds.UVW.data[:, "UVW".index(key)][:, None, None]
    if key in ("UV", "UVWAVE"):
        uvw = ds.UVW.data
        uv = da.sqrt(uvw[:, 0] ** 2 + uvw[:, 1] ** 2)[:, None, None]
        return uv * (src.freq[None, :, None] / C) if key == "UVWAVE" else uv
    if key == "TIME":
        return (ds.TIME.data - src.t0)[:, None, None]
    if key == "FREQ":
        return (src.freq / 1e9)[None, :, None]
    if key == "CHAN":
        return (src.chan0 + np.arange(len(src.freq), dtype=float))[None, :, None]
    if key == "CORR":
        return np.arange(len(chosen), dtype=float)[None, None, :]
    if key in ("ANTENNA1", "ANTENNA2"):
        return ds[key].data[:, None, None].astype(float)
    if key == "BASELINE":
        return baseline_index(ds, src.nant, src.baselines)[:, None, None].astype(float)
    if key == "SPW":
        return np.full((1, 1, 1), float(src.spw))
    value = float(ds.attrs["SCAN_NUMBER" if key == "SCAN" else "FIELD_ID"])
    return np.full((1, 1, 1), value)


def baseline_index(ds, nant: int, lookup: np.ndarray):
    """(row,) index of each row's baseline in ``lookup`` (-1 where it has none)."""
    pair = ds.ANTENNA1.data * nant + ds.ANTENNA2.data
    return pair.map_blocks(lambda p: lookup[p], dtype=lookup.dtype)


def _expression(expr: str, ds):
    total, sign, name = None, 1, ""
    for ch in expr + "+":
        if ch in "+-":
            col = ds[name].data if sign == 1 else -ds[name].data
            total = col if total is None else total + col
            sign, name = (1 if ch == "+" else -1), ""
        else:
            name += ch
    return total
