"""What part of a dataset to plot: fields, scans, spectral windows, antennas, baselines,
channels, a uv range, with or without autocorrelations. Parsed from the command line's text;
a value that names nothing in the dataset is an error naming what it has."""

from __future__ import annotations

import re
from dataclasses import dataclass

import dask.array as da
import numpy as np

from radiocloud.core.errors import OptionError

C = 299_792_458.0
_METRES = {"": 1.0, "m": 1.0, "km": 1e3}
_LAMBDAS = {"lambda": 1.0, "klambda": 1e3, "mlambda": 1e6}


@dataclass(frozen=True)
class Selection:
    fields: tuple[str, ...] | None = None  # FIELD_IDs or names
    scans: tuple[int, ...] | None = None
    spws: tuple[int, ...] | None = None
    antennas: tuple[str, ...] | None = None  # names or indices: baselines with any of them
    baselines: tuple[tuple[str, str], ...] | None = None
    channels: tuple[int | None, int | None, int | None] | None = None  # start, stop, step
    uv_range: tuple[float, float, bool] | None = None  # lo, hi, in wavelengths (else metres)
    autocorrelations: bool = True

    def describe(self) -> str:
        shown = {
            "--field": self.fields, "--scan": self.scans, "--spw": self.spws,
            "--ant": self.antennas, "--baseline": self.baselines, "--chan": self.channels,
            "--uv-range": self.uv_range,
        }  # fmt: skip
        text = [f"{k} {v}" for k, v in shown.items() if v is not None]
        if not self.autocorrelations:
            text.append("--no-autocorr")
        return ", ".join(text) or "everything"

    # -- resolved against the dataset ------------------------------------------------------

    def field_ids(self, names: list[str]) -> set[int] | None:
        if self.fields is None:
            return None
        return {_index(f, names, "--field", "fields") for f in self.fields}

    def keeps(self, field_ids: set[int] | None, field: int, scan: int, spw: int) -> bool:
        """Whether the partition of this field, scan and spw is selected."""
        return (
            (field_ids is None or field in field_ids)
            and (self.scans is None or scan in self.scans)
            and (self.spws is None or spw in self.spws)
        )

    def antenna_ids(self, names: list[str]) -> list[int] | None:
        """The antennas --ant names, in its order (None: not given)."""
        if self.antennas is None:
            return None
        return list(dict.fromkeys(_index(a, names, "--ant", "antennas") for a in self.antennas))

    def baseline_mask(self, names: list[str]) -> np.ndarray:
        """(nant, nant) symmetric: the selected baselines."""
        n = len(names)
        mask = np.ones((n, n), bool)
        if self.antennas is not None:
            some = np.zeros(n, bool)
            some[self.antenna_ids(names)] = True
            mask &= some[:, None] | some[None, :]
        if self.baselines is not None:
            pairs = np.zeros((n, n), bool)
            for a, b in self.baselines:
                p, q = (_index(v, names, "--baseline", "antennas") for v in (a, b))
                pairs[p, q] = pairs[q, p] = True
            mask &= pairs
        if not self.autocorrelations:
            np.fill_diagonal(mask, False)
        return mask

    def channel_slice(self, nchan: int) -> slice:
        if self.channels is None:
            return slice(0, nchan)
        start, stop, step = self.channels
        chans = slice(start, stop, step)
        first, last, stride = chans.indices(nchan)
        if not len(range(first, last, stride)):
            text = _slice_text(self.channels)
            raise OptionError(f"--chan {text}: selects no channel of the {nchan} in the data")
        return slice(first, last, stride)

    def uv_keep(self, uvw, freq: np.ndarray):
        """Lazy (row, 1, 1) or (row, chan, 1) mask of the points inside the uv range."""
        lo, hi, wavelengths = self.uv_range
        uv = da.sqrt(uvw[:, 0] ** 2 + uvw[:, 1] ** 2)[:, None, None]
        if wavelengths:
            uv = uv * (freq[None, :, None] / C)
        return (uv >= lo) & (uv <= hi)


def _index(item: str, names: list[str], option: str, what: str) -> int:
    """The index of ``item``, a name or an index, in ``names``."""
    item = str(item).strip()
    if item in names:
        return names.index(item)
    if item.isdigit() and int(item) < len(names):
        return int(item)
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    raise OptionError(f"{option} {item}: the dataset has {what} 0 to {len(names) - 1} ({shown})")


def _slice_text(s) -> str:
    start, stop, step = ("" if v is None else str(v) for v in s)
    return f"{start}:{stop}" + (f":{step}" if step else "")


# -- parsing the command line ----------------------------------------------------------------


def split(text: str | None) -> tuple[str, ...] | None:
    return None if not text else tuple(v.strip() for v in text.split(",") if v.strip())


def parse_ints(text: str | None, option: str) -> tuple[int, ...] | None:
    items = split(text)
    if items is None:
        return None
    try:
        return tuple(int(v) for v in items)
    except ValueError:
        raise OptionError(f"{option} {text}: give numbers separated by commas, e.g. 1,3") from None


def parse_baselines(text: str | None) -> tuple[tuple[str, str], ...] | None:
    items = split(text)
    if items is None:
        return None
    pairs = []
    for item in items:
        a, sep, b = item.partition("-")
        if not sep or not a or not b:
            raise OptionError(f"--baseline {item}: write ANT-ANT, e.g. m000-m017 or 0-17")
        pairs.append((a, b))
    return tuple(pairs)


def parse_channels(text: str | None) -> tuple[int | None, int | None, int | None] | None:
    """``START:STOP[:STEP]`` as Python slices have it (STOP excluded), or one channel."""
    if not text:
        return None
    try:
        parts = [int(v) if v.strip() else None for v in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) == 1 and parts[0] is not None:
        return parts[0], parts[0] + 1, None
    if len(parts) not in (2, 3):
        raise OptionError(f"--chan {text}: write START:STOP[:STEP], e.g. 100:200 (STOP excluded)")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def parse_uv_range(text: str | None) -> tuple[float, float, bool] | None:
    """``LO:HI[UNIT]`` with UNIT m (default), km, lambda, klambda or Mlambda; an empty
    bound is open."""
    if not text:
        return None
    match = re.fullmatch(r"\s*([^:]*):([^:a-zA-Z]*)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(3).lower() if match else ""
    if not match or (unit not in _METRES and unit not in _LAMBDAS):
        raise OptionError(
            f"--uv-range {text}: write LO:HI with a unit m, km, lambda, klambda or Mlambda, "
            "e.g. 0:5klambda or 100:"
        )
    try:
        lo = float(match.group(1)) if match.group(1).strip() else 0.0
        hi = float(match.group(2)) if match.group(2).strip() else np.inf
    except ValueError:
        raise OptionError(f"--uv-range {text}: the bounds must be numbers") from None
    scale = _LAMBDAS[unit] if unit in _LAMBDAS else _METRES[unit]
    if hi < lo:
        raise OptionError(f"--uv-range {text}: the upper bound is below the lower")
    return lo * scale, hi * scale, unit in _LAMBDAS
