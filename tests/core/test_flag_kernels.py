"""RFI flagging kernels: slow numpy references, detection on a synthetic plane, dask == numpy."""

from __future__ import annotations

import math
from fractions import Fraction
from statistics import NormalDist

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radiocloud.core.kernels.flag import (
    DEFAULT_WINDOWS,
    dilate,
    dilate_cube,
    flag_cube,
    flag_dense,
    flag_dense_cube,
    flag_plane,
    mad_flag,
    mad_flag_cube,
    robust_sigma,
    robust_sigma_cube,
    smooth_background,
    smooth_background_cube,
    sum_threshold,
    sum_threshold_cube,
)
from radiocloud.core.kernels.flag import dask as flag_dask

WINDOW_SETS = [DEFAULT_WINDOWS, (1,), (4,), (2, 3, 5), (8, 1, 2), (1, 2, 4, 8, 16)]


# --- Slow references ------------------------------------------------------------------------


def reference_sum_threshold(data, flags, *, threshold, windows, rho, direction, absolute=False):
    """SumThreshold as its definition reads, one window position at a time, in exact rational
    arithmetic on correctly rounded window sums (exact sums for the dyadic test data).

    A run of m samples is flagged if its mean, flagged samples counted as the window's threshold
    chi, exceeds chi (with ``absolute``: if the mean of its unflagged samples exceeds chi in
    magnitude). Each pass sees the flags of the passes before it, not its own.
    """
    mask = flags | ~np.isfinite(data)
    for axis in {"time": [0], "freq": [1], "both": [0, 1]}[direction]:
        for m in windows:
            chi = Fraction(threshold / rho ** math.log2(m))
            lines, line_masks = (data.T, mask.T) if axis == 0 else (data, mask)
            new = line_masks.copy()
            for i in range(lines.shape[0]):
                for start in range(lines.shape[1] - m + 1):
                    used = ~line_masks[i, start : start + m]
                    total = Fraction(math.fsum(lines[i, start : start + m][used].tolist()))
                    nused = int(used.sum())
                    if absolute:
                        hit = nused > 0 and abs(total) > nused * chi
                    else:
                        hit = (total + (m - nused) * chi) / m > chi
                    if hit:
                        new[i, start : start + m] = True
            mask = new.T if axis == 0 else new
    return mask


def reference_smooth(data, flags, time_sigma, chan_sigma):
    """Σ g w x / Σ g w as an explicit sum over every kernel offset; the plane median where the
    weights vanish."""
    usable = ~flags & np.isfinite(data)
    wx = np.where(usable, data, 0.0).astype(np.float64)
    w = usable.astype(np.float64)
    ntime, nchan = data.shape
    ht, hc = math.ceil(3 * time_sigma), math.ceil(3 * chan_sigma)
    num = np.zeros((ntime, nchan))
    den = np.zeros((ntime, nchan))
    for dt in range(-ht, ht + 1):
        for dc in range(-hc, hc + 1):
            g = math.exp(-(dt**2) / (2 * time_sigma**2)) if time_sigma else 1.0
            g *= math.exp(-(dc**2) / (2 * chan_sigma**2)) if chan_sigma else 1.0
            for t in range(max(0, -dt), min(ntime, ntime - dt)):
                for c in range(max(0, -dc), min(nchan, nchan - dc)):
                    num[t, c] += g * wx[t + dt, c + dc]
                    den[t, c] += g * w[t + dt, c + dc]
    fill = float(np.median(data[usable])) if usable.any() else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, fill)


def reference_mad_flag(data, flags, threshold, axis, upper=False):
    out = flags | ~np.isfinite(data)
    lines = range(data.shape[1]) if axis == "time" else range(data.shape[0])
    for i in lines:
        index = (slice(None), i) if axis == "time" else (i, slice(None))
        x, used = data[index], ~out[index]
        if not used.any():
            continue
        centre = np.median(x[used])
        limit = threshold * (1.4826 * np.median(np.abs(x[used] - centre)))
        deviation = x - centre if upper else np.abs(x - centre)
        out[index] |= used & (deviation > limit)
    return out


def reference_dilate(flags, time, chan):
    out = flags.copy()
    for t, c in zip(*np.nonzero(flags), strict=True):
        out[max(t - time, 0) : t + time + 1, max(c - chan, 0) : c + chan + 1] = True
    return out


def dyadic_plane(rng, shape, dtype, flag_fraction):
    """Noise with a few bright runs, on a grid of 1/64 so every window sum is exact."""
    data = rng.normal(scale=1.5, size=shape)
    data[rng.random(shape) < 0.05] += 6.0
    data = np.round(data * 64) / 64
    return data.astype(dtype), rng.random(shape) < flag_fraction


# --- SumThreshold -----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 18), st.integers(1, 18)),
    threshold=st.floats(0.5, 6.0),
    rho=st.sampled_from([1.5, 1.25]),
    windows=st.sampled_from(WINDOW_SETS),
    direction=st.sampled_from(["time", "freq", "both"]),
    absolute=st.booleans(),
    flag_fraction=st.sampled_from([0.0, 0.1, 0.4]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_sum_threshold_matches_reference(
    shape, threshold, rho, windows, direction, absolute, flag_fraction, dtype, seed
):
    data, flags = dyadic_plane(np.random.default_rng(seed), shape, dtype, flag_fraction)
    options = dict(threshold=threshold, windows=windows, rho=rho, direction=direction)
    got = sum_threshold(data, flags, absolute=absolute, **options)
    expected = reference_sum_threshold(data, flags, absolute=absolute, **options)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("direction", ["time", "freq", "both"])
def test_sum_threshold_finds_runs_like_reference(direction):
    # Unrounded float64 noise with faint lines and bursts: the defaults flag plenty, exactly so.
    rng = np.random.default_rng(7)
    data = rng.normal(size=(64, 48))
    data[:, 10] += 1.5  # a faint line only long windows along time see
    data[20:23, :] += 3.0  # a burst along frequency
    flags = rng.random(data.shape) < 0.05
    got = sum_threshold(data, flags, threshold=6.0, direction=direction)
    expected = reference_sum_threshold(
        data, flags, threshold=6.0, windows=DEFAULT_WINDOWS, rho=1.5, direction=direction
    )
    np.testing.assert_array_equal(got, expected)
    assert got.sum() - flags.sum() > 60


def test_sum_threshold_counts_flagged_samples_as_the_threshold():
    # A 100-sigma spike flagged at window 1 must not drag its neighbours over the thresholds
    # of the longer windows; counted at its own value it would flag 8 channels at window 8.
    data = np.zeros((1, 16))
    data[0, 8] = 100.0
    flags = np.zeros(data.shape, bool)
    got = sum_threshold(data, flags, threshold=6.0, direction="freq")
    np.testing.assert_array_equal(np.nonzero(got[0])[0], [8])
    # absolute: a run of -5 is flagged at window 2 (threshold 4), but not without it
    data[0, 2:4] = -5.0
    assert not sum_threshold(data, flags, threshold=6.0, direction="freq")[0, 2:4].any()
    assert sum_threshold(data, flags, threshold=6.0, direction="freq", absolute=True)[0, 2:4].all()


def test_sum_threshold_flags_non_finite_and_keeps_input():
    data = np.zeros((5, 6))
    data[1, 2], data[3, 4] = np.nan, np.inf
    flags = np.zeros(data.shape, bool)
    flags[0, 0] = True
    data_before, flags_before = data.copy(), flags.copy()
    got = sum_threshold(data, flags, threshold=1.0)
    assert set(zip(*np.nonzero(got), strict=True)) == {(0, 0), (1, 2), (3, 4)}
    np.testing.assert_array_equal(data, data_before)
    np.testing.assert_array_equal(flags, flags_before)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    window=st.integers(1, 12),
    thresholds=st.tuples(st.floats(0.5, 8.0), st.floats(0.5, 8.0)),
    direction=st.sampled_from(["time", "freq"]),
    seed=st.integers(0, 2**16),
)
def test_sum_threshold_single_pass_is_monotone(shape, window, thresholds, direction, seed):
    """One window size along one direction: a lower threshold flags a superset (a theorem)."""
    data, flags = dyadic_plane(np.random.default_rng(seed), shape, np.float64, 0.1)
    low, high = sorted(thresholds)
    options = dict(windows=(window,), direction=direction)
    flags_low = sum_threshold(data, flags, threshold=low, **options)
    flags_high = sum_threshold(data, flags, threshold=high, **options)
    assert not (flags_high & ~flags_low).any()


def test_sum_threshold_is_not_monotone_across_window_sizes():
    """With several window sizes a lower threshold can flag less: flagged samples count as the
    threshold, so a sample flagged early at the lower one stops helping its neighbour's run
    (AOFlagger's rule, kept on purpose). Here 6 is flagged alone at threshold 5, leaving the
    mean of (6, 3) below the window-2 threshold 5/1.5; at threshold 6 both are flagged."""
    data = np.array([[0.0, 6.0, 3.0, 0.0]])
    flags = np.zeros(data.shape, bool)
    options = dict(windows=(1, 2), direction="freq")
    np.testing.assert_array_equal(
        sum_threshold(data, flags, threshold=5.0, **options), [[False, True, False, False]]
    )
    np.testing.assert_array_equal(
        sum_threshold(data, flags, threshold=6.0, **options), [[False, True, True, False]]
    )


# --- Background and noise ---------------------------------------------------------------------


@pytest.mark.parametrize("sigmas", [(1.6, 2.2), (0.0, 3.0), (2.5, 0.0), (0.4, 0.7), (0.0, 0.0)])
def test_smooth_background_matches_reference(sigmas):
    rng = np.random.default_rng(3)
    data = 20 + rng.normal(size=(37, 53))
    flags = rng.random(data.shape) < 0.2
    flags[5:25, 10:40] = True  # wider than the kernel: the median fills where weights vanish
    data[0, 0] = np.nan  # unflagged NaN: weight 0 as well
    got = smooth_background(data, flags, time_sigma=sigmas[0], chan_sigma=sigmas[1], linear=False)
    expected = reference_smooth(data, flags, *sigmas)
    assert got.dtype == np.float64
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=0)
    # float32 in, float32 out, the same numbers to float32 precision
    got32 = smooth_background(
        data.astype(np.float32), flags, time_sigma=1.6, chan_sigma=2.2, linear=False
    )
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, reference_smooth(data, flags, 1.6, 2.2), rtol=1e-5)


def reference_linear(data, flags, time_sigma, chan_sigma):
    """The local-linear background by brute force: at every sample, numpy's weighted least
    squares of b0 + bt dt + bc dc over the kernel's footprint (the mean where the samples
    cannot fix a plane, which this test's masks avoid)."""
    usable = ~flags & np.isfinite(data)
    ntime, nchan = data.shape
    ht, hc = math.ceil(3 * time_sigma), math.ceil(3 * chan_sigma)
    out = np.empty((ntime, nchan))
    for t in range(ntime):
        for c in range(nchan):
            tt, cc = np.meshgrid(np.arange(max(0, t - ht), min(ntime, t + ht + 1)),
                                 np.arange(max(0, c - hc), min(nchan, c + hc + 1)),
                                 indexing="ij")  # fmt: skip
            ok = usable[tt, cc]
            dt, dc = (tt - t)[ok], (cc - c)[ok]
            g = np.exp(-(dt**2) / (2 * time_sigma**2) - dc**2 / (2 * chan_sigma**2))
            design = np.stack([np.ones_like(dt), dt, dc], axis=1) * np.sqrt(g)[:, None]
            coef = np.linalg.lstsq(design, data[tt, cc][ok] * np.sqrt(g), rcond=None)[0]
            out[t, c] = coef[0]
    return out


def test_linear_background_matches_weighted_least_squares():
    rng = np.random.default_rng(4)
    data = 20 + rng.normal(size=(23, 31))
    flags = rng.random(data.shape) < 0.15
    got = smooth_background(data, flags, time_sigma=1.6, chan_sigma=2.2)
    np.testing.assert_allclose(got, reference_linear(data, flags, 1.6, 2.2), rtol=1e-9)


def test_linear_background_has_no_bias_on_trends_at_edges_and_gaps():
    """A sloped plane is its own background, at the window's edges and beside a flagged gap,
    where the weighted mean is biased by the slope times the kernel's one-sided extent."""
    t, c = np.meshgrid(np.arange(40.0), np.arange(60.0), indexing="ij")
    data = 5.0 + 0.7 * t - 0.3 * c
    flags = np.zeros(data.shape, bool)
    flags[10:20, 25:35] = True
    linear = smooth_background(data, flags, time_sigma=1.6, chan_sigma=2.2)
    mean = smooth_background(data, flags, time_sigma=1.6, chan_sigma=2.2, linear=False)
    np.testing.assert_allclose(linear, data, atol=1e-9)
    assert np.abs(mean - data)[0].max() > 0.5  # 0.7 per integration, one-sided at t = 0
    # one axis without smoothing: a line fit along the other
    line = smooth_background(data, flags, time_sigma=0.0, chan_sigma=2.2)
    np.testing.assert_allclose(line, data, atol=1e-9)


def test_smooth_background_all_flagged_is_zero_not_nan():
    data = np.ones((4, 5))
    got = smooth_background(data, np.ones(data.shape, bool), time_sigma=1.0, chan_sigma=1.0)
    np.testing.assert_array_equal(got, 0.0)


def contaminated_sigma(fraction: float) -> float:
    """1.4826 MAD of unit Gaussian noise of which ``fraction`` is replaced by +inf."""
    normal = NormalDist()
    centre = normal.inv_cdf(0.5 / (1 - fraction))
    lo, hi = 0.0, 10.0
    for _ in range(100):  # half the samples lie within d of the median
        d = 0.5 * (lo + hi)
        inside = (1 - fraction) * (normal.cdf(centre + d) - normal.cdf(centre - d))
        lo, hi = (d, hi) if inside < 0.5 else (lo, d)
    return 1.4826 * d


def test_robust_sigma():
    rng = np.random.default_rng(11)
    data = rng.normal(scale=3.0, size=100_000)
    flags = np.zeros(data.shape, bool)
    assert robust_sigma(data, flags) == pytest.approx(3.0, rel=0.02)
    outliers = rng.random(data.shape) < 0.1
    data[outliers] = 1e6
    data[:50] = np.nan  # unflagged NaN is ignored
    assert robust_sigma(data, outliers) == pytest.approx(3.0, rel=0.02)
    # Unflagged, the outliers bias the MAD only as far as its breakdown allows (+13%).
    unflagged = np.zeros(data.shape, bool)
    expected = 3.0 * contaminated_sigma(outliers.mean())
    assert expected == pytest.approx(3.4, abs=0.05)
    assert robust_sigma(data, unflagged) == pytest.approx(expected, rel=0.02)
    assert math.isnan(robust_sigma(data, np.ones(data.shape, bool)))


# --- Robust outliers, dilation, dense lines ---------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    threshold=st.floats(1.0, 6.0),
    axis=st.sampled_from(["time", "chan"]),
    upper=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_mad_flag_matches_numpy(shape, threshold, axis, upper, seed):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=shape) + (rng.random(shape) < 0.1) * 20.0
    data -= (rng.random(shape) < 0.1) * 40.0  # dips, flagged only when not ``upper``
    data[rng.random(shape) < 0.05] = np.nan
    flags = rng.random(shape) < 0.2
    got = mad_flag(data, flags, threshold=threshold, axis=axis, upper=upper)
    expected = reference_mad_flag(data, flags, threshold, axis, upper)
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 25), st.integers(1, 25)),
    time=st.integers(0, 4),
    chan=st.integers(0, 4),
    fraction=st.sampled_from([0.0, 0.02, 0.1]),
    seed=st.integers(0, 2**16),
)
def test_dilate_matches_numpy(shape, time, chan, fraction, seed):
    flags = np.random.default_rng(seed).random(shape) < fraction
    np.testing.assert_array_equal(
        dilate(flags, time=time, chan=chan), reference_dilate(flags, time, chan)
    )


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    max_fraction=st.sampled_from([0.0, 0.2, 0.5, 0.75, 1.0]),
    axis=st.sampled_from(["time", "chan"]),
    seed=st.integers(0, 2**16),
)
def test_flag_dense_matches_numpy(shape, max_fraction, axis, seed):
    rng = np.random.default_rng(seed)
    flags = rng.random(shape) < rng.random((1, shape[1]) if axis == "time" else (shape[0], 1))
    expected = flags.copy()
    if axis == "time":
        expected[:, flags.mean(axis=0) > max_fraction] = True
    else:
        expected[flags.mean(axis=1) > max_fraction, :] = True
    np.testing.assert_array_equal(flag_dense(flags, max_fraction=max_fraction, axis=axis), expected)


# --- The iterated strategy --------------------------------------------------------------------


def synthetic_plane(seed, rfi=True):
    """A bandpass (13 to 39, ripple and soft band edges) times a slow gain drift, unit noise,
    and RFI: strong and faint persistent lines, broadband bursts, a drifting line, a blob and
    single spikes. Returns data and the injected RFI amplitude (0 where clean)."""
    rng = np.random.default_rng(seed)
    ntime, nchan = 300, 256
    t = np.arange(ntime)[:, None]
    c = np.arange(nchan)[None, :]
    x = c / (nchan - 1)
    ripple = 30 + 12 * np.sin(2 * np.pi * 1.3 * x + 0.4) + 5 * np.cos(2 * np.pi * 3.1 * x)
    edges = 1 / (1 + np.exp(-(c - 8) / 10)) / (1 + np.exp((c - (nchan - 9)) / 10))
    clean = (10 + (ripple - 10) * edges) * (1 + 0.05 * np.sin(2 * np.pi * 1.5 * t / ntime))
    amp = np.zeros((ntime, nchan))
    if rfi:
        amp[:, 40] += 20
        amp[:, 41] += 12
        amp[:, 130] += 50
        amp[50:250, 200] += 8
        amp[100, :] += 15
        amp[101, :] += 8
        amp[220, :180] += 30
        amp[:, 70] += 6  # faint lines, 5-10 sigma
        amp[:150, 160] += 9
        amp[:, 230] += 5.5
        for time in range(150, 290):  # a line drifting from channel 80 to 120
            centre = 80 + 40 * (time - 150) / 140
            amp[time] += 12 * np.exp(-0.5 * (np.arange(nchan) - centre) ** 2)
        amp += 10 * np.exp(-0.5 * (((t - 60) / 6.0) ** 2 + ((c - 180) / 4.0) ** 2))  # a blob
        amp[amp < 0.5] = 0.0  # so that "clean" means untouched
        spikes = rng.integers(0, ntime, 20), rng.integers(0, nchan, 20)
        amp[spikes] += rng.uniform(10, 30, 20)
    return clean + rng.normal(size=(ntime, nchan)) + amp, amp


def test_flag_plane_detects_rfi():
    data, amp = synthetic_plane(seed=0)
    flags = flag_plane(data, np.zeros(data.shape, bool))
    recall = flags[amp > 5].mean()
    false_rate = flags[amp == 0].mean()
    assert recall >= 0.95, f"recall {recall:.4f}"
    assert false_rate < 0.02, f"false-flag rate {false_rate:.4f}"
    noise, _ = synthetic_plane(seed=1, rfi=False)
    noise_rate = flag_plane(noise, np.zeros(noise.shape, bool)).mean()
    assert noise_rate < 0.01, f"pure noise flagged {noise_rate:.4f}"


def test_flag_plane_is_nearly_monotone():
    """Lower thresholds flag (almost) a superset: the few exceptions are window edges beside
    RFI, see test_sum_threshold_is_not_monotone_across_window_sizes."""
    data, amp = synthetic_plane(seed=2)
    none = np.zeros(data.shape, bool)
    results = {thr: flag_plane(data, none, threshold=thr) for thr in (5.0, 6.0, 8.0, 12.0)}
    for low, high in [(5.0, 6.0), (6.0, 8.0), (8.0, 12.0), (5.0, 12.0)]:
        lost = results[high] & ~results[low]
        assert lost.sum() <= 0.02 * results[high].sum(), (low, high, lost.sum())
        assert results[low].sum() > results[high].sum()
        assert (lost & (amp > 5)).sum() <= 0.002 * (amp > 5).sum()


def test_flag_plane_is_the_documented_composition():
    data = synthetic_plane(seed=3)[0][40:100, 150:220].copy()  # a blob, two lines
    data[5, 5] = np.nan
    flags = np.random.default_rng(0).random(data.shape) < 0.02
    options = dict(windows=(1, 2, 4, 8), rho=1.5, direction="both")
    expected = flags | ~np.isfinite(data)
    for i in range(3):
        residual = data - smooth_background(data, expected, time_sigma=1.6, chan_sigma=2.2)
        sigma = robust_sigma(residual, expected)
        expected = sum_threshold(
            residual / sigma, expected, threshold=5.0 * 2 ** (2 - i), **options
        )
    got = flag_plane(data, flags, threshold=5.0, iterations=3, **options)
    np.testing.assert_array_equal(got, expected)
    assert (got & ~flags).sum() > 100  # the line at channel 160 alone has 60 samples


def test_flag_plane_constant_and_flagged_data():
    constant = np.full((10, 12), 3.0)
    constant[2, 3] = np.inf
    none = np.zeros(constant.shape, bool)
    np.testing.assert_array_equal(flag_plane(constant, none), ~np.isfinite(constant))
    full = np.ones(constant.shape, bool)
    np.testing.assert_array_equal(flag_plane(constant, full), full)


# --- Cubes and dask ---------------------------------------------------------------------------


def random_cube(seed, shape=(5, 40, 36), dtype=np.float32):
    rng = np.random.default_rng(seed)
    data = (10 + rng.normal(size=shape) + (rng.random(shape) < 0.03) * 15).astype(dtype)
    data[:, 7, :] += 6  # a burst in every baseline
    data[1, 3, 4] = np.nan
    return data, rng.random(shape) < 0.05


def test_flag_cube_numpy_dask_and_planes_agree():
    data, flags = random_cube(0)
    data_before, flags_before = data.copy(), flags.copy()
    options = dict(threshold=5.0, windows=(1, 2, 4, 8, 16))
    planes = np.stack([flag_plane(d, f, **options) for d, f in zip(data, flags, strict=True)])
    cube = flag_cube(data, flags, **options)
    one_thread = flag_cube(data, flags, nthreads=1, **options)
    lazy = flag_dask.flag_cube(
        da.from_array(data, chunks=(2, 15, 20)), da.from_array(flags, chunks=(3, 40, 36)), **options
    )
    assert lazy.chunks == ((2, 2, 1), (40,), (36,))
    with dask.config.set(scheduler="threads", num_workers=2):
        computed = lazy.compute()
    assert planes.sum() > flags.sum() + 5 * 36  # the bursts at least
    np.testing.assert_array_equal(cube, planes)
    np.testing.assert_array_equal(one_thread, planes)
    np.testing.assert_array_equal(computed, planes)
    np.testing.assert_array_equal(data, data_before)
    np.testing.assert_array_equal(flags, flags_before)


CUBE_FORMS = {
    "sum_threshold": (sum_threshold_cube, sum_threshold, dict(threshold=4.0, direction="time")),
    "smooth": (smooth_background_cube, smooth_background, dict(time_sigma=1.0, chan_sigma=2.0)),
    "robust_sigma": (robust_sigma_cube, robust_sigma, {}),
    "mad_flag": (mad_flag_cube, mad_flag, dict(threshold=3.0, axis="chan")),
}


@pytest.mark.parametrize("name", CUBE_FORMS)
def test_cube_forms_match_planes(name):
    cube_form, plane_form, options = CUBE_FORMS[name]
    data, flags = random_cube(1, dtype=np.float64)
    data_before, flags_before = data.copy(), flags.copy()
    got = cube_form(data, flags, **options)
    expected = [plane_form(d, f, **options) for d, f in zip(data, flags, strict=True)]
    np.testing.assert_array_equal(got, np.array(expected))
    np.testing.assert_array_equal(data, data_before)
    np.testing.assert_array_equal(flags, flags_before)


@pytest.mark.parametrize(
    ("cube_form", "plane_form", "options"),
    [
        (dilate_cube, dilate, dict(time=2, chan=1)),
        (flag_dense_cube, flag_dense, dict(max_fraction=0.1, axis="time")),
    ],
)
def test_flag_only_cube_forms_match_planes(cube_form, plane_form, options):
    _, flags = random_cube(2)
    flags_before = flags.copy()
    got = cube_form(flags, **options)
    np.testing.assert_array_equal(got, np.array([plane_form(f, **options) for f in flags]))
    assert got.sum() > flags.sum()
    np.testing.assert_array_equal(flags, flags_before)


# --- Bad input --------------------------------------------------------------------------------

PLANE = np.zeros((4, 5))
NONE = np.zeros((4, 5), bool)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sum_threshold(PLANE + 0j, NONE, threshold=6.0), "real-valued"),
        (lambda: sum_threshold(PLANE, NONE[:3], threshold=6.0), "data's shape"),
        (lambda: sum_threshold(PLANE, NONE.astype(int), threshold=6.0), "bool"),
        (lambda: sum_threshold(PLANE[0], NONE[0], threshold=6.0), r"\(time, chan\)"),
        (lambda: sum_threshold(PLANE, NONE, threshold=0.0), "threshold"),
        (lambda: sum_threshold(PLANE, NONE, threshold=6.0, windows=(1, 0)), "windows"),
        (lambda: sum_threshold(PLANE, NONE, threshold=6.0, windows=(1.5,)), "windows"),
        (lambda: sum_threshold(PLANE, NONE, threshold=6.0, direction="up"), "direction"),
        (lambda: flag_plane(PLANE, NONE, iterations=0), "iterations"),
        (lambda: flag_plane(PLANE, NONE, time_sigma=-1.0), "time_sigma"),
        (lambda: mad_flag(PLANE, NONE, axis="freq"), "axis"),
        (lambda: dilate(NONE, time=-1), "time"),
        (lambda: flag_dense(NONE, max_fraction=1.5, axis="time"), "max_fraction"),
        (lambda: flag_cube(PLANE[None], NONE[None], nthreads=0), "nthreads"),
        (lambda: flag_dask.flag_cube(PLANE[None], NONE[None], rho=-1.0), "rho"),
    ],
)
def test_bad_input_is_a_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_dask_rejects_unknown_options():
    with pytest.raises(TypeError):
        flag_dask.flag_cube(PLANE[None], NONE[None], treshold=5.0)
