"""Multi-scale CLEAN: a numpy reference, Högbom as its one-scale case, and Gaussian and point
sources of known flux recovered from noise-free dirty images made with the dirty beam of a
random uv coverage (1000 points: enough short spacings to measure a 25-pixel source's flux)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal

from radiocloud.core.errors import OptionError
from radiocloud.core.kernels.image import clean, multiscale
from radiocloud.core.testing.builders import dirty_beam, response

N = 256
# (row j, column i, FWHM pixels, flux Jy): extended sources, one of them negative
GAUSSIANS = [(70, 70, 25, 3.0), (180, 80, 12, 1.5), (80, 180, 4, 0.8), (175, 175, 12, -0.7)]
POINTS = [(128, 128, 1.0), (40, 200, 0.5), (215, 40, 0.3)]  # (j, i, flux Jy)
THRESHOLD = 2e-4


def observed(sky: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """The sky (ny, nx) seen through a PSF of twice its size: exact, by FFT."""
    ny, nx = sky.shape
    return scipy.signal.fftconvolve(sky, psf, mode="full")[ny : 2 * ny, nx : 2 * nx].copy()


def gaussian(j: int, i: int, fwhm: float, flux: float, shape=(N, N)) -> np.ndarray:
    """A circular Gaussian of ``flux`` Jy in all, in Jy/pixel."""
    y, x = np.ogrid[: shape[0], : shape[1]]
    g = np.exp(-4 * math.log(2) * ((y - j) ** 2 + (x - i) ** 2) / fwhm**2)
    return flux * g / g.sum()


def sky_of(gaussians=(), points=()) -> np.ndarray:
    sky = sum((gaussian(*source) for source in gaussians), np.zeros((N, N)))
    for j, i, flux in points:
        sky[j, i] += flux
    return sky


def flux_near(model: np.ndarray, j: int, i: int, half: int) -> float:
    return float(model[j - half : j + half + 1, i - half : i + half + 1].sum())


@pytest.fixture(scope="module")
def uv() -> np.ndarray:
    """1000 random uv points, centrally concentrated like an array's, in cycles per pixel."""
    return np.random.default_rng(2024).normal(scale=0.08, size=(1000, 2))


@pytest.fixture(scope="module")
def psf(uv) -> np.ndarray:
    return dirty_beam(uv, (2 * N, 2 * N))


# --- Scales -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0, 1.5, 4, 9, 20.7, 64])
def test_scale_kernel(scale):
    kernel = multiscale.scale_kernel(scale)
    radius = math.ceil(scale / 2)
    assert kernel.shape == (2 * radius + 1, 2 * radius + 1)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-14)
    assert kernel.min() >= 0
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-17)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-17)
    assert kernel[radius, radius] == kernel.max()
    if scale > 0:  # WSClean's tapered quadratic, along a row through the centre
        d = np.arange(-radius, radius + 1)
        shape = np.maximum(1 - (d / scale) ** 2, 0) * (1 + np.cos(np.pi * d / (radius + 1))) / 2
        np.testing.assert_allclose(kernel[radius] / kernel[radius, radius], shape, atol=1e-15)
    if scale >= 9:  # its FWHM is about half the scale
        profile = kernel[radius] / kernel[radius, radius]
        assert np.count_nonzero(profile >= 0.5) == pytest.approx(scale / 2, rel=0.15)


def test_default_scales_double_from_four_beam_widths():
    fwhm = 6.0
    beam = gaussian(64, 64, fwhm, 1.0, shape=(128, 128))
    beam /= beam.max()
    assert multiscale.main_lobe_width(beam) == pytest.approx(fwhm, rel=0.03)
    width = multiscale.main_lobe_width(beam)
    big = multiscale.default_scales(beam, (1024, 1024))
    np.testing.assert_allclose(big, [0, 4 * width, 8 * width, 16 * width, 32 * width, 64 * width])
    small = multiscale.default_scales(beam, (150, 300))  # below 75 pixels
    np.testing.assert_allclose(small, [0, 4 * width, 8 * width])
    assert len(multiscale.default_scales(beam, (8192, 8192))) == multiscale.MAX_SCALES
    np.testing.assert_array_equal(multiscale.default_scales(beam, (40, 40)), [0])


# --- Against a numpy reference and Högbom -------------------------------------------------------


def reference_multiscale(residual, psf, *, scales, scale_bias, gain, niter, threshold, mask):
    """Slow and direct: the smoothed images by direct convolution, then each iteration the
    masked argmax of every smoothed residual, the best biased one taken, the PSF smoothed by
    each pair of kernels subtracted, the kernel added to the model. Returns (model, iterations,
    peak, the scales chosen) and leaves the residual in ``residual``."""
    sizes = sorted({0.0, *scales})
    kernels = [multiscale.scale_kernel(size) for size in sizes]
    radii = [kernel.shape[0] // 2 for kernel in kernels]
    width = multiscale.main_lobe_width(psf)
    bias = [scale_bias ** -math.log2(s / (2 * width)) if s else float(0 in scales) for s in sizes]

    def smooth(image, kernel):
        return scipy.signal.convolve2d(image, kernel, mode="same")

    planes = [smooth(residual, kernel) for kernel in kernels]
    cross = [[smooth(psf, scipy.signal.convolve2d(a, b)) for b in kernels] for a in kernels]
    centre = (psf.shape[0] // 2, psf.shape[1] // 2)
    model, chosen = np.zeros_like(residual), []
    while True:
        peaks = []
        for plane, r in zip(planes, radii, strict=True):
            allowed = np.zeros_like(mask)
            allowed[r : mask.shape[0] - r, r : mask.shape[1] - r] = True
            allowed &= mask
            j, i = np.unravel_index(np.argmax(np.where(allowed, np.abs(plane), -1.0)), mask.shape)
            peaks.append((j, i, plane[j, i] if allowed[j, i] else 0.0))
        scores = [b * abs(value) for b, (_, _, value) in zip(bias, peaks, strict=True)]
        peak = peaks[0][2]
        if len(chosen) == niter or abs(peak) < threshold or peak == 0 or max(scores) == 0:
            residual[...] = planes[0]
            return model, len(chosen), peak, {sizes[a] for a in chosen}
        a = int(np.argmax(scores))
        chosen.append(a)
        j, i, value = peaks[a]
        flux = gain * value / cross[a][a][centre]
        for b, plane in enumerate(planes):
            plane -= flux * response(cross[a][b], j, i, residual.shape)
        r = radii[a]
        model[j - r : j + r + 1, i - r : i + r + 1] += flux * kernels[a]


@pytest.mark.parametrize("scales", [(0, 8, 15), (4, 9.5)])
def test_matches_reference(uv, scales):
    shape = (40, 47)  # odd and even sides, not square
    rng = np.random.default_rng(7)
    uv = 2 * uv  # a beam of 2.6 pixels
    psf = dirty_beam(uv, (2 * shape[0], 2 * shape[1]))
    sky = gaussian(14, 30, 10, 6.0, shape) + gaussian(26, 14, 5, -2.0, shape)
    sky[20, 40] += 0.7
    dirty = observed(sky, psf)
    dirty += 0.02 * rng.normal(size=shape)
    mask = rng.random(shape) < 0.8
    options = {"scales": scales, "scale_bias": 0.6, "gain": 0.2, "niter": 80, "threshold": 0.01}
    expected_residual = dirty.copy()
    expected, iterations, peak, chosen = reference_multiscale(
        expected_residual, psf, mask=mask, **options
    )
    assert chosen == set(scales)  # every scale has components
    residual = dirty.copy()
    result = multiscale.multiscale(residual, psf, mask=mask, **options)
    assert result.iterations == iterations > 20
    np.testing.assert_allclose(result.model, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(residual, expected_residual, rtol=0, atol=1e-12)
    assert result.peak == pytest.approx(peak, abs=1e-12)


@pytest.mark.parametrize("psf_size", ["same", "double"])
@pytest.mark.parametrize("masked", [False, True])
def test_point_scale_alone_is_hogbom(psf, masked, psf_size):
    mask = np.random.default_rng(1).random((N, N)) < 0.5 if masked else None
    dirty = observed(sky_of(GAUSSIANS, POINTS), psf)
    if psf_size == "same":
        psf = psf[N // 2 : N // 2 + N, N // 2 : N // 2 + N]
    by_hogbom, by_multiscale = dirty.copy(), dirty.copy()
    hogbom = clean.hogbom(by_hogbom, psf, niter=300, threshold=THRESHOLD, mask=mask)
    result = multiscale.multiscale(
        by_multiscale, psf, niter=300, threshold=THRESHOLD, scales=[0], mask=mask
    )
    np.testing.assert_array_equal(result.model, hogbom.model)
    np.testing.assert_array_equal(by_multiscale, by_hogbom)
    assert (result.iterations, result.peak) == (hogbom.iterations, hogbom.peak)


# --- Sources recovered --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cleaned(psf):
    """(sky, dirty, residual, result): every source cleaned to THRESHOLD, default scales."""
    sky = sky_of(GAUSSIANS, POINTS)
    dirty = observed(sky, psf)
    residual = dirty.copy()
    result = multiscale.multiscale(residual, psf, niter=50_000, threshold=THRESHOLD)
    return sky, dirty, residual, result


def test_recovers_extended_and_point_fluxes(cleaned):
    sky, _, residual, result = cleaned
    assert result.threshold_reached
    assert np.abs(residual).max() == abs(result.peak) < THRESHOLD
    for j, i, fwhm, flux in GAUSSIANS:
        assert flux_near(result.model, j, i, 2 * fwhm) == pytest.approx(flux, rel=0.02)
    for j, i, flux in POINTS:
        assert flux_near(result.model, j, i, 1) == pytest.approx(flux, rel=0.01)
    assert result.model.sum() == pytest.approx(sky.sum(), rel=0.01)


def test_model_is_what_was_subtracted(cleaned, psf):
    """The residual is the dirty image less the model through the PSF: the kernels added to
    the model are the ones whose images were subtracted, fluxes and all."""
    _, dirty, residual, result = cleaned
    np.testing.assert_allclose(dirty - residual, observed(result.model, psf), rtol=0, atol=1e-12)


def test_edge_components_keep_their_whole_kernel(psf):
    """Emission at the edges: components of scale s keep ceil(s/2) pixels away, so no kernel
    is cut off and the model still accounts exactly for what was subtracted."""
    sky = gaussian(3, 128, 20, 1.0) + gaussian(250, 252, 16, 0.5) + gaussian(128, 0, 10, -0.4)
    dirty = observed(sky, psf)
    residual = dirty.copy()
    result = multiscale.multiscale(residual, psf, niter=400, threshold=0.0, scales=[0, 20, 40])
    np.testing.assert_allclose(dirty - residual, observed(result.model, psf), rtol=0, atol=1e-12)
    assert np.abs(residual).max() < 0.1 * np.abs(dirty).max()


def test_residual_far_below_hogbom_on_extended_emission(psf):
    dirty = observed(sky_of(GAUSSIANS), psf)
    by_hogbom, by_multiscale = dirty.copy(), dirty.copy()
    clean.hogbom(by_hogbom, psf, niter=1000, threshold=0.0)
    multiscale.multiscale(by_multiscale, psf, niter=1000, threshold=0.0)
    assert np.abs(by_multiscale).max() < 0.2 * np.abs(by_hogbom).max()
    assert np.std(by_multiscale) < 0.2 * np.std(by_hogbom)


def test_points_stay_points(psf):
    """Point sources alone, default scales: every component goes on the source pixels."""
    points = [(80, 60, 1.0), (180, 200, -0.6), (140, 128, 0.35), (50, 190, 0.8), (208, 44, 0.15)]
    residual = observed(sky_of(points=points), psf)
    result = multiscale.multiscale(residual, psf, niter=20_000, threshold=1e-4)
    assert result.threshold_reached
    assert np.count_nonzero(result.model) == len(points)
    for j, i, flux in points:
        assert result.model[j, i] == pytest.approx(flux, rel=0.01)


# --- Stopping, masks, models --------------------------------------------------------------------


def test_threshold_stops_at_the_first_peak_below_it(psf):
    """The threshold applies to the unsmoothed residual's masked peak, as in Högbom."""
    dirty, threshold = observed(sky_of(GAUSSIANS, POINTS), psf), 0.05
    result = multiscale.multiscale(dirty.copy(), psf, niter=10_000, threshold=threshold)
    assert result.threshold_reached
    assert abs(result.peak) < threshold
    one_less = multiscale.multiscale(
        dirty.copy(), psf, niter=result.iterations - 1, threshold=threshold
    )
    assert abs(one_less.peak) >= threshold
    assert not one_less.threshold_reached


def test_niter(psf):
    dirty = observed(sky_of(GAUSSIANS, POINTS), psf)
    residual, model = dirty.copy(), np.zeros((N, N))
    result = multiscale.multiscale(residual, psf, niter=0, threshold=0.0, model=model)
    assert (result.iterations, result.peak) == (0, dirty.flat[np.argmax(np.abs(dirty))])
    assert result.model is model
    assert not model.any()
    np.testing.assert_array_equal(residual, dirty)
    assert multiscale.multiscale(residual, psf, niter=37, threshold=0.0).iterations == 37


def test_mask_restricts_component_centres(psf):
    """Components centred only in boxes around the 25-pixel Gaussian and the central point:
    the model lies within the boxes grown by the largest kernel's radius, and the residual is
    cleaned inside them."""
    scales = [0, 10, 20]
    mask = np.zeros((N, N), dtype=bool)
    mask[45:96, 45:96] = mask[124:133, 124:133] = True
    dirty = observed(sky_of(GAUSSIANS, POINTS), psf)
    residual = dirty.copy()
    result = multiscale.multiscale(
        residual, psf, niter=5000, threshold=0.01, scales=scales, mask=mask
    )
    reach = scipy.ndimage.binary_dilation(mask, np.ones((21, 21), dtype=bool))
    assert not result.model[~reach].any()
    assert result.threshold_reached
    assert np.abs(residual[mask]).max() == abs(result.peak) < 0.01
    # The sources outside stay, less the part of their sidelobes inside the boxes, which is
    # cleaned with the rest (13-17% of their peaks here; Högbom, so masked, takes 9-18%).
    outside = observed(sky_of(GAUSSIANS[1:], POINTS[1:]), psf)
    for j, i, *_ in GAUSSIANS[1:] + POINTS[1:]:
        assert 0.8 < residual[j, i] / outside[j, i] < 1.0
    assert flux_near(result.model, 128, 128, 1) == pytest.approx(1.0, abs=0.05)


def test_one_pixel_mask_centres_every_component_there(psf):
    """With one allowed pixel, the model is a point plus one scale kernel centred there."""
    mask = np.zeros((N, N), dtype=bool)
    mask[70, 70] = True
    residual = observed(sky_of(GAUSSIANS), psf)
    result = multiscale.multiscale(
        residual, psf, niter=200, threshold=0.0, scales=[0, 16], mask=mask
    )
    point, bump = np.zeros((N, N)), np.zeros((N, N))
    point[70, 70], bump[62:79, 62:79] = 1.0, multiscale.scale_kernel(16)
    basis = np.stack([point.ravel(), bump.ravel()], axis=1)
    fluxes, *_ = np.linalg.lstsq(basis, result.model.ravel(), rcond=None)
    np.testing.assert_allclose(basis @ fluxes, result.model.ravel(), rtol=0, atol=1e-14)
    assert fluxes[1] > 0


# --- Bad input ----------------------------------------------------------------------------------

PSF = np.zeros((64, 64))  # for a 32 x 32 image
PSF[32, 32] = 1.0

# Centre 1 in a disc of -0.02: smoothed by a wide kernel twice, its centre is negative.
RING = np.where(np.hypot(*np.ogrid[-32:32, -32:32]) <= 6, -0.02, 0.0)
RING[32, 32] = 1.0

BAD_INPUT = {
    "negative scale": {"scales": [0, -4]},
    "non-finite scale": {"scales": [0, np.nan]},
    "scale too large": {"scales": [0, 16]},
    "no scales": {"scales": []},
    "scales not numbers": {"scales": ["wide"]},
    "scales not a list": {"scales": [[0, 4], [8, 12]]},
    "scale bias 0": {"scale_bias": 0.0},
    "scale bias above 1": {"scale_bias": 1.5},
    "scale bias nan": {"scale_bias": np.nan},
    "gain 0": {"gain": 0.0},
    "negative niter": {"niter": -1},
    "negative threshold": {"threshold": -1.0},
    "nthreads 0": {"nthreads": 0},
    "scale the psf does not measure": {"psf": RING, "scales": [0, 12]},
    "psf shape": {"psf": PSF[:63]},
    "image-sized psf with scales": {"psf": PSF[16:48, 16:48], "scales": [0, 4]},
    "image-sized psf, default scales": {"psf": PSF[16:48, 16:48]},
    "mask dtype": {"mask": np.ones((32, 32))},
    "float32 residual": {"residual": np.zeros((32, 32), np.float32)},
}


@pytest.mark.parametrize("changes", BAD_INPUT.values(), ids=BAD_INPUT)
def test_bad_input_is_one_line(changes):
    arguments = {"residual": np.zeros((32, 32)), "psf": PSF, "niter": 1, "threshold": 0.0}
    with pytest.raises(OptionError) as error:
        multiscale.multiscale(**arguments | changes)
    assert "\n" not in str(error.value)
