"""What users type for bins and columns, and what it resolves to on a given dataset."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from radiocloud.core.errors import ColumnError, OptionError
from radiocloud.core.units import parse_angle, parse_duration, parse_frequency

# Standard complex visibility columns, averaged by default when present (in this order).
VISIBILITY_COLUMNS = ("DATA", "MODEL_DATA", "CORRECTED_DATA")
# A bin in units must be a whole number of input samples to within this fraction.
MULTIPLE_TOLERANCE = 0.01


@dataclass(frozen=True)
class Bin:
    """``count`` samples, or a width in seconds (time) / Hz (channels)."""

    option: str
    text: str
    count: int | None = None
    width: float | None = None

    def samples(self, step: float, unit: str) -> int:
        """Samples per bin for a sampling ``step`` (s or Hz)."""
        if self.count is not None:
            return self.count
        ratio = self.width / step
        n = round(ratio)
        if n < 1 or abs(ratio - n) > MULTIPLE_TOLERANCE * max(n, 1):
            lo, hi = max(int(ratio), 1), max(int(ratio), 1) + 1
            raise OptionError(
                f"{self.option} {self.text} is not a whole number of the {step:g} {unit} "
                f"samples: use {lo * step:g}{unit} or {hi * step:g}{unit} "
                f"(or a sample count, e.g. {self.option} {lo})"
            )
        return n


def parse_bin(text: str, option: str, kind: str) -> Bin:
    """``4`` (samples) or a width with units: ``16s`` / ``2min`` for time, ``1MHz`` for chan."""
    text = str(text).strip()
    if re.fullmatch(r"\d+", text):
        count = int(text)
        if count < 1:
            raise OptionError(f"{option} {text}: give a positive number of samples")
        return Bin(option, text, count=count)
    width = parse_duration(text) if kind == "time" else parse_frequency(text)
    if not width > 0:
        raise OptionError(f"{option} {text}: the bin width must be positive")
    return Bin(option, text, width=width)


def parse_fov(text: str | None) -> float | None:
    """Field of view (diameter) in radians: a plain number is degrees, or ``90arcmin`` etc."""
    if text is None:
        return None
    text = str(text).strip()
    try:
        value = np.deg2rad(float(text))
    except ValueError:
        value = parse_angle(text)
    if not 0 < value <= np.pi:
        raise OptionError(f"--fov {text}: give the field's diameter, e.g. 1.5 (degrees)")
    return float(value)


def parse_columns(text: str | None, available: dict[str, np.dtype], dataset: str) -> dict:
    """Output column name -> input column name, from ``DATA,CORRECTED_DATA:DATA``-style text.

    ``available`` maps the input's (row, chan, corr) columns to their dtypes. By default every
    complex one is averaged under its own name.
    """
    if not text:
        names = [c for c in VISIBILITY_COLUMNS if c in available]
        names += sorted(
            c
            for c, t in available.items()
            if c not in names and np.issubdtype(t, np.complexfloating)
        )
        if not names:
            raise ColumnError(f"'{dataset}' has no visibility column to average (e.g. DATA)")
        return {c: c for c in names}
    mapping: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        source, _, target = item.partition(":")
        source, target = source.strip().upper(), (target.strip().upper() or source.strip().upper())
        if source not in available:
            have = ", ".join(sorted(available)) or "none"
            raise ColumnError(
                f"--columns: '{source}' is not a visibility column of '{dataset}' (it has: {have})"
            )
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", target):
            raise OptionError(f"--columns: '{target}' is not a valid column name")
        if target in mapping:
            raise OptionError(f"--columns: two columns would be written to {target}")
        mapping[target] = source
    if not mapping:
        raise OptionError("--columns is empty: name at least one column, e.g. DATA")
    return mapping
