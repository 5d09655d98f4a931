"""Degridding: visibilities of a model image (:class:`radiocloud.core.fitsmodel.ImageModel`) by
ducc0's wgridder, in the conventions of :mod:`radiocloud.core.kernels.dft.kernels`.

The result equals that DFT kernel applied to every non-zero pixel as a point source at the
pixel's (l, m) (see :mod:`radiocloud.core.fitsmodel` for where a pixel sits), to within the
wgridder accuracy ``epsilon``: V = Σ B exp(+2πi (u l + v m + w (n − 1)) ν/c) on MS UVW, no
``1/n`` (pixels are component fluxes, so ``divide_by_n=False``), brightness from
:func:`radiocloud.core.kernels.dft.brightness`.

ducc0 conventions, checked numerically against the DFT kernel (tests/core/test_degrid.py):

* ``dirty2vis`` takes the image as (npix_x, npix_y) and puts pixel ``(ix, iy)`` at
  ``x = (ix − npix_x/2) pixsize_x + center_x`` (likewise y), and computes
  ``Σ D exp(−2πi (u x + v y − w (n − 1)) ν/c)``. Feeding it ``(−u, −v, w)`` gives the DFT's
  sign; its ``flip_u``/``flip_v`` are not used because they do not flip the centre's shift.
* So x is l (East) and y is m (North): a FITS plane ``[j, i]`` is transposed to ``[i, j]`` and
  reversed along an axis whose step is negative (CDELT1 < 0, RA growing to the left).
* The image is cropped to the box around its non-zero pixels (zeros add nothing; a smaller
  field needs fewer w-planes) and padded to even sizes of at least 32, ducc0's minimum.

Each Stokes parameter the correlations need is degridded on its own (a real image), once per
frequency plane over the channels that plane weighs in (two planes per channel at most, see
:meth:`ImageModel.spectral_weights`), and added into the correlations with brightness weights.
ducc0 runs in single precision when ``epsilon`` ≥ 2e-5 (it accepts float32 images above 1e-5)
and in double precision below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from radiocloud.core.errors import SkyModelError
from radiocloud.core.fitsmodel import STOKES, ImageModel
from radiocloud.core.jit import njit
from radiocloud.core.kernels.dft.kernels import brightness

SINGLE_PRECISION_EPSILON = 2e-5
"""Smallest ``epsilon`` at which ducc0 runs in single precision."""

MIN_EPSILON = 2e-13  # ducc0's limit
_MIN_PIXELS = 32  # ducc0's documented minimum image size (and sizes must be even)


class _Grid(NamedTuple):
    """The cropped, oriented image as ducc0 takes it, with its geometry."""

    planes: np.ndarray  # (plane, stokes, npix_x, npix_y), l along x, m along y
    pixsize_x: float
    pixsize_y: float
    center_x: float
    center_y: float


def degrid_vis(
    uvw: np.ndarray,
    freq: np.ndarray,
    model: ImageModel,
    *,
    phase_centre: tuple[float, float],
    corr_names: Sequence[str],
    epsilon: float = 1e-6,
    nthreads: int = 1,
    dtype: type = np.complex64,
) -> np.ndarray:
    """Model visibilities (row, chan, corr) of ``model`` by degridding.

    ``uvw`` (row, 3) metres, MS convention; ``freq`` (chan,) Hz; ``phase_centre`` (RA, Dec)
    radians of the visibilities; ``corr_names`` the dataset's correlations, e.g. ``("XX",
    "YY")``; ``epsilon`` the wgridder's accuracy (1e-13 < epsilon < 0.1); ``nthreads`` ducc0's
    threads; ``dtype`` complex64 or complex128, the result's type. See the module docstring for
    the conventions.
    """
    import ducc0  # a dependency of the apps that degrid (rc-predict, rc-image), not of core

    uvw = np.ascontiguousarray(uvw, dtype=np.float64)
    freq = np.ascontiguousarray(freq, dtype=np.float64)
    dtype = _check(uvw, freq, epsilon, nthreads, dtype)
    weights = brightness(np.eye(4), corr_names)  # (stokes I..V, corr)
    out = np.zeros((uvw.shape[0], freq.shape[0], weights.shape[1]), dtype=dtype)
    needed = [k for k, s in enumerate(model.stokes) if np.any(weights[STOKES.index(s)] != 0)]
    grid = _grid(model, needed, phase_centre)
    if out.size == 0 or grid is None:
        return out
    single = epsilon >= SINGLE_PRECISION_EPSILON
    real = np.float32 if single else np.float64
    flipped = uvw * np.array([-1.0, -1.0, 1.0])  # ducc0's exp(-2πi(ux+vy-w(n-1))) -> DFT sign
    spectral = model.spectral_weights(freq)
    for p in range(grid.planes.shape[0]):
        chans = np.flatnonzero(spectral[p] > 0.0)
        if chans.size == 0 or not np.any(grid.planes[p]):
            continue
        vis = np.empty((uvw.shape[0], chans.size), dtype=np.complex64 if single else np.complex128)
        for k, held in enumerate(needed):  # held: index into model.stokes
            dirty = grid.planes[p, k]
            if not np.any(dirty):
                continue
            ducc0.wgridder.experimental.dirty2vis(
                uvw=flipped, freq=freq[chans], dirty=dirty.astype(real), vis=vis,
                pixsize_x=grid.pixsize_x, pixsize_y=grid.pixsize_y,
                center_x=grid.center_x, center_y=grid.center_y,
                epsilon=epsilon, do_wgridding=True, divide_by_n=False, nthreads=nthreads,
            )  # fmt: skip
            stokes_weights = weights[STOKES.index(model.stokes[held])]
            coeffs = spectral[p, chans, None] * stokes_weights[None, :]
            _accumulate(out, vis, chans, coeffs.astype(dtype))
    return out


def _check(uvw, freq, epsilon, nthreads, dtype) -> type:
    if uvw.ndim != 2 or uvw.shape[1] != 3:
        raise ValueError(f"uvw must have shape (row, 3), got {uvw.shape}")
    if freq.ndim != 1 or not np.all(freq > 0):
        raise ValueError(f"freq must be positive frequencies (chan,) in Hz, got {freq.shape}")
    if not MIN_EPSILON < epsilon < 0.1:
        raise ValueError(f"epsilon must lie between {MIN_EPSILON} and 0.1, got {epsilon}")
    if not isinstance(nthreads, int | np.integer) or nthreads < 0:
        raise ValueError(f"nthreads must be a non-negative integer (0: all cores), got {nthreads}")
    dtype = np.dtype(dtype)
    if dtype not in (np.complex64, np.complex128):
        raise ValueError(f"dtype must be complex64 or complex128, got {dtype}")
    return dtype.type


def _grid(model: ImageModel, needed: list[int], phase_centre: tuple[float, float]) -> _Grid | None:
    """The needed Stokes planes cropped to their non-zero box, as (plane, stokes, x=l, y=m),
    padded for ducc0; None if they are all zero."""
    planes = model.image[:, needed]
    rows = np.flatnonzero(np.any(planes != 0.0, axis=(0, 1, 3)))
    cols = np.flatnonzero(np.any(planes != 0.0, axis=(0, 1, 2)))
    if rows.size == 0:
        return None
    j0, j1, i0, i1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    box = np.swapaxes(planes[:, :, j0:j1, i0:i1], 2, 3)  # (plane, stokes, i, j)
    l_all, m_all = model.pixel_lm(phase_centre)
    l_px, m_px = l_all[i0:i1], m_all[j0:j1]
    if model.cell_l < 0:
        box, l_px = box[:, :, ::-1], l_px[::-1]
    if model.cell_m < 0:
        box, m_px = box[:, :, :, ::-1], m_px[::-1]
    if np.max(l_px**2) + np.max(m_px**2) >= 1.0:
        raise SkyModelError(
            "the model image reaches beyond the horizon of the phase centre "
            "(l² + m² ≥ 1): check its reference direction and pixel size"
        )
    nx, ny = box.shape[2:]
    npix_x, npix_y = (max(_MIN_PIXELS, n + n % 2) for n in (nx, ny))
    x0, y0 = (npix_x - nx) // 2, (npix_y - ny) // 2
    padded = np.zeros((*box.shape[:2], npix_x, npix_y))
    padded[:, :, x0 : x0 + nx, y0 : y0 + ny] = box
    dl, dm = abs(model.cell_l), abs(model.cell_m)
    # ducc0 puts pixel ix at (ix - npix_x/2) dl + center_x; pixel x0 must land at l_px[0].
    return _Grid(
        planes=padded,
        pixsize_x=dl,
        pixsize_y=dm,
        center_x=float(l_px[0] - (x0 - npix_x / 2) * dl),
        center_y=float(m_px[0] - (y0 - npix_y / 2) * dm),
    )


@njit()
def _accumulate(out, vis, chans, coeffs):
    """out[row, chans[k], corr] += coeffs[k, corr] * vis[row, k]."""
    ncorr = out.shape[2]
    for r in range(out.shape[0]):
        out_row, vis_row = out[r], vis[r]
        for k in range(chans.shape[0]):
            value = vis_row[k]
            target, weights = out_row[chans[k]], coeffs[k]
            for c in range(ncorr):
                target[c] += weights[c] * value
