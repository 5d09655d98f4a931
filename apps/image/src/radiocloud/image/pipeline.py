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
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field

import dask
import dask.threaded
import numpy as np

from radiocloud.core.errors import OptionError
from radiocloud.core.kernels.image import clean, multiscale
from radiocloud.core.kernels.image.gridding import Geometry, degrid, grid
from radiocloud.core.progress import compute
from radiocloud.core.reduce import tree_sum
from radiocloud.core.units import format_size
from radiocloud.image.data import Part, stokes_i_parts

log = logging.getLogger("radiocloud.image")
C = 299_792_458.0
HOLD_FRACTION = 0.5  # Stokes I and weights stay in memory when under this part of the budget


@dataclass(frozen=True)
class ImageConfig:
    dataset: str
    prefix: str
    size: tuple[int, int]  # nx, ny
    scale: float  # radians per pixel
    column: str = "DATA"
    field: int = 0
    spws: tuple[int, ...] | None = None
    channels: tuple[int | None, int | None] = (None, None)  # START, STOP (excluded)
    interval: tuple[int | None, int | None] | None = None  # integrations START, STOP (excl.)
    weight: str = "briggs"  # natural, uniform, briggs
    robust: float = 0.0
    taper: float | None = None  # FWHM of the Gaussian taper in the image, radians
    uv_range: tuple[float, float] = (0.0, math.inf)  # wavelengths
    niter: int = 0
    gain: float = 0.1
    mgain: float = 1.0  # 1: no major cycles (one minor cycle on the dirty image)
    threshold: float = 0.0  # Jy
    auto_threshold: float | None = None  # in units of the residual's rms
    auto_mask: float | None = None  # clean unmasked to this many rms, then within the model
    fits_mask: str | None = None  # a FITS image: components only where it is non-zero
    minor: str = "clark"  # hogbom, clark (joined channels: Högbom)
    channels_out: int = 1
    multiscale: bool = False
    scales: tuple[float, ...] | None = None  # pixels; None: WSClean's defaults
    scale_bias: float = 0.6
    fit_spectral_pol: int | None = None  # terms of the spectral polynomial (joined channels)
    major_limit: int = 20
    accuracy: float = 1e-4
    threads: int = 1  # ducc0's threads per gridding call (from the runtime)
    predict: bool = False


@dataclass
class Plane:
    """One output image (a band, or the MFS combination of the bands)."""

    name: str  # "" (one band), "0000", "0001", ..., "MFS"
    dirty: np.ndarray
    psf: np.ndarray
    model: np.ndarray
    residual: np.ndarray
    freq: float  # centre, Hz
    width: float  # Hz
    weight: float  # Σ of its imaging weights (as the PSF's centre has it)
    beam: object = None
    image: np.ndarray | None = None
    psf_full: np.ndarray | None = None  # twice the image's size, for exact minor cycles


@dataclass
class Images:
    planes: list[Plane]  # the bands, then MFS when there are several
    iterations: int
    major_cycles: int
    files: list[str] = dataclass_field(default_factory=list)

    @property
    def main(self) -> Plane:
        """The image to quote: MFS with several bands, else the one band."""
        return self.planes[-1]


def _memory_check(geom: Geometry, memory_budget: int, threads: int, bands: int,
                  multiscale: bool = False) -> None:  # fmt: skip
    """The images held (per band: dirty, PSF, model, residual, restored; and one per chunk in
    flight) and ducc0's oversampled complex grid per thread (up to 2.6² the image, complex128);
    multi-scale adds a PSF of four times the pixels, gridded so, and its smoothed planes
    (about 21 PSF-sized arrays for 6 scales)."""
    pixels = geom.nx * geom.ny
    need = pixels * 8 * (5 * (bands + (bands > 1)) + 2 * threads) + pixels * 2.6**2 * 16 * threads
    if multiscale:
        need += 4 * pixels * (8 * 22 + 2.6**2 * 16 * threads)
    if need > memory_budget:
        raise OptionError(
            f"a {geom.nx}x{geom.ny} image"
            + (f" in {bands} output channels" if bands > 1 else "")
            + f" needs about {format_size(need)} with {threads} threads, over the memory "
            f"budget of {format_size(memory_budget)}: raise --memory-budget, lower --threads "
            "or make the image smaller"
        )


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
                                             geom, epsilon=cfg.accuracy,
                                             nthreads=cfg.threads))  # fmt: skip
    return tree_sum(leaves)


def _check_sampling(parts: list[Part], cfg: ImageConfig) -> None:
    """Warn when the pixels undersample the longest baseline imaged (fewer than 2 pixels per
    fringe). Reads UVW only, flagged rows included."""
    longest = compute(*[da_max_uv(p) for p in parts], description="finding the longest baseline")
    uv_max = max(float(u) * float(p.freq.max()) / C for u, p in zip(longest, parts, strict=True))
    uv_max = min(uv_max, cfg.uv_range[1])
    nyquist = 1.0 / (2.0 * uv_max) if uv_max > 0 else math.inf
    if cfg.scale > nyquist:
        log.warning(
            "--scale %.3gasec undersamples the longest baseline (%.0f wavelengths): use at most "
            "%.3gasec (WSClean's habit: a third to a quarter of that)",
            math.degrees(cfg.scale) * 3600, uv_max, math.degrees(nyquist) * 3600,
        )  # fmt: skip


def da_max_uv(p: Part):
    return ((p.uvw[:, 0] ** 2 + p.uvw[:, 1] ** 2) ** 0.5).max()


def _bands(parts: list[Part], n: int) -> tuple[list[list[tuple[int, slice]]], np.ndarray]:
    """Per output band, the (part, channel slice) it holds: the selected band split into n
    equal frequency ranges, as WSClean's -channels-out splits it; and the n + 1 edges (Hz)."""
    freqs = np.concatenate([p.freq for p in parts])
    # the band's edges half a channel beyond its outer channels (channels of equal width):
    # when the channels divide evenly, each output channel's centre is its channels' mean
    step = float(np.median(np.abs(np.diff(np.unique(freqs))))) if freqs.size > 1 else 1.0
    lo, hi = float(freqs.min()) - step / 2, float(freqs.max()) + step / 2
    edges = np.linspace(lo, hi, n + 1)
    out = []
    for b in range(n):
        members = []
        for k, p in enumerate(parts):
            inside = (p.freq >= edges[b]) & ((p.freq < edges[b + 1]) | (b == n - 1))
            idx = np.flatnonzero(inside)
            if idx.size:
                if np.any(np.diff(idx) != 1):
                    raise OptionError("--channels-out needs channels ordered by frequency")
                members.append((k, slice(int(idx[0]), int(idx[-1]) + 1)))
        if not members:
            raise OptionError(
                f"--channels-out {n}: band {b} has no channel; the data have "
                f"{freqs.size} channels: ask for fewer output channels"
            )
        out.append(members)
    return out, edges


def _band_parts(parts, weights, members):
    """A band's parts and weights: every part cut to the band's channels."""
    bp, bw = [], []
    for k, sl in members:
        p = parts[k]
        bp.append(Part(p.vis[:, sl], p.weight[:, sl], p.uvw, p.freq[sl], p.ds))
        bw.append(weights[k][:, sl])
    return bp, bw


def run(cfg: ImageConfig, *, memory_budget: int, threads: int) -> Images:
    from radiocloud.image.weights import imaging_weights

    cfg = replace(cfg, threads=threads)
    geom = Geometry(cfg.size[0], cfg.size[1], cfg.scale)
    if cfg.multiscale and cfg.channels_out > 1:
        raise OptionError(
            "--multiscale cleans one output channel: drop --channels-out, or --multiscale"
        )
    _memory_check(geom, memory_budget, threads, cfg.channels_out, cfg.multiscale)
    user_mask = read_mask(cfg.fits_mask, geom) if cfg.fits_mask else None
    parts, sub = stokes_i_parts(cfg.dataset, column=cfg.column, field=cfg.field,
                                channels=slice(*cfg.channels), memory_budget=memory_budget,
                                threads=threads, spws=cfg.spws,
                                interval=cfg.interval)  # fmt: skip
    bands, edges = _bands(parts, cfg.channels_out)
    _check_sampling(parts, cfg)
    weights = imaging_weights(parts, cfg, geom)
    held = sum(p.vis.size * 8 + p.vis.size * 4 + p.uvw.size * 8 for p in parts)
    if held < HOLD_FRACTION * memory_budget:  # read once, kept for the major cycles
        # as one block per part: each pass then grids a part in one ducc0 call (one FFT)
        whole = [tuple(a.rechunk({0: -1}) for a in (p.vis, w, p.uvw))
                 for p, w in zip(parts, weights, strict=True)]  # fmt: skip
        persisted = dask.persist(*whole)
        for p, (v, _w, u) in zip(parts, persisted, strict=True):
            p.vis, p.uvw = v, u
        weights = [w for _, w, _ in persisted]
    banded = [_band_parts(parts, weights, m) for m in bands]
    # multi-scale CLEAN needs the PSF at twice the image's size (its wide components' far
    # sidelobes); its centre crop is the image-sized PSF of the products
    psf_geom = Geometry(2 * geom.nx, 2 * geom.ny, geom.cell) if cfg.multiscale else geom
    lazy = [(_grid_parts(bp, bw, geom, cfg), _grid_parts(bp, bw, psf_geom, cfg, psf=True))
            for bp, bw in banded]  # fmt: skip
    with _gridding_scheduler():
        (done,) = compute(lazy, description="gridding the dirty images and PSFs")
    planes = []
    for b, ((dirty, psf), (bp, _)) in enumerate(zip(done, banded, strict=True)):
        # the PSF's centre is Σw (to the gridder's accuracy): dividing by it, the PSF peaks
        # at exactly 1 and a point source at exactly its flux
        norm = float(psf[psf_geom.ref[1], psf_geom.ref[0]])
        full = None
        if cfg.multiscale:
            full = psf / norm
            j0, i0 = geom.ny // 2, geom.nx // 2
            psf = psf[j0 : j0 + geom.ny, i0 : i0 + geom.nx]
        if not norm > 0:
            raise OptionError(
                f"every visibility of field {cfg.field} in the chosen channels"
                + (f" of output channel {b}" if len(bands) > 1 else "")
                + " is flagged or weighted zero: nothing to image"
            )
        # a band's frequency: the centre of its range (evenly spaced bands, one FITS cube)
        name = f"{b:04d}" if len(bands) > 1 else ""
        centre, width = 0.5 * (edges[b] + edges[b + 1]), float(edges[b + 1] - edges[b])
        if len(bands) == 1:
            freqs = np.concatenate([p.freq for p in bp])
            centre, width = 0.5 * (freqs.min() + freqs.max()), float(np.ptp(freqs)) or 1.0
        planes.append(Plane(name, dirty / norm, psf / norm, np.zeros_like(dirty),
                            dirty / norm, centre, width, norm, psf_full=full))  # fmt: skip
    iterations, majors = _deconvolve(cfg, geom, banded, planes, user_mask)
    if len(planes) > 1:
        planes.append(_mfs(planes))
    _restore(planes, cfg.scale)
    out = Images(planes, iterations, majors)
    out.files = _write(cfg, sub, out)
    return out


def _mfs(bands: list[Plane]) -> Plane:
    """The bands combined, each weighted by its Σw (what gridding them together gives)."""
    w = np.array([b.weight for b in bands])
    w = w / w.sum()

    def mean(attr):
        return np.tensordot(w, np.stack([getattr(b, attr) for b in bands]), axes=1)

    lo = min(b.freq - b.width / 2 for b in bands)
    hi = max(b.freq + b.width / 2 for b in bands)
    return Plane("MFS", mean("dirty"), mean("psf"), mean("model"), mean("residual"),
                 float(np.dot(w, [b.freq for b in bands])), hi - lo,
                 float(sum(b.weight for b in bands)))  # fmt: skip


def _restore(planes: list[Plane], cell: float) -> None:
    from radiocloud.image import products

    for p in planes:
        p.beam = products.fit_beam(p.psf, cell)
        p.image = products.restore(p.model, p.residual, p.beam, cell)


def _deconvolve(cfg, geom, banded, planes: list[Plane], user_mask=None) -> tuple[int, int]:
    """Cotton-Schwab: minor cycles on the residual image(s) down to (1 - mgain) of the peak,
    then the exact residuals from the visibilities, until niter or the threshold. Several
    bands are cleaned together (joined channels: peaks found on their weighted mean).

    Thresholds follow WSClean: ``--threshold`` in Jy; ``--auto-threshold`` in units of the
    residual's robust rms, measured again at every major cycle; ``--auto-mask`` cleans
    unmasked down to that many rms, then only where the model has components, down to the
    auto-threshold. A ``--fits-mask`` restricts every component to its non-zero pixels."""
    if cfg.niter == 0:
        return 0, 0
    joined = len(planes) > 1
    weights = np.array([p.weight for p in planes])
    residuals = np.stack([p.residual for p in planes])
    models = np.stack([p.model for p in planes])
    psfs = np.stack([p.psf for p in planes])
    freqs = np.array([p.freq for p in planes])

    def mean_residual():
        return np.tensordot(weights / weights.sum(), residuals, axes=1)

    left, majors, auto_masked = cfg.niter, 0, None
    while left > 0 and majors < cfg.major_limit:
        rms = robust_rms(mean_residual())
        final = max(cfg.threshold, (cfg.auto_threshold or 0.0) * rms)
        mask = user_mask
        threshold = final
        if cfg.auto_mask is not None and auto_masked is None:
            threshold = max(final, cfg.auto_mask * rms)  # first stage: unmasked
        elif auto_masked is not None:
            mask = auto_masked if user_mask is None else auto_masked & user_mask
        region = mean_residual() if mask is None else np.where(mask, mean_residual(), 0.0)
        peak = float(np.abs(region).max())
        if peak <= threshold:
            if cfg.auto_mask is not None and auto_masked is None and np.any(models):
                auto_masked = np.any(models != 0, axis=0)  # second stage: within the model
                log.info("auto-mask: %d pixels; cleaning on to %.3g Jy", auto_masked.sum(),
                         final)  # fmt: skip
                continue
            break
        stop = max(threshold, (1.0 - cfg.mgain) * peak)
        if joined:
            result = clean.hogbom_joined(residuals, psfs, weights, gain=cfg.gain, niter=left,
                                         threshold=stop, models=models, mask=mask,
                                         spectral_terms=cfg.fit_spectral_pol,
                                         frequencies=freqs)  # fmt: skip
        elif cfg.multiscale:
            result = multiscale.multiscale(residuals[0], planes[0].psf_full, gain=cfg.gain,
                                           niter=left, threshold=stop, scales=cfg.scales,
                                           scale_bias=cfg.scale_bias, mask=mask,
                                           model=models[0], nthreads=cfg.threads)  # fmt: skip
        else:
            minor = {"hogbom": clean.hogbom, "clark": clean.clark}[cfg.minor]
            result = minor(residuals[0], psfs[0], gain=cfg.gain, niter=left, threshold=stop,
                           model=models[0], mask=mask)  # fmt: skip
        left -= result.iterations
        log.info("minor cycle %d: %d components, peak %.4g Jy", majors + 1, result.iterations,
                 result.peak)  # fmt: skip
        if cfg.mgain >= 1.0 and cfg.auto_mask is None:
            break
        majors += 1
        for b, ((bp, bw), plane) in enumerate(zip(banded, planes, strict=True)):
            residuals[b] = _exact_residual(cfg, geom, bp, bw, models[b]) / plane.weight
        final_stage = cfg.auto_mask is None or auto_masked is not None
        if final_stage and stop <= final and result.threshold_reached:
            break  # the minor cycle reached the final threshold: done, as WSClean stops
        if result.iterations == 0 and not (cfg.auto_mask is not None and auto_masked is None):
            break
    for b, plane in enumerate(planes):
        plane.model, plane.residual = models[b], residuals[b]
    return cfg.niter - left, majors


def read_mask(path: str, geom: Geometry) -> np.ndarray:
    """A FITS mask as (ny, nx) bool: True where non-zero (components allowed there)."""
    from astropy.io import fits

    from radiocloud.core.errors import DatasetNotFoundError

    try:
        data = np.asarray(fits.getdata(path), dtype=float)
    except FileNotFoundError:
        raise DatasetNotFoundError(f"--fits-mask '{path}' does not exist") from None
    except OSError as exc:
        raise OptionError(f"--fits-mask '{path}' is not a FITS image: {exc}") from None
    plane = data.reshape(data.shape[-2:]) if data.size == data.shape[-1] * data.shape[-2] else None
    if plane is None or plane.shape != (geom.ny, geom.nx):
        raise OptionError(
            f"--fits-mask '{path}' has shape {data.shape}: it must be one {geom.ny}x{geom.nx} "
            "plane, the image's size"
        )
    if not np.any(plane):
        raise OptionError(f"--fits-mask '{path}' is zero everywhere: nothing may be cleaned")
    return plane != 0


def _exact_residual(cfg, geom, parts, weights, model):
    """Σ w (V - M) gridded, M the model's visibilities by degridding: one pass."""

    def residual_vis(p: Part):
        return p.vis.map_blocks(_subtract, p.uvw, p.freq, model, geom, cfg.accuracy,
                                cfg.threads, dtype=p.vis.dtype)  # fmt: skip

    with _gridding_scheduler():
        (image,) = compute(_grid_parts(parts, weights, geom, cfg, vis_of=residual_vis),
                           description="major cycle: residual visibilities gridded")  # fmt: skip
    return image


def _gridding_scheduler():
    """One gridding task at a time in this process (ducc0 runs each on every thread, and
    each holds an oversampled grid); a distributed scheduler is left as it is."""
    import contextlib

    from dask.base import get_scheduler

    if get_scheduler() is dask.threaded.get:
        return dask.config.set(scheduler="sync")
    return contextlib.nullcontext()


def _subtract(vis, uvw, freq, model, geom, accuracy, nthreads):
    return vis - degrid(uvw, freq, model, geom, epsilon=accuracy,
                        nthreads=nthreads).astype(vis.dtype)  # fmt: skip


def robust_rms(image: np.ndarray) -> float:
    """Robust rms: 1.4826 x the median absolute deviation."""
    return float(1.4826 * np.median(np.abs(image - np.median(image))))


def _write(cfg: ImageConfig, sub, out: Images) -> list[str]:
    """WSClean's names: PREFIX-image.fits with one band; PREFIX-0000-image.fits ... and
    PREFIX-MFS-image.fits with several; PREFIX-sources.txt from the main model."""
    from radiocloud.image import products

    ra0, dec0 = (float(v) for v in sub.fields[cfg.field].phase_dir)
    files = []
    for p in out.planes:
        stem = f"{cfg.prefix}-{p.name}-" if p.name else f"{cfg.prefix}-"
        common = {"ra0": ra0, "dec0": dec0, "cell_rad": cfg.scale, "freq": p.freq,
                  "width": p.width}  # fmt: skip
        for name, plane, beam, unit in (
            ("dirty", p.dirty, p.beam, "JY/BEAM"),
            ("psf", p.psf, p.beam, "JY/BEAM"),
            ("model", p.model, None, "JY/PIXEL"),
            ("residual", p.residual, p.beam, "JY/BEAM"),
            ("image", p.image, p.beam, "JY/BEAM"),
        ):
            files.append(products.write_plane(f"{stem}{name}.fits", plane, beam=beam,
                                              bunit=unit, **common))  # fmt: skip
    bands = out.planes[:-1] if len(out.planes) > 1 else out.planes
    if len(bands) > 1:  # the bands' models as one cube: rc-predict's model with --predict
        files.append(products.write_image(
            f"{cfg.prefix}-model-cube.fits", np.stack([b.model for b in bands]), ra0=ra0,
            dec0=dec0, cell_rad=cfg.scale, freqs=np.array([b.freq for b in bands]),
            widths=np.array([b.width for b in bands]), bunit="JY/PIXEL"))  # fmt: skip
    main = out.main
    components = _components(main.model, bands, ra0, dec0, cfg.scale, main.freq,
                             cfg.fit_spectral_pol)  # fmt: skip
    files.append(products.write_components(f"{cfg.prefix}-sources.txt", components,
                                           ref_freq=main.freq))  # fmt: skip
    return files


def _components(model, bands, ra0, dec0, cell, ref_freq, terms):
    """The model's non-zero pixels as point components, brightest first; with several bands
    and ``terms``, each with the ordinary polynomial of that many terms fitted to its band
    fluxes in (ν/ν₀ - 1), weighted by the bands' Σw (the component list's convention:
    I(ν) = I₀ + c₀ (x - 1) + c₁ (x - 1)² + ...)."""
    from radiocloud.image.products import Component, pixel_to_radec

    j, i = np.nonzero(model)
    order = np.argsort(-np.abs(model[j, i]))
    fit = terms is not None and terms > 1 and len(bands) > 1
    if fit:
        x = np.array([b.freq for b in bands]) / ref_freq - 1.0
        sw = np.sqrt([b.weight for b in bands])
        design = np.vander(x, terms, increasing=True) * sw[:, None]
    out = []
    for k in order:
        ra, dec = pixel_to_radec(i[k], j[k], ra0=ra0, dec0=dec0, cell_rad=cell, shape=model.shape)
        flux, poly = float(model[j[k], i[k]]), ()
        if fit:
            spectrum = np.array([b.model[j[k], i[k]] for b in bands])
            coeffs = np.linalg.lstsq(design, spectrum * sw, rcond=None)[0]
            flux, poly = float(coeffs[0]), tuple(float(c) for c in coeffs[1:])
        out.append(Component(float(ra), float(dec), flux, poly))
    return out
