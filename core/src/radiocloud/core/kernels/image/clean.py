"""CLEAN minor cycles on residual images: Högbom, Clark, and Högbom on joined channels.

Conventions shared by every function here:

* Images are C-contiguous float64 (ny, nx) arrays indexed ``[j, i]`` = [row (Dec), column (RA)].
  The residual is updated in place; components accumulate in place into ``model`` (Jy/pixel),
  or into a new zero array when none is given. :class:`Result` returns the model either way.
* The PSF peaks at 1 on its centre pixel ``(py // 2, px // 2)``. A component of flux ``c`` at
  ``(j0, i0)`` subtracts ``c × psf[j - j0 + py // 2, i - i0 + px // 2]`` from every residual pixel
  ``(j, i)`` whose index falls inside the PSF. Two PSF sizes are accepted:

  - ``(2 ny, 2 nx)``, peak at ``(ny, nx)``: covers every offset between two image pixels, so the
    subtraction is exact everywhere. Use it when the imager can grid the PSF at twice the size.
  - ``(ny, nx)``, peak at ``(ny // 2, nx // 2)``: covers offsets up to half the image. A
    component is subtracted only inside the (ny, nx) window centred on it, so a component away
    from the image centre leaves its far sidelobes in the part of the image beyond that window.
    Fine inside Cotton-Schwab major cycles, which subtract the model exactly from the
    visibilities, but a minor cycle run far below the far-sidelobe level there cleans
    sidelobes that were never subtracted.

  Högbom costs O(ny nx) per iteration with either size (joined channels: per band); Clark's
  FFTs grow from 1.5 to 2 times the image side with the larger PSF.
* A minor cycle stops after ``niter`` iterations (``niter=0`` changes nothing and just reports
  the peak), or as soon as the residual's peak inside ``mask`` has ``|peak| < threshold`` (Jy),
  or when that peak is exactly zero. Components may be negative, as in WSClean.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import scipy.fft

from radiocloud.core.errors import OptionError
from radiocloud.core.jit import njit

_PSF_PEAK_TOLERANCE = 1e-6  # the PSF's centre must be 1 and its largest |value| within this
_FULL_PSF_FRACTION = 0.3  # Clark with the whole PSF: each cycle cleans to 0.3 of its peak
_LANES = 8  # running maxima in a row search


@dataclass(frozen=True)
class Result:
    """What a minor cycle did.

    ``model``: the model the components were added to, (ny, nx), or (nband, ny, nx) for joined
    channels; ``iterations``: how many components were subtracted; ``peak``: the residual's
    value of largest magnitude inside the mask at the end (signed, Jy/beam; on the weighted mean
    image for joined channels); ``threshold_reached``: whether ``|peak| < threshold``.
    """

    model: np.ndarray
    iterations: int
    peak: float
    threshold_reached: bool


def hogbom(
    residual: np.ndarray,
    psf: np.ndarray,
    *,
    gain: float = 0.1,
    niter: int,
    threshold: float,
    mask: np.ndarray | None = None,
    model: np.ndarray | None = None,
) -> Result:
    """Högbom (1974) CLEAN: find the masked pixel of largest ``|residual|``, add ``gain`` times
    its value to the model there, subtract that times the shifted PSF from the whole residual,
    repeat. ``residual`` (ny, nx) float64, updated in place; ``psf`` (ny, nx) or (2 ny, 2 nx)
    (module docstring); ``mask`` (ny, nx) bool, True where components may go (None: anywhere);
    ``model`` (ny, nx) float64, added to in place (None: a new zero array).

    The whole loop runs in one compiled call; each iteration is one pass over the image that
    subtracts the PSF and finds the next peak together.
    """
    residual, model = _image(residual, "residual"), _image(model, "model", residual.shape)
    psf, window = _psf(psf, residual.shape), _window(mask, residual.shape)
    gain, niter, threshold = _loop_options(gain, niter, threshold)
    one_band = residual[None], psf[None], model[None]
    done, peak = _hogbom_loop(*one_band, window, np.ones(1), np.eye(1), gain, niter, threshold)
    return Result(model, done, peak, abs(peak) < threshold)


def hogbom_joined(
    residuals: np.ndarray,
    psfs: np.ndarray,
    band_weights: np.ndarray,
    *,
    gain: float = 0.1,
    niter: int,
    threshold: float,
    mask: np.ndarray | None = None,
    models: np.ndarray | None = None,
    spectral_terms: int | None = None,
    frequencies: np.ndarray | None = None,
) -> Result:
    """Högbom CLEAN on joined channels (WSClean's ``-join-channels``).

    ``residuals`` (nband, ny, nx) float64, updated in place; ``psfs`` (nband, ny, nx) or
    (nband, 2 ny, 2 nx), one PSF per band, each peaking at 1 on its centre pixel;
    ``band_weights`` (nband,) ≥ 0, not all zero; ``models`` (nband, ny, nx) float64, added to
    in place (None: new zeros); ``mask`` as in :func:`hogbom`.

    Each iteration finds the masked pixel of largest magnitude on the weighted mean image
    ``Σ_b w_b R_b / Σ_b w_b``, takes each band's residual there as the component's spectrum,
    and subtracts ``gain`` × spectrum_b × PSF_b shifted there from each band. ``threshold``
    applies to the mean image.

    ``spectral_terms`` = n fits the spectrum with a polynomial of n terms in ``ν / ν_ref - 1``
    (``frequencies`` (nband,) Hz, the band centres; ``ν_ref`` their weighted mean) by least
    squares weighted by ``band_weights``, and uses the fit instead (WSClean's
    ``-fit-spectral-pol``). The fit keeps the weighted mean of the spectrum, so the mean image's
    peak still drops by ``gain`` times itself.
    """
    residuals = _cube(residuals, "residuals")
    nband, ny, nx = residuals.shape
    models = _cube(models, "models", residuals.shape)
    psfs = _psf(psfs, (ny, nx), nband, name="psfs")
    weights = _band_weights(band_weights, nband)
    projection = _spectral_projection(weights, spectral_terms, frequencies)
    gain, niter, threshold = _loop_options(gain, niter, threshold)
    window = _window(mask, (ny, nx))
    weights = weights / weights.sum()
    done, peak = _hogbom_loop(
        residuals, psfs, models, window, weights, projection, gain, niter, threshold
    )
    return Result(models, done, peak, abs(peak) < threshold)


def clark(
    residual: np.ndarray,
    psf: np.ndarray,
    *,
    gain: float = 0.1,
    niter: int,
    threshold: float,
    mask: np.ndarray | None = None,
    model: np.ndarray | None = None,
    psf_patch: int | None = None,
    fraction: float | None = None,
    nthreads: int = 1,
) -> Result:
    """Clark (1980) CLEAN: Högbom on the brightest pixels only, then an exact subtraction of the
    components found by FFT convolution with the whole PSF, repeated.

    Arguments as in :func:`hogbom`. Each cycle keeps the masked pixels with ``|residual|`` at or
    above ``level = max(threshold, fraction × |peak|)`` and runs Högbom on those alone until
    none is at ``level`` (or ``niter`` is used up); then the components are convolved with the
    whole PSF and subtracted from the whole residual, and the next cycle starts from its peak.

    ``psf_patch`` None (the default): the active pixels act on each other through the whole
    PSF, so each cycle is exact Högbom on them (WSClean's and pfb-imaging's Clark loops do
    this); ``fraction`` then defaults to 0.3. ``psf_patch`` = p: Clark's original beam patch,
    the PSF's pixels within p of its centre along both axes; ``fraction`` then defaults to the
    PSF's largest ``|value|`` outside the patch, s. The sidelobes the patch leaves out add up
    over a cycle's components, so a cycle here also ends once its components' total ``|flux|``
    reaches ``level / s`` (not in Clark 1980: without it, cycles overshoot and diverge when
    the far sidelobes are high). Even so, with high far sidelobes (sparse uv coverage) the
    patch takes many cycles and puts some flux on sidelobe ghosts; and it saves nothing per
    iteration here, where every active pixel is visited either way. ``nthreads``: the FFTs'
    threads.

    A minor iteration costs O(active pixels) instead of Högbom's O(ny nx), and a cycle two
    FFTs of 1.5 or 2 times the image side, so Clark wins when many iterations run on a large
    image.
    """
    residual, model = _image(residual, "residual"), _image(model, "model", residual.shape)
    psf, window = _psf(psf, residual.shape), _window(mask, residual.shape)
    gain, niter, threshold = _loop_options(gain, niter, threshold)
    patch = max(psf.shape) if psf_patch is None else _count(psf_patch, "psf_patch", minimum=1)
    sidelobe = _sidelobe(psf, patch)
    if fraction is None:
        fraction = _FULL_PSF_FRACTION if psf_patch is None else sidelobe
    elif not 0 <= fraction < 1:
        raise OptionError(f"fraction {fraction}: must be at least 0 and below 1")
    convolve = _PsfConvolution(psf, residual.shape, _count(nthreads, "nthreads", minimum=1))
    done, (_, _, peak) = 0, _peak(residual, window)
    while done < niter and _cleaning(peak, threshold):
        level = max(threshold, fraction * abs(peak))
        active = np.flatnonzero((window > 0) & (np.abs(residual) >= level))
        rows, cols = np.divmod(active, residual.shape[1])
        components = np.zeros_like(residual)
        values = residual[rows, cols]
        budget = level / sidelobe if sidelobe > 0 else np.inf
        done += _clark_cycle(
            values, rows, cols, psf, patch, gain, level, niter - done, components, budget
        )
        residual -= convolve(components)
        model += components
        _, _, peak = _peak(residual, window)
    return Result(model, done, peak, abs(peak) < threshold)


# --- Kernels ------------------------------------------------------------------------------------


@njit()
def _cleaning(peak, threshold):
    """Whether a minor cycle goes on at this peak."""
    return abs(peak) >= threshold and peak != 0.0


@njit()
def _hogbom_loop(residuals, psfs, models, window, weights, projection, gain, niter, threshold):
    """The whole Högbom loop over bands (one band for plain Högbom): (iterations, final peak).
    ``weights`` sum to 1; ``projection`` (nband, nband) maps the residual spectrum at the peak
    to the component's spectrum (the identity, or a polynomial fit)."""
    nband = residuals.shape[0]
    spectrum, flux = np.zeros(nband), np.zeros(nband)
    j0, i0 = np.int64(-1), np.int64(-1)  # no component yet: only search (not literal-typed)
    j0, i0, peak = _subtract_and_peak(residuals, psfs, flux, j0, i0, window, weights)
    done = 0
    while done < niter and _cleaning(peak, threshold):
        for b in range(nband):
            spectrum[b] = residuals[b, j0, i0]
        for b in range(nband):
            flux[b] = 0.0
            for c in range(nband):
                flux[b] += gain * projection[b, c] * spectrum[c]
            models[b, j0, i0] += flux[b]
        j0, i0, peak = _subtract_and_peak(residuals, psfs, flux, j0, i0, window, weights)
        done += 1
    return done, peak


@njit()
def _subtract_and_peak(images, psfs, flux, j0, i0, window, weights):
    """Subtract ``flux[b]`` × ``psfs[b]`` shifted to (j0, i0) from each band ``images[b]``
    (nothing if j0 < 0), then return (j, i, value) of the pixel of largest magnitude of the
    ``weights``-weighted sum of the bands where ``window`` (ny, nx) is 1, first in raster order
    on ties; (-1, -1, 0.0) if that sum is 0 throughout the window. One pass: each row is
    subtracted, then searched while in cache."""
    nband, ny, nx = images.shape
    dj, di = psfs.shape[1] // 2 - j0, psfs.shape[2] // 2 - i0  # image (j, i) -> psf (j+dj, i+di)
    jlo, jhi = (max(0, -dj), min(ny, psfs.shape[1] - dj)) if j0 >= 0 else (0, 0)
    ilo, ihi = max(0, -di), min(nx, psfs.shape[2] - di)
    weighted, lanes = np.empty(nx), np.empty(_LANES)
    best_j, best_i, best = -1, -1, 0.0
    for j in range(ny):
        if jlo <= j < jhi:
            for b in range(nband):
                _subtract(images[b, j, ilo:ihi], psfs[b, j + dj, ilo + di : ihi + di], flux[b])
        search = images[0, j] if nband == 1 else _weighted_sum(images[:, j], weights, weighted)
        row_best = _largest(search, window[j], lanes)
        if row_best > best:
            best_j, best = j, row_best
            best_i = np.argmax(np.abs(search) * window[j] == row_best)
    if best_j < 0:
        return -1, -1, 0.0
    return best_j, best_i, np.sum(weights * images[:, best_j, best_i])


@njit()
def _subtract(row, psf_row, flux):
    """row -= flux × psf_row (``flux`` a scalar, so nothing aliases it and the loop is SIMD)."""
    for i in range(row.size):
        row[i] -= flux * psf_row[i]


@njit()
def _weighted_sum(rows, weights, out):
    """``out`` (n,) = Σ_b weights[b] rows[b] for ``rows`` (nband, n)."""
    out[:] = 0.0
    for b in range(rows.shape[0]):
        row, w = rows[b], weights[b]
        for i in range(out.size):
            out[i] += w * row[i]
    return out


@njit()
def _largest(row, window, lanes):
    """max |row| × window, in ``_LANES`` running maxima (``lanes``, scratch) so the comparisons
    pipeline: three times faster than one running maximum."""
    lanes[:] = 0.0
    body = row.size - row.size % _LANES
    for i in range(0, body, _LANES):
        for k in range(_LANES):  # a compile-time count: unrolled, the lanes stay in registers
            lanes[k] = max(lanes[k], abs(row[i + k]) * window[i + k])
    best = lanes.max()
    for i in range(body, row.size):
        best = max(best, abs(row[i]) * window[i])
    return best


def _peak(image, window):
    """(j, i, value) of the pixel of largest ``|image|`` inside the window."""
    return _subtract_and_peak(image[None], image[None], np.zeros(1), -1, -1, window, np.ones(1))


@njit()
def _clark_cycle(values, rows, cols, psf, patch, gain, level, niter, components, budget):
    """Högbom on the active pixels (``values`` at (``rows``, ``cols``), updated in place) with
    the PSF's pixels within ``patch`` of its centre along both axes, until the largest |value|
    is below ``level``, ``niter`` iterations are done, or the components' total |flux| reaches
    ``budget``; components are added to ``components`` (ny, nx). Returns the iterations done."""
    cy, cx = psf.shape[0] // 2, psf.shape[1] // 2
    jlo, jhi = max(-patch, -cy), min(patch, psf.shape[0] - 1 - cy)  # offsets inside the patch
    ilo, ihi = max(-patch, -cx), min(patch, psf.shape[1] - 1 - cx)
    k, done, spent = np.argmax(np.abs(values)), 0, 0.0
    while done < niter and spent < budget and _cleaning(values[k], level):
        flux = gain * values[k]
        j0, i0 = rows[k], cols[k]
        components[j0, i0] += flux
        spent += abs(flux)
        best = -1.0
        for m in range(values.size):
            dj, di = rows[m] - j0, cols[m] - i0
            if jlo <= dj <= jhi and ilo <= di <= ihi:
                values[m] -= flux * psf[cy + dj, cx + di]
            if abs(values[m]) > best:
                best, k = abs(values[m]), m
        done += 1
    return done


class _PsfConvolution:
    """Components (ny, nx) -> their image through the PSF with the shifting rule of the module
    docstring, by FFT. The transforms are long enough that no wrapped term reaches the image:
    a length L along an axis of n pixels and a PSF of p pixels centred at c needs
    ``L ≥ max(n + p - 1 - c, n + c)`` (1.5 n for p = n, 2 n for p = 2 n)."""

    def __init__(self, psf: np.ndarray, shape: tuple[int, int], nthreads: int):
        self.shape, self.nthreads = shape, nthreads
        self.centre = (psf.shape[0] // 2, psf.shape[1] // 2)
        self.size = tuple(
            scipy.fft.next_fast_len(max(n + p - 1 - c, n + c), real=True)
            for n, p, c in zip(shape, psf.shape, self.centre, strict=True)
        )
        self.psf_ft = scipy.fft.rfft2(psf, s=self.size, workers=nthreads)

    def __call__(self, components: np.ndarray) -> np.ndarray:
        ft = scipy.fft.rfft2(components, s=self.size, workers=self.nthreads)
        image = scipy.fft.irfft2(ft * self.psf_ft, s=self.size, workers=self.nthreads)
        (cy, cx), (ny, nx) = self.centre, self.shape
        return image[cy : cy + ny, cx : cx + nx]


def _sidelobe(psf: np.ndarray, patch: int) -> float:
    """The PSF's largest |value| outside its central (2 patch + 1)² pixels (0 if none)."""
    cy, cx = psf.shape[0] // 2, psf.shape[1] // 2
    outside = np.abs(psf)
    outside[max(0, cy - patch) : cy + patch + 1, max(0, cx - patch) : cx + patch + 1] = 0.0
    return float(outside.max())


def _spectral_projection(weights, terms, frequencies) -> np.ndarray:
    """(nband, nband) matrix taking a spectrum to its weighted least-squares polynomial fit of
    ``terms`` terms in ``ν / ν_ref - 1`` (the identity when ``terms`` is None)."""
    nband = weights.size
    if terms is None:
        return np.eye(nband)
    usable = int(np.count_nonzero(weights))
    terms = _count(terms, "spectral_terms", minimum=1)
    if terms > usable:
        raise OptionError(f"spectral_terms {terms}: at most the {usable} bands of non-zero weight")
    if frequencies is None:
        raise OptionError("spectral_terms needs the band centre frequencies (frequencies=...)")
    nu = np.asarray(frequencies, dtype=np.float64)
    if nu.shape != (nband,) or not np.all(np.isfinite(nu) & (nu > 0)):
        raise OptionError(f"frequencies: give {nband} positive band centres in Hz")
    if np.unique(nu[weights > 0]).size < terms:
        raise OptionError(f"spectral_terms {terms}: more terms than distinct weighted frequencies")
    x = nu / (np.sum(weights * nu) / weights.sum()) - 1.0
    basis = x[:, None] ** np.arange(terms)
    root = np.sqrt(weights)
    return basis @ (np.linalg.pinv(root[:, None] * basis) * root)


# --- Checks of the caller's input ---------------------------------------------------------------


def _image(image, name: str, shape: tuple[int, ...] | None = None, ndim: int = 2) -> np.ndarray:
    """An array updated in place: writeable C-contiguous float64 of ``shape`` (of ``ndim`` axes
    if None), every pixel finite; None with a shape gives a new zero array."""
    if image is None and shape is not None:
        return np.zeros(shape)
    if not isinstance(image, np.ndarray) or image.dtype != np.float64:
        got = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise OptionError(f"{name} ({got}): give a float64 numpy array (it is updated in place)")
    wrong_shape = image.shape != shape if shape is not None else image.ndim != ndim
    if wrong_shape or image.size == 0:
        raise OptionError(f"{name} shape {image.shape}: expected {shape or f'{ndim} axes'}")
    if not (image.flags.c_contiguous and image.flags.writeable):
        raise OptionError(f"{name}: give a writeable C-contiguous array (it is updated in place)")
    if not np.all(np.isfinite(image)):
        raise OptionError(f"{name}: every pixel must be finite")
    return image


def _cube(cube, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    return _image(cube, name, shape, ndim=3)


def _psf(psf, shape: tuple[int, int], nband: int | None = None, name: str = "psf") -> np.ndarray:
    """The PSF(s) as float64, checked against the image shape and the peak convention."""
    psf = np.ascontiguousarray(psf, dtype=np.float64)
    lead = () if nband is None else (nband,)
    ny, nx = shape
    if psf.shape not in ((*lead, ny, nx), (*lead, 2 * ny, 2 * nx)):
        raise OptionError(
            f"{name} shape {psf.shape}: give {(*lead, ny, nx)} or twice the image, "
            f"{(*lead, 2 * ny, 2 * nx)}"
        )
    cy, cx = psf.shape[-2] // 2, psf.shape[-1] // 2
    centre = psf[..., cy, cx]
    top = np.max(np.abs(psf), axis=(-2, -1))
    ok = np.all(np.abs(centre - 1.0) <= _PSF_PEAK_TOLERANCE)
    if not ok or not np.all(top <= 1.0 + _PSF_PEAK_TOLERANCE) or not np.all(np.isfinite(psf)):
        raise OptionError(
            f"{name} must peak at 1 on its centre pixel {(cy, cx)}: found {np.min(centre):.6g} "
            f"there and {np.max(top):.6g} at most"
        )
    return psf


def _window(mask, shape: tuple[int, int]) -> np.ndarray:
    """The mask as float64, 1 where components may go and 0 elsewhere (the kernels multiply
    by it: a branch per pixel on a bool is several times slower)."""
    if mask is None:
        return np.ones(shape)
    mask = np.asarray(mask)
    if mask.shape != shape or mask.dtype != np.bool_:
        raise OptionError(f"mask ({mask.dtype} {mask.shape}): give a bool array of {shape}")
    return mask.astype(np.float64)


def _band_weights(weights, nband: int) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (nband,) or not np.all(np.isfinite(weights) & (weights >= 0)):
        raise OptionError(f"band_weights: give {nband} finite weights, at least 0")
    if not weights.sum() > 0:
        raise OptionError("band_weights: at least one must be positive")
    return weights


def _loop_options(gain, niter, threshold) -> tuple[float, int, float]:
    if not 0 < gain <= 1:
        raise OptionError(f"gain {gain}: must be above 0 and at most 1")
    if not (np.isfinite(threshold) and threshold >= 0):
        raise OptionError(f"threshold {threshold}: must be finite and at least 0 (Jy)")
    return float(gain), _count(niter, "niter", minimum=0), float(threshold)


def _count(value, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise OptionError(f"{name} {value!r}: must be a whole number, at least {minimum}")
    return int(value)
