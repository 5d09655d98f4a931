"""WSClean component lists ("sky models"): read, write and evaluate them.

The format is WSClean's ``-save-source-list`` output, documented on WSClean's "Component lists"
page (https://wsclean.readthedocs.io/en/latest/component_list.html, source
``doc/source/component_list.rst``) and shared with DP3's sky models (makesourcedb page of the
LOFAR wiki). A ``Format = ...`` header names the columns in file order, optionally with defaults
(``ReferenceFrequency='1.4e9'``); an empty field takes its column's default. RA is
``hh:mm:ss.s``, Dec ``dd.mm.ss.s`` (``dd:mm:ss.s`` is accepted too); axes are FWHM in arcsec,
Orientation is the position angle in degrees, North through East. Every component line has
one field per column: DP3 lets trailing fields be left out, but here a short line is an error,
so a truncated file is caught rather than read with default shapes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import NamedTuple

import numpy as np

from radiocloud.core.errors import SkyModelError

STOKES = ("I", "Q", "U", "V")
_ARCSEC = math.pi / 648000.0  # radians in an arcsecond
_SECOND = math.pi / 43200.0  # radians in a second of time (RA)
_COLUMNS = (
    "Name", "Type", "Patch", "Ra", "Dec", "I", "Q", "U", "V", "SpectralIndex", "LogarithmicSI",
    "ReferenceFrequency", "MajorAxis", "MinorAxis", "Orientation",
)  # fmt: skip
_REQUIRED = ("Name", "Type", "Ra", "Dec", "I", "ReferenceFrequency")
_UNSUPPORTED = ("RotationMeasure", "PolarizationAngle", "PolarizedFraction")
_HEADER = (
    re.compile(r"\s*format\s*=\s*(.*)", re.IGNORECASE),  # Format = Name, Type, ...
    re.compile(r"\s*#?\s*\((.*)\)\s*=\s*format\s*", re.IGNORECASE),  # # (Name, ...) = format
)
_SEXAGESIMAL = re.compile(r"([+-]?)(\d+)([:.])(\d+)\3(\d+(?:\.\d*)?)")  # sign, dd, sep, mm, ss


# SkyModel's array fields: dtype and the shape after the leading (n,); None = any width.
_FIELDS = {
    "is_gaussian": (bool, ()), "ra": (np.float64, ()), "dec": (np.float64, ()),
    "stokes": (np.float64, (4,)), "spectral_coeffs": (np.float64, None),
    "ref_freq": (np.float64, ()), "shape": (np.float64, (3,)),
}  # fmt: skip


@dataclass(frozen=True, eq=False)
class SkyModel:
    """Point and Gaussian components, one row per component (``n`` rows).

    ``ra``, ``dec`` (n,) radians; ``stokes`` (n, 4) I, Q, U, V in Jy at ``ref_freq`` (n,) Hz;
    ``spectral_coeffs`` (n, ncoeff) zero-padded; ``log_si`` one spectral kind for the model;
    ``shape`` (n, 3) major FWHM, minor FWHM, position angle (North through East), all radians,
    zeros for points. Arrays are read-only copies.
    """

    names: tuple[str, ...]
    is_gaussian: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    stokes: np.ndarray
    spectral_coeffs: np.ndarray
    log_si: bool
    ref_freq: np.ndarray
    shape: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.names)
        object.__setattr__(self, "names", tuple(str(name) for name in self.names))
        object.__setattr__(self, "log_si", bool(self.log_si))
        for field, (dtype, trail) in _FIELDS.items():
            value = np.array(getattr(self, field), dtype=dtype)
            if value.size == 0:
                value = value.reshape(
                    n, *(trail if trail is not None else value.shape[1:2] or (0,))
                )
            width = trail if trail is not None else value.shape[1:2] if value.ndim == 2 else (-1,)
            if value.shape != (n, *width):
                raise ValueError(f"SkyModel.{field} has shape {value.shape} for {n} components")
            if dtype is np.float64 and not np.all(np.isfinite(value)):
                raise ValueError(f"SkyModel.{field} holds NaN or infinite values")
            value.setflags(write=False)
            object.__setattr__(self, field, value)
        if np.any(self.ref_freq <= 0):
            raise ValueError("SkyModel.ref_freq must be positive")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def kind(self) -> np.ndarray:
        """(n,) ``"POINT"`` or ``"GAUSSIAN"``."""
        return np.where(self.is_gaussian, "GAUSSIAN", "POINT")

    def flux(self, frequency: np.ndarray | float) -> np.ndarray:
        """Stokes I, Q, U, V in Jy at ``frequency`` (chan,) Hz, shape (n, chan, 4).

        With x = ν/ν₀ (WSClean "Component lists" page, section "The columns"):
        logarithmic, I(ν) = I₀ x^(c₀ + c₁ log₁₀x + c₂ (log₁₀x)² + ...);
        ordinary, I(ν) = I₀ + c₀ (x − 1) + c₁ (x − 1)² + ...
        Q, U and V follow the same spectral shape as I, P(ν) = P₀ I(ν)/I₀, as WSClean's
        ``PowerLawSED`` does (one shape times a per-Stokes factor P₀/I₀; DP3 instead keeps
        Q, U, V flat). Where I₀ = 0 the ordinary shape is 1 + c₀ (x − 1) + ..., WSClean's
        fallback for that case.
        """
        freq = np.atleast_1d(np.asarray(frequency, dtype=np.float64))
        if not np.all(freq > 0):
            raise ValueError("SkyModel.flux needs positive frequencies in Hz")
        x = freq[None, :] / self.ref_freq[:, None]
        coeffs = self.spectral_coeffs
        if self.log_si:
            lg = np.log10(x)
            exponent = np.zeros_like(x)
            for k in range(coeffs.shape[1] - 1, -1, -1):
                exponent = exponent * lg + coeffs[:, k, None]
            shape = 10.0 ** (lg * exponent)
            return self.stokes[:, None, :] * shape[:, :, None]
        d = x - 1.0
        delta = np.zeros_like(x)
        for k in range(coeffs.shape[1] - 1, -1, -1):
            delta = (delta + coeffs[:, k, None]) * d
        i0 = self.stokes[:, 0, None]
        safe = np.where(i0 == 0.0, 1.0, i0)
        out = self.stokes[:, None, :] * (1.0 + delta / safe)[:, :, None]
        out[:, :, 0] = i0 + delta
        return out

    def lm(self, ra0: float, dec0: float) -> np.ndarray:
        """Direction cosines (n, 2) about the phase centre ``ra0``, ``dec0`` (radians), SIN:
        l = cos δ sin Δα, m = sin δ cos δ₀ − cos δ sin δ₀ cos Δα."""
        dra = self.ra - ra0
        l_ = np.cos(self.dec) * np.sin(dra)
        m_ = np.sin(self.dec) * np.cos(dec0) - np.cos(self.dec) * np.sin(dec0) * np.cos(dra)
        return np.stack([l_, m_], axis=-1)

    def select(self, mask: np.ndarray) -> SkyModel:
        """The sub-model of the components picked by a boolean mask or an index array."""
        index = np.arange(len(self))[np.asarray(mask)]
        arrays = {field: getattr(self, field)[index] for field in _FIELDS}
        return SkyModel(names=tuple(self.names[i] for i in index), log_si=self.log_si, **arrays)

    def concat(self, other: SkyModel) -> SkyModel:
        """This model's components followed by ``other``'s (spectral terms zero-padded)."""
        if len(self) and len(other) and self.log_si != other.log_si:
            raise SkyModelError(
                "cannot join a logarithmic-spectrum sky model with an ordinary-polynomial one; "
                "convert one of them so that LogarithmicSI agrees"
            )
        ncoeff = max(self.spectral_coeffs.shape[1], other.spectral_coeffs.shape[1])
        arrays = {field: [getattr(self, field), getattr(other, field)] for field in _FIELDS}
        arrays["spectral_coeffs"] = [
            np.pad(c, ((0, 0), (0, ncoeff - c.shape[1]))) for c in arrays["spectral_coeffs"]
        ]
        return SkyModel(
            names=self.names + other.names,
            log_si=self.log_si if len(self) else other.log_si,
            **{field: np.concatenate(pair) for field, pair in arrays.items()},
        )


class _Line:
    """Raises SkyModelError("<file>:<line>: <what>; <fix>") for one line of a file."""

    def __init__(self, path: Path, number: int) -> None:
        self.where = f"{path}:{number}"

    def fail(self, what: str, fix: str) -> SkyModelError:
        return SkyModelError(f"{self.where}: {what}; {fix}")

    def number(self, text: str, column: str) -> float:
        if not text:
            raise self.fail(f"the {column} field is empty", f"fill it, or set {column}='...'")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise self.fail(f"bad number '{text}' in {column}", "write e.g. 0.5 or 1.4e9")
        return value

    def angle(self, text: str, is_ra: bool) -> float:
        """Radians in an RA (hh:mm:ss.s) or Dec (dd.mm.ss.s, dd:mm:ss.s) field."""
        column, example = ("Ra", "08:28:05.152") if is_ra else ("Dec", "-39.35.08.511")
        match = _SEXAGESIMAL.fullmatch(text)
        if not match or (is_ra and match.group(3) == "."):  # DP3 reads dotted RA as degrees
            what = "hh:mm:ss.s (hours)" if is_ra else "dd.mm.ss.s or dd:mm:ss.s (degrees)"
            raise self.fail(f"cannot read {column} '{text}'", f"write {what}, e.g. {example}")
        sign, top, _, minutes, seconds = match.groups()
        total = (Decimal(top) * 60 + Decimal(minutes)) * 60 + Decimal(seconds)
        limit = 86400 if is_ra else 324000  # 24 h in seconds of time, 90° in arcsec
        if int(minutes) >= 60 or Decimal(seconds) >= 60 or total > limit or (is_ra and sign):
            raise self.fail(f"{column} '{text}' is out of range", f"write e.g. {example}")
        value = _radians(-total if sign == "-" else total, _SECOND if is_ra else _ARCSEC)
        return value % (2 * math.pi) if is_ra else value


def _radians(seconds: Decimal, unit: float) -> float:
    """Radians in an exact decimal number of seconds (reader and writer share this rounding)."""
    return float(seconds) * unit


def _split(text: str) -> list[str]:
    """Comma-separated fields, keeping commas inside [..] and quotes."""
    fields, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[]":
            depth += 1 if char == "[" else -1
        elif char == "," and depth == 0:
            fields.append(text[start:i].strip())
            start = i + 1
    return [*fields, text[start:].strip()]


def _parse_header(spec: str, line: _Line) -> tuple[list[str], dict[str, str]]:
    canonical = {name.lower(): name for name in _COLUMNS + _UNSUPPORTED}
    columns, defaults = [], {}
    for item in _split(spec):
        name, _, default = item.partition("=")
        name = canonical.get(name.strip().lower(), name.strip())
        if name in columns:
            raise line.fail(f"the Format line names {name} twice", "keep one of them")
        columns.append(name)
        defaults[name] = default.strip().strip("'\"")
    for name in _REQUIRED:
        if name not in columns:
            raise line.fail(f"the Format line has no {name} column", "add it to the Format line")
    return columns, defaults


class _Component(NamedTuple):
    name: str
    is_gaussian: bool
    ra: float
    dec: float
    stokes: list[float]
    spectral_coeffs: list[float]
    log_si: bool
    ref_freq: float
    shape: list[float]


def _parse_component(values: dict[str, str], line: _Line) -> _Component:
    for name in _UNSUPPORTED:
        if values.get(name) and line.number(values[name], name) != 0:
            raise line.fail(f"{name} is not supported", "give Q and U per component instead")
    kind = values["Type"].upper()
    if kind not in ("POINT", "GAUSSIAN"):
        raise line.fail(f"unknown Type '{values['Type']}'", "use POINT or GAUSSIAN")
    if not values["Name"]:
        raise line.fail("the component has no Name", "give every component a name")
    stokes = [line.number(values.get(s) or "0", s) for s in STOKES]
    si = values.get("SpectralIndex") or "[]"
    terms = [t.strip() for t in si.strip("[] ").split(",") if t.strip()]
    coeffs = [line.number(t, "SpectralIndex") for t in terms]
    logarithmic = (values.get("LogarithmicSI") or "true").lower()
    if logarithmic not in ("true", "false"):
        raise line.fail(f"LogarithmicSI is '{logarithmic}'", "write true or false")
    ref_freq = line.number(values["ReferenceFrequency"], "ReferenceFrequency")
    if ref_freq <= 0:
        raise line.fail("ReferenceFrequency is not positive", "give the frequency in Hz")
    shape = [0.0, 0.0, 0.0]
    if kind == "GAUSSIAN":
        axes = [line.number(values.get(c) or "0", c) for c in ("MajorAxis", "MinorAxis")]
        if min(axes) < 0:
            raise line.fail("a Gaussian axis is negative", "give FWHM axes >= 0 in arcsec")
        pa = math.radians(line.number(values.get("Orientation") or "0", "Orientation"))
        shape = [axes[0] * _ARCSEC, axes[1] * _ARCSEC, pa]
    ra, dec = line.angle(values["Ra"], is_ra=True), line.angle(values["Dec"], is_ra=False)
    gaussian, log_si = kind == "GAUSSIAN", logarithmic == "true"
    return _Component(values["Name"], gaussian, ra, dec, stokes, coeffs, log_si, ref_freq, shape)


def read_skymodel(path: str | Path) -> SkyModel:
    """Read a WSClean component list; any problem raises SkyModelError naming file and line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SkyModelError(f"{path}: cannot read the sky model ({error}); check it") from None
    columns: list[str] | None = None
    rows: list[_Component] = []
    first_line = 0
    for number, text in enumerate(lines, start=1):
        line, text = _Line(path, number), text.strip()
        header = columns is None and next(filter(None, (h.fullmatch(text) for h in _HEADER)), None)
        if header:
            columns, defaults = _parse_header(header.group(1), line)
            continue
        if not text or text.startswith("#"):
            continue
        if columns is None:
            raise line.fail(
                "a component comes before any Format line",
                "start the file with e.g. 'Format = Name, Type, Ra, Dec, I, "
                "SpectralIndex, LogarithmicSI, ReferenceFrequency, MajorAxis, "
                "MinorAxis, Orientation'",
            )
        fields = _split(text)
        patch_line = "Patch" in columns and not fields[0] and len(fields) > 1 and not fields[1]
        if patch_line:  # DP3 patch definition (", , patch, ra, dec"): not a component
            continue
        if len(fields) != len(columns):
            fix = "give one field per Format column, empty for the default"
            raise line.fail(f"{len(fields)} fields for {len(columns)} columns", fix)
        values = {c: f or defaults[c] for c, f in zip(columns, fields, strict=True)}
        rows.append(_parse_component(values, line))
        first_line = first_line or number
        if rows[-1].log_si != rows[0].log_si:
            raise line.fail(
                f"LogarithmicSI is {str(rows[-1].log_si).lower()} here but "
                f"{str(rows[0].log_si).lower()} on line {first_line}",
                "use one spectral kind per file (rc-predict needs it)",
            )
    if columns is None:
        raise _Line(path, 1).fail("no Format line", "add the 'Format = ...' header WSClean writes")
    ncoeff = max((len(row.spectral_coeffs) for row in rows), default=0)
    for row in rows:
        row.spectral_coeffs.extend([0.0] * (ncoeff - len(row.spectral_coeffs)))
    arrays = {field: [getattr(row, field) for row in rows] for field in _FIELDS}
    names = tuple(row.name for row in rows)
    return SkyModel(names=names, log_si=rows[0].log_si if rows else True, **arrays)


def _sexagesimal(value: float, unit: float, sep: str, max_digits: int) -> str:
    """``value`` radians (>= 0) as dd<sep>mm<sep>ss.s with ``unit`` radians per second: the
    fewest decimals (1 to ``max_digits``) that :func:`read_skymodel` turns back into
    ``value`` exactly where one exists, so read-write-read cycles are bit-exact."""
    seconds = Decimal(value / unit)
    for digits in range(1, max_digits + 1):
        nearest = int(seconds.scaleb(digits).to_integral_value(ROUND_HALF_EVEN))
        steps = (0, -1, 1, -2, 2) if digits == max_digits else (0,)  # value / unit is inexact
        candidates = (nearest + step for step in steps)
        exact = [t for t in candidates if _radians(Decimal(t).scaleb(-digits), unit) == value]
        if exact or digits == max_digits:
            ticks = exact[0] if exact else nearest
            break
    top, rest = divmod(ticks, 3600 * 10**digits)
    minutes, rest = divmod(rest, 60 * 10**digits)
    whole, frac = divmod(rest, 10**digits)
    return f"{top:02d}{sep}{minutes:02d}{sep}{whole:02d}.{frac:0{digits}d}"


def _format_component(model: SkyModel, i: int, kind: str, polarised: bool) -> str:
    name = model.names[i]
    if not name or any(c in name for c in ",\n\r#'\"[]") or name != name.strip():
        raise ValueError(f"component name {name!r} cannot be written to a component list")
    # 1e-11 s of RA is 1.5e-10 arcsec; 1e-10 arcsec of Dec: round trips stay within 1e-9 arcsec
    ra = _sexagesimal(float(model.ra[i]) % (2 * math.pi), _SECOND, ":", 11)
    if ra.startswith("24"):  # rounded up to 24h
        ra = _sexagesimal(0.0, _SECOND, ":", 11)
    dec = _sexagesimal(abs(float(model.dec[i])), _ARCSEC, ".", 10)
    fields = [name, kind, ra, ("-" if math.copysign(1.0, model.dec[i]) < 0 else "") + dec]
    fields += [repr(float(v)) for v in model.stokes[i, : 4 if polarised else 1]]
    fields.append("[" + ",".join(repr(float(c)) for c in model.spectral_coeffs[i]) + "]")
    fields += [str(model.log_si).lower(), repr(float(model.ref_freq[i]))]
    major, minor, pa = (float(v) for v in model.shape[i])
    if model.is_gaussian[i]:
        fields += [repr(major / _ARCSEC), repr(minor / _ARCSEC), repr(math.degrees(pa))]
    else:
        fields += ["", "", ""]
    return ",".join(fields)


def write_skymodel(model: SkyModel, path: str | Path) -> None:
    """Write ``model`` as a component list that :func:`read_skymodel`, WSClean and DP3 read.

    Floats are written with ``repr`` (shortest exact form), RA to 1e-11 s and Dec to 1e-10
    arcsec, so a round trip is exact for fluxes and within 1e-9 arcsec for positions. Q, U, V
    columns appear only when some component is polarised.
    """
    polarised = bool(np.any(model.stokes[:, 1:] != 0))
    columns = ["Name", "Type", "Ra", "Dec", "I", *(["Q", "U", "V"] if polarised else [])]
    columns += ["SpectralIndex", "LogarithmicSI", "ReferenceFrequency"]
    columns += ["MajorAxis", "MinorAxis", "Orientation"]
    lines = ["Format = " + ", ".join(columns)]
    kinds = model.kind.tolist()
    lines += [_format_component(model, i, kinds[i], polarised) for i in range(len(model))]
    Path(path).write_text("\n".join(lines) + "\n")
