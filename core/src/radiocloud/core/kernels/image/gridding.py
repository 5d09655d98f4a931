"""Gridding and degridding of one image plane with ducc0's wgridder (w-stacking), in the
conventions of :mod:`radiocloud.core.kernels.degrid` and :mod:`radiocloud.core.fitsmodel`.

Image geometry (WSClean's): an ``nx`` x ``ny`` image of square ``cell`` radians, its reference
pixel (the phase centre) at 0-based ``(nx // 2, ny // 2)``; FITS order ``[j, i]`` with column
``i`` at ``l = -(i - nx // 2) cell`` (RA grows to the left, CDELT1 < 0) and row ``j`` at
``m = (j - ny // 2) cell``.

ducc0 puts its pixel ``ix`` at ``x = (ix - nx/2) pixsize + center_x`` with x = l, y = m (see
the degrid module), so a FITS plane is transposed and reversed along l: ``ix = nx - 1 - i``,
which puts ``ix`` at ``l = (ix - nx/2 + 1) cell``: ``center_x = cell`` (and 0 for y).

Transforms, both without the 1/n factor, so each is the exact adjoint of the other and
pixels are component fluxes:

* degrid: ``V = Σ_pixels I exp(+2πi (u l + v m + w (n - 1)) ν/c)`` (the DFT kernel's sign);
* grid: ``D(l, m) = Σ_vis w V exp(-2πi (u l + v m + w (n - 1)) ν/c)``.

A point source of flux S gridded with weights w peaks at ``S Σw``; the caller divides by Σw
(the PSF, gridded from V = 1, then peaks at exactly 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radiocloud.core.errors import OptionError

SINGLE_PRECISION_EPSILON = 2e-5  # ducc0 runs in single precision at or above this accuracy
_FLIP = np.array([-1.0, -1.0, 1.0])  # MS (u, v, w) -> ducc0's, for the DFT kernel's sign


@dataclass(frozen=True)
class Geometry:
    """An image's pixels: ``nx`` x ``ny`` (both even, at least 32), ``cell`` radians."""

    nx: int
    ny: int
    cell: float

    def __post_init__(self) -> None:
        for n, name in ((self.nx, "width"), (self.ny, "height")):
            if n < 32 or n % 2:
                raise OptionError(f"image {name} {n}: give an even number of pixels, at least 32")
        if not 0 < self.cell < 0.1:
            raise OptionError(f"cell size {self.cell} rad: must be positive and below 0.1 rad")

    @property
    def ref(self) -> tuple[int, int]:
        """0-based (i, j) of the phase centre."""
        return self.nx // 2, self.ny // 2

    def lm(self) -> tuple[np.ndarray, np.ndarray]:
        """(l of each column i, m of each row j), radians."""
        i0, j0 = self.ref
        return -(np.arange(self.nx) - i0) * self.cell, (np.arange(self.ny) - j0) * self.cell

    def to_fits(self, image: np.ndarray) -> np.ndarray:
        """ducc0's (nx, ny) as FITS (ny, nx)."""
        return np.ascontiguousarray(image[::-1, :].T)

    def to_ducc(self, plane: np.ndarray) -> np.ndarray:
        """FITS (ny, nx) as ducc0's (nx, ny)."""
        return np.ascontiguousarray(plane.T[::-1, :])

    def ducc(self) -> dict:
        return {"pixsize_x": self.cell, "pixsize_y": self.cell, "center_x": self.cell,
                "center_y": 0.0}  # fmt: skip


def _precision(epsilon: float):
    if not 2e-13 < epsilon < 0.1:
        raise OptionError(f"--accuracy {epsilon}: choose a value between 2e-13 and 0.1")
    single = epsilon >= SINGLE_PRECISION_EPSILON
    return (np.complex64, np.float32) if single else (np.complex128, np.float64)


def grid(uvw, freq, vis, weight, geometry: Geometry, *, epsilon: float = 1e-5,
         nthreads: int = 1) -> np.ndarray:  # fmt: skip
    """Dirty image (FITS order, float64) of ``vis`` (row, chan) weighted by ``weight``
    (row, chan; zero where flagged): ``Σ w V exp(-2πi ...)``, not normalised. ``vis`` None
    grids V = 1 (the PSF)."""
    import ducc0

    cplx, real = _precision(epsilon)
    uvw = np.ascontiguousarray(uvw, dtype=np.float64) * _FLIP
    freq = np.ascontiguousarray(freq, dtype=np.float64)
    weight = np.ascontiguousarray(weight, dtype=real)
    if vis is None:
        vis = np.ones(weight.shape, cplx)
    mask = (weight != 0).astype(np.uint8)
    if not mask.any():
        return np.zeros((geometry.ny, geometry.nx))
    dirty = ducc0.wgridder.experimental.vis2dirty(
        uvw=uvw, freq=freq, vis=np.ascontiguousarray(vis, dtype=cplx), wgt=weight, mask=mask,
        npix_x=geometry.nx, npix_y=geometry.ny, epsilon=epsilon, do_wgridding=True,
        divide_by_n=False, nthreads=nthreads, **geometry.ducc(),
    )  # fmt: skip
    return geometry.to_fits(dirty.astype(np.float64))


def degrid(uvw, freq, plane: np.ndarray, geometry: Geometry, *, epsilon: float = 1e-5,
           nthreads: int = 1) -> np.ndarray:  # fmt: skip
    """Visibilities (row, chan) of a model ``plane`` (FITS order, Jy per pixel)."""
    import ducc0

    cplx, real = _precision(epsilon)
    uvw = np.ascontiguousarray(uvw, dtype=np.float64) * _FLIP
    freq = np.ascontiguousarray(freq, dtype=np.float64)
    if not np.any(plane):
        return np.zeros((uvw.shape[0], freq.shape[0]), cplx)
    return ducc0.wgridder.experimental.dirty2vis(
        uvw=uvw, freq=freq, dirty=geometry.to_ducc(plane).astype(real), epsilon=epsilon,
        do_wgridding=True, divide_by_n=False, nthreads=nthreads, **geometry.ducc(),
    )  # fmt: skip
