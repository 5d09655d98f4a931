"""CLEAN minor cycles: a numpy reference, and point sources of known flux recovered from dirty
images built with the dirty beam of a random uv coverage (noise-free, so the bounds are tight)."""

from __future__ import annotations

import numpy as np
import pytest

from radiocloud.core.errors import OptionError
from radiocloud.core.kernels.image import clean
from radiocloud.core.testing.builders import dirty_beam, response

N = 128
GAIN = 0.1
THRESHOLD = 1e-4
# (row j, column i, flux Jy): apart by more than the PSF's main lobe, one of them negative
SOURCES = [(40, 30, 1.0), (90, 100, -0.6), (70, 64, 0.35), (25, 95, 0.8), (104, 22, 0.15)]
# The same, within the central half of the image, for a PSF of the image's size: it covers
# offsets up to N/2, so it is exact between these sources and nowhere beyond.
CENTRAL_SOURCES = [(50, 40, 1.0), (80, 90, -0.6), (64, 64, 0.35), (40, 85, 0.8), (88, 45, 0.15)]
FREQUENCIES = np.array([0.9e9, 1.1e9, 1.3e9, 1.5e9])
REFERENCE_FREQUENCY = 1.2e9
SPECTRAL_INDICES = [-0.7, 0.5, -1.5, 0.0, -0.3]


@pytest.fixture(scope="module")
def uv() -> np.ndarray:
    """300 random uv points, centrally concentrated like an array's, in cycles per pixel."""
    return np.random.default_rng(2024).normal(scale=0.08, size=(300, 2))


@pytest.fixture(scope="module", params=["same-size PSF", "double-size PSF"])
def scene(request, uv) -> tuple[np.ndarray, list]:
    """(PSF, sources): a PSF of the image's size with CENTRAL_SOURCES, or one of twice its size
    with SOURCES spread over the whole image."""
    if request.param == "same-size PSF":
        return dirty_beam(uv, (N, N)), CENTRAL_SOURCES
    return dirty_beam(uv, (2 * N, 2 * N)), SOURCES


def dirty_image(psf: np.ndarray, sources, shape=(N, N)) -> np.ndarray:
    return sum(flux * response(psf, j, i, shape) for j, i, flux in sources)


def recovered(model: np.ndarray, sources) -> np.ndarray:
    """The model's flux within 1 pixel (a 3 x 3 box) of each source."""
    return np.array([model[j - 1 : j + 2, i - 1 : i + 2].sum() for j, i, _ in sources])


def reference_hogbom(residual, psf, *, gain, niter, threshold, mask):
    """Slow and direct: argmax of the masked |residual|, subtract the shifted PSF, repeat."""
    model = np.zeros_like(residual)
    for done in range(niter):
        j, i = np.unravel_index(np.argmax(np.where(mask, np.abs(residual), -1.0)), mask.shape)
        if abs(residual[j, i]) < threshold:
            return model, done
        flux = gain * residual[j, i]
        model[j, i] += flux
        residual -= flux * response(psf, j, i, residual.shape)
    return model, niter


# --- Högbom against the reference ---------------------------------------------------------------


@pytest.mark.parametrize("psf_factor", [1, 2])
@pytest.mark.parametrize("masked", [False, True])
def test_hogbom_matches_reference(uv, psf_factor, masked):
    shape = (36, 45)  # odd and even sides, not square
    rng = np.random.default_rng(7)
    psf = dirty_beam(uv, (psf_factor * shape[0], psf_factor * shape[1]))
    dirty = dirty_image(psf, [(5, 40, 1.0), (30, 3, -0.7), (18, 22, 0.4)], shape)
    dirty += 0.05 * rng.normal(size=shape)
    mask = rng.random(shape) < 0.7 if masked else np.ones(shape, dtype=bool)
    expected_residual = dirty.copy()
    expected, iterations = reference_hogbom(
        expected_residual, psf, gain=0.2, niter=150, threshold=0.01, mask=mask
    )
    residual = dirty.copy()
    result = clean.hogbom(
        residual, psf, gain=0.2, niter=150, threshold=0.01, mask=mask if masked else None
    )
    np.testing.assert_allclose(result.model, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(residual, expected_residual, rtol=0, atol=1e-12)
    assert result.iterations == iterations


def test_psf_convolution_matches_shifted_sum(uv):
    """Clark's exact subtraction (FFT) equals the sum of shifted PSFs, for both PSF sizes."""
    rng = np.random.default_rng(3)
    for shape in [(32, 32), (31, 36)]:
        components = np.zeros(shape)
        components.flat[rng.choice(components.size, 12, replace=False)] = rng.normal(size=12)
        for factor in (1, 2):
            psf = dirty_beam(uv, (factor * shape[0], factor * shape[1]))
            expected = sum(
                components[j, i] * response(psf, j, i, shape) for j, i in np.argwhere(components)
            )
            convolve = clean._PsfConvolution(psf, shape, nthreads=1)
            np.testing.assert_allclose(convolve(components), expected, rtol=0, atol=1e-13)


# --- Point sources recovered --------------------------------------------------------------------

ALGORITHMS = {
    "hogbom": clean.hogbom,
    "clark": clean.clark,
    "clark-patch": lambda *args, **kw: clean.clark(*args, psf_patch=16, **kw),
    "joined-1-band": lambda residual, psf, *, model=None, **kw: clean.hogbom_joined(
        residual[None], psf[None], np.ones(1), models=None if model is None else model[None], **kw
    ),
}
EXACT = ["hogbom", "clark", "joined-1-band"]  # Clark's beam patch is tested on its own below


def assert_recovered(result, residual, sources):
    model = result.model.reshape(residual.shape)
    truth = np.array([flux for *_, flux in sources])
    np.testing.assert_allclose(recovered(model, sources), truth, rtol=0.01)
    assert np.abs(model).sum() == pytest.approx(np.abs(truth).sum(), rel=0.01)  # no stray flux
    assert result.threshold_reached
    assert abs(result.peak) < THRESHOLD
    assert np.abs(residual).max() < THRESHOLD


@pytest.mark.parametrize("name", EXACT)
def test_recovers_point_sources(scene, name):
    psf, sources = scene
    residual = dirty_image(psf, sources)
    result = ALGORITHMS[name](residual, psf, gain=GAIN, niter=20_000, threshold=THRESHOLD)
    assert_recovered(result, residual, sources)


def test_clark_patch_recovers_point_sources_when_far_sidelobes_are_low():
    """Clark's beam patch neglects the sidelobes outside it. With 300 uv points they reach
    0.17 everywhere, and the patch puts a few percent of the flux on their ghosts; with 1000
    points (0.10) the patch is accurate."""
    uv = np.random.default_rng(2024).normal(scale=0.08, size=(1000, 2))
    psf = dirty_beam(uv, (2 * N, 2 * N))
    residual = dirty_image(psf, SOURCES)
    result = clean.clark(residual, psf, psf_patch=16, niter=20_000, threshold=THRESHOLD)
    assert_recovered(result, residual, SOURCES)


def test_clark_agrees_with_hogbom(scene):
    psf, sources = scene
    by_hogbom, by_clark = dirty_image(psf, sources), dirty_image(psf, sources)
    hogbom = clean.hogbom(by_hogbom, psf, niter=20_000, threshold=THRESHOLD)
    clark = clean.clark(by_clark, psf, niter=20_000, threshold=THRESHOLD)
    fluxes = recovered(hogbom.model, sources)
    np.testing.assert_allclose(recovered(clark.model, sources), fluxes, rtol=1e-3)
    np.testing.assert_allclose(by_clark, by_hogbom, rtol=0, atol=2 * THRESHOLD)
    assert abs(clark.iterations - hogbom.iterations) <= 0.05 * hogbom.iterations


# --- Stopping and masks ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALGORITHMS)
def test_niter_stops_exactly(scene, name):
    psf, sources = scene
    result = ALGORITHMS[name](dirty_image(psf, sources), psf, niter=37, threshold=THRESHOLD)
    assert result.iterations == 37
    assert not result.threshold_reached
    assert np.count_nonzero(result.model) <= 37


def test_hogbom_resumes_where_it_stopped(scene):
    """Two calls of 20 and 17 iterations, the model passed on, equal one call of 37."""
    psf, sources = scene
    once = dirty_image(psf, sources)
    whole = clean.hogbom(once, psf, niter=37, threshold=0.0)
    twice = dirty_image(psf, sources)
    first = clean.hogbom(twice, psf, niter=20, threshold=0.0)
    second = clean.hogbom(twice, psf, niter=17, threshold=0.0, model=first.model)
    assert second.model is first.model
    np.testing.assert_array_equal(second.model, whole.model)
    np.testing.assert_array_equal(twice, once)
    assert second.peak == whole.peak


@pytest.mark.parametrize("name", ALGORITHMS)
def test_niter_zero_reports_the_peak(scene, name):
    psf, sources = scene
    residual = dirty_image(psf, sources)
    dirty = residual.copy()
    result = ALGORITHMS[name](residual, psf, niter=0, threshold=0.1)
    assert result.iterations == 0
    assert result.peak == dirty.flat[np.argmax(np.abs(dirty))]
    assert not result.model.any()
    np.testing.assert_array_equal(residual, dirty)


@pytest.mark.parametrize("name", ["hogbom", "joined-1-band"])
def test_threshold_stops_at_the_first_peak_below_it(scene, name):
    psf, sources = scene
    threshold = 0.3
    result = ALGORITHMS[name](dirty_image(psf, sources), psf, niter=10_000, threshold=threshold)
    assert result.threshold_reached
    assert abs(result.peak) < threshold
    one_less = ALGORITHMS[name](
        dirty_image(psf, sources), psf, niter=result.iterations - 1, threshold=threshold
    )
    assert abs(one_less.peak) >= threshold


@pytest.mark.parametrize("name", ["clark", "clark-patch"])
def test_clark_threshold_stops(scene, name):
    psf, sources = scene
    residual = dirty_image(psf, sources)
    result = ALGORITHMS[name](residual, psf, niter=10_000, threshold=0.3)
    assert result.threshold_reached
    assert np.abs(residual).max() == abs(result.peak) < 0.3
    assert result.iterations < 100


@pytest.mark.parametrize("name", ALGORITHMS)
def test_mask_restricts_components(scene, name):
    """Components only in 5 x 5 boxes around the first three sources: the residual is cleaned
    inside them (to 0.02: the other sources' sidelobes there, which no component inside can
    match, make it slow to go deeper), the other two sources stay."""
    psf, sources = scene
    mask = np.zeros((N, N), dtype=bool)
    for j, i, _ in sources[:3]:
        mask[j - 2 : j + 3, i - 2 : i + 3] = True
    residual = dirty_image(psf, sources)
    result = ALGORITHMS[name](residual, psf, niter=5000, threshold=0.02, mask=mask)
    model = result.model.reshape(N, N)
    assert not model[~mask].any()
    assert result.threshold_reached
    assert np.abs(residual[mask]).max() == abs(result.peak) < 0.02
    for j, i, flux in sources[3:]:
        assert residual[j, i] == pytest.approx(flux, abs=0.05)  # their neighbours' sidelobes
    truth = [flux for *_, flux in sources[:3]]
    np.testing.assert_allclose(recovered(model, sources[:3]), truth, atol=0.1)


def test_empty_mask_does_nothing(scene):
    psf, sources = scene
    residual = dirty_image(psf, sources)
    result = clean.hogbom(residual, psf, niter=10, threshold=0.0, mask=np.zeros((N, N), bool))
    assert (result.iterations, result.peak) == (0, 0.0)
    assert not result.model.any()


# --- Joined channels ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bands(uv):
    """Per band: the PSF (uv scaled by frequency, double size) and the dirty image of SOURCES
    with power-law spectra; and the true spectra (source, band)."""
    scale = FREQUENCIES / REFERENCE_FREQUENCY
    psfs = np.stack([dirty_beam(uv * s, (2 * N, 2 * N)) for s in scale])
    spectra = np.array(
        [flux * scale**alpha for (*_, flux), alpha in zip(SOURCES, SPECTRAL_INDICES, strict=True)]
    )
    dirty = np.stack(
        [
            dirty_image(
                psf, [(j, i, s) for (j, i, _), s in zip(SOURCES, spectra[:, b], strict=True)]
            )
            for b, psf in enumerate(psfs)
        ]
    )
    return psfs, dirty, spectra


WEIGHTS = np.array([1.0, 2.0, 2.0, 1.5])


def test_joined_recovers_power_law_spectra(bands):
    psfs, dirty, spectra = bands
    residuals = dirty.copy()
    result = clean.hogbom_joined(residuals, psfs, WEIGHTS, niter=20_000, threshold=THRESHOLD)
    assert result.model.shape == (4, N, N)
    fluxes = np.stack([recovered(model, SOURCES) for model in result.model], axis=1)
    np.testing.assert_allclose(fluxes, spectra, rtol=0.01)
    assert result.threshold_reached
    mean = np.tensordot(WEIGHTS / WEIGHTS.sum(), residuals, axes=1)
    assert np.abs(mean).max() < THRESHOLD
    assert abs(result.peak) < THRESHOLD


def test_joined_fits_spectra(bands):
    """With a polynomial fit, every component's spectrum is a polynomial, and the model
    converges to the weighted least-squares fit of each true spectrum."""
    psfs, dirty, spectra = bands
    terms = 3
    result = clean.hogbom_joined(
        dirty.copy(), psfs, WEIGHTS, niter=20_000, threshold=THRESHOLD,
        spectral_terms=terms, frequencies=FREQUENCIES,
    )  # fmt: skip
    assert result.threshold_reached
    x = FREQUENCIES / np.average(FREQUENCIES, weights=WEIGHTS) - 1.0
    fluxes = np.stack([recovered(model, SOURCES) for model in result.model], axis=1)
    for flux, spectrum in zip(fluxes, spectra, strict=True):
        quadratic = np.polyval(np.polyfit(x, flux, terms - 1), x)
        np.testing.assert_allclose(flux, quadratic, rtol=0, atol=1e-12)
        fitted = np.polyval(np.polyfit(x, spectrum, terms - 1, w=np.sqrt(WEIGHTS)), x)
        np.testing.assert_allclose(flux, fitted, rtol=0.01)


def test_spectral_projection():
    weights = np.array([1.0, 0.0, 2.0, 3.0, 0.5])
    nu = np.array([1.0, 1.2, 1.4, 1.6, 1.8]) * 1e9
    projection = clean._spectral_projection(weights, 3, nu)
    spectrum = np.random.default_rng(0).normal(size=5)
    np.testing.assert_allclose(projection @ projection, projection, atol=1e-12)
    assert weights @ (projection @ spectrum) == pytest.approx(weights @ spectrum)
    quadratic = 2.0 - 3.0 * (nu / 1.4e9) + (nu / 1.4e9) ** 2
    np.testing.assert_allclose(projection @ quadratic, quadratic, atol=1e-12)
    np.testing.assert_array_equal(clean._spectral_projection(weights, None, None), np.eye(5))


# --- Bad input ----------------------------------------------------------------------------------

PSF = np.zeros((16, 16))
PSF[8, 8] = 1.0


def single() -> dict:
    return {"residual": np.zeros((16, 16)), "psf": PSF, "niter": 1, "threshold": 0.0}


def joined() -> dict:
    return {
        "residuals": np.zeros((2, 16, 16)),
        "psfs": np.stack([PSF, PSF]),
        "band_weights": np.ones(2),
        "niter": 1,
        "threshold": 0.0,
    }


BAD_INPUT = {
    "psf shape": (clean.hogbom, {"psf": PSF[:15]}),
    "psf peak": (clean.hogbom, {"psf": 2 * PSF}),
    "psf off centre": (clean.clark, {"psf": np.roll(PSF, 1)}),
    "gain 0": (clean.hogbom, {"gain": 0.0}),
    "gain above 1": (clean.clark, {"gain": 1.5}),
    "negative niter": (clean.hogbom, {"niter": -1}),
    "fractional niter": (clean.clark, {"niter": 2.5}),
    "negative threshold": (clean.hogbom, {"threshold": -1.0}),
    "float32 residual": (clean.hogbom, {"residual": np.zeros((16, 16), np.float32)}),
    "residual view": (clean.hogbom, {"residual": np.zeros((16, 32))[:, ::2]}),
    "non-finite residual": (clean.hogbom, {"residual": np.full((16, 16), np.nan)}),
    "mask shape": (clean.hogbom, {"mask": np.ones((16, 15), bool)}),
    "mask dtype": (clean.clark, {"mask": np.ones((16, 16))}),
    "model shape": (clean.hogbom, {"model": np.zeros((15, 16))}),
    "fraction 1": (clean.clark, {"fraction": 1.0}),
    "patch 0": (clean.clark, {"psf_patch": 0}),
    "band weights length": (clean.hogbom_joined, {"band_weights": np.ones(3)}),
    "band weights zero": (clean.hogbom_joined, {"band_weights": np.zeros(2)}),
    "band psf shape": (clean.hogbom_joined, {"psfs": PSF}),
    "fit without frequencies": (clean.hogbom_joined, {"spectral_terms": 2}),
    "too many terms": (clean.hogbom_joined, {"spectral_terms": 3, "frequencies": [1e9, 2e9]}),
}


@pytest.mark.parametrize(("function", "changes"), BAD_INPUT.values(), ids=BAD_INPUT)
def test_bad_input_is_one_line(function, changes):
    arguments = (joined() if function is clean.hogbom_joined else single()) | changes
    with pytest.raises(OptionError) as error:
        function(**arguments)
    assert "\n" not in str(error.value)
