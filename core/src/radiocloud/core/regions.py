"""DS9 region files in celestial coordinates: which sky positions lie inside.

Reads the shapes astronomers draw around sources to keep or to leave out: ``circle``,
``ellipse``, ``box`` and ``polygon`` in ``fk5``/``icrs``/``j2000`` coordinates, centres in
degrees or sexagesimal (``16:15:03.8``, ``-60:54:26``), sizes in degrees or with the DS9 unit
marks (``30"``, ``2'``, ``0.5d``). A shape prefixed with ``-`` excludes. A position is
selected when it lies inside at least one including shape (or when every shape excludes) and
inside no excluding shape. Shapes are tested in the tangent plane at their own centre, which
is exact for circles and accurate for shapes a few degrees across.

Pixel coordinates (``image``, ``physical``) cannot be placed on the sky without the image
they were drawn on, and are refused, as are other shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radiocloud.core.errors import OptionError

_SKY_SYSTEMS = {"fk5", "icrs", "j2000"}
_PIXEL_SYSTEMS = {"image", "physical", "linear", "amplifier", "detector"}
_SHAPES = {"circle": 3, "ellipse": 5, "box": 5, "polygon": None}  # number of parameters
_SHAPE_LINE = re.compile(r"^\s*(-?)\s*(\w+)\s*\((.*)\)")
_SIZE_UNITS = {'"': 1 / 3600, "'": 1 / 60, "d": 1.0, "r": 180 / np.pi}


@dataclass(frozen=True)
class Shape:
    kind: str
    centre: tuple[float, float]  # RA, Dec radians
    params: tuple[float, ...]  # radians: circle (r); ellipse/box (a, b, angle); polygon (l, m...)
    exclude: bool = False

    def contains(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        x, y, front = _tangent(ra, dec, *self.centre)
        if self.kind == "circle":
            inside = x**2 + y**2 <= np.tan(self.params[0]) ** 2
        elif self.kind in ("ellipse", "box"):
            # DS9 angles run from the +x (West on the sky, -l) axis counter-clockwise (North).
            a, b, angle = self.params
            along = -x * np.cos(angle) + y * np.sin(angle)
            across = x * np.sin(angle) + y * np.cos(angle)
            if self.kind == "ellipse":
                inside = (along / a) ** 2 + (across / b) ** 2 <= 1.0
            else:
                inside = (np.abs(along) <= a / 2) & (np.abs(across) <= b / 2)
        else:
            inside = _in_polygon(x, y, np.asarray(self.params).reshape(-1, 2))
        return inside & front


@dataclass(frozen=True)
class Regions:
    shapes: tuple[Shape, ...]
    source: str = ""

    def contains(self, ra, dec) -> np.ndarray:
        """Boolean mask of the positions (radians) the regions select."""
        ra, dec = np.asarray(ra, float), np.asarray(dec, float)
        include = [s for s in self.shapes if not s.exclude]
        keep = np.zeros(ra.shape, bool) if include else np.ones(ra.shape, bool)
        for shape in include:
            keep |= shape.contains(ra, dec)
        for shape in self.shapes:
            if shape.exclude:
                keep &= ~shape.contains(ra, dec)
        return keep


def read_regions(path: str | Path) -> Regions:
    """The shapes of a DS9 region file; a line that cannot be used is an OptionError naming
    the file, line and reason."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise OptionError(f"region file '{path}' cannot be read: {exc.strerror}") from None
    system, shapes = None, []
    for number, raw in enumerate(lines, start=1):
        for part in raw.split(";"):
            line = part.split("#", 1)[0].strip()
            where = f"{path}:{number}"
            if not line or line.startswith("global"):
                continue
            if line.lower() in _SKY_SYSTEMS | _PIXEL_SYSTEMS:
                system = line.lower()
                continue
            shapes.append(_shape(line, system, where))
    if not shapes:
        raise OptionError(f"region file '{path}' holds no shapes: draw one in fk5 coordinates")
    return Regions(tuple(shapes), str(path))


def _shape(line: str, system: str | None, where: str) -> Shape:
    match = _SHAPE_LINE.match(line)
    if not match:
        raise OptionError(f"{where}: cannot read '{line}': expected e.g. circle(ra,dec,radius)")
    exclude, kind, args = match.group(1) == "-", match.group(2).lower(), match.group(3)
    if system in _PIXEL_SYSTEMS:
        raise OptionError(
            f"{where}: '{system}' coordinates are pixels; save the regions in fk5 from DS9"
        )
    if system is None:
        raise OptionError(f"{where}: no coordinate system before the shape; add a line 'fk5'")
    if kind not in _SHAPES:
        raise OptionError(f"{where}: shape '{kind}' is not supported: use {', '.join(_SHAPES)}")
    values = [v.strip() for v in args.split(",")]
    expected = _SHAPES[kind]
    if (expected and len(values) != expected) or (
        kind == "polygon" and (len(values) < 6 or len(values) % 2)
    ):
        raise OptionError(f"{where}: {kind} takes {expected or 'three or more RA,Dec pairs'} "
                          f"values, got {len(values)}")  # fmt: skip
    try:
        if kind == "polygon":
            pairs = [_position(values[i], values[i + 1]) for i in range(0, len(values), 2)]
            centre = _mean_direction(pairs)
            x, y, _ = _tangent(*np.array(pairs).T, *centre)
            params = tuple(np.column_stack([x, y]).ravel())
        else:
            centre = _position(values[0], values[1])
            params = tuple(_size(v) for v in values[2:])
            if kind != "circle":
                params = (params[0], params[1], np.radians(float(values[4])))
    except ValueError as exc:
        raise OptionError(f"{where}: {exc}") from None
    return Shape(kind, centre, params, exclude)


def _position(ra: str, dec: str) -> tuple[float, float]:
    if ":" in ra or "h" in ra:
        from astropy.coordinates import Angle

        return float(Angle(ra, unit="hourangle").rad), float(Angle(dec, unit="deg").rad)
    try:
        return float(np.radians(float(ra))), float(np.radians(float(dec)))
    except ValueError:
        raise ValueError(f"cannot read the position '{ra},{dec}'") from None


def _size(text: str) -> float:
    unit = _SIZE_UNITS.get(text[-1:]) if text else None
    try:
        value = float(text[:-1] if unit else text)
    except ValueError:
        raise ValueError(f"cannot read the size '{text}' (e.g. 30\", 2', 0.5d)") from None
    return float(np.radians(value * (unit or 1.0)))


def _tangent(ra, dec, ra0, dec0):
    """Gnomonic projection about (ra0, dec0): (x, y) with x to the East, and whether the
    position is on the front hemisphere."""
    cos_c = np.sin(dec0) * np.sin(dec) + np.cos(dec0) * np.cos(dec) * np.cos(ra - ra0)
    safe = np.where(cos_c > 0, cos_c, 1.0)
    x = np.cos(dec) * np.sin(ra - ra0) / safe
    y = (np.cos(dec0) * np.sin(dec) - np.sin(dec0) * np.cos(dec) * np.cos(ra - ra0)) / safe
    return x, y, cos_c > 0


def _mean_direction(pairs) -> tuple[float, float]:
    ra, dec = np.array(pairs).T
    vec = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)]).sum(axis=1)
    return float(np.arctan2(vec[1], vec[0])), float(np.arcsin(vec[2] / np.linalg.norm(vec)))


def _in_polygon(x, y, vertices) -> np.ndarray:
    """Even-odd rule: a horizontal ray from (x, y) crosses the polygon's edges an odd number
    of times when the point is inside."""
    inside = np.zeros(np.shape(x), bool)
    for (x1, y1), (x2, y2) in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        spans = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= spans & (x < crossing)
    return inside
