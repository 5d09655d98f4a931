"""Multi-scale CLEAN (Cornwell 2008), scales and bias chosen as WSClean's ``-multiscale`` does.

The conventions of :mod:`radiocloud.core.kernels.image.clean` hold (image layout, the PSF's
peak and shifting rule, the residual and model updated in place, :class:`Result`), except that
any scale above 0 needs the PSF at twice the image's size. Then every subtraction is the PSF's
exact response on the image, a positive semi-definite operator, and each iteration lowers the
residual's energy. A wide component's smoothed PSF has a low peak and relatively strong far
sidelobes: cut at half the image, the operator is indefinite and the loop can diverge (in
trials on a 512² field of bright extended emission it did within a few hundred iterations,
Cotton-Schwab major cycles or not, where the PSF of twice the size converged).
What is particular to several scales (⊛ is convolution, R the residual, B the PSF):

* A scale is a diameter in pixels; 0 is a point. Scale s > 0 is WSClean's tapered quadratic
  kernel Φ_s on ``n = 2 ceil(s / 2) + 1`` pixels a side: at distance r from its centre,
  ``max(1 - (r / s)², 0) × (1 + cos(π r / (ceil(s / 2) + 1))) / 2``, and 0 beyond
  ``r = ceil(s / 2) + 1``, scaled to unit sum (its FWHM is about s / 2). A component of flux
  ``c`` Jy at scale s adds ``c Φ_s`` centred on its pixel to the model, so the model stays in
  Jy/pixel and ``model.sum()`` is the total flux cleaned. A component's centre keeps
  ``ceil(s / 2)`` pixels from every edge, so its whole kernel lies in the image.
* The residual smoothed by each scale, ``R_s = Φ_s ⊛ R``, and the PSF smoothed by each pair,
  ``B_st = Φ_s ⊛ Φ_t ⊛ B``, are computed once per call by FFT (zero beyond the image's and the
  PSF's edges). Each iteration takes, over the scales, the masked pixel with the largest
  ``w_s |R_s|``, where the scale bias ``w_s = scale_bias ** -log2(s / 2 FWHM)`` (``w_0 = 1``,
  FWHM the PSF's main-lobe width: WSClean's rule, so each doubling of the scale multiplies it
  by ``1 / scale_bias``). The component there has ``c = gain × R_s / B_ss(0)`` (a source of
  that shape and flux F gives ``R_s = F B_ss(0)``, so ``c = gain × F``); ``c B_st`` is
  subtracted from every ``R_t``, and ``c B_0s = c Φ_s ⊛ B`` from R itself.
* The loop stops after ``niter`` components, when R's (unsmoothed) value of largest magnitude
  inside ``mask`` has ``|peak| < threshold`` or is 0, exactly as :func:`clean.hogbom`, or when
  no scale has a non-zero candidate. With ``scales=[0]`` it is Högbom's loop, component for
  component.

Not as WSClean: it cleans one scale at a time in sub-minor loops (Clark-like, with an FFT
update of every scale between them) and takes ``c = gain × R_s / (Φ_s ⊛ B)(0)``; its threshold
applies to the biased smoothed peak ``w_s |R_s|``. Here every iteration chooses afresh among
all the scales (Cornwell's loop), at a cost of one pass over every scale's image:
O(scales × ny × nx), memory-bound (1024², six scales: about 5 ms an iteration, after 2 s of
FFTs). Memory: one image per scale plus ``scales (scales + 1) / 2`` PSF-sized planes (1024²,
six scales: 48 MB of images and 672 MB of planes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.fft
import scipy.ndimage

from radiocloud.core.errors import OptionError
from radiocloud.core.jit import njit
from radiocloud.core.kernels.image.clean import (
    _LANES,
    Result,
    _cleaning,
    _count,
    _image,
    _largest,
    _loop_options,
    _psf,
    _subtract,
    _window,
)

MAX_SCALES = 6  # default scales: 0 and at most five sizes (WSClean sets no limit)


def multiscale(
    residual: np.ndarray,
    psf: np.ndarray,
    *,
    gain: float = 0.1,
    niter: int,
    threshold: float,
    scales: Sequence[float] | None = None,
    scale_bias: float = 0.6,
    mask: np.ndarray | None = None,
    model: np.ndarray | None = None,
    nthreads: int = 1,
) -> Result:
    """Multi-scale CLEAN: components are points or smooth bumps of the given ``scales``
    (diameters in pixels, module docstring), each iteration choosing the scale and pixel that
    best match the residual. ``residual`` (ny, nx) float64, updated in place; ``psf``
    (2 ny, 2 nx), or (ny, nx) with ``scales=[0]`` only; ``mask`` (ny, nx) bool, True where
    component centres may go (None: anywhere); ``model`` (ny, nx) float64, added to in place
    (None: a new zero array).

    ``scales`` None: :func:`default_scales`; otherwise one or more sizes, each at least 0 and
    below half the image's smaller side (sorted, repeats dropped). ``scale_bias`` in (0, 1]:
    lower favours larger scales; 1 weighs every scale alike. ``nthreads``: the FFTs' threads.
    """
    residual, model = _image(residual, "residual"), _image(model, "model", residual.shape)
    shape = residual.shape
    psf, window = _psf(psf, shape), _window(mask, shape)
    gain, niter, threshold = _loop_options(gain, niter, threshold)
    nthreads = _count(nthreads, "nthreads", minimum=1)
    if not 0 < scale_bias <= 1:
        raise OptionError(f"scale_bias {scale_bias}: must be above 0 and at most 1")
    scales = default_scales(psf, shape) if scales is None else _scales(scales, shape)
    if psf.shape == shape and scales[-1] > 0:
        raise OptionError(
            f"psf shape {psf.shape}: scales above 0 need the PSF at twice the image's size, "
            f"{tuple(2 * n for n in psf.shape)} (cut at the image's size, the loop can diverge)"
        )
    sizes = np.union1d([0.0], scales)  # one plane each; plane 0 is R, chosen if 0 is a scale
    bias = _bias(sizes, scale_bias, main_lobe_width(psf), point=scales[0] == 0)
    kernels = [scale_kernel(size) for size in sizes]
    radii = np.array([kernel.shape[0] // 2 for kernel in kernels])
    planes = _smoothed(residual, kernels, [(0, b) for b in range(sizes.size)], nthreads)
    cross, pair = _cross_psfs(psf, kernels, nthreads)
    norms = cross[np.diag(pair), psf.shape[0] // 2, psf.shape[1] // 2]  # B_ss(0)
    if not np.all(norms > 0):
        raise OptionError(
            f"scale {sizes[np.argmin(norms)]:g}: the PSF smoothed by it twice is not positive "
            "at its centre (the data do not measure structure of that size)"
        )
    padded = np.stack([np.pad(k, radii.max() - r) for k, r in zip(kernels, radii, strict=True)])
    done, peak = _multiscale_loop(
        planes, cross, pair, padded, radii, bias, norms, window, model, gain, niter, threshold
    )
    residual[...] = planes[0]
    return Result(model, done, peak, abs(peak) < threshold)


def scale_kernel(scale: float) -> np.ndarray:
    """Φ_s (n, n), ``n = 2 ceil(s / 2) + 1``, unit sum, centred on pixel (n // 2, n // 2): the
    tapered quadratic of the module docstring ([[1.0]] for s = 0)."""
    radius = math.ceil(scale / 2)
    if radius == 0:
        return np.ones((1, 1))
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    r = np.hypot(y, x)
    taper = np.where(r < radius + 1, 0.5 * (1.0 + np.cos(np.pi * r / (radius + 1))), 0.0)
    kernel = np.maximum(1.0 - (r / scale) ** 2, 0.0) * taper
    return kernel / kernel.sum()


def main_lobe_width(psf: np.ndarray) -> float:
    """The PSF's main-lobe FWHM in pixels: the diameter of the circle with the area of the
    connected pixels at or above half the peak around its centre."""
    labels, _ = scipy.ndimage.label(psf >= 0.5)
    area = np.count_nonzero(labels == labels[psf.shape[0] // 2, psf.shape[1] // 2])
    return 2.0 * math.sqrt(area / math.pi)


def default_scales(psf: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """WSClean's scales: 0, then 4 FWHM of the PSF's main lobe, doubling while below half the
    image's smaller side, at most ``MAX_SCALES`` in all (1024² and a 4.7-pixel beam: 0, 19,
    38, 75, 150 and 301 pixels)."""
    scales, size = [0.0], 4.0 * main_lobe_width(psf)
    while size < min(shape) / 2 and len(scales) < MAX_SCALES:
        scales.append(size)
        size *= 2.0
    return np.array(scales)


# --- Kernels ------------------------------------------------------------------------------------


@njit()
def _multiscale_loop(
    planes, cross, pair, kernels, radii, bias, norms, window, model, gain, niter, threshold
):
    """The whole loop over ``planes`` (nplane, ny, nx): [0] is the residual, [b] the residual
    smoothed by plane b's kernel ``kernels[b]`` (centred in an (m, m) array, ``radii[b]`` its
    half-side); ``cross[pair[a, b]]`` is the PSF smoothed by the kernels of planes a and b.
    Returns (iterations, final masked peak of planes[0])."""
    nplane = planes.shape[0]
    rows, cols, values = np.zeros(nplane, np.int64), np.zeros(nplane, np.int64), np.zeros(nplane)
    lanes = np.empty(_LANES)
    a, j0, i0, flux, done = 0, -1, -1, 0.0, 0
    while True:
        for b in range(nplane):
            rows[b], cols[b], values[b] = _subtract_and_peak(
                planes[b], cross[pair[a, b]], flux, j0, i0, window, radii[b], lanes
            )
        scores = bias * np.abs(values)
        a = np.argmax(scores)
        if done == niter or not _cleaning(values[0], threshold) or scores[a] == 0.0:
            return done, values[0]
        j0, i0, flux = rows[a], cols[a], gain * values[a] / norms[a]
        _add_kernel(model, kernels[a], radii[a], j0, i0, flux)
        done += 1


@njit()
def _subtract_and_peak(image, psf, flux, j0, i0, window, inset, lanes):
    """Subtract ``flux`` × ``psf`` shifted to (j0, i0) from ``image`` (nothing if j0 < 0), then
    return (j, i, value) of the pixel of largest magnitude where ``window`` is 1 at least
    ``inset`` pixels from every edge, first in raster order on ties; (-1, -1, 0.0) if all are
    0. One pass, as :func:`clean._subtract_and_peak`."""
    ny, nx = image.shape
    dj, di = psf.shape[0] // 2 - j0, psf.shape[1] // 2 - i0  # image (j, i) -> psf (j+dj, i+di)
    jlo, jhi = (max(0, -dj), min(ny, psf.shape[0] - dj)) if j0 >= 0 else (0, 0)
    ilo, ihi = max(0, -di), min(nx, psf.shape[1] - di)
    best_j, best_i, best = -1, -1, 0.0
    for j in range(ny):
        if jlo <= j < jhi:
            _subtract(image[j, ilo:ihi], psf[j + dj, ilo + di : ihi + di], flux)
        if inset <= j < ny - inset:
            row, row_window = image[j, inset : nx - inset], window[j, inset : nx - inset]
            row_best = _largest(row, row_window, lanes)
            if row_best > best:
                best_j, best = j, row_best
                best_i = inset + np.argmax(np.abs(row) * row_window == row_best)
    if best_j < 0:
        return -1, -1, 0.0
    return best_j, best_i, image[best_j, best_i]


@njit()
def _add_kernel(model, kernel, radius, j0, i0, flux):
    """model += flux × the kernel's central (2 radius + 1)² pixels centred on (j0, i0)."""
    c = kernel.shape[0] // 2
    for dj in range(-radius, radius + 1):
        row, kernel_row = model[j0 + dj], kernel[c + dj]
        for di in range(-radius, radius + 1):
            row[i0 + di] += flux * kernel_row[c + di]


def _cross_psfs(psf, kernels, nthreads: int) -> tuple[np.ndarray, np.ndarray]:
    """(cross, pair): ``cross[pair[a, b]]`` is the PSF smoothed by the kernels of planes a and
    b, one array per pair (``pair`` is symmetric)."""
    count = len(kernels)
    pairs = [(a, b) for a in range(count) for b in range(a, count)]
    pair = np.zeros((count, count), dtype=np.int64)
    for n, (a, b) in enumerate(pairs):
        pair[a, b] = pair[b, a] = n
    return _smoothed(psf, kernels, pairs, nthreads), pair


def _smoothed(image, kernels, pairs, nthreads: int) -> np.ndarray:
    """(len(pairs), *image.shape): ``image`` convolved with ``kernels[a]`` and ``kernels[b]``
    for each pair (a, b), centred as the image, zero beyond its edges; kernel 0 is the delta,
    and pair (0, 0) the image itself, exactly. By FFT, padded by the two widest kernels' reach
    so that nothing wraps around."""
    reach = 2 * max(kernel.shape[0] // 2 for kernel in kernels)
    size = tuple(scipy.fft.next_fast_len(n + reach, real=True) for n in image.shape)
    ny, nx = image.shape

    def transform(array):
        return scipy.fft.rfft2(array, s=size, workers=nthreads)

    def centred(kernel):  # the kernel's centre on pixel (0, 0), its other pixels wrapped round
        padded = np.zeros(size)
        padded[: kernel.shape[0], : kernel.shape[1]] = kernel
        half = kernel.shape[0] // 2
        return np.roll(padded, (-half, -half), axis=(0, 1))

    image_ft, kernel_fts = transform(image), [transform(centred(k)) for k in kernels]
    out = np.empty((len(pairs), ny, nx))
    for n, (a, b) in enumerate(pairs):
        if a == b == 0:
            out[n] = image
        else:
            ft = image_ft * kernel_fts[a] * kernel_fts[b]
            out[n] = scipy.fft.irfft2(ft, s=size, workers=nthreads)[:ny, :nx]
    return out


# --- Checks of the caller's input ---------------------------------------------------------------


def _scales(scales, shape: tuple[int, int]) -> np.ndarray:
    """The scales, checked, sorted and without repeats."""
    try:
        sizes = np.asarray(scales, dtype=np.float64)
    except (TypeError, ValueError):
        raise OptionError(f"scales {scales!r}: give sizes in pixels") from None
    if sizes.ndim != 1 or sizes.size == 0:
        raise OptionError(f"scales {scales!r}: give one or more sizes in pixels")
    if not np.all(np.isfinite(sizes) & (sizes >= 0)):
        raise OptionError(f"scales {scales!r}: each must be finite and at least 0 pixels")
    limit = min(shape) / 2
    if sizes.max() >= limit:
        raise OptionError(
            f"scale {sizes.max():g}: must be below half the image's smaller side, {limit:g} pixels"
        )
    return np.unique(sizes)


def _bias(sizes: np.ndarray, scale_bias: float, width: float, *, point: bool) -> np.ndarray:
    """WSClean's scale bias ``scale_bias ** -log2(s / 2 width)`` for s > 0; for s = 0, 1 if
    ``point`` (0 is one of the scales), else 0 (plane 0 only tracks the residual)."""
    bias = np.full(sizes.size, 1.0 if point else 0.0)
    positive = sizes > 0
    bias[positive] = scale_bias ** -np.log2(sizes[positive] / (2.0 * width))
    return bias
