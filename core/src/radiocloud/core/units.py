"""Parse the quantities users type: sizes (``4GB``), durations (``8s``, ``2min``), frequencies
(``1MHz``) and angles (``1.5asec``, ``2deg``). Bad values raise OptionError naming the value."""

from __future__ import annotations

import math
import re

from radiocloud.core.errors import OptionError

_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_SIZE = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
}  # fmt: skip
_DURATION = {"": 1.0, "s": 1.0, "sec": 1.0, "ms": 1e-3, "min": 60.0, "m": 60.0, "h": 3600.0}
_FREQUENCY = {"": 1.0, "hz": 1.0, "khz": 1e3, "mhz": 1e6, "ghz": 1e9}
_ANGLE = {
    "": 1.0, "rad": 1.0,
    "deg": math.pi / 180, "d": math.pi / 180,
    "amin": math.pi / 180 / 60, "arcmin": math.pi / 180 / 60,
    "asec": math.pi / 180 / 3600, "arcsec": math.pi / 180 / 3600,
}  # fmt: skip


def _parse(text: str, table: dict, what: str, example: str) -> float:
    match = re.fullmatch(_NUMBER + r"\s*([A-Za-z]*)", str(text).strip())
    if not match or match.group(2).lower() not in table:
        units = ", ".join(sorted(u for u in table if u))
        raise OptionError(f"cannot read {what} '{text}': write e.g. '{example}' (units: {units})")
    return float(match.group(1)) * table[match.group(2).lower()]


def parse_size(text: str | int) -> int:
    """Bytes in ``text``: ``4GB`` (10^9), ``4GiB`` (2^30), or a plain number of bytes."""
    if isinstance(text, int):
        return text
    value = _parse(text, _SIZE, "the size", "4GB")
    if value <= 0:
        raise OptionError(f"the size '{text}' must be positive")
    return int(value)


def parse_duration(text: str | float) -> float:
    """Seconds in ``text``: ``8s``, ``2min``, ``1.5h``, or a plain number of seconds."""
    return text if isinstance(text, float | int) else _parse(text, _DURATION, "the duration", "8s")


def parse_frequency(text: str | float) -> float:
    """Hz in ``text``: ``856MHz``, ``1.4GHz``, or a plain number of Hz."""
    if isinstance(text, float | int):
        return float(text)
    return _parse(text, _FREQUENCY, "the frequency", "856MHz")


def parse_angle(text: str | float) -> float:
    """Radians in ``text``: ``1.5asec``, ``2deg``, ``0.1rad``, or a plain number of radians."""
    return text if isinstance(text, float | int) else _parse(text, _ANGLE, "the angle", "1.5asec")


def format_size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")
