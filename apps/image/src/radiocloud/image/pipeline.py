"""rc-image's pipeline: Stokes I -> imaging weights -> dirty image and PSF -> Cotton-Schwab
deconvolution (CLEAN minor cycles on the image, exact residuals from the visibilities) ->
restored image and FITS products.

The visibilities stream chunk by chunk through every pass (weights, gridding, each major
cycle), each chunk gridded into an image of its own and images summed in a tree, so memory
holds images, not the dataset; when Stokes I and its weights fit in half the memory budget
they are kept in memory after the first pass instead of read again each major cycle.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import dask
import numpy as np

from radiocloud.core.errors import OptionError
from radiocloud.core.kernels.image import clean
from radiocloud.core.kernels.image.gridding import Geometry, degrid, grid
from radiocloud.core.progress import compute
from radiocloud.core.units import format_size
from radiocloud.image.data import Part, stokes_i_parts

log = logging.getLogger("radiocloud.image")
C = 299_792_458.0


@dataclass(frozen=True)
class ImageConfig:
    dataset: str
    prefix: str
    size: tuple[int, int]  # nx, ny
    scale: float  # radians per pixel
    column: str = "DATA"
    field: int = 0
    channels: tuple[int | None, int | None] = (None, None)  # START, STOP (excluded)
    weight: str = "briggs"  # natural, uniform, briggs
    robust: float = 0.0
    taper: float | None = None  # FWHM of the Gaussian taper in the image, radians
    uv_range: tuple[float, float] = (0.0, math.inf)  # wavelengths
    niter: int = 0
    gain: float = 0.1
    mgain: float = 1.0  # 1: no major cycles (one minor cycle on the dirty image)
    threshold: float = 0.0  # Jy
    auto_threshold: float | None = None  # in units of the residual's rms
    minor: str = "clark"  # hogbom, clark
    major_limit: int = 20
    accuracy: float = 1e-4
    predict: bool = False


@dataclass
class Images:
    dirty: np.ndarray
    psf: np.ndarray
    model: np.ndarray
    residual: np.ndarray
    beam: object
    image: np.ndarray
    iterations: int
    major_cycles: int
    sum_weights: float
    freq: tuple[float, float]  # centre, width of the band, Hz
    files: list[str] = dataclass_field(default_factory=list)


def _memory_check(geom: Geometry, memory_budget: int, threads: int) -> None:
    """The images held (dirty, PSF, model, residual, restored, and one per chunk in flight)
    and ducc0's oversampled complex grid per thread (up to 2.6^2 the image, complex128)."""
    pixels = geom.nx * geom.ny
    need = pixels * 8 * (6 + 2 * threads) + pixels * 2.6**2 * 16 * threads
    if need > memory_budget:
        raise OptionError(
            f"a {geom.nx}x{geom.ny} image needs about {format_size(need)} with {threads} "
            f"threads, over the memory budget of {format_size(memory_budget)}: raise "
            "--memory-budget, lower --threads or make the image smaller"
        )


def _tree_sum(images):
    while len(images) > 1:
        pairs = [
            dask.delayed(np.add)(a, b) for a, b in zip(images[::2], images[1::2], strict=False)
        ]
        images = pairs + ([images[-1]] if len(images) % 2 else [])
    return images[0]


def _grid_parts(parts: list[Part], weights, geom: Geometry, cfg: ImageConfig, *, vis_of=None,
                psf: bool = False):  # fmt: skip
    """A delayed image summed over every chunk of every part: Σ w V (or Σ w with ``psf``),
    V from ``vis_of(part, k)`` when given (residual visibilities), else the part's own."""
    leaves = []
    for p, w in zip(parts, weights, strict=True):
        uvw = p.uvw.to_delayed().ravel()
        wts = w.to_delayed().ravel()
        vis = (vis_of(p) if vis_of else p.vis).to_delayed().ravel()
        for k in range(len(wts)):
            leaves.append(dask.delayed(grid)(uvw[k], p.freq, None if psf else vis[k], wts[k],
                                             geom, epsilon=cfg.accuracy))  # fmt: skip
    return _tree_sum(leaves)


def _check_sampling(parts: list[Part], cfg: ImageConfig) -> None:
    """Warn when the pixels undersample the longest baseline (fewer than 2 per fringe)."""
    longest = compute(*[da_max_uv(p) for p in parts], description="finding the longest baseline")
    uv_max = max(float(u) * float(p.freq.max()) / C for u, p in zip(longest, parts, strict=True))
    nyquist = 1.0 / (2.0 * uv_max) if uv_max > 0 else math.inf
    if cfg.scale > nyquist:
        log.warning(
            "--scale %.3gasec undersamples the longest baseline (%.0f wavelengths): use at most "
            "%.3gasec (WSClean's habit: a third to a quarter of that)",
            math.degrees(cfg.scale) * 3600, uv_max, math.degrees(nyquist) * 3600,
        )  # fmt: skip


def da_max_uv(p: Part):
    import dask.array as da

    used = (p.weight > 0).any(axis=1)
    return da.where(used, da.sqrt(p.uvw[:, 0] ** 2 + p.uvw[:, 1] ** 2), 0).max()


def run(cfg: ImageConfig, *, memory_budget: int, threads: int) -> Images:
    from radiocloud.image import products
    from radiocloud.image.weights import imaging_weights

    geom = Geometry(cfg.size[0], cfg.size[1], cfg.scale)
    _memory_check(geom, memory_budget, threads)
    parts, sub = stokes_i_parts(cfg.dataset, column=cfg.column, field=cfg.field,
                                channels=slice(*cfg.channels), memory_budget=memory_budget,
                                threads=threads)  # fmt: skip
    _check_sampling(parts, cfg)
    weights = imaging_weights(parts, cfg, geom)
    held = sum(p.vis.size * 8 + p.vis.size * 4 + p.uvw.size * 8 for p in parts)
    if held < memory_budget / 2:  # read once, kept for the major cycles
        persisted = dask.persist(*[(p.vis, w, p.uvw) for p, w in zip(parts, weights, strict=True)])
        for p, (v, _w, u) in zip(parts, persisted, strict=True):
            p.vis, p.uvw = v, u
        weights = [w for _, w, _ in persisted]
    sums = [w.sum() for w in weights]
    dirty, psf, *wsum = compute(_grid_parts(parts, weights, geom, cfg),
                                _grid_parts(parts, weights, geom, cfg, psf=True), *sums,
                                description="gridding the dirty image and PSF")  # fmt: skip
    total = float(sum(wsum))
    if total <= 0:
        raise OptionError(
            f"every visibility of field {cfg.field} in the chosen channels is flagged or "
            "weighted zero: nothing to image"
        )
    # Σw normalises, as the PSF's centre has it (equal to the gridder's accuracy): the PSF
    # then peaks at exactly 1 and a point source at exactly its flux
    norm = float(psf[geom.ref[1], geom.ref[0]])
    dirty, psf = dirty / norm, psf / norm
    model = np.zeros_like(dirty)
    residual = dirty.copy()
    iterations, majors = _deconvolve(cfg, geom, parts, weights, norm, psf, model, residual)
    cell = cfg.scale
    beam = products.fit_beam(psf, cell)
    image = products.restore(model, residual, beam, cell)
    freqs = np.concatenate([p.freq for p in parts])
    centre, width = 0.5 * (freqs.min() + freqs.max()), float(np.ptp(freqs)) or 1.0
    out = Images(dirty, psf, model, residual, beam, image, iterations, majors, total,
                 (centre, width))  # fmt: skip
    out.files = _write(cfg, sub, out)
    return out


def _deconvolve(cfg, geom, parts, weights, total, psf, model, residual) -> tuple[int, int]:
    """Cotton-Schwab: minor cycles on the residual image down to (1 - mgain) of its peak,
    then the exact residual from the visibilities, until niter or the threshold."""
    if cfg.niter == 0:
        return 0, 0
    minor = {"hogbom": clean.hogbom, "clark": clean.clark}[cfg.minor]
    left, majors = cfg.niter, 0
    threshold = cfg.threshold
    if cfg.auto_threshold is not None:
        threshold = max(threshold, cfg.auto_threshold * _rms(residual))
    while left > 0 and majors < cfg.major_limit:
        peak = float(np.abs(residual).max())
        if peak <= threshold:
            break
        stop = max(threshold, (1.0 - cfg.mgain) * peak)
        result = minor(residual, psf, gain=cfg.gain, niter=left, threshold=stop, model=model)
        if result.model is not model:
            model[...] = result.model
        left -= result.iterations
        log.info("minor cycle %d: %d components, peak %.4g Jy", majors + 1, result.iterations,
                 result.peak)  # fmt: skip
        if cfg.mgain >= 1.0:
            return cfg.niter - left, 0
        majors += 1
        residual[...] = _exact_residual(cfg, geom, parts, weights, model) / total
        if result.iterations == 0:
            break
    return cfg.niter - left, majors


def _exact_residual(cfg, geom, parts, weights, model):
    """Σ w (V - M) gridded, M the model's visibilities by degridding: one pass."""

    def residual_vis(p: Part):
        return p.vis.map_blocks(_subtract, p.uvw, p.freq, model, geom, cfg.accuracy,
                                dtype=p.vis.dtype)  # fmt: skip

    (image,) = compute(_grid_parts(parts, weights, geom, cfg, vis_of=residual_vis),
                       description="major cycle: residual visibilities gridded")  # fmt: skip
    return image


def _subtract(vis, uvw, freq, model, geom, accuracy):
    return vis - degrid(uvw, freq, model, geom, epsilon=accuracy).astype(vis.dtype)


def _rms(image: np.ndarray) -> float:
    """Robust rms: 1.4826 x the median absolute deviation."""
    return float(1.4826 * np.median(np.abs(image - np.median(image))))


def _write(cfg: ImageConfig, sub, out: Images) -> list[str]:
    from radiocloud.image import products

    ra0, dec0 = (float(v) for v in sub.fields[cfg.field].phase_dir)
    common = {"ra0": ra0, "dec0": dec0, "cell_rad": cfg.scale, "freq": out.freq[0],
              "width": out.freq[1]}  # fmt: skip
    files = []
    for name, plane, beam, unit in (
        ("dirty", out.dirty, out.beam, "JY/BEAM"),
        ("psf", out.psf, out.beam, "JY/BEAM"),
        ("model", out.model, None, "JY/PIXEL"),
        ("residual", out.residual, out.beam, "JY/BEAM"),
        ("image", out.image, out.beam, "JY/BEAM"),
    ):
        files.append(products.write_plane(f"{cfg.prefix}-{name}.fits", plane, beam=beam,
                                          bunit=unit, **common))  # fmt: skip
    files.append(products.write_components(f"{cfg.prefix}-sources.txt",
                                           _components(out.model, ra0, dec0, cfg.scale),
                                           ref_freq=out.freq[0]))  # fmt: skip
    return files


def _components(model: np.ndarray, ra0: float, dec0: float, cell: float):
    """The model's non-zero pixels as point components, brightest first."""
    from radiocloud.image.products import Component, pixel_to_radec

    j, i = np.nonzero(model)
    order = np.argsort(-np.abs(model[j, i]))
    out = []
    for k in order:
        ra, dec = pixel_to_radec(i[k], j[k], ra0=ra0, dec0=dec0, cell_rad=cell, shape=model.shape)
        out.append(Component(float(ra), float(dec), float(model[j[k], i[k]])))
    return out
