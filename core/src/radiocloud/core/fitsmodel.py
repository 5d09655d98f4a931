"""FITS model images (WSClean's ``-model.fits``, rc-image's models): read, write, evaluate.

A model image holds component fluxes, Jy per pixel (WSClean's ``BUNIT = 'JY/PIXEL'``), on a
SIN-projected grid, one plane or a cube over frequency, with one or more Stokes parameters.

Geometry: pixel column ``i`` (FITS axis RA, 0-based) and row ``j`` (axis Dec) sit at the
direction cosines ``x = (i - ref_x) cell_l``, ``y = (j - ref_y) cell_m`` from the image's
reference direction (CRVAL), ``ref_x = CRPIX1 - 1`` and ``ref_y = CRPIX2 - 1``. ``x`` grows to
the East and ``y`` to the North (a SIN projection's intermediate world coordinates are exactly
the direction cosines l, m about its reference), so ``cell_l`` is negative in the usual
orientation, CDELT1 < 0, RA growing to the left. About a phase centre, a pixel sits at
``(l0 + x, m0 + y)`` where ``(l0, m0)`` is the SIN projection of the reference direction
(:meth:`ImageModel.reference_lm`): the image is a plane shifted within the phase centre's tangent
plane, as WSClean's ``-shift`` images and ducc0's ``center_x``/``center_y`` are. That is exact
when the reference direction is the phase centre; an image projected about another direction
is shifted, not reprojected, which moves a pixel ``r`` radians from its reference by about
``|(l0, m0)| r``.

Spectrum: one plane is flat in frequency. A cube is interpolated linearly in frequency between
its planes, and takes its nearest plane's flux outside their range
(:meth:`ImageModel.spectral_weights`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radiocloud.core.errors import SkyModelError

STOKES = ("I", "Q", "U", "V")
_FITS_STOKES = {1: "I", 2: "Q", 3: "U", 4: "V"}  # FITS STOKES axis codes (Greisen & Calabretta)
_CORR_CODES = {-1: "RR", -2: "LL", -3: "RL", -4: "LR", -5: "XX", -6: "YY", -7: "XY", -8: "YX"}
_DIAGONAL_RTOL = 1e-10  # off-diagonal PC/CD terms below this fraction of the scale are zero


@dataclass(frozen=True, eq=False)
class ImageModel:
    """A model image: fluxes in Jy per pixel on a SIN grid, see the module docstring.

    ``image`` (plane, stokes, ny, nx) float64, read-only, in FITS order within a plane: ``[...,
    j, i]`` is pixel column ``i`` (RA axis) of row ``j`` (Dec axis). ``stokes`` names its second
    axis, a subset of I, Q, U, V in that order; the Stokes parameters it leaves out are zero.
    ``freqs`` (plane,) Hz, strictly increasing. ``ra0``, ``dec0`` the reference direction,
    radians. ``cell_l``, ``cell_m`` signed pixel steps of ``l`` along ``i`` and ``m`` along
    ``j``, radians. ``ref_x``, ``ref_y`` the 0-based pixel of the reference direction.
    """

    image: np.ndarray
    freqs: np.ndarray
    ra0: float
    dec0: float
    cell_l: float
    cell_m: float
    ref_x: float
    ref_y: float
    stokes: tuple[str, ...] = STOKES

    def __post_init__(self) -> None:
        image = np.array(self.image, dtype=np.float64)
        freqs = np.array(self.freqs, dtype=np.float64).reshape(-1)
        stokes = tuple(str(s).upper() for s in self.stokes)
        if stokes != tuple(s for s in STOKES if s in stokes) or not stokes:
            raise ValueError(f"ImageModel.stokes must be a subset of I, Q, U, V in order: {stokes}")
        if image.ndim != 4 or image.shape[:2] != (freqs.shape[0], len(stokes)):
            raise ValueError(
                f"ImageModel.image must have shape (plane={freqs.shape[0]}, "
                f"stokes={len(stokes)}, ny, nx), got {image.shape}"
            )
        if not np.all(np.isfinite(image)):
            raise ValueError("ImageModel.image holds NaN or infinite pixels")
        if not (np.all(np.isfinite(freqs)) and np.all(freqs > 0) and np.all(np.diff(freqs) > 0)):
            raise ValueError(f"ImageModel.freqs must be positive and increasing, got {freqs}")
        scalars = ("ra0", "dec0", "cell_l", "cell_m", "ref_x", "ref_y")
        for name in scalars:
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ValueError(f"ImageModel.{name} must be finite, got {value}")
            object.__setattr__(self, name, value)
        if self.cell_l == 0.0 or self.cell_m == 0.0:
            raise ValueError("ImageModel.cell_l and cell_m must be non-zero")
        for array in (image, freqs):
            array.setflags(write=False)
        object.__setattr__(self, "image", image)
        object.__setattr__(self, "freqs", freqs)
        object.__setattr__(self, "stokes", stokes)

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx) pixels of one plane."""
        return self.image.shape[2], self.image.shape[3]

    def spectral_weights(self, frequency: np.ndarray) -> np.ndarray:
        """(plane, chan) weights: the flux at each channel is Σ_p weights[p, chan] image[p].

        Linear in frequency between the two planes around a channel, all weight on the nearest
        plane outside the planes' range; a single plane weighs 1 everywhere.
        """
        frequency = np.asarray(frequency, dtype=np.float64).reshape(-1)
        nplane = self.freqs.shape[0]
        return np.stack(
            [np.interp(frequency, self.freqs, np.eye(nplane)[p]) for p in range(nplane)]
        )

    def reference_lm(self, phase_centre: tuple[float, float]) -> tuple[float, float]:
        """(l0, m0): the SIN projection of the reference direction about ``phase_centre``
        (RA, Dec radians): l0 = cos δ sin Δα, m0 = sin δ cos δ₀ − cos δ sin δ₀ cos Δα."""
        ra_c, dec_c = (float(a) for a in phase_centre)
        dra = self.ra0 - ra_c
        sin_dec, cos_dec = math.sin(self.dec0), math.cos(self.dec0)
        l0 = cos_dec * math.sin(dra)
        m0 = sin_dec * math.cos(dec_c) - cos_dec * math.sin(dec_c) * math.cos(dra)
        return l0, m0

    def pixel_lm(self, phase_centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """(l (nx,), m (ny,)): direction cosines about ``phase_centre`` of each pixel column
        and row (see the module docstring)."""
        l0, m0 = self.reference_lm(phase_centre)
        ny, nx = self.shape
        return (
            l0 + (np.arange(nx) - self.ref_x) * self.cell_l,
            m0 + (np.arange(ny) - self.ref_y) * self.cell_m,
        )


def read_fits_model(path: str | Path) -> ImageModel:
    """Read a model image: RA---SIN and DEC--SIN axes, a FREQ axis and optionally a STOKES
    axis, in any order (WSClean writes RA, Dec, FREQ, STOKES); other axes must have length 1.

    A missing STOKES axis means Stokes I. Any problem raises SkyModelError naming the file.
    """
    from astropy.io import fits  # astropy is slow to import; only model images need it

    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdus:
            hdu = next((h for h in hdus if h.is_image and h.data is not None), None)
            if hdu is None:
                raise _fail(
                    path, "holds no image", "give a FITS image such as WSClean's -model.fits"
                )
            header, data = hdu.header.copy(), np.asarray(hdu.data, dtype=np.float64)
    except SkyModelError:
        raise
    except (OSError, ValueError, TypeError) as error:
        what = f"cannot read the FITS image ({' '.join(str(error).split())})"
        raise _fail(path, what, "check the file") from None
    return _parse(path, header, data)


def _fail(path: Path, what: str, fix: str) -> SkyModelError:
    return SkyModelError(f"{path}: {what}; {fix}")


def _parse(path: Path, header, data: np.ndarray) -> ImageModel:
    from astropy import units
    from astropy.wcs import WCS, FITSFixedWarning

    unit = str(header.get("BUNIT", "")).upper().replace(" ", "")
    if "BEAM" in unit:
        raise _fail(
            path,
            f"its pixels are {header['BUNIT']}, a restored or residual image",
            "predict from the model image (WSClean's -model.fits, Jy/pixel)",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header, naxis=data.ndim)
            wcs.wcs.set()
    except Exception as error:  # astropy raises several types for malformed WCS
        what = f"cannot read its WCS ({' '.join(str(error).split())})"
        raise _fail(path, what, "check its CTYPE, CUNIT, CRVAL and CDELT keywords") from None
    axes = _find_axes(path, wcs, data.shape[::-1])
    lng, lat, spec, stokes_axis = axes
    scale = wcs.pixel_scale_matrix  # intermediate world units per pixel, world x pixel axes
    diagonal = np.abs(np.diag(scale))
    if diagonal[lng] == 0.0 or diagonal[lat] == 0.0:
        raise _fail(path, "its pixel size is zero (CDELT1/CDELT2)", "fix CDELT1 and CDELT2")
    off_diagonal = np.abs(scale - np.diag(np.diag(scale)))
    if np.any(off_diagonal > _DIAGONAL_RTOL * diagonal[:, None]):
        raise _fail(
            path,
            "its pixel axes are rotated or coupled (PC/CD/CROTA terms)",
            "regrid it to an unrotated SIN image (North up, RA along axis 1)",
        )
    # LONPOLE's default is 180 away from the poles (Calabretta & Greisen 2002, zenithal case)
    if abs(wcs.wcs.crval[lat]) < 90.0 and not math.isclose(wcs.wcs.lonpole, 180.0):
        raise _fail(path, f"LONPOLE = {wcs.wcs.lonpole} rotates the image", "use LONPOLE = 180")
    if any(i == lat + 1 and m in (1, 2) and v != 0.0 for i, m, v in wcs.wcs.get_pv()):
        raise _fail(
            path, "its SIN projection is slanted (PV2_1/PV2_2, e.g. NCP)", "regrid it to plain SIN"
        )

    def world(axis: int, pixels: np.ndarray, to: units.Unit) -> np.ndarray:
        cunit = units.Unit(str(wcs.wcs.cunit[axis]) or to)
        value = wcs.wcs.crval[axis] + scale[axis, axis] * (pixels + 1 - wcs.wcs.crpix[axis])
        return (value * cunit).to_value(to)

    def radians(axis: int, value: float) -> float:
        return float((value * units.Unit(str(wcs.wcs.cunit[axis]) or "deg")).to_value("rad"))

    freqs = world(spec, np.arange(data.shape[::-1][spec]), units.Hz)
    if not np.all(np.isfinite(freqs) & (freqs > 0)) or len(np.unique(freqs)) != len(freqs):
        raise _fail(path, f"its planes' frequencies {freqs} Hz are not distinct and positive",
                    "fix CRVAL/CDELT of its FREQ axis")  # fmt: skip
    stokes = _stokes_names(path, wcs, stokes_axis, data.shape[::-1])
    cube = _reorder(data, (spec, stokes_axis, lat, lng))
    if not np.all(np.isfinite(cube)):
        bad = int(np.count_nonzero(~np.isfinite(cube)))
        raise _fail(path, f"{bad} pixels are NaN or infinite", "set them to 0 (numpy.nan_to_num)")
    order = np.argsort(freqs)
    by_stokes = np.argsort([STOKES.index(s) for s in stokes])
    return ImageModel(
        image=cube[order][:, by_stokes],
        freqs=freqs[order],
        ra0=radians(lng, wcs.wcs.crval[lng]),
        dec0=radians(lat, wcs.wcs.crval[lat]),
        cell_l=radians(lng, scale[lng, lng]),
        cell_m=radians(lat, scale[lat, lat]),
        ref_x=wcs.wcs.crpix[lng] - 1.0,
        ref_y=wcs.wcs.crpix[lat] - 1.0,
        stokes=tuple(stokes[k] for k in by_stokes),
    )


def _find_axes(path: Path, wcs, naxes: tuple[int, ...]) -> tuple[int, int, int, int | None]:
    """FITS axis indices (0-based) of RA, Dec, FREQ and STOKES (None if absent)."""
    ctype = [str(c).upper() for c in wcs.wcs.ctype]
    lng, lat = wcs.wcs.lng, wcs.wcs.lat
    if lng < 0 or lat < 0 or not (ctype[lng].startswith("RA--") and ctype[lat].startswith("DEC-")):
        raise _fail(
            path, f"it has no RA/Dec axes (CTYPE {ctype})", "give an equatorial RA---SIN image"
        )
    for axis in (lng, lat):
        if ctype[axis][5:] != "SIN":
            raise _fail(
                path,
                f"projection {ctype[axis][5:] or 'none'} in CTYPE{axis + 1} = '{ctype[axis]}' "
                "is not supported",
                "regrid it to SIN (RA---SIN, DEC--SIN), the projection imagers write",
            )
    spec = next((k for k, c in enumerate(ctype) if c == "FREQ"), None)
    if spec is None:
        raise _fail(
            path,
            "it has no FREQ axis, so the model's frequency is unknown",
            "add one (e.g. CTYPE3 = 'FREQ', CRVAL3 = <Hz>, CDELT3, CRPIX3 = 1), as WSClean writes",
        )
    stokes = next((k for k, c in enumerate(ctype) if c == "STOKES"), None)
    for k, c in enumerate(ctype):
        if k not in (lng, lat, spec, stokes) and naxes[k] > 1:
            raise _fail(path, f"axis {k + 1} ({c or 'unnamed'}) has {naxes[k]} pixels",
                        "drop it or keep one plane")  # fmt: skip
    return lng, lat, spec, stokes


def _stokes_names(path: Path, wcs, axis: int | None, naxes: tuple[int, ...]) -> list[str]:
    if axis is None:
        return ["I"]
    scale = wcs.pixel_scale_matrix[axis, axis]
    codes = wcs.wcs.crval[axis] + scale * (np.arange(naxes[axis]) + 1 - wcs.wcs.crpix[axis])
    rounded = np.round(codes).astype(int)
    if np.any(np.abs(codes - rounded) > 1e-6) or len(set(rounded)) != len(rounded):
        raise _fail(path, f"its STOKES axis codes {codes} are not distinct integers",
                    "fix CRVAL/CDELT of its STOKES axis")  # fmt: skip
    corrs = [_CORR_CODES[c] for c in rounded if c in _CORR_CODES]
    if corrs:
        raise _fail(
            path,
            f"it holds correlation planes ({', '.join(corrs)}), not Stokes parameters",
            "give Stokes I, Q, U, V model images",
        )
    unknown = [int(c) for c in rounded if c not in _FITS_STOKES]
    if unknown:
        raise _fail(path, f"unknown STOKES codes {unknown}", "use 1-4 for I, Q, U, V")
    return [_FITS_STOKES[c] for c in rounded]


def _reorder(data: np.ndarray, axes: tuple[int | None, ...]) -> np.ndarray:
    """Data (numpy order: last FITS axis first) as (freq, stokes, dec, ra); length-1 extras
    dropped, a missing STOKES axis added."""
    ndim = data.ndim
    present = [ndim - 1 - a for a in axes if a is not None]
    rest = [k for k in range(ndim) if k not in present]
    cube = np.transpose(data, rest + present).reshape(tuple(data.shape[k] for k in present))
    return cube if axes[1] is not None else cube[:, None]


def write_fits_model(
    model: ImageModel,
    path: str | Path,
    *,
    bandwidth: float | None = None,
    dtype: type = np.float32,
) -> None:
    """Write ``model`` as WSClean writes a model image: axes RA---SIN, DEC--SIN, FREQ, STOKES,
    CDELT1 = ``cell_l`` in degrees (negative in the usual orientation), BUNIT JY/PIXEL.

    A cube's planes must be evenly spaced in frequency (one CDELT3); a single plane records
    ``bandwidth`` (Hz, default 1 Hz) as CDELT3, WSClean's channel width. Stokes run from I to
    the last one the model holds, missing ones written as zero planes. Pixels are written as
    ``dtype`` (float32, as WSClean does, or float64).
    """
    from astropy.io import fits

    freqs = model.freqs
    if len(freqs) > 1:
        step = (freqs[-1] - freqs[0]) / (len(freqs) - 1)
        if not np.allclose(np.diff(freqs), step, rtol=1e-9, atol=0.0):
            raise ValueError("write_fits_model needs evenly spaced planes (one CDELT3)")
    else:
        step = 1.0 if bandwidth is None else float(bandwidth)
    nstokes = STOKES.index(model.stokes[-1]) + 1
    ny, nx = model.shape
    cube = np.zeros((nstokes, len(freqs), ny, nx), dtype=dtype)
    for k, name in enumerate(model.stokes):
        cube[STOKES.index(name)] = model.image[:, k]
    header = fits.Header()
    deg = 180.0 / math.pi
    axes = (
        ("RA---SIN", model.ref_x + 1, model.ra0 * deg % 360.0, model.cell_l * deg, "deg"),
        ("DEC--SIN", model.ref_y + 1, model.dec0 * deg, model.cell_m * deg, "deg"),
        ("FREQ", 1.0, freqs[0], step, "Hz"),
        ("STOKES", 1.0, 1.0, 1.0, ""),
    )
    for k, (ctype, crpix, crval, cdelt, cunit) in enumerate(axes, start=1):
        header[f"CTYPE{k}"] = ctype
        header[f"CRPIX{k}"] = float(crpix)
        header[f"CRVAL{k}"] = float(crval)
        header[f"CDELT{k}"] = float(cdelt)
        header[f"CUNIT{k}"] = cunit
    header["BUNIT"] = "JY/PIXEL"
    header["RADESYS"] = "FK5"
    header["EQUINOX"] = 2000.0
    header["SPECSYS"] = "TOPOCENT"
    header["ORIGIN"] = "radiocloud"
    fits.PrimaryHDU(data=cube, header=header).writeto(path, overwrite=True)
