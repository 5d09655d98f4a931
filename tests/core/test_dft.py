"""DFT predict: numpy reference, analytic truths, Gaussian orientation, dask == numpy."""

from __future__ import annotations

import itertools

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radiocloud.core.kernels.dft import PHASE_SIGN, brightness, predict_vis
from radiocloud.core.kernels.dft import dask as dft_dask

C = 299_792_458.0
LINEAR = ("XX", "XY", "YX", "YY")
CIRCULAR = ("RR", "RL", "LR", "LL")
CORR_SETS = [("XX",), ("XX", "YY"), LINEAR, ("RR",), ("RR", "LL"), CIRCULAR]


def reference_vis(uvw, lm, shape, frequency, coherency):
    """Slow, direct: one exp per (row, source, channel), the Gaussian in the image's axes."""
    u, v, w = (uvw[:, i, None, None] * frequency / C for i in range(3))  # (row, 1, chan) λ
    east, north = lm[:, 0, None], lm[:, 1, None]  # l, m: (source, 1)
    n = np.sqrt(1.0 - east**2 - north**2)
    phase = 2.0 * np.pi * (u * east + v * north + w * (n - 1.0))  # (row, source, chan)
    major, minor, pa = (shape[:, i, None] for i in range(3))
    along_major = u * np.sin(pa) + v * np.cos(pa)  # major axis: (l, m) = (sin PA, cos PA)
    along_minor = u * np.cos(pa) - v * np.sin(pa)
    gauss = np.exp(
        -(np.pi**2) / (4 * np.log(2)) * (major**2 * along_major**2 + minor**2 * along_minor**2)
    )
    return np.einsum("rsf,sfc->rfc", np.exp(1j * phase) * gauss, coherency)


def random_sky(rng, nrow, nchan, nsrc, corrs, spacing="uniform", ngauss=None):
    uvw = rng.normal(scale=[3000.0, 3000.0, 300.0], size=(nrow, 3))
    lm = rng.uniform(-0.1, 0.1, size=(nsrc, 2))
    shape = np.zeros((nsrc, 3))
    ngauss = nsrc // 2 if ngauss is None else ngauss
    shape[:ngauss, 0] = rng.uniform(1e-5, 2e-4, ngauss)
    shape[:ngauss, 1] = shape[:ngauss, 0] * rng.uniform(0.2, 1.0, ngauss)
    shape[:ngauss, 2] = rng.uniform(-np.pi, np.pi, ngauss)
    if spacing == "uniform":
        frequency = np.linspace(0.856e9, 1.712e9, nchan)
    elif spacing == "descending":
        frequency = np.linspace(1.712e9, 0.856e9, nchan)
    else:
        frequency = np.sort(rng.uniform(0.856e9, 1.712e9, nchan))
    stokes = rng.normal(size=(nsrc, 4)) * [1.0, 0.1, 0.1, 0.05]
    spectrum = (frequency / 1.284e9) ** rng.uniform(-1.0, 0.0, size=(nsrc, 1))
    coherency = brightness(stokes, corrs)[:, None, :] * spectrum[:, :, None]
    return uvw, lm, shape, frequency, coherency


def assert_vis_close(actual, expected, rtol):
    scale = np.max(np.abs(expected), initial=0.0)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def test_phase_sign_is_the_ms_convention():
    assert PHASE_SIGN == 1.0


@pytest.mark.parametrize("corrs", CORR_SETS, ids="-".join)
@pytest.mark.parametrize("spacing", ["uniform", "descending", "random"])
def test_matches_reference(corrs, spacing):
    rng = np.random.default_rng(42)
    # 70 channels: the geometric progression re-anchors at 0, 32 and 64
    args = random_sky(rng, nrow=40, nchan=70, nsrc=9, corrs=corrs, spacing=spacing)
    vis = predict_vis(*args)
    assert vis.dtype == np.complex128
    assert vis.shape == (40, 70, len(corrs))
    assert_vis_close(vis, reference_vis(*args), rtol=1e-10)


def test_resolved_gaussians_are_finite():
    # From barely resolved to resolved out (exp(-q ν²) underflows), on a descending band
    # whose channel-to-channel Gaussian ratios grow: no overflow, inf or nan anywhere.
    rng = np.random.default_rng(9)
    uvw, lm, shape, frequency, coherency = random_sky(
        rng, nrow=30, nchan=80, nsrc=6, corrs=("XX",), spacing="descending", ngauss=6
    )
    shape[:, 0] = np.geomspace(1e-5, 1e-1, 6)
    shape[:, 1] = shape[:, 0] / 2
    vis = predict_vis(uvw, lm, shape, frequency, coherency)
    assert np.all(np.isfinite(vis))
    assert_vis_close(vis, reference_vis(uvw, lm, shape, frequency, coherency), rtol=1e-10)


def test_out_and_accumulate():
    rng = np.random.default_rng(3)
    args = random_sky(rng, nrow=7, nchan=5, nsrc=4, corrs=LINEAR)
    expected = reference_vis(*args)
    out = np.full((7, 5, 4), np.nan, dtype=np.complex128)
    assert predict_vis(*args, out=out) is out
    assert_vis_close(out, expected, rtol=1e-10)
    predict_vis(*args, out=out, accumulate=True)
    assert_vis_close(out, 2 * expected, rtol=1e-10)


def test_source_at_phase_centre_is_flat():
    rng = np.random.default_rng(7)
    flux = 2.5
    uvw = rng.normal(scale=5000.0, size=(30, 3))
    frequency = np.linspace(0.9e9, 1.6e9, 40)
    coherency = np.repeat(brightness(np.array([[flux, 0, 0, 0]]), LINEAR)[:, None], 40, axis=1)
    vis = predict_vis(uvw, np.zeros((1, 2)), np.zeros((1, 3)), frequency, coherency)
    np.testing.assert_allclose(vis[..., [0, 3]], flux, rtol=0, atol=1e-12)
    np.testing.assert_allclose(vis[..., [1, 2]], 0.0, rtol=0, atol=1e-12)


def test_point_phase_on_east_west_baseline():
    # Source 0.01 east of the phase centre, baseline of 100 λ along u: phase +2π.
    frequency = np.array([C])  # one wavelength = one metre
    lm = np.array([[0.01, 0.0]])
    vis = predict_vis(
        np.array([[25.0, 0.0, 0.0]]), lm, np.zeros((1, 3)), frequency, np.ones((1, 1, 1))
    )
    np.testing.assert_allclose(vis[0, 0, 0], np.exp(PHASE_SIGN * 2j * np.pi * 0.25), atol=1e-14)


def sampled_gaussian_vis(uv, l0, m0, major, minor, pa, half_width, npix):
    """Fourier sum over a sampled image of the elliptical Gaussian, normalised to unit flux."""
    offsets = np.linspace(-half_width, half_width, npix)
    east, north = np.meshgrid(l0 + offsets, m0 + offsets, indexing="ij")  # l, m
    dl, dm = east - l0, north - m0
    x_major = dl * np.sin(pa) + dm * np.cos(pa)  # major axis at PA from north through east
    x_minor = dl * np.cos(pa) - dm * np.sin(pa)
    image = np.exp(-4 * np.log(2) * ((x_major / major) ** 2 + (x_minor / minor) ** 2))
    phase = 2 * np.pi * (uv[:, 0, None, None] * east + uv[:, 1, None, None] * north)
    return np.sum(image * np.exp(PHASE_SIGN * 1j * phase), axis=(1, 2)) / np.sum(image)


def test_gaussian_orientation_matches_sampled_image():
    major, minor, pa = 1.5e-4, 0.5e-4, np.deg2rad(30.0)
    l0, m0 = 1e-3, -5e-4
    uv = np.array(  # wavelengths: along the major and minor axes, and off-axis
        [[1500.0, 2598.0], [5196.0, -3000.0], [2500.0, 0.0], [0.0, 2500.0], [-2000.0, 1800.0]]
    )
    expected = sampled_gaussian_vis(uv, l0, m0, major, minor, pa, half_width=6e-4, npix=241)
    uvw = np.column_stack([uv, np.zeros(len(uv))])  # w = 0: the sum above has no w-term
    frequency = np.array([C])  # uvw in metres are then in wavelengths

    def kernel(position_angle):
        shape = np.array([[major, minor, position_angle]])
        return predict_vis(uvw, np.array([[l0, m0]]), shape, frequency, np.ones((1, 1, 1)))

    np.testing.assert_allclose(kernel(pa)[:, 0, 0], expected, rtol=1e-3)
    # The test can tell the orientation apart: the mirrored ellipse does not match.
    assert np.max(np.abs(kernel(-pa)[:, 0, 0] - expected)) > 0.05


def test_complex64_in_complex64_out():
    rng = np.random.default_rng(5)
    uvw, lm, shape, frequency, coherency = random_sky(rng, 10, 6, 3, ("XX", "YY"))
    vis = predict_vis(uvw, lm, shape, frequency, coherency.astype(np.complex64))
    assert vis.dtype == np.complex64
    assert_vis_close(vis, reference_vis(uvw, lm, shape, frequency, coherency), rtol=1e-5)


def test_brightness_conventions():
    i, q, u, v = 3.0, 0.5, -0.25, 0.125
    stokes = np.array([i, q, u, v])
    np.testing.assert_allclose(brightness(stokes, LINEAR), [i + q, u + 1j * v, u - 1j * v, i - q])
    np.testing.assert_allclose(brightness(stokes, CIRCULAR), [i + v, q + 1j * u, q - 1j * u, i - v])
    np.testing.assert_allclose(brightness(stokes, ("YY", "XX")), [i - q, i + q])
    assert brightness(np.ones((2, 3, 4)), ("RR",)).shape == (2, 3, 1)


@pytest.mark.parametrize(
    ("stokes", "corrs", "match"),
    [
        (np.ones(4), ("XX", "QQ"), "unknown correlations"),
        (np.ones(4), ("XX", "RR"), "mix linear"),
        (np.ones(4), (), "unknown correlations"),
        (np.ones(3), ("XX",), r"\(\.\.\., 4\)"),
    ],
)
def test_brightness_rejects_bad_input(stokes, corrs, match):
    with pytest.raises(ValueError, match=match):
        brightness(stokes, corrs)


def test_predict_rejects_bad_shapes():
    rng = np.random.default_rng(0)
    uvw, lm, shape, frequency, coherency = random_sky(rng, 4, 3, 2, ("XX",))
    with pytest.raises(ValueError, match="coherency"):
        predict_vis(uvw, lm, shape, frequency, coherency[:, :2])
    with pytest.raises(ValueError, match="horizon"):
        predict_vis(uvw, lm + 0.8, shape, frequency, coherency)
    with pytest.raises(ValueError, match="out must"):
        predict_vis(uvw, lm, shape, frequency, coherency, out=np.empty((4, 3, 2), complex))
    with pytest.raises(ValueError, match="source_chunk"):
        dft_dask.predict_vis(uvw, lm, shape, frequency, coherency, source_chunk=0)


@st.composite
def partitions(draw, n):
    """Chunk sizes (tuple of positive ints) that add up to n >= 1."""
    cuts = draw(st.sets(st.integers(1, n - 1), max_size=4)) if n > 1 else set()
    edges = [0, *sorted(cuts), n]
    return tuple(b - a for a, b in itertools.pairwise(edges))


@st.composite
def dask_cases(draw):
    nrow, nchan, nsrc = draw(st.integers(1, 12)), draw(st.integers(1, 40)), draw(st.integers(1, 7))
    corrs = draw(st.sampled_from(CORR_SETS))
    spacing = draw(st.sampled_from(["uniform", "random"]))
    seed = draw(st.integers(0, 2**32 - 1))
    chunks = {
        "row": draw(partitions(nrow)),
        "chan": draw(partitions(nchan)),
        "source": draw(partitions(nsrc)),
        "source_chunk": draw(st.none() | st.integers(1, nsrc)),
    }
    return nrow, nchan, nsrc, corrs, spacing, seed, chunks


@settings(max_examples=40, deadline=None)
@given(case=dask_cases())
def test_dask_matches_numpy(case):
    nrow, nchan, nsrc, corrs, spacing, seed, chunks = case
    rng = np.random.default_rng(seed)
    uvw, lm, shape, frequency, coherency = random_sky(rng, nrow, nchan, nsrc, corrs, spacing)
    expected = predict_vis(uvw, lm, shape, frequency, coherency)
    lazy = dft_dask.predict_vis(
        da.from_array(uvw, chunks=(chunks["row"], 3)),
        da.from_array(lm, chunks=(chunks["source"], 1)),  # split component axis: rechunked
        da.from_array(shape, chunks=(chunks["source"], 3)),
        da.from_array(frequency, chunks=(chunks["chan"],)),
        da.from_array(coherency, chunks=(chunks["source"], -1, -1)),
        source_chunk=chunks["source_chunk"],
    )
    assert lazy.chunks[:2] == (chunks["row"], chunks["chan"])
    with dask.config.set(scheduler="sync"):
        actual = lazy.compute()
    assert actual.dtype == expected.dtype
    assert_vis_close(actual, expected, rtol=1e-10)


def test_dask_complex64_and_numpy_inputs():
    rng = np.random.default_rng(11)
    uvw, lm, shape, frequency, coherency = random_sky(rng, 9, 4, 5, LINEAR)
    coherency = coherency.astype(np.complex64)
    lazy = dft_dask.predict_vis(uvw, lm, shape, frequency, coherency, source_chunk=2)
    assert lazy.dtype == np.complex64
    actual = lazy.compute(scheduler="sync")
    assert actual.dtype == np.complex64
    assert_vis_close(actual, predict_vis(uvw, lm, shape, frequency, coherency), rtol=1e-6)


def _point_sky(rng, nsrc=6, corrs=("XX", "YY")):
    lm = rng.uniform(-0.02, 0.02, size=(nsrc, 2))
    frequency = np.linspace(0.9e9, 1.1e9, 8)
    stokes = np.abs(rng.normal(size=(nsrc, 4))) * [1.0, 0.1, 0.1, 0.05]
    coherency = np.repeat(brightness(stokes, corrs)[:, None, :], len(frequency), axis=1)
    return lm, np.zeros((nsrc, 3)), frequency, coherency


def test_bandwidth_smearing_is_the_average_over_the_channel():
    rng = np.random.default_rng(11)
    uvw = rng.normal(scale=[4000.0, 4000.0, 200.0], size=(20, 3))
    lm, shape, frequency, coherency = _point_sky(rng)
    width = 2.0e6  # attenuations from ~0.5 to 1 on these baselines
    smeared = predict_vis(uvw, lm, shape, frequency, coherency, chan_width=width)
    # The average of the unsmeared visibility over 401 sub-channels across each channel.
    offsets = (np.arange(401) - 200) / 401 * width
    subs = [predict_vis(uvw, lm, shape, frequency + df, coherency) for df in offsets]
    expected = np.mean(subs, axis=0)
    assert_vis_close(smeared, expected, rtol=2e-5)
    unsmeared = predict_vis(uvw, lm, shape, frequency, coherency)
    assert np.max(np.abs(unsmeared - expected)) > 0.1 * np.max(np.abs(expected))


def _uvw_at(baselines, hour_angle, dec):
    """Exact uvw (row, 3) of equatorial baselines (row, 3) at hour angles (row,)."""
    lx, ly, lz = baselines.T
    sin_h, cos_h, sin_d, cos_d = np.sin(hour_angle), np.cos(hour_angle), np.sin(dec), np.cos(dec)
    u = lx * sin_h + ly * cos_h
    v = sin_d * (ly * sin_h - lx * cos_h) + lz * cos_d
    w = cos_d * (lx * cos_h - ly * sin_h) + lz * sin_d
    return np.stack([u, v, w], axis=1)


@pytest.mark.parametrize("gaussians", [0, 3])
def test_time_smearing_is_the_average_over_the_integration(gaussians):
    from radiocloud.core.kernels.dft import earth_rotation_uvw_rate

    rng = np.random.default_rng(12)
    dec, exposure, nrow = -0.95, 64.0, 16
    baselines = rng.normal(scale=3000.0, size=(nrow, 3))
    hour_angle = rng.uniform(-1.0, 1.0, nrow)
    uvw = _uvw_at(baselines, hour_angle, dec)
    lm, shape, frequency, coherency = _point_sky(rng)
    shape[:gaussians] = [2e-5, 1e-5, 0.3]
    delta = earth_rotation_uvw_rate(uvw, dec) * exposure
    smeared = predict_vis(uvw, lm, shape, frequency, coherency, uvw_delta=delta)
    # The average over 401 sub-integrations of exactly rotated baselines.
    ticks = (np.arange(401) - 200) / 401 * exposure * 7.292115e-5
    subs = [predict_vis(_uvw_at(baselines, hour_angle + t, dec), lm, shape, frequency, coherency)
            for t in ticks]  # fmt: skip
    expected = np.mean(subs, axis=0)
    assert_vis_close(smeared, expected, rtol=1e-3)  # phase curvature over 64 s
    unsmeared = predict_vis(uvw, lm, shape, frequency, coherency)
    assert np.max(np.abs(unsmeared - expected)) > 0.05 * np.max(np.abs(expected))


def test_smearing_off_is_bit_identical_and_checks_its_input():
    rng = np.random.default_rng(13)
    uvw, lm, shape, frequency, coherency = random_sky(rng, 10, 40, 6, LINEAR)
    plain = predict_vis(uvw, lm, shape, frequency, coherency)
    zero = predict_vis(uvw, lm, shape, frequency, coherency, chan_width=0.0)
    np.testing.assert_array_equal(plain, zero)
    with pytest.raises(ValueError, match="chan_width"):
        predict_vis(uvw, lm, shape, frequency, coherency, chan_width=-1.0)
    with pytest.raises(ValueError, match="uvw_delta"):
        predict_vis(uvw, lm, shape, frequency, coherency, uvw_delta=np.zeros((3, 3)))
