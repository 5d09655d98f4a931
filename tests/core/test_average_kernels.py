"""Averaging kernels against a slow numpy reference, the bin plan and the smearing model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radiocloud.core.kernels.average import (
    BaselineMotion,
    RowOrderError,
    TimeSamplingError,
    average_channels,
    bda_factors,
    bin_rows,
    bin_visibilities,
    bin_weights,
    channel_map,
    decorrelation,
    dirichlet,
    plan_bins,
)


def reference(rows, out_row, n_out, chan_out, n_chan_out, flag, flag_row, weight, sigma, data):
    """One output sample at a time, straight from the documented rules."""
    ncorr = flag.shape[2]
    shape = (n_out, n_chan_out, ncorr)
    avg = np.zeros(shape, complex)
    w_out, s_out = np.zeros(shape), np.zeros(shape)
    f_out = np.zeros(shape, bool)
    for o in range(n_out):
        in_rows = rows[out_row == o]
        for oc in range(n_chan_out):
            in_chans = np.flatnonzero(chan_out == oc)
            for p in range(ncorr):
                d = data[np.ix_(in_rows, in_chans)][..., p].ravel()
                w = weight[np.ix_(in_rows, in_chans)][..., p].ravel().astype(float)
                s = sigma[np.ix_(in_rows, in_chans)][..., p].ravel().astype(float)
                bad = flag[np.ix_(in_rows, in_chans)][..., p] | flag_row[in_rows][:, None]
                good = ~bad.ravel() & (w > 0)
                if good.any():
                    sel = good
                    f_out[o, oc, p] = False
                else:
                    sel = np.ones_like(good)
                    f_out[o, oc, p] = True
                if w[sel].sum() > 0:
                    avg[o, oc, p] = np.sum(w[sel] * d[sel]) / w[sel].sum()
                    s_out[o, oc, p] = np.sqrt(np.sum(w[sel] ** 2 * s[sel] ** 2)) / w[sel].sum()
                else:
                    avg[o, oc, p] = d[sel].mean()
                    s_out[o, oc, p] = np.sqrt(np.sum(s[sel] ** 2)) / sel.sum()
                w_out[o, oc, p] = w[sel].sum()
    return avg, w_out, s_out, f_out


@st.composite
def binning_problems(draw):
    nrow = draw(st.integers(1, 12))
    nchan = draw(st.integers(1, 9))
    ncorr = draw(st.sampled_from([1, 2, 4]))
    n_out = draw(st.integers(1, nrow))
    # every output row gets at least one input row; some input rows take no part
    out_of = np.array(draw(st.lists(st.integers(0, n_out - 1), min_size=nrow, max_size=nrow)))
    out_of[:n_out] = np.arange(n_out)
    take = np.array(draw(st.lists(st.booleans(), min_size=nrow, max_size=nrow)))
    take[:n_out] = True
    factor = draw(st.integers(1, nchan))
    seed = draw(st.integers(0, 2**32 - 1))
    flag_fraction = draw(st.sampled_from([0.0, 0.3, 0.8, 1.0]))
    zero_weights = draw(st.booleans())
    rng = np.random.default_rng(seed)
    shape = (nrow, nchan, ncorr)
    weight = rng.uniform(0.1, 3.0, shape)
    if zero_weights:
        weight[rng.random(shape) < 0.3] = 0.0
    rows = np.flatnonzero(take)
    rng.shuffle(rows)
    chan_out, n_chan_out = channel_map(nchan, factor)
    return {
        "rows": rows.astype(np.int64),
        "out_row": out_of[rows].astype(np.int64),
        "n_out": n_out,
        "chan_out": chan_out,
        "n_chan_out": n_chan_out,
        "flag": rng.random(shape) < flag_fraction,
        "flag_row": rng.random(nrow) < 0.1,
        "weight": weight.astype(np.float32),
        "sigma": rng.uniform(0.5, 2.0, shape).astype(np.float32),
        "data": (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64),
    }


@settings(max_examples=150, deadline=None)
@given(binning_problems())
def test_kernels_match_reference(p):
    want_avg, want_w, want_s, want_f = reference(**p)
    args = [p[k] for k in ("rows", "out_row", "n_out", "chan_out", "n_chan_out", "flag")]
    w, s, f, row_good = bin_weights(*args, p["flag_row"], p["weight"], p["sigma"])
    avg = bin_visibilities(*args, p["flag_row"], p["weight"], p["data"])
    np.testing.assert_array_equal(f, want_f)
    np.testing.assert_allclose(w, want_w, rtol=1e-6)
    np.testing.assert_allclose(s, want_s, rtol=1e-5)
    np.testing.assert_allclose(avg, want_avg, rtol=1e-5, atol=1e-6)
    assert avg.dtype == np.complex64
    # each listed row's good weight
    good = ~(p["flag"] | p["flag_row"][:, None, None]) & (p["weight"] > 0)
    np.testing.assert_allclose(
        row_good, np.where(good, p["weight"], 0).sum(axis=(1, 2))[p["rows"]], rtol=1e-6
    )


@settings(max_examples=60, deadline=None)
@given(binning_problems())
def test_weighted_sums_are_kept(p):
    """Σ W·V over unflagged output samples equals Σ w·v over the good input samples."""
    args = [p[k] for k in ("rows", "out_row", "n_out", "chan_out", "n_chan_out", "flag")]
    w, _, f, _ = bin_weights(*args, p["flag_row"], p["weight"], p["sigma"])
    avg = bin_visibilities(*args, p["flag_row"], p["weight"], p["data"])
    rows = p["rows"]
    good = ~(p["flag"] | p["flag_row"][:, None, None]) & (p["weight"] > 0)
    good = good[rows]
    want = np.sum(np.where(good, p["weight"][rows] * p["data"][rows].astype(complex), 0))
    got = np.sum(np.where(f, 0, w * avg.astype(complex)))
    assert abs(got - want) <= 1e-4 * max(1.0, np.sum(np.abs(p["data"][rows])))


def test_factor_one_is_identity():
    rng = np.random.default_rng(3)
    shape = (7, 5, 4)
    data = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    flag = rng.random(shape) < 0.3
    weight = rng.uniform(0.5, 2, shape).astype(np.float32)
    sigma = rng.uniform(0.5, 2, shape).astype(np.float32)
    rows = np.arange(7, dtype=np.int64)
    chan_out, n = channel_map(5, 1)
    flag_row = np.zeros(7, bool)
    w, s, f, _ = bin_weights(rows, rows, 7, chan_out, n, flag, flag_row, weight, sigma)
    avg = bin_visibilities(rows, rows, 7, chan_out, n, flag, flag_row, weight, data)
    np.testing.assert_array_equal(avg, data)
    np.testing.assert_array_equal(f, flag)
    np.testing.assert_allclose(w, weight, rtol=1e-7)
    np.testing.assert_allclose(s, sigma, rtol=1e-6)


def test_broadcast_weights_equal_full_weights():
    rng = np.random.default_rng(4)
    shape = (6, 4, 2)
    data = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    flag = rng.random(shape) < 0.2
    row_weight = rng.uniform(0.5, 2, (6, 2)).astype(np.float32)
    rows = np.arange(6, dtype=np.int64)
    out_row = rows // 3
    chan_out, n = channel_map(4, 2)
    common = (rows, out_row, 2, chan_out, n, flag, np.zeros(6, bool))
    full = np.broadcast_to(row_weight[:, None, :], shape).copy()
    np.testing.assert_array_equal(
        bin_visibilities(*common, row_weight[:, None, :], data),
        bin_visibilities(*common, full, data),
    )
    natural = bin_visibilities(*common, np.ones((1, 1, 1), np.float32), data)
    np.testing.assert_array_equal(natural, bin_visibilities(*common, np.ones(shape), data))


def test_bin_rows_time_span_and_weighted_centroid():
    time = 5e9 + np.array([0.0, 8.0, 16.0, 24.0])
    interval = np.full(4, 8.0)
    exposure = np.array([8.0, 8.0, 7.0, 8.0])
    uvw = np.array([[1.0, 2, 3], [3, 4, 5], [5, 6, 7], [7, 8, 9]])
    rows = np.arange(4, dtype=np.int64)
    out_row = np.zeros(4, dtype=np.int64)
    row_good = np.array([1.0, 0.0, 3.0, 0.0])  # rows 1 and 3 entirely flagged
    t, iv, ex, tc, uvw_out, first = bin_rows(
        rows, out_row, 1, row_good, time, interval, exposure, time, uvw
    )
    assert t[0] == pytest.approx(5e9 + 12.0, abs=1e-6)  # centre of [-4, 28]
    assert iv[0] == pytest.approx(32.0)
    assert ex[0] == pytest.approx(31.0)
    assert tc[0] == pytest.approx(5e9 + (0.0 * 1 + 16.0 * 3) / 4, abs=1e-6)
    np.testing.assert_allclose(uvw_out[0], (uvw[0] + 3 * uvw[2]) / 4)
    assert first[0] == 0
    # all flagged: plain means
    _, _, _, tc, uvw_out, _ = bin_rows(
        rows, out_row, 1, np.zeros(4), time, interval, exposure, time, uvw
    )
    assert tc[0] == pytest.approx(5e9 + 12.0, abs=1e-6)
    np.testing.assert_allclose(uvw_out[0], uvw.mean(axis=0))


def _grid(n_ant=4, n_time=8, dt=8.0, t0=5e9):
    a1, a2 = np.triu_indices(n_ant, 0)
    nbl = len(a1)
    return {
        "time": np.repeat(t0 + dt * np.arange(n_time), nbl),
        "interval": np.full(nbl * n_time, dt),
        "antenna1": np.tile(a1, n_time).astype(np.int64),
        "antenna2": np.tile(a2, n_time).astype(np.int64),
    }


def test_plan_bins_whole_bins_per_chunk_and_autos_left_out():
    g = _grid(n_time=10)
    n = len(g["time"])
    keep = g["antenna1"] != g["antenna2"]
    plan = plan_bins(
        **g, segment=np.zeros(n, np.int64), time_factor=np.full(n, 4),
        group=np.zeros(n, np.int64), keep=keep, target_rows=25,
    )  # fmt: skip
    assert sum(plan.chunks) == n
    # 10 integrations by 4: bins of 4, 4 and 2; 6 cross-correlations each
    assert sum(plan.n_out(0)) == 3 * 6
    start = 0
    for size, bins in zip(plan.chunks, plan.groups[0], strict=True):
        rows = bins.rows + start
        assert np.all(keep[rows])
        for o in range(bins.n_out):
            members = rows[bins.out_row == o]
            # one baseline, integrations of one bin
            assert len({(g["antenna1"][r], g["antenna2"][r]) for r in members}) == 1
            k = np.rint((g["time"][members] - 5e9) / 8.0).astype(int)
            assert len(set(k // 4)) == 1
        start += size


def test_plan_bins_never_crosses_segments():
    g = _grid(n_time=8)
    n = len(g["time"])
    segment = (np.arange(n) >= n // 2).astype(np.int64)  # a scan change after 4 integrations
    g["time"] = g["time"] + segment * 3.0  # the second scan's grid is offset
    plan = plan_bins(
        **g, segment=segment, time_factor=np.full(n, 3), group=np.zeros(n, np.int64),
        keep=np.ones(n, bool), target_rows=10**6,
    )  # fmt: skip
    (bins,) = plan.groups[0]
    for o in range(bins.n_out):
        assert len(set(segment[bins.rows[bins.out_row == o]])) == 1
    # each 4-integration scan: bins of 3 and 1, for 10 baselines (autos kept)
    assert bins.n_out == 2 * 2 * 10


def test_plan_refuses_non_uniform_sampling_and_unsorted_rows():
    g = _grid()
    n = len(g["time"])
    common = {
        "segment": np.zeros(n, np.int64), "time_factor": np.full(n, 2),
        "group": np.zeros(n, np.int64), "keep": np.ones(n, bool), "target_rows": 10,
    }  # fmt: skip
    varying = dict(g, interval=np.where(np.arange(n) < n // 2, 8.0, 4.0))
    with pytest.raises(TimeSamplingError, match="uniform sampling"):
        plan_bins(**varying, **common)
    off_grid = dict(g, time=g["time"] + np.where(np.arange(n) == 12, 2.5, 0.0))
    with pytest.raises(TimeSamplingError, match="off the 8 s grid"):
        plan_bins(**off_grid, **common)
    order = np.random.default_rng(0).permutation(n)
    shuffled = {k: v[order] for k, v in g.items()}
    with pytest.raises(RowOrderError, match="not in time order"):
        plan_bins(**shuffled, **common)


def test_average_channels_spectral_window():
    freq = 1e9 + 1e6 * np.arange(10)
    width = np.full(10, 1e6)
    out = average_channels(freq, width, 4, EFFECTIVE_BW=width, RESOLUTION=width)
    np.testing.assert_allclose(out["CHAN_FREQ"], [1e9 + 1.5e6, 1e9 + 5.5e6, 1e9 + 8.5e6])
    np.testing.assert_allclose(out["CHAN_WIDTH"], [4e6, 4e6, 2e6])
    np.testing.assert_allclose(out["EFFECTIVE_BW"], [4e6, 4e6, 2e6])
    np.testing.assert_allclose(out["RESOLUTION"], [4e6, 4e6, 2e6])
    assert out["CHAN_WIDTH"].sum() == width.sum()  # TOTAL_BANDWIDTH kept
    # descending frequencies keep their negative widths
    down = average_channels(freq[::-1], -width, 5)
    np.testing.assert_allclose(down["CHAN_WIDTH"], [-5e6, -5e6])
    np.testing.assert_allclose(down["CHAN_FREQ"], [1e9 + 7e6, 1e9 + 2e6])


def test_dirichlet_is_the_mean_phasor():
    x = np.linspace(0.0, 1.3, 40)
    for n in (1, 2, 5, 16):
        phases = 2 * x[:, None] * (np.arange(n) - (n - 1) / 2)[None, :]
        want = np.abs(np.exp(1j * phases).mean(axis=1))
        np.testing.assert_allclose(dirichlet(x, n), want, atol=1e-12)


def test_decorrelation_and_bda_factors():
    # two baselines: a short slow one and a long fast one
    motion = BaselineMotion(
        np.array([0, 0]), np.array([1, 2]), np.array([100.0, 8000.0]), np.array([0.007, 0.58])
    )
    freq = np.array([1.4e9])
    common = {"freq": freq, "chan_width": np.array([2e5]), "edge": np.array([0.01]), "dt": 8.0}
    loss = decorrelation(motion, **common, time_factor=4, chan_factor=4)
    x_t = math.pi * 1.4e9 * 0.01 * 0.58 * 8.0 / 299_792_458.0
    x_f = math.pi * 0.01 * 8000.0 * 2e5 / 299_792_458.0
    want = 1 - abs(math.sin(4 * x_t) / (4 * math.sin(x_t))) * abs(
        math.sin(4 * x_f) / (4 * math.sin(x_f))
    )
    assert loss["both"][1] == pytest.approx(want, rel=1e-9)
    assert loss["both"][0] < loss["both"][1]
    nt, nc, pred = bda_factors(
        motion, **common, max_time_factor=16, max_chan_factor=16, max_decorrelation=0.02
    )
    assert np.all(pred <= 0.02)
    assert nt[0] * nc[0] == 256  # the short baseline averages all the way
    assert nt[1] * nc[1] < 256
    # the chosen factors are the largest allowed: doubling either breaks the tolerance
    for f_t, f_c in ((2 * nt[1], nc[1]), (nt[1], 2 * nc[1])):
        if f_t <= 16 and f_c <= 16:
            worse = decorrelation(motion, **common, time_factor=f_t, chan_factor=f_c)["both"][1]
            assert worse > 0.02
