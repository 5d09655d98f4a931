"""Visibility weighting for imaging: natural, uniform and Briggs (robust), a Gaussian uv taper
and uv-range cuts, with WSClean's conventions.

* **The uv grid** is the Fourier grid of the image (not of the padded FFT grid): cells of
  ``du = 1/(npix_x cell)``, ``dv = 1/(npix_y cell)`` wavelengths, stored as a
  (npix_y, npix_x) float64 array with the origin at ``[npix_y // 2, npix_x // 2]``, ``u`` along
  columns and ``v`` along rows (the layout of ``numpy.fft.fftshift``).
* **A point** (a visibility of one row and channel) has ``u = U ν/c``, ``v = V ν/c`` from the
  UVW column in metres. It lands in the cell of the nearest grid point,
  ``(iu, iv) = (rint(u/du), rint(v/dv))``, rounding half to even so that ``(-u, -v)`` lands in
  exactly ``(-iu, -iv)``. Cells run over ``|iu| <= (npix_x - 1) // 2`` and
  ``|iv| <= (npix_y - 1) // 2``, a set symmetric about the origin (for an even size the first
  row or column has no mirror and stays empty): a point beyond them, ``|u|`` or ``|v|`` past
  the Nyquist limit ``1/(2 cell)`` of the image's pixels, is *outside the grid*.
* **A point is used** when it is unflagged, its weight is positive (zero, negative and NaN
  weights count as flagged), ``uv_min <= sqrt(u² + v²) <= uv_max`` (wavelengths, no ``w``)
  and it is inside the grid. Only used points count in the cells, and every other point gets
  imaging weight 0 under every scheme.
* **Cell weights** ``W``: the sum of the weights of the used points in a cell, each point
  counted twice, at ``(u, v)`` and at its Hermitian conjugate ``(-u, -v)``, as WSClean counts
  them (WSClean folds every point into the half plane ``v >= 0`` instead: off the row
  ``v = 0`` its cells hold the same sums). ``W`` is therefore point-symmetric, and a point on
  the origin counts twice in its own cell.
* **Imaging weights** of a used point of weight ``w`` in a cell of weight ``W``:
  natural ``w``; uniform ``w / W``; Briggs ``w / (1 + W f²)`` with
  ``f² = (5·10^-R)² / (Σ W² / Σ W)``, sums over all cells (Briggs 1995 as WSClean and CASA
  have it: ``Σ W² / Σ W`` is the weighted mean cell weight, the same, but for the row
  ``v = 0``, whether the grid holds the conjugates or not). ``R = -2`` is close to uniform
  and ``R = 2`` close to natural, up to a constant factor. All three are ``w / (a + b W)``:
  (a, b) = (1, 0), (0, 1), (1, f²).
* **Taper**: a Gaussian of FWHM ``θ`` (radians) in the image has the Fourier transform
  ``exp(-π² θ² (u² + v²) / (4 ln 2))`` (1 at the origin), which multiplies the weight of each
  point at its own ``(u, v)`` (WSClean's ``-taper-gaussian``, which evaluates it at a corner
  of the point's cell instead). It does not enter ``W`` or ``f²``, as in
  WSClean and CASA.

Differences from WSClean: WSClean's cells have edges, not centres, on the grid points
(``floor`` where this has ``rint``), and its ``-minuv-l``/``-maxuv-l`` zero the weights after the
cells are summed, so cut points still count in ``W`` there (here they do not, as in CASA's
uv-range selection).
"""

from __future__ import annotations

import math

import numpy as np

from radiocloud.core.errors import OptionError
from radiocloud.core.jit import njit
from radiocloud.core.kernels.dft.kernels import LIGHTSPEED

SCHEMES = ("natural", "uniform", "briggs")
"""The weighting schemes, by name."""

ROBUST_RANGE = (-2.0, 2.0)
"""The allowed Briggs robust parameters (inclusive)."""

_TAPER_PER_FWHM2 = math.pi**2 / (4.0 * math.log(2.0))


def uv_cell_weights(
    uvw: np.ndarray,
    freq: np.ndarray,
    weight: np.ndarray,
    flag: np.ndarray,
    *,
    npix_x: int,
    npix_y: int,
    cell: float,
    uv_min: float = 0.0,
    uv_max: float = math.inf,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Cell weights ``W`` (npix_y, npix_x) float64 of the used points (module docstring).

    ``uvw`` (row, 3) metres; ``freq`` (chan,) Hz; ``weight`` (row, chan) the weights of the
    Stokes I product (e.g. from WEIGHT_SPECTRUM); ``flag`` (row, chan) bool; ``cell`` the
    image's pixel size in radians; ``uv_min``, ``uv_max`` in wavelengths. With ``out``, a
    C-contiguous float64 (npix_y, npix_x) array, the weights are added to it (so chunks of rows
    accumulate into one grid) and it is returned.
    """
    check_options(npix_x=npix_x, npix_y=npix_y, cell=cell, uv_min=uv_min, uv_max=uv_max)
    uvw, inv_wavelength, weight, flag = _points(uvw, freq, weight, flag)
    if out is None:
        out = np.zeros((npix_y, npix_x))
    elif out.shape != (npix_y, npix_x) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be a C-contiguous float64 array of shape {(npix_y, npix_x)}, "
            f"got {out.dtype} {out.shape}"
        )
    _grid(uvw, inv_wavelength, weight, flag, npix_x * cell, npix_y * cell,
          uv_min**2, uv_max**2, out)  # fmt: skip
    return out


def imaging_weights(
    uvw: np.ndarray,
    freq: np.ndarray,
    weight: np.ndarray,
    flag: np.ndarray,
    *,
    npix_x: int,
    npix_y: int,
    cell: float,
    scheme: str = "natural",
    robust: float = 0.0,
    cell_weights: np.ndarray | None = None,
    taper_fwhm: float = 0.0,
    uv_min: float = 0.0,
    uv_max: float = math.inf,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Imaging weights (row, chan) of points given as in :func:`uv_cell_weights`.

    ``scheme`` is ``natural``, ``uniform`` or ``briggs`` (with ``robust`` in [-2, 2]);
    ``taper_fwhm`` the FWHM in radians of the image-plane Gaussian whose transform tapers the
    weights (0: no taper). ``uniform`` and ``briggs`` need ``cell_weights``, the grid of
    :func:`uv_cell_weights` over *every* point that goes into the image, computed with the same
    geometry and uv range. The result has the dtype of ``weight`` if float32, else float64;
    ``out`` (row, chan), C-contiguous of that dtype, receives it.
    """
    check_options(npix_x=npix_x, npix_y=npix_y, cell=cell, scheme=scheme, robust=robust,
                  taper_fwhm=taper_fwhm, uv_min=uv_min, uv_max=uv_max)  # fmt: skip
    if scheme != "natural":
        _check_cells(cell_weights, npix_x, npix_y)
    a, b = divisor(cell_weights, scheme=scheme, robust=robust)
    return apply_weighting(uvw, freq, weight, flag, npix_x=npix_x, npix_y=npix_y, cell=cell,
                           cell_weights=cell_weights, divisor=(a, b), taper_fwhm=taper_fwhm,
                           uv_min=uv_min, uv_max=uv_max, out=out)  # fmt: skip


def divisor(cell_weights: np.ndarray | None, *, scheme: str, robust: float) -> tuple[float, float]:
    """(a, b) of the scheme, whose imaging weights are ``w / (a + b W)`` (module docstring).

    The Briggs ``f²`` costs one pass over the grid: compute it once per image, not per chunk.
    """
    if scheme == "natural":
        return 1.0, 0.0
    if scheme == "uniform":
        return 0.0, 1.0
    flat = np.ravel(cell_weights)
    sum_w, sum_w2 = flat.sum(), np.dot(flat, flat)
    if sum_w2 == 0.0:  # no data: every weight is 0 whatever (a, b)
        return 1.0, 0.0
    return 1.0, (5.0 * 10.0**-robust) ** 2 * sum_w / sum_w2


def apply_weighting(
    uvw: np.ndarray,
    freq: np.ndarray,
    weight: np.ndarray,
    flag: np.ndarray,
    *,
    npix_x: int,
    npix_y: int,
    cell: float,
    cell_weights: np.ndarray | None,
    divisor: tuple[float, float],
    taper_fwhm: float = 0.0,
    uv_min: float = 0.0,
    uv_max: float = math.inf,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`imaging_weights` with the scheme's (a, b) from :func:`divisor` given, so that
    chunks of one image share one pass over the grid (``cell_weights`` may be None if b = 0)."""
    check_options(npix_x=npix_x, npix_y=npix_y, cell=cell, taper_fwhm=taper_fwhm,
                  uv_min=uv_min, uv_max=uv_max)  # fmt: skip
    a, b = divisor
    if b == 0.0:  # the kernel never reads the cells; a 1x1 grid keeps one compiled signature
        cell_weights = np.zeros((1, 1))
    else:
        _check_cells(cell_weights, npix_x, npix_y)
    uvw, inv_wavelength, weight, flag = _points(uvw, freq, weight, flag)
    if out is None:
        out = np.empty(weight.shape, weight.dtype)
    elif out.shape != weight.shape or out.dtype != weight.dtype or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be a C-contiguous {weight.dtype} array of shape {weight.shape}, "
            f"got {out.dtype} {out.shape}"
        )
    _weigh(uvw, inv_wavelength, weight, flag, np.ascontiguousarray(cell_weights, np.float64),
           npix_x, npix_y, npix_x * cell, npix_y * cell, uv_min**2, uv_max**2,
           float(a), float(b), _TAPER_PER_FWHM2 * taper_fwhm**2, out)  # fmt: skip
    return out


def check_options(
    *,
    npix_x: int,
    npix_y: int,
    cell: float,
    scheme: str = "natural",
    robust: float = 0.0,
    taper_fwhm: float = 0.0,
    uv_min: float = 0.0,
    uv_max: float = math.inf,
) -> None:
    """Raise :class:`OptionError` (one line) for options that cannot make an image."""
    for name, n in (("npix_x", npix_x), ("npix_y", npix_y)):
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise OptionError(f"{name} must be a positive number of pixels, got {n!r}")
    if not 0.0 < cell < math.inf:
        raise OptionError(f"cell must be a positive angle in radians, got {cell:g}")
    if scheme not in SCHEMES:
        raise OptionError(f"unknown weighting {scheme!r}: expected one of {', '.join(SCHEMES)}")
    lo, hi = ROBUST_RANGE
    if not lo <= robust <= hi:
        raise OptionError(f"robust must be between {lo:g} and {hi:g}, got {robust:g}")
    if not 0.0 <= taper_fwhm < math.inf:
        raise OptionError(f"taper FWHM must be a finite angle >= 0, got {taper_fwhm:g} rad")
    if not 0.0 <= uv_min <= uv_max:
        raise OptionError(f"uv range must have 0 <= uv_min <= uv_max, got {uv_min:g}, {uv_max:g}")


def _check_cells(cell_weights, npix_x, npix_y) -> None:
    """The cell weights must cover the grid: the kernel indexes them without bounds checks."""
    shape = None if cell_weights is None else np.shape(cell_weights)
    if shape != (npix_y, npix_x):
        raise ValueError(f"cell_weights must have shape {(npix_y, npix_x)}, got {shape}")


def _points(uvw, freq, weight, flag):
    """The point arrays as the kernels take them (one compiled signature per weight dtype):
    uvw, 1/wavelength per channel, weight (float32 kept), flag."""
    uvw, freq, weight, flag = (np.asarray(x) for x in (uvw, freq, weight, flag))
    if uvw.ndim != 2 or uvw.shape[1] != 3:
        raise ValueError(f"uvw must have shape (row, 3), got {uvw.shape}")
    nrow, nchan = uvw.shape[0], freq.shape[0]
    if freq.ndim != 1:
        raise ValueError(f"freq must have shape (chan,), got {freq.shape}")
    for name, a in (("weight", weight), ("flag", flag)):
        if a.shape != (nrow, nchan):
            raise ValueError(f"{name} must have shape (row={nrow}, chan={nchan}), got {a.shape}")
    dtype = np.float32 if weight.dtype == np.float32 else np.float64
    return (
        np.ascontiguousarray(uvw, np.float64),
        np.ascontiguousarray(freq, np.float64) / LIGHTSPEED,
        np.ascontiguousarray(weight, dtype),
        np.ascontiguousarray(flag, np.bool_),
    )


@njit()
def _cell(u, v, scale_u, scale_v, npix_x, npix_y):
    """(row, column) of the cell of (u, v) wavelengths in the centred grid, or (-1, -1) outside
    it (or NaN); ``scale_u = npix_x cell`` = 1/du, likewise v. rint is odd (half to even), so
    (-u, -v) lands in the mirror cell exactly."""
    iu, iv = np.rint(u * scale_u), np.rint(v * scale_v)
    if not (abs(iu) <= (npix_x - 1) // 2 and abs(iv) <= (npix_y - 1) // 2):
        return -1, -1
    return npix_y // 2 + int(iv), npix_x // 2 + int(iu)


@njit()
def _grid(uvw, inv_wavelength, weight, flag, scale_u, scale_v, uv_min2, uv_max2, out):
    """Add each used point's weight to its cell and to its conjugate's cell of ``out``."""
    npix_y, npix_x = out.shape
    cy, cx = npix_y // 2, npix_x // 2
    for r in range(uvw.shape[0]):
        for c in range(inv_wavelength.shape[0]):
            w = weight[r, c]
            if flag[r, c] or not w > 0:
                continue
            u, v = uvw[r, 0] * inv_wavelength[c], uvw[r, 1] * inv_wavelength[c]
            rho2 = u * u + v * v
            if not uv_min2 <= rho2 <= uv_max2:
                continue
            j, i = _cell(u, v, scale_u, scale_v, npix_x, npix_y)
            if j < 0:
                continue
            out[j, i] += w
            out[2 * cy - j, 2 * cx - i] += w


@njit()
def _weigh(uvw, inv_wavelength, weight, flag, cell_weights, npix_x, npix_y, scale_u, scale_v,
           uv_min2, uv_max2, a, b, taper, out):  # fmt: skip
    """Imaging weights ``w exp(-taper ρ²) / (a + b W)`` of the used points, 0 elsewhere (and
    where ``a + b W`` is 0: uniform weighting of a cell that holds no weight, as WSClean)."""
    for r in range(uvw.shape[0]):
        for c in range(inv_wavelength.shape[0]):
            out[r, c] = 0.0
            w = weight[r, c]
            if flag[r, c] or not w > 0:
                continue
            u, v = uvw[r, 0] * inv_wavelength[c], uvw[r, 1] * inv_wavelength[c]
            rho2 = u * u + v * v
            if not uv_min2 <= rho2 <= uv_max2:
                continue
            j, i = _cell(u, v, scale_u, scale_v, npix_x, npix_y)
            if j < 0:
                continue
            d = a + b * cell_weights[j, i] if b != 0.0 else a
            if d > 0.0:
                out[r, c] = w * math.exp(-taper * rho2) / d
