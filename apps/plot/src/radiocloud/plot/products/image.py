"""FITS images (rc-image's, or WSClean's RA, Dec, FREQ, STOKES cubes): the first plane on
RA/Dec axes (astropy's WCSAxes), a colour bar in the image's BUNIT, and the restoring beam
(BMAJ, BMIN, BPA) drawn to scale in the lower-left corner.

Stretch: asinh (matplotlib's AsinhNorm) from the 0.5th percentile to the peak, linear within
3 rms of zero and logarithmic beyond, so the noise, faint emission and a bright source all
show. The rms (in the title too) is 1.4826 times the median absolute deviation from the
median, so sources barely raise it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radiocloud.plot.products.common import new_figure, not_a, require_file, save

LINEAR_RMS = 3  # the stretch is linear within this many rms of zero
LOW_PERCENTILE = 0.5
MAD_TO_SIGMA = 1.4826  # a Gaussian's standard deviation over its median absolute deviation
WHAT = "FITS image"


@dataclass(frozen=True)
class Image:
    data: np.ndarray  # (ny, nx), the first plane
    wcs: object  # astropy.wcs.WCS of the two celestial axes
    header: object  # astropy.io.fits.Header
    freq: float | None  # Hz, of the first plane; None without a spectral axis


@dataclass(frozen=True)
class Beam:
    """The restoring beam in pixels: full widths along its major and minor axes, and the
    major axis's angle in degrees anticlockwise from +x (matplotlib's Ellipse)."""

    width: float
    height: float
    angle: float


def read_image(path: str) -> Image:
    """The first plane of the first image HDU of ``path``, with its celestial WCS."""
    require_file(path, WHAT)
    try:
        header, data = _first_image(path)
        wcs = _wcs(header, data.ndim)
    except (OSError, ValueError, TypeError, KeyError, MemoryError) as exc:
        raise not_a(path, WHAT, str(exc) or type(exc).__name__) from None
    if data.ndim < 2 or (wcs.wcs.lng, wcs.wcs.lat) != (0, 1):
        raise not_a(path, WHAT, "its first two axes must be RA and Dec (CTYPE1, CTYPE2)")
    freq = None
    if wcs.wcs.spec >= 0:
        freq = float(np.ravel(wcs.spectral.pixel_to_world_values(0))[0])
    return Image(data.reshape(-1, *data.shape[-2:])[0], wcs.celestial, header, freq)


def _first_image(path: str):
    """(header, data) of the first HDU holding an image."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdus:
        for hdu in hdus:
            if hdu.is_image and hdu.data is not None:
                return hdu.header.copy(), np.asarray(hdu.data, dtype=np.float64)
    raise ValueError("it holds no image data")


def _wcs(header, naxis: int):
    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():  # astropy fixes and reports old-style keywords
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header, naxis=naxis)


def beam_pixels(header, wcs) -> Beam | None:
    """The restoring beam of ``header`` (BMAJ, BMIN FWHM in degrees, BPA east of north) on
    the pixel grid of ``wcs`` (any pixel shape, rotation or axis flip); None without one."""
    try:
        bmaj, bmin, bpa = (float(header[k]) for k in ("BMAJ", "BMIN", "BPA"))
    except (KeyError, TypeError, ValueError):
        return None
    if not (bmaj > 0 and bmin > 0):
        return None
    pa = np.radians(bpa)
    major = np.array([np.sin(pa), np.cos(pa)])  # (east, north): intermediate world x, y
    minor = np.array([np.cos(pa), -np.sin(pa)])
    sky = (bmaj / 2) ** 2 * np.outer(major, major) + (bmin / 2) ** 2 * np.outer(minor, minor)
    to_pixels = np.linalg.inv(wcs.pixel_scale_matrix)  # pixels per degree
    eigvals, eigvecs = np.linalg.eigh(to_pixels @ sky @ to_pixels.T)  # ascending
    angle = np.degrees(np.arctan2(eigvecs[1, 1], eigvecs[0, 1])) % 180
    return Beam(2 * np.sqrt(eigvals[1]), 2 * np.sqrt(eigvals[0]), float(angle))


def image_stats(data: np.ndarray) -> tuple[float, float]:
    """(peak, rms) of the finite pixels; rms from the median absolute deviation."""
    finite = data[np.isfinite(data)]
    if not finite.size:
        return np.nan, np.nan
    return float(finite.max()), MAD_TO_SIGMA * float(np.median(np.abs(finite - np.median(finite))))


def plot_fits_image(path: str, output: str, *, size: tuple[int, int] = (800, 800)) -> list[str]:
    """Draw the first plane of the FITS image at ``path`` to ``output``."""
    return [save(draw_image(read_image(path), name=Path(path).name, size=size), output)]


def draw_image(image: Image, *, name: str, size: tuple[int, int]):
    """The figure: the plane on RA/Dec axes, its colour bar, the beam, and a title with the
    file ``name``, frequency, peak and rms."""
    from matplotlib.patches import Ellipse

    peak, rms = image_stats(image.data)
    unit = _unit(str(image.header.get("BUNIT", "")))
    fig = new_figure(size)
    ax = fig.add_subplot(projection=image.wcs)
    norm = _norm(image.data, peak, rms)
    shown = ax.imshow(image.data, origin="lower", cmap="inferno", norm=norm, interpolation="none")
    fig.colorbar(shown, ax=ax, label=unit or "pixel value (no BUNIT)", shrink=0.8)
    ax.coords[0].set_axislabel("Right ascension (J2000)")
    ax.coords[1].set_axislabel("Declination (J2000)")
    beam = beam_pixels(image.header, image.wcs)
    if beam is not None:
        centre = _corner(beam, image.data.shape)
        ellipse = Ellipse(centre, beam.width, beam.height, angle=beam.angle, facecolor="white",
                          edgecolor="black", alpha=0.8)  # fmt: skip
        ax.add_patch(ellipse)
    ax.set_title(_title(name, image.freq, peak, rms, unit, beam is not None), fontsize="medium")
    return fig


def _norm(data: np.ndarray, peak: float, rms: float):
    """The asinh stretch: linear within LINEAR_RMS rms of zero (1 % of the range for an image
    without noise, such as a model), from the 0.5th percentile to the peak."""
    from matplotlib.colors import AsinhNorm

    low = float(np.nanpercentile(data, LOW_PERCENTILE)) if np.isfinite(peak) else 0.0
    high = peak if np.isfinite(peak) and peak > low else low + 1
    linear = LINEAR_RMS * rms if rms > 0 else 0.01 * (high - low)
    return AsinhNorm(linear_width=linear, vmin=low, vmax=high, clip=True)


def _corner(beam: Beam, shape: tuple[int, int]) -> tuple[float, float]:
    """Pixel centre of the beam, inset from the lower-left corner by a few per cent."""
    a, b, phi = beam.width / 2, beam.height / 2, np.radians(beam.angle)
    half_x = np.hypot(a * np.cos(phi), b * np.sin(phi))
    half_y = np.hypot(a * np.sin(phi), b * np.cos(phi))
    pad = max(2.0, 0.03 * min(shape))
    return -0.5 + pad + half_x, -0.5 + pad + half_y


def _title(name, freq, peak, rms, unit, has_beam) -> str:
    """Lines: the file and frequency; peak and rms; a missing beam."""
    stats = f"peak {_value(peak, unit)}, rms {_value(rms, unit)}"
    lines = [name if freq is None else f"{name}   {freq / 1e9:.4g} GHz"]
    lines.append(stats if np.isfinite(peak) else "no finite pixels")
    if not has_beam:
        lines.append("no beam in the header (BMAJ, BMIN, BPA)")
    return "\n".join(lines)


def _unit(bunit: str) -> str:
    """BUNIT as people write it: JY/BEAM -> Jy/beam."""
    words = {"jy": "Jy", "beam": "beam", "pixel": "pixel", "k": "K"}
    return re.sub(r"[A-Za-z]+", lambda m: words.get(m[0].lower(), m[0]), bunit.strip())


def _value(v: float, unit: str) -> str:
    """A value in Jy (per beam or pixel) with the prefix that keeps it readable."""
    if not unit.startswith("Jy"):
        return f"{v:.3g} {unit}".strip()
    if abs(v) >= 1:
        return f"{v:.3g} {unit}"
    if abs(v) >= 1e-3:
        return f"{v * 1e3:.3g} m{unit}"
    return f"{v * 1e6:.3g} µ{unit}"
