"""The imaging transforms against direct sums: pixel geometry, accuracy, adjointness."""

from __future__ import annotations

import numpy as np
import pytest

from radiocloud.core.errors import OptionError
from radiocloud.core.kernels.image.gridding import Geometry, degrid, grid

C = 299_792_458.0
ARCSEC = np.pi / 180 / 3600


@pytest.fixture(scope="module")
def obs():
    """Random baselines up to 4 km with w terms, 3 channels around 1.3 GHz."""
    rng = np.random.default_rng(5)
    uvw = rng.uniform(-4000, 4000, (400, 3)) * np.array([1, 1, 0.3])
    freq = np.array([1.2e9, 1.3e9, 1.4e9])
    return uvw, freq, rng


def direct_vis(uvw, freq, plane, geom):
    """V = Σ I exp(+2πi (u l + v m + w (n - 1)) ν/c), summed pixel by pixel."""
    l_i, m_j = geom.lm()
    j, i = np.nonzero(plane)
    el, em = l_i[i], m_j[j]
    n = np.sqrt(1 - el**2 - em**2)
    u, v, w = (uvw[:, k, None, None] * freq[None, :, None] / C for k in range(3))
    phase = 2j * np.pi * (u * el + v * em + w * (n - 1))
    return np.sum(plane[j, i] * np.exp(phase), axis=-1)


def test_a_pixel_sits_where_the_geometry_says(obs):
    uvw, freq, _ = obs
    geom = Geometry(64, 48, 2 * ARCSEC)
    for i, j in [(32, 24), (10, 40), (60, 3)]:
        plane = np.zeros((48, 64))
        plane[j, i] = 2.5
        got = degrid(uvw, freq, plane, geom, epsilon=1e-10)
        np.testing.assert_allclose(got, direct_vis(uvw, freq, plane, geom), atol=1e-8)
    l_i, m_j = geom.lm()
    assert l_i[32] == m_j[24] == 0  # the phase centre
    assert l_i[31] > 0  # East (RA) to the left


def test_dirty_image_equals_the_direct_fourier_sum_at_the_stated_accuracy(obs):
    uvw, freq, rng = obs
    geom = Geometry(40, 32, 3 * ARCSEC)
    vis = rng.normal(size=(400, 3)) + 1j * rng.normal(size=(400, 3))
    weight = rng.uniform(0.5, 2, (400, 3))
    weight[::7] = 0  # flagged
    l_i, m_j = geom.lm()
    ll, mm = np.meshgrid(l_i, m_j)  # (ny, nx)
    nn = np.sqrt(1 - ll**2 - mm**2)
    u, v, w = (uvw[:, k, None] * freq[None, :] / C for k in range(3))
    want = np.zeros((32, 40))
    for r in range(400):
        for c in range(3):
            phase = -2j * np.pi * (u[r, c] * ll + v[r, c] * mm + w[r, c] * (nn - 1))
            want += (weight[r, c] * vis[r, c] * np.exp(phase)).real
    for eps in (1e-4, 1e-7):
        got = grid(uvw, freq, vis, weight, geom, epsilon=eps)
        err = np.abs(got - want).max() / np.abs(want).max()
        assert err < 10 * eps, (eps, err)


def test_grid_is_the_adjoint_of_degrid(obs):
    """Σ_pix I · grid(V) = Re Σ_vis w V conj(degrid(I)) for any image I and visibilities V."""
    uvw, freq, rng = obs
    geom = Geometry(64, 64, 2 * ARCSEC)
    image = rng.normal(size=(64, 64))
    vis = rng.normal(size=(400, 3)) + 1j * rng.normal(size=(400, 3))
    weight = rng.uniform(0.5, 2, (400, 3))
    lhs = np.sum(image * grid(uvw, freq, vis, weight, geom, epsilon=1e-10))
    rhs = np.sum(weight * vis * np.conj(degrid(uvw, freq, image, geom, epsilon=1e-10))).real
    assert abs(lhs - rhs) < 1e-8 * abs(lhs)


def test_psf_peaks_at_the_sum_of_weights_at_the_centre(obs):
    uvw, freq, rng = obs
    geom = Geometry(64, 64, 2 * ARCSEC)
    weight = rng.uniform(0.5, 2, (400, 3))
    psf = grid(uvw, freq, None, weight, geom, epsilon=1e-7)
    assert np.unravel_index(np.argmax(psf), psf.shape) == (32, 32)
    assert psf[32, 32] == pytest.approx(weight.sum(), rel=1e-6)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: Geometry(33, 64, 1e-5), "even number"),
        (lambda: Geometry(16, 16, 1e-5), "at least 32"),
        (lambda: Geometry(64, 64, -1.0), "cell size"),
        (
            lambda: grid(
                np.zeros((1, 3)),
                np.ones(1),
                None,
                np.ones((1, 1)),
                Geometry(32, 32, 1e-5),
                epsilon=0.5,
            ),
            "--accuracy",
        ),
    ],
)
def test_bad_geometry_and_accuracy(make, words):
    with pytest.raises(OptionError, match=words):
        make()
