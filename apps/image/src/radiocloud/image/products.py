"""rc-image's products: the restoring beam, restored images, FITS planes and component lists.

Pixel geometry is WSClean's, the same as :mod:`radiocloud.core.fitsmodel` reads and
:mod:`radiocloud.core.kernels.image.gridding` grids: an image ``(ny, nx)`` in FITS order
``[j, i]``, square cells of ``cell`` radians, its reference pixel (the phase centre, CRVAL) at
0-based ``(nx // 2, ny // 2)``, i.e. CRPIX = n // 2 + 1, which is WSClean's ``n / 2 + 1`` for
the even sizes both imagers use. Column ``i`` lies at ``l = -(i - nx // 2) cell`` (East is to
the left: CDELT1 = -cell < 0) and row ``j`` at ``m = (j - ny // 2) cell`` (North up).

Beams are FWHM ellipses, BPA the position angle of the major axis from North through East
(FITS/AIPS), so a beam of BPA +30 deg leans up and to the left in an image with CDELT1 < 0.

Every file is written to a temporary name beside its path, flushed to disk and renamed over
it: an interrupted run leaves either the old file or the complete new one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np

from radiocloud.core.errors import BadInputError, OptionError, OutputNotWritableError

log = logging.getLogger("radiocloud.image")

FOUR_LN2 = 4.0 * math.log(2.0)  # a Gaussian of FWHM F is exp(-4 ln 2 r² / F²)
LOBE_LEVEL = 0.35  # the PSF's main lobe: its connected pixels above this fraction of the peak
KERNEL_REACH = 3.2  # restoring kernel cut at 3.2 FWHM from its centre, where it is below 1e-12
BUNITS = ("JY/BEAM", "JY/PIXEL")
_STOKES_CODES = {"I": 1, "Q": 2, "U": 3, "V": 4}  # FITS STOKES axis (Greisen & Calabretta)
_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}")  # a FITS keyword name (standard 4.0, section 4.1.2.1)
_SECOND = math.pi / 43200.0  # radians in a second of time
_ARCSEC = math.pi / 648000.0  # radians in a second of arc


@dataclass(frozen=True)
class Beam:
    """An elliptical Gaussian beam: FWHM axes ``bmaj_rad`` >= ``bmin_rad`` > 0, position
    angle ``bpa_deg`` of the major axis North through East, kept in (-90, 90]. ``fitted`` is
    False for :func:`fit_beam`'s circular fallback, when no Gaussian fits the PSF."""

    bmaj_rad: float
    bmin_rad: float
    bpa_deg: float
    fitted: bool = True

    def __post_init__(self) -> None:
        bmaj, bmin, bpa = float(self.bmaj_rad), float(self.bmin_rad), float(self.bpa_deg)
        if not (math.isfinite(bmaj) and math.isfinite(bpa) and bmaj >= bmin > 0):
            raise OptionError(f"beam {bmaj} x {bmin} rad, PA {bpa} deg: give major >= minor > 0")
        object.__setattr__(self, "bmaj_rad", bmaj)
        object.__setattr__(self, "bmin_rad", bmin)
        object.__setattr__(self, "bpa_deg", 90.0 - (90.0 - bpa) % 180.0)

    @property
    def area_sr(self) -> float:
        """Solid angle of the beam, π bmaj bmin / (4 ln 2): Jy/beam times this is Jy/sr."""
        return math.pi * self.bmaj_rad * self.bmin_rad / FOUR_LN2

    def quadratic(self, cell_rad: float) -> np.ndarray:
        """(2, 2) matrix Q with the beam exp(-rᵀ Q r), r = (East, North) offset in pixels."""
        pa = math.radians(self.bpa_deg)
        major = np.array([math.sin(pa), math.cos(pa)])
        minor = np.array([math.cos(pa), -math.sin(pa)])
        along = np.outer(major, major) * (cell_rad / self.bmaj_rad) ** 2
        across = np.outer(minor, minor) * (cell_rad / self.bmin_rad) ** 2
        return FOUR_LN2 * (along + across)


def reference_pixel(shape: tuple[int, ...]) -> tuple[int, int]:
    """0-based (i, j) of an image's reference pixel (the phase centre): (nx // 2, ny // 2)."""
    ny, nx = shape[-2:]
    return nx // 2, ny // 2


def _offsets(shape: tuple[int, int], centre: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(East (1, nx), North (ny, 1)) offsets of each pixel from ``centre`` (i, j), in pixels."""
    ny, nx = shape
    return -(np.arange(nx) - centre[0])[None, :], (np.arange(ny) - centre[1])[:, None]


def _gaussian(q: np.ndarray, east: np.ndarray, north: np.ndarray) -> np.ndarray:
    return np.exp(-(q[0, 0] * east**2 + 2.0 * q[0, 1] * east * north + q[1, 1] * north**2))


# --- the restoring beam -------------------------------------------------------------------------


def fit_beam(psf: np.ndarray, cell_rad: float) -> Beam:
    """The elliptical Gaussian of peak 1 that best fits, in least squares, the main lobe of
    ``psf`` (ny, nx), peak-normalised at (ny // 2, nx // 2): its connected pixels above 35% of
    the peak (CASA's choice), so sidelobes do not widen the beam.

    The fit is linear in log(psf) for a start (exact for a Gaussian PSF), then refined by
    nonlinear least squares on the PSF's values, which weighs the lobe's bright core as a
    restored source sees it rather than its log-amplified skirts. Where that fails (a lobe of
    fewer than three independent pixels, a ridge, a fit no narrower than the image) the beam
    is the circle of the main lobe's area above 35% (``fitted=False``), and a warning says so.
    """
    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim != 2 or not cell_rad > 0:
        raise OptionError(f"fit_beam needs a 2-D PSF and a positive cell, got {psf.shape}")
    centre = reference_pixel(psf.shape)
    peak = psf[centre[1], centre[0]]
    if not (math.isfinite(peak) and peak > 0):
        raise BadInputError(
            f"the PSF is {peak} at its centre, so no beam can be fitted; check that some "
            "visibilities are unflagged and have non-zero weight"
        )
    east, north, values = _main_lobe(psf / peak, centre)
    q, reason = _fit_quadratic(east, north, values)
    if q is not None:
        beam = _beam_from_quadratic(q, cell_rad)
        if beam.bmaj_rad < max(psf.shape) * cell_rad:
            return beam
        reason = "its fitted major axis is wider than the image"
    fwhm = math.sqrt(FOUR_LN2 * values.size / (math.pi * math.log(1.0 / LOBE_LEVEL))) * cell_rad
    log.warning(
        "the PSF's main lobe cannot be fitted with a Gaussian (%s): restoring with a circular "
        "beam of the same area, FWHM %.4g arcsec",
        reason,
        fwhm / _ARCSEC,
    )
    return Beam(fwhm, fwhm, 0.0, fitted=False)


def _main_lobe(psf: np.ndarray, centre: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """East and North offsets (pixels) and values of the connected pixels above
    LOBE_LEVEL around ``centre``, searched in a window that doubles until it holds them."""
    from scipy import ndimage

    (i0, j0), half = centre, 8
    while True:
        rows = slice(max(j0 - half, 0), j0 + half + 1)
        cols = slice(max(i0 - half, 0), i0 + half + 1)
        window = psf[rows, cols]
        labels, _ = ndimage.label(window >= LOBE_LEVEL, structure=np.ones((3, 3)))
        lobe = labels == labels[j0 - rows.start, i0 - cols.start]
        edges = lobe[0].any() or lobe[-1].any() or lobe[:, 0].any() or lobe[:, -1].any()
        if not edges or window.shape == psf.shape:
            break
        half *= 2
    offsets = _offsets(window.shape, (i0 - cols.start, j0 - rows.start))
    east, north = (np.broadcast_to(o, lobe.shape)[lobe].astype(float) for o in offsets)
    return east, north, window[lobe]


def _fit_quadratic(east, north, values) -> tuple[np.ndarray | None, str]:
    """Q of the Gaussian exp(-rᵀ Q r) fitted to ``values`` at (east, north), or (None, why)."""
    from scipy.optimize import least_squares

    design = np.stack([east**2, 2.0 * east * north, north**2], axis=1)
    start, _, rank, _ = np.linalg.lstsq(design, -np.log(values), rcond=None)
    if rank < 3:
        return None, f"its {values.size} pixels do not span an ellipse"

    def residual(p):
        return np.exp(-design @ p) - values

    def jacobian(p):
        return -design * np.exp(-design @ p)[:, None]

    fit = least_squares(residual, start, jac=jacobian, x_scale="jac")
    a, b, c = fit.x
    q = np.array([[a, b], [b, c]])
    if not (fit.success and np.all(np.isfinite(q)) and a > 0 and a * c - b * b > 0):
        return None, "the least-squares fit does not converge to an ellipse"
    return q, ""


def _beam_from_quadratic(q: np.ndarray, cell_rad: float) -> Beam:
    """The Beam of exp(-rᵀ Q r): the smaller eigenvalue of Q belongs to the major axis."""
    (low, high), vectors = np.linalg.eigh(q)
    east, north = vectors[:, 0]
    bpa = math.degrees(math.atan2(east, north))
    return Beam(math.sqrt(FOUR_LN2 / low) * cell_rad, math.sqrt(FOUR_LN2 / high) * cell_rad, bpa)


def restore(model: np.ndarray, residual: np.ndarray, beam: Beam, cell_rad: float) -> np.ndarray:
    """Restored image (ny, nx) Jy/beam: ``model`` (ny, nx, Jy/pixel) convolved with ``beam``
    at peak 1 (so a point of S Jy peaks at S Jy/beam), plus ``residual`` (ny, nx, Jy/beam).

    The convolution is an FFT one, zero-padded (no wrap-around), with the beam sampled on the
    pixel grid out to KERNEL_REACH FWHM.
    """
    from scipy.signal import fftconvolve

    model = np.asarray(model, dtype=np.float64)
    residual = np.asarray(residual, dtype=np.float64)
    if model.ndim != 2 or model.shape != residual.shape:
        raise OptionError(f"restore: model {model.shape} and residual {residual.shape} differ")
    if not np.any(model):
        return residual.copy()
    reach = math.ceil(KERNEL_REACH * beam.bmaj_rad / cell_rad)
    ny, nx = model.shape
    half_i, half_j = min(reach, nx - 1), min(reach, ny - 1)
    east, north = _offsets((2 * half_j + 1, 2 * half_i + 1), (half_i, half_j))
    kernel = _gaussian(beam.quadratic(cell_rad), east, north)  # odd-sized, peak 1 at its centre
    return fftconvolve(model, kernel, mode="same") + residual


# --- FITS images ---------------------------------------------------------------------------------


def write_image(
    path: str | os.PathLike,
    planes: np.ndarray,
    *,
    ra0: float,
    dec0: float,
    cell_rad: float,
    freqs: Sequence[float],
    widths: Sequence[float],
    beam: Beam | None = None,
    bunit: str = "JY/BEAM",
    stokes: str = "I",
    date_obs: str | None = None,
    history: Iterable[str] = (),
    keywords: Mapping[str, str | int | float | bool] | None = None,
    dtype: type = np.float32,
) -> str:
    """Write ``planes`` (nplane, ny, nx) as one FITS image with WSClean's axes RA---SIN,
    DEC--SIN, FREQ (nplane), STOKES (1) and return ``path``.

    ``ra0``, ``dec0`` radians at the reference pixel (module docstring); ``freqs`` (nplane,)
    Hz at the planes' centres, ``widths`` (nplane,) Hz. One plane records its width as
    CDELT3, as WSClean does; several must be contiguous and evenly spaced (one CDELT3), else
    write one file per plane with :func:`write_plane`. ``beam`` gives BMAJ, BMIN, BPA
    (degrees); ``keywords`` adds cards (e.g. WSClean's WSCNITER), ``history`` HISTORY lines.
    """
    planes = np.asarray(planes)
    if planes.ndim != 3 or 0 in planes.shape:
        raise OptionError(f"write_image needs planes of shape (nplane, ny, nx), got {planes.shape}")
    header = _header(planes.shape, ra0, dec0, cell_rad, freqs, widths, stokes)
    if bunit.upper() not in BUNITS:
        raise OptionError(f"BUNIT '{bunit}': give one of {', '.join(BUNITS)}")
    header["BUNIT"] = bunit.upper()
    if beam is not None:
        header["BMAJ"] = (math.degrees(beam.bmaj_rad), "[deg] restoring beam FWHM, major axis")
        header["BMIN"] = (math.degrees(beam.bmin_rad), "[deg] restoring beam FWHM, minor axis")
        header["BPA"] = (beam.bpa_deg, "[deg] PA of BMAJ, North through East")
    header["BTYPE"] = "Intensity"
    header["ORIGIN"] = "radiocloud rc-image"
    if date_obs is not None:
        header["DATE-OBS"], header["MJD-OBS"] = date_obs, _mjd(date_obs)
    _add_cards(header, keywords or {}, history)
    from astropy.io import fits

    hdu = fits.PrimaryHDU(data=planes[None].astype(dtype, copy=False), header=header)
    return _replace(path, lambda out: hdu.writeto(out, output_verify="exception"))


def write_plane(path: str | os.PathLike, plane: np.ndarray, *, freq: float, width: float,
                **options) -> str:  # fmt: skip
    """Write one plane (ny, nx) at ``freq`` Hz, ``width`` Hz wide, as WSClean writes each
    output channel (NAXIS3 = NAXIS4 = 1); ``options`` as for :func:`write_image`."""
    plane = np.asarray(plane)
    if plane.ndim != 2:
        raise OptionError(f"write_plane needs one plane (ny, nx), got shape {plane.shape}")
    return write_image(path, plane[None], freqs=[freq], widths=[width], **options)


def _header(shape, ra0, dec0, cell_rad, freqs, widths, stokes):
    """The WCS cards: SIN axes about (ra0, dec0), FREQ, STOKES (see the module docstring)."""
    from astropy.io import fits

    nplane, ny, nx = shape
    freqs, widths = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (freqs, widths))
    if freqs.shape != (nplane,) or widths.shape != (nplane,):
        raise OptionError(f"{nplane} planes need {nplane} frequencies and widths")
    if not (np.all(np.isfinite(freqs)) and np.all(freqs > 0) and np.all(widths > 0)):
        raise OptionError(f"frequencies {freqs} and widths {widths} Hz must be positive")
    step = widths[0]
    if nplane > 1:
        step = (freqs[-1] - freqs[0]) / (nplane - 1)
        if not (np.allclose(np.diff(freqs), step, rtol=1e-9) and np.allclose(widths, step)):
            raise OptionError(
                "planes at uneven frequencies, or narrower than their spacing, cannot share one "
                "FITS FREQ axis; write one file per plane (write_plane)"
            )
    if not (math.isfinite(ra0) and abs(dec0) <= math.pi / 2 and 0 < cell_rad < 0.1):
        raise OptionError(f"image centre ({ra0}, {dec0}) or cell {cell_rad} rad out of range")
    if stokes.upper() not in _STOKES_CODES:
        raise OptionError(f"Stokes '{stokes}': give one of I, Q, U, V")
    i0, j0 = reference_pixel((ny, nx))
    axes = (  # CTYPE, CRPIX, CRVAL, CDELT, CUNIT
        ("RA---SIN", i0 + 1, math.degrees(ra0) % 360.0, -math.degrees(cell_rad), "deg"),
        ("DEC--SIN", j0 + 1, math.degrees(dec0), math.degrees(cell_rad), "deg"),
        ("FREQ", 1, freqs[0], step, "Hz"),
        ("STOKES", 1, _STOKES_CODES[stokes.upper()], 1, ""),
    )
    header = fits.Header()
    for k, (ctype, crpix, crval, cdelt, cunit) in enumerate(axes, start=1):
        header[f"CTYPE{k}"] = ctype
        header[f"CRPIX{k}"] = float(crpix)
        header[f"CRVAL{k}"] = float(crval)
        header[f"CDELT{k}"] = float(cdelt)
        header[f"CUNIT{k}"] = cunit
    header["RADESYS"] = "FK5"
    header["EQUINOX"] = 2000.0
    header["SPECSYS"] = "TOPOCENT"  # WSClean's: frequencies as observed
    header["RESTFRQ"] = (float(freqs[0]), "[Hz] continuum: the reference frequency (CASA)")
    return header


def _mjd(date_obs: str) -> float:
    """MJD of an ISO-8601 UTC time (FITS DATE-OBS), which wcslib would otherwise derive."""
    from astropy.time import Time

    try:
        return float(Time(date_obs, format="isot", scale="utc").mjd)
    except ValueError:
        raise OptionError(f"DATE-OBS '{date_obs}': write it as 2024-03-01T12:00:00.0") from None


def _add_cards(header, keywords: Mapping, history: Iterable[str]) -> None:
    for key, value in keywords.items():
        name = str(key).upper()
        if not _KEYWORD.fullmatch(name) or name in header or name in ("HISTORY", "COMMENT"):
            raise OptionError(f"FITS keyword '{key}' is not a free 8-character keyword name")
        try:
            header[name] = value
        except (ValueError, TypeError) as error:
            raise OptionError(f"FITS keyword {name} = {value!r}: {error}") from None
    for line in history:
        if not str(line).isascii() or not str(line).isprintable():
            raise OptionError(f"HISTORY line {line!r}: FITS takes printable ASCII only")
        header.add_history(str(line))


# --- component lists -----------------------------------------------------------------------------


class Component(NamedTuple):
    """A CLEAN component: ``ra``, ``dec`` radians, ``flux`` Stokes I Jy at the reference
    frequency, ``terms`` WSClean's ordinary polynomial (LogarithmicSI=false) coefficients
    c₀, c₁, ...: I(ν) = flux + c₀ (ν/ν₀ - 1) + c₁ (ν/ν₀ - 1)² + ..."""

    ra: float
    dec: float
    flux: float
    terms: Sequence[float] = ()


def write_components(
    path: str | os.PathLike, components: Iterable[Component | tuple], *, ref_freq: float
) -> str:
    """Write ``components`` (Component or (ra, dec, flux, terms) tuples) as WSClean writes
    ``-save-source-list`` with ``-fit-spectral-pol``: point components named s0c0, s0c1, ...,
    RA hh:mm:ss to 1e-7 s, Dec dd.mm.ss to 1e-6 arcsec, numbers in their shortest exact form
    (a round trip is exact but for positions, within 1e-6 arcsec); return ``path``."""
    if not (math.isfinite(ref_freq) and ref_freq > 0):
        raise OptionError(f"reference frequency {ref_freq} Hz must be positive")
    freq = repr(float(ref_freq))
    lines = [
        "Format = Name, Type, Ra, Dec, I, SpectralIndex, LogarithmicSI, "
        f"ReferenceFrequency='{freq}', MajorAxis, MinorAxis, Orientation"
    ]
    for k, given in enumerate(components):
        ra, dec, flux, terms = Component(*given)
        numbers = [float(v) for v in (ra, dec, flux, *terms)]
        if not all(math.isfinite(v) for v in numbers) or abs(dec) > math.pi / 2:
            raise OptionError(f"component {k} {tuple(given)} is not finite, or not on the sky")
        spectrum = "[" + ",".join(repr(c) for c in numbers[3:]) + "]"
        position = f"{_ra_text(ra)},{_dec_text(dec)}"
        lines.append(f"s0c{k},POINT,{position},{numbers[2]!r},{spectrum},false,{freq},,,")
    return _replace(path, lambda out: out.write("\n".join(lines).encode("ascii") + b"\n"))


def _sexagesimal(ticks: int, decimals: int, sep: str) -> str:
    """``ticks`` units of 10**-decimals seconds as dd<sep>mm<sep>ss.sss..."""
    whole, frac = divmod(ticks, 10**decimals)
    minutes, secs = divmod(whole, 60)
    top, minutes = divmod(minutes, 60)
    return f"{top:02d}{sep}{minutes:02d}{sep}{secs:02d}.{frac:0{decimals}d}"


def _ra_text(ra: float) -> str:
    """hh:mm:ss.sssssss, 24h rounding up to 00h."""
    ticks = round((ra % (2 * math.pi)) / _SECOND * 1e7)
    return _sexagesimal(ticks % (86400 * 10**7), 7, ":")


def _dec_text(dec: float) -> str:
    """[-]dd.mm.ss.ssssss, as WSClean writes Dec."""
    return ("-" if dec < 0 else "") + _sexagesimal(round(abs(dec) / _ARCSEC * 1e6), 6, ".")


def pixel_to_radec(i, j, *, ra0: float, dec0: float, cell_rad: float,
                   shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(RA, Dec) radians of pixel column ``i`` and row ``j`` (0-based, any broadcastable
    arrays) of an image ``shape`` (ny, nx) about (``ra0``, ``dec0``): the inverse SIN
    projection of l = -(i - nx // 2) cell, m = (j - ny // 2) cell; RA in [0, 2π), NaN for
    pixels beyond the horizon (l² + m² > 1)."""
    i0, j0 = reference_pixel(shape)
    l_ = -(np.asarray(i, dtype=np.float64) - i0) * cell_rad
    m_ = (np.asarray(j, dtype=np.float64) - j0) * cell_rad
    with np.errstate(invalid="ignore"):
        n_ = np.sqrt(1.0 - l_**2 - m_**2)
        dec = np.arcsin(m_ * math.cos(dec0) + n_ * math.sin(dec0))
    ra = (ra0 + np.arctan2(l_, n_ * math.cos(dec0) - m_ * math.sin(dec0))) % (2 * math.pi)
    return ra, dec


# --- atomic writes -------------------------------------------------------------------------------


def _replace(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> str:
    """Call ``write`` on a temporary file beside ``path``, sync it to disk and rename it over
    ``path``; on any failure the temporary file is removed and ``path`` is left untouched."""
    out = Path(path)
    part = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(part, out)
    except OSError as error:
        culprit = error.filename if error.filename not in (None, str(part), str(out)) else None
        why = f"{error.strerror or error}" + (f" ('{culprit}')" if culprit else "")
        raise OutputNotWritableError(f"cannot write '{out}': {why}") from None
    finally:
        with contextlib.suppress(OSError):
            part.unlink(missing_ok=True)
    return str(path)
