"""Calibration kernels against plain-numpy references, and the solver against injected gains."""

from __future__ import annotations

import numpy as np
import pytest

from radiocloud.core.kernels.calibrate import (
    TERM_TYPES,
    Geometry,
    Stats,
    freq_bins,
    solve,
    time_intervals,
)
from radiocloud.core.kernels.calibrate.kernels import (
    accumulate_stats,
    antenna_sums,
    apply_products,
    chi2_bins,
    whitened_residuals,
)

FEEDS4 = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
FEEDS2 = np.array([[0, 0], [1, 1]])


def crandn(rng, *shape):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def chunk(rng, nant=5, ntime=3, nchan=6, feeds=FEEDS4):
    pairs = np.array([(p, q) for p in range(nant) for q in range(nant) if p != q][::2])
    rows = np.array([(t, b) for t in range(ntime) for b in range(len(pairs))])
    nrow, ncorr = len(rows), len(feeds)
    return dict(
        vis=crandn(rng, nrow, nchan, ncorr).astype(np.complex64),
        model=crandn(rng, nrow, nchan, ncorr).astype(np.complex64),
        weight=(rng.uniform(0.5, 2, (nrow, nchan, ncorr))
                * (rng.random((nrow, nchan, ncorr)) > 0.2)).astype(np.float32),
        time=rows[:, 0], bl=rows[:, 1], ant1=pairs[rows[:, 1], 0], ant2=pairs[rows[:, 1], 1],
        pairs=pairs, H=crandn(rng, ntime, nchan, nant, 2), feeds=feeds,
    )  # fmt: skip


def test_accumulate_stats_matches_numpy():
    rng = np.random.default_rng(0)
    c = chunk(rng)
    nrow, nchan, ncorr = c["vis"].shape
    row_t = c["time"] // 2  # two time bins
    chan_f = np.arange(nchan) // 4  # two freq bins
    nbl = len(c["pairs"])
    S = np.zeros((2, 2, nbl, ncorr), complex)
    W, D, C = np.zeros(S.shape), np.zeros((2, 2)), np.zeros((2, 2))
    accumulate_stats(c["vis"], c["model"], c["weight"], row_t, c["time"], chan_f, c["bl"],
                     c["ant1"], c["ant2"], c["feeds"], c["H"], S, W, D, C)  # fmt: skip
    H, f = c["H"], c["feeds"]
    hp = H[c["time"]][:, :, c["ant1"]][np.arange(nrow), :, np.arange(nrow)]  # (row, chan, feed)
    hq = H[c["time"]][:, :, c["ant2"]][np.arange(nrow), :, np.arange(nrow)]
    m = hp[:, :, f[:, 0]] * c["model"] * np.conj(hq[:, :, f[:, 1]])
    w = c["weight"].astype(float)
    S_ref, W_ref = np.zeros_like(S), np.zeros_like(W)
    D_ref, C_ref = np.zeros_like(D), np.zeros_like(C)
    for r in range(nrow):
        for ch in range(nchan):
            t, fb, b = row_t[r], chan_f[ch], c["bl"][r]
            S_ref[t, fb, b] += w[r, ch] * c["vis"][r, ch] * np.conj(m[r, ch])
            W_ref[t, fb, b] += w[r, ch] * np.abs(m[r, ch]) ** 2
            D_ref[t, fb] += (w[r, ch] * np.abs(c["vis"][r, ch]) ** 2).sum()
            C_ref[t, fb] += (w[r, ch] > 0).sum()
    np.testing.assert_allclose(S, S_ref, rtol=1e-5)
    np.testing.assert_allclose(W, W_ref, rtol=1e-5)
    np.testing.assert_allclose(D, D_ref, rtol=1e-5)
    np.testing.assert_array_equal(C, C_ref)


def test_samples_another_term_has_flagged_are_left_out_of_a_terms_statistics():
    """Term 0's statistics with term 1 flagged for antenna 2's X feed in the first two
    channels are those of the same chunk with every such sample's weight set to 0."""
    from radiocloud.core.kernels.calibrate.dask import Lookup, _chunk_stats

    rng = np.random.default_rng(7)
    c = chunk(rng)
    nchan = c["vis"].shape[1]
    nant, ntime = 5, 3
    utimes = np.arange(ntime, dtype=float)
    gains = [crandn(rng, ntime, nchan, nant, 2), crandn(rng, ntime, nchan, nant, 2)]
    flags = [np.zeros((ntime, nchan, nant, 2), bool), np.zeros((ntime, nchan, nant, 2), bool)]
    flags[1][:, :2, 2, 0] = True
    tmap = [[np.arange(ntime)], [np.arange(ntime)]]
    bins = [np.arange(nchan), np.arange(nchan)]
    lut = np.full((nant, nant), -1)
    lut[c["pairs"][:, 0], c["pairs"][:, 1]] = np.arange(len(c["pairs"]))
    args = (c["vis"], c["model"], c["weight"], c["time"].astype(float), c["ant1"], c["ant2"])
    kw = {"part": 0, "k": 0, "lut": lut, "feeds": c["feeds"], "nbins": nchan, "how": None}
    flagged = _chunk_stats(*args, lookup=Lookup([utimes], tmap, bins, gains, flags), **kw)
    f = c["feeds"]
    hit = ((c["ant1"][:, None] == 2) & (f[None, :, 0] == 0)) | (
        (c["ant2"][:, None] == 2) & (f[None, :, 1] == 0))  # (row, corr)  # fmt: skip
    weight = c["weight"].copy()
    weight[:, :2][np.broadcast_to(hit[:, None, :], weight[:, :2].shape)] = 0
    no_flags = [np.zeros_like(flags[0]), np.zeros_like(flags[1])]
    zeroed = _chunk_stats(*args[:2], weight, *args[3:],
                          lookup=Lookup([utimes], tmap, bins, gains, no_flags), **kw)  # fmt: skip
    assert hit.any()
    for a, b in zip(flagged[1:], zeroed[1:], strict=True):
        np.testing.assert_allclose(a, b)
    assert (
        flagged[4].sum()
        < _chunk_stats(*args, lookup=Lookup([utimes], tmap, bins, gains, no_flags), **kw)[4].sum()
    )


def test_chi2_and_normal_equations_from_statistics_are_exact():
    """χ² from the statistics equals Σ w|V - g_p M' g_q^*|² over the samples, and A, B are
    the sums over each antenna's baselines (conjugated for antenna 2)."""
    rng = np.random.default_rng(1)
    c = chunk(rng, ntime=1)
    nrow, nchan, ncorr = c["vis"].shape
    ones = np.ones_like(c["H"])
    nbl, nant = len(c["pairs"]), c["H"].shape[2]
    S = np.zeros((1, 1, nbl, ncorr), complex)
    W, D, C = np.zeros(S.shape), np.zeros((1, 1)), np.zeros((1, 1))
    zeros_r, zeros_c = np.zeros(nrow, np.int64), np.zeros(nchan, np.int64)
    accumulate_stats(c["vis"], c["model"], c["weight"], zeros_r, zeros_r, zeros_c, c["bl"],
                     c["ant1"], c["ant2"], c["feeds"], ones, S, W, D, C)  # fmt: skip
    g = crandn(rng, 1, 1, nant, 2)
    f = c["feeds"]
    gp, gq = g[0, 0, c["ant1"]][:, f[:, 0]], g[0, 0, c["ant2"]][:, f[:, 1]]  # (row, corr)
    resid = c["vis"] - gp[:, None] * c["model"] * np.conj(gq[:, None])
    chi2_ref = (c["weight"] * np.abs(resid) ** 2).sum()
    assert chi2_bins(S, W, D, g, c["pairs"], f)[0, 0] == pytest.approx(chi2_ref, rel=1e-6)
    A, B, _ = antenna_sums(S, W, g, c["pairs"], f, nant)
    w = c["weight"].astype(float)
    A_ref, B_ref = np.zeros((nant, 2)), np.zeros((nant, 2), complex)
    for r in range(nrow):
        p, q = c["ant1"][r], c["ant2"][r]
        for k, (a, e) in enumerate(f):
            y = c["model"][r, :, k] * np.conj(g[0, 0, q, e])  # V_pq ~ g_p y
            A_ref[p, a] += (w[r, :, k] * np.abs(y) ** 2).sum()
            B_ref[p, a] += (w[r, :, k] * c["vis"][r, :, k] * np.conj(y)).sum()
            z = np.conj(c["model"][r, :, k]) * np.conj(g[0, 0, p, a])  # V_pq^* ~ g_q z
            A_ref[q, e] += (w[r, :, k] * np.abs(z) ** 2).sum()
            B_ref[q, e] += (w[r, :, k] * np.conj(c["vis"][r, :, k]) * np.conj(z)).sum()
    np.testing.assert_allclose(A[0, 0], A_ref, rtol=1e-6)
    np.testing.assert_allclose(B[0, 0], B_ref, rtol=1e-6)


def test_whitened_residuals_and_products_match_numpy():
    rng = np.random.default_rng(2)
    c = chunk(rng)
    f = c["feeds"]
    nrow = len(c["time"])
    G = c["H"]
    gp = G[c["time"], :, c["ant1"]][:, :, f[:, 0]]  # (row, chan, corr)
    gq = G[c["time"], :, c["ant2"]][:, :, f[:, 1]]
    gain = gp * np.conj(gq)
    e2 = whitened_residuals(
        c["vis"], c["model"], c["weight"], c["time"], c["ant1"], c["ant2"], f, G
    )
    np.testing.assert_allclose(
        e2, c["weight"] * np.abs(c["vis"] - gain * c["model"]) ** 2, rtol=1e-4
    )
    flags = np.zeros(G.shape, bool)
    flags[1, :, 2, 0] = True
    for corrected, residual, want in [
        (True, False, c["vis"] / gain),
        (False, True, c["vis"] - gain * c["model"]),
        (True, True, c["vis"] / gain - c["model"]),
    ]:
        out = np.empty_like(c["vis"])
        bad = apply_products(c["vis"], c["model"], c["time"], c["ant1"], c["ant2"], f, G, flags,
                             corrected, residual, out)  # fmt: skip
        fl = (
            flags[c["time"], :, c["ant1"]][:, :, f[:, 0]]
            | flags[c["time"], :, c["ant2"]][:, :, f[:, 1]]
        )
        np.testing.assert_array_equal(bad, fl)
        np.testing.assert_allclose(out[~bad], want[~bad].astype(np.complex64), rtol=1e-4, atol=1e-6)
        assert (out[bad] == 0).all()
    assert nrow == len(c["vis"])


def synthetic(rng, truth_gains, *, nant=10, ntime=2, nchan=16, nsamp=6, sigma=0.02, feeds=FEEDS2):
    """Statistics of ``nsamp`` samples per bin of V = g_p M g_q^* + noise (weights 1/σ²)."""
    pairs = np.array([(p, q) for p in range(nant) for q in range(p + 1, nant)])
    ncorr = len(feeds)
    S = np.zeros((ntime, nchan, len(pairs), ncorr), complex)
    W, D, C = np.zeros(S.shape), np.zeros((ntime, nchan)), np.zeros((ntime, nchan))
    w = 1 / sigma**2
    for b, (p, q) in enumerate(pairs):
        for k, (a, e) in enumerate(feeds):
            M = crandn(rng, ntime, nchan, nsamp)
            g = truth_gains[:, :, p, a] * np.conj(truth_gains[:, :, q, e])
            V = g[..., None] * M + sigma * crandn(rng, *M.shape)
            S[:, :, b, k] = (w * V * np.conj(M)).sum(-1)
            W[:, :, b, k] = (w * np.abs(M) ** 2).sum(-1)
            D += (w * np.abs(V) ** 2).sum(-1)
            C += nsamp
    return Stats(S, W, D, C), pairs


def gauge(g, ref=0):
    r = g[:, :, ref : ref + 1]
    return g * np.conj(r) / np.abs(r)


@pytest.mark.parametrize("kind", ["diag-complex", "phase", "amplitude", "delay", "pure-delay"])
def test_solver_recovers_injected_gains(kind):
    """Each term type recovers gains of its own form within the noise: the error of one gain
    is about sqrt(2/A_p), A_p = Σ w|M|² over its samples; assert rms error < 3 of those."""
    rng = np.random.default_rng(3)
    nant, ntime, nchan = 10, 2, 16
    freq = 1.2e9 + 2e6 * np.arange(nchan)
    term = TERM_TYPES[kind]
    per_chan = term.per_channel
    bins = freq_bins(freq, 0, per_chan)
    shape = (ntime, 1, nant, 2)
    phases = rng.uniform(-np.pi, np.pi, shape)
    theta = {
        "diag-complex": lambda: term.from_gains((1 + 0.1 * rng.normal(size=shape))
                                                * np.exp(1j * phases)),
        "phase": lambda: rng.uniform(-np.pi, np.pi, (*shape, 1)),
        "amplitude": lambda: 1 + 0.2 * rng.normal(size=(*shape, 1)),
        "delay": lambda: np.stack([phases, rng.normal(0, 20, shape)], -1),
        "pure-delay": lambda: rng.normal(0, 20, (*shape, 1)),
    }[kind]()  # fmt: skip
    fmap = bins.fmap if per_chan else np.zeros(nchan, int)
    nu = bins.nu if per_chan else np.zeros(nchan)
    g_true = term.gains(theta, fmap, nu)
    if not per_chan:
        g_true = np.repeat(g_true, nchan, axis=1) if g_true.shape[1] == 1 else g_true
    sigma = 0.02
    stats, pairs = synthetic(rng, g_true, nant=nant, ntime=ntime, nchan=nchan, sigma=sigma)
    if not per_chan:  # bins are the freq interval: sum the channels
        stats = Stats(stats.S.sum(1, keepdims=True), stats.W.sum(1, keepdims=True),
                      stats.D.sum(1, keepdims=True), stats.C.sum(1, keepdims=True))  # fmt: skip
    geo = Geometry(pairs, FEEDS2, nant, bins.fmap, bins.nu, bins.freq)
    sol = solve(term, term.initial(shape), stats, geo, max_iter=200, tol=1e-9)
    assert sol.converged.all()
    assert not sol.flags.any()
    est = sol.gains if per_chan else np.repeat(sol.gains, nchan, axis=1)
    ref_free = kind == "amplitude"
    err = np.abs((est if ref_free else gauge(est)) - (g_true if ref_free else gauge(g_true)))
    A = stats.W.sum(axis=(1, 2, 3)).mean() * 2 / nant  # ≈ A_p per bin, all channels
    A_bin = A / (nchan if per_chan else 1)
    bound = np.sqrt(2 / A_bin)
    assert np.sqrt((err**2).mean()) < 3 * bound
    assert sol.chi2_after.sum() / (2 * sol.samples.sum()) == pytest.approx(1, abs=0.05)


def test_large_delays_start_from_the_fft_peak():
    """Delays of ±100 ns (many phase turns across the band) are found, not diverged from."""
    rng = np.random.default_rng(4)
    nant, nchan = 8, 64
    freq = 1.0e9 + 1e6 * np.arange(nchan)
    term = TERM_TYPES["delay"]
    bins = freq_bins(freq, 0, True)
    theta = np.stack([rng.uniform(-np.pi, np.pi, (1, 1, nant, 2)),
                      rng.uniform(-100, 100, (1, 1, nant, 2))], -1)  # fmt: skip
    g = term.gains(theta, bins.fmap, bins.nu)
    stats, pairs = synthetic(rng, g, nant=nant, ntime=1, nchan=nchan, sigma=0.05)
    geo = Geometry(pairs, FEEDS2, nant, bins.fmap, bins.nu, bins.freq)
    sol = solve(term, term.initial((1, 1, nant, 2)), stats, geo, max_iter=50)
    tau = sol.theta[..., 1]
    want = theta[..., 1] - theta[:, :, :1, :, 1]
    assert np.abs(tau - want).max() < 0.05


@pytest.mark.parametrize("kind", ["diag-complex", "phase", "bandpass"])
def test_free_phase_terms_start_from_the_reference_baselines(kind):
    """Without noise, the start is each antenna's gain times the reference antenna's conjugate
    (1 for the reference itself), and the solve from there needs fewer iterations than from
    unit gains."""
    rng = np.random.default_rng(6)
    nant, nchan = 12, 4
    term = TERM_TYPES[kind]
    amp = 1.0 if kind == "phase" else rng.uniform(0.7, 1.3, (1, nchan, nant, 2))
    g = amp * np.exp(1j * rng.uniform(-np.pi, np.pi, (1, nchan, nant, 2)))
    stats, pairs = synthetic(rng, g, nant=nant, ntime=1, nchan=nchan, sigma=1e-9)
    bins = freq_bins(1e9 + 1e6 * np.arange(nchan), 1, False)
    geo = Geometry(pairs, FEEDS2, nant, bins.fmap, bins.nu, bins.freq)
    shape = (1, nchan, nant, 2)
    start = term.gains(term.initialise(term.initial(shape), stats, geo, 0), bins.fmap, bins.nu)
    want = g * np.conj(g[:, :, :1])  # and 1 for the reference antenna itself
    want[:, :, 0] = 1.0
    if kind == "phase":
        want = np.exp(1j * np.angle(want))
    np.testing.assert_allclose(start, want, atol=1e-6)
    started = solve(term, term.initial(shape), stats, geo, max_iter=300, tol=1e-8)
    cold = solve(term, term.initial(shape), stats, geo, max_iter=300, tol=1e-8, initialise=False)
    assert started.converged.all()
    np.testing.assert_allclose(gauge(started.gains), gauge(g), atol=1e-6)
    assert started.iterations.sum() < cold.iterations.sum()


def test_starved_antenna_is_flagged_not_nan():
    """An antenna with no data, and one with too few baselines, get flagged gains; the rest
    are solved as if they were absent."""
    rng = np.random.default_rng(5)
    nant = 8
    g = np.exp(1j * rng.uniform(-np.pi, np.pi, (1, 1, nant, 2)))
    stats, pairs = synthetic(rng, g, nant=nant, ntime=1, nchan=1)
    dead = (pairs == 7).any(axis=1)
    stats.S[:, :, dead] = 0
    stats.W[:, :, dead] = 0
    sparse = ((pairs == 6).any(axis=1)) & ~((pairs == 0).any(axis=1) | (pairs == 1).any(axis=1))
    stats.S[:, :, sparse] = 0
    stats.W[:, :, sparse] = 0
    term = TERM_TYPES["diag-complex"]
    geo = Geometry(pairs, FEEDS2, nant, np.zeros(1, int), np.zeros(1), np.ones(1))
    sol = solve(term, term.initial((1, 1, nant, 2)), stats, geo, max_iter=100, min_baselines=3)
    assert sol.flags[0, 0, 7].all()
    assert sol.flags[0, 0, 6].all()
    assert not sol.flags[0, 0, :6].any()
    assert sol.starved.all()  # antenna 6 had data: the interval's χ² counts its samples
    assert np.isfinite(sol.gains).all()
    err = np.abs(gauge(sol.gains)[0, 0, :6] - gauge(g)[0, 0, :6])
    assert err.max() < 0.01
    stats, pairs = synthetic(rng, g, nant=nant, ntime=1, nchan=1)
    stats.S[:, :, dead] = 0
    stats.W[:, :, dead] = 0
    sol = solve(term, term.initial((1, 1, nant, 2)), stats, geo, max_iter=100, min_baselines=3)
    assert sol.flags[0, 0, 7].all()
    assert not sol.starved.any()  # an antenna without data leaves nothing in χ²


def test_intervals_cover_each_partition_separately():
    t1 = np.arange(10.0) * 8
    t2 = 1000 + np.arange(5.0) * 8
    ti = time_intervals([t1, t2], 4)
    assert ti.n == 3 + 2
    np.testing.assert_array_equal(ti.tmaps[0], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(ti.tmaps[1], [3, 3, 3, 3, 4])
    np.testing.assert_allclose(ti.centre[[0, 2, 4]], [12, 68, 1032])
    whole = time_intervals([t1, t2], 0)
    assert whole.n == 2
    fb = freq_bins(np.arange(8.0) * 1e6 + 1e9, 3, per_channel=True)
    np.testing.assert_array_equal(fb.fmap, [0, 0, 0, 1, 1, 1, 2, 2])
    np.testing.assert_allclose(fb.nu[:3], [-1e-3, 0, 1e-3])
    fb = freq_bins(np.arange(8.0) * 1e6 + 1e9, 3, per_channel=False)
    np.testing.assert_array_equal(fb.chan_bin, [0, 0, 0, 1, 1, 1, 2, 2])


def test_crosshand_phase_is_solved_from_the_cross_hands():
    """ψ between the feeds, shared by every antenna, from a polarised model on 4
    correlations: within 3 noise standard deviations of the truth, and the parallel hands
    (which do not see it) leave the solution alone."""
    rng = np.random.default_rng(6)
    nant, psi = 8, 1.1
    g = np.ones((1, 1, nant, 2), complex)
    g[..., 1] = np.exp(1j * psi)
    sigma = 0.05
    stats, pairs = synthetic(rng, g, nant=nant, ntime=1, nchan=1, sigma=sigma, feeds=FEEDS4)
    term = TERM_TYPES["crosshand-phase"]
    geo = Geometry(pairs, FEEDS4, nant, np.zeros(1, int), np.zeros(1), np.ones(1))
    sol = solve(term, term.initial((1, 1, nant, 2)), stats, geo, max_iter=20)
    got = sol.theta[0, 0, :, 1, 0]
    assert np.ptp(got) == 0  # one value for the array
    cross = stats.W[..., [1, 2]].sum()  # Σ w|M|² of the cross hands
    assert abs(got[0] - psi) < 3 * np.sqrt(1 / cross)
    assert sol.converged.all()


def test_full_jones_statistics_chi2_and_solution():
    """Full 2x2 Jones (gains and 5% leakages) with a polarised model: χ² from the statistics
    equals the sum over samples, and the solution corrects the data to the model within the
    noise (corrected - model at 1 σ per part, χ²/dof at 1)."""
    from radiocloud.core.kernels.calibrate.full import (
        accumulate_full,
        apply_full,
        full_chi2,
        solve_full,
    )

    rng = np.random.default_rng(8)
    nant, ntime, nchan, sigma = 8, 12, 4, 0.01
    pairs = np.array([(p, q) for p in range(nant) for q in range(p + 1, nant)])
    off = (1 - np.eye(2))[None]
    G = (np.eye(2)[None] * (1 + 0.1 * rng.normal(size=(nant, 1, 1)))
         * np.exp(1j * rng.uniform(-np.pi, np.pi, (nant, 1, 1)))
         + 0.05 * crandn(rng, nant, 2, 2) * off)  # fmt: skip
    bl = np.tile(np.arange(len(pairs)), ntime)
    a1, a2 = pairs[bl, 0], pairs[bl, 1]
    nrow = len(bl)
    stokes_i = rng.uniform(1, 2, (nrow, nchan))
    M = np.zeros((nrow, nchan, 2, 2), complex)
    M[..., 0, 0], M[..., 1, 1] = 1.1 * stokes_i, 0.9 * stokes_i
    M[..., 0, 1] = M[..., 1, 0] = 0.05 * stokes_i
    M = M * np.exp(1j * rng.uniform(-np.pi, np.pi, (nrow, 1, 1, 1)))
    V = np.einsum("rij,rfjk,rlk->rfil", G[a1], M, np.conj(G[a2]))
    V = V + sigma * crandn(rng, *V.shape)
    vis = V.reshape(nrow, nchan, 4).astype(np.complex64)
    model = M.reshape(nrow, nchan, 4).astype(np.complex64)
    w = np.full(vis.shape, 1 / sigma**2, np.float32)
    T1 = np.zeros((1, 1, len(pairs), 2, 2, 2, 2), complex)
    T2 = np.zeros((1, 1, len(pairs), 2, 2, 2, 2, 2, 2), complex)
    D, C = np.zeros((1, 1)), np.zeros((1, 1))
    zr, zc = np.zeros(nrow, np.int64), np.zeros(nchan, np.int64)
    accumulate_full(vis, model, w, zr, zc, bl, FEEDS4, T1, T2, D, C)
    g = crandn(rng, 1, 1, nant, 2, 2)
    R = np.einsum("rij,rfjk,rlk->rfil", g[0, 0][a1], model.reshape(M.shape), np.conj(g[0, 0][a2]))
    direct = (w * np.abs(vis - R.reshape(vis.shape)) ** 2).sum()
    assert full_chi2(T1, T2, D, g, pairs)[0, 0] == pytest.approx(direct, rel=1e-6)
    Gs, flags, _, _, _, chi2 = solve_full(T1, T2, D, C, pairs, nant, max_iter=100)
    assert not flags.any()
    assert chi2[0, 0] / (2 * C[0, 0]) == pytest.approx(1.0, abs=0.05)
    noise = {}
    for name, gains in (("solved", Gs), ("truth", G[None, None])):
        out = np.empty_like(vis)
        bad = apply_full(vis, model, zr, zc, a1, a2, FEEDS4, gains, flags, True, False, out)
        assert not bad.any()
        noise[name] = np.sqrt((np.abs(out - model) ** 2).mean() / 2) / sigma
    # corrected data = model + G⁻¹ n G⁻ᴴ: as far from the model as the truth's correction
    assert noise["solved"] == pytest.approx(noise["truth"], rel=0.03)
    assert noise["truth"] > 1.1  # the gains' amplitudes do amplify the noise
