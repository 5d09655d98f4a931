"""Numba building blocks shared by every diagonal gain term.

The model of a visibility is V_pq = g_p M'_pq conj(g_q) per correlation, with g the gain of
the term being solved and M'_pq = h_p M_pq conj(h_q) the sky model corrupted by every other
term of the chain (h, fixed while this term is solved). For gains constant over a bin of
samples, three sums per bin are sufficient statistics for the whole solve:

    S = Σ w V conj(M'),    W = Σ w |M'|²   (per bin, baseline and correlation)
    D = Σ w |V|²                            (per bin)

so one pass over the visibilities (``accumulate_stats``) reduces a solution interval of any
size to arrays of a few numbers per baseline, and every Gauss-Newton iteration after it
(``antenna_sums``, ``chi2_bins``) works on those alone. Bins hold the samples that share one
gain value: a term's solution interval in time, and its interval in frequency or a single
channel for terms whose gain varies within the interval (a delay).

Conventions: ``feeds`` is (corr, 2), the feed of antenna 1 and of antenna 2 of each
correlation (XY -> (0, 1)); ``pairs`` is (baseline, 2) the antennas of each baseline; gains
are indexed [bin time, bin freq, ant, feed]; ``H`` is the other terms' gain product indexed
[row_h[row], chan, ant, feed].
"""

from __future__ import annotations

import numpy as np

from radiocloud.core.jit import njit


@njit()
def accumulate_stats(vis, model, weight, row_t, row_h, chan_f, bl, ant1, ant2, feeds, H, S, W, D,
                     C):  # fmt: skip
    """Add the chunk's samples into S, W (time, freq, baseline, corr), D and the count of
    samples C (time, freq).

    ``weight`` is zero for flagged samples; rows with ``bl < 0`` (autocorrelations) are
    skipped. ``row_t`` and ``chan_f`` give each row's and channel's bin."""
    nrow, nchan, ncorr = vis.shape
    for r in range(nrow):
        b = bl[r]
        if b < 0:
            continue
        t = row_t[r]
        h = row_h[r]
        p = ant1[r]
        q = ant2[r]
        for f in range(nchan):
            fb = chan_f[f]
            for c in range(ncorr):
                w = weight[r, f, c]
                if w == 0.0:
                    continue
                m = H[h, f, p, feeds[c, 0]] * model[r, f, c] * np.conj(H[h, f, q, feeds[c, 1]])
                v = vis[r, f, c]
                S[t, fb, b, c] += w * v * np.conj(m)
                W[t, fb, b, c] += w * (m.real * m.real + m.imag * m.imag)
                D[t, fb] += w * (v.real * v.real + v.imag * v.imag)
                C[t, fb] += 1.0


@njit()
def whitened_residuals(vis, model, weight, row_h, ant1, ant2, feeds, G):
    """(row, chan, corr) w |V - G_p M conj(G_q)|², the squared residual in units of its
    expected noise (χ² with 2 degrees of freedom for a correct model and weights); zero
    where the weight is zero. ``G`` is the whole chain's gain product."""
    nrow, nchan, ncorr = vis.shape
    out = np.zeros((nrow, nchan, ncorr), np.float32)
    for r in range(nrow):
        h = row_h[r]
        p = ant1[r]
        q = ant2[r]
        for f in range(nchan):
            for c in range(ncorr):
                w = weight[r, f, c]
                if w == 0.0:
                    continue
                m = G[h, f, p, feeds[c, 0]] * model[r, f, c] * np.conj(G[h, f, q, feeds[c, 1]])
                d = vis[r, f, c] - m
                out[r, f, c] = w * (d.real * d.real + d.imag * d.imag)
    return out


@njit()
def antenna_sums(S, W, g, pairs, feeds, nant):
    """Per antenna and feed: A = Σ_q |g_q|² W_pq and B = Σ_q g_q S_pq over its baselines
    and correlations (with the conjugate for antenna 2), and the number of baselines with
    data. The Gauss-Newton normal equations of every diagonal term are built from these."""
    ntime, nfreq, nbl, ncorr = S.shape
    A = np.zeros((ntime, nfreq, nant, 2))
    B = np.zeros((ntime, nfreq, nant, 2), np.complex128)
    N = np.zeros((ntime, nfreq, nant, 2), np.int32)
    for t in range(ntime):
        for f in range(nfreq):
            for b in range(nbl):
                p = pairs[b, 0]
                q = pairs[b, 1]
                for c in range(ncorr):
                    w = W[t, f, b, c]
                    if w == 0.0:
                        continue
                    a = feeds[c, 0]
                    e = feeds[c, 1]
                    s = S[t, f, b, c]
                    gp = g[t, f, p, a]
                    gq = g[t, f, q, e]
                    A[t, f, p, a] += (gq.real * gq.real + gq.imag * gq.imag) * w
                    B[t, f, p, a] += gq * s
                    A[t, f, q, e] += (gp.real * gp.real + gp.imag * gp.imag) * w
                    B[t, f, q, e] += gp * np.conj(s)
                    if a == e:  # count each baseline once per feed, from its parallel hand
                        N[t, f, p, a] += 1
                        N[t, f, q, e] += 1
    return A, B, N


@njit()
def chi2_bins(S, W, D, g, pairs, feeds):
    """(time, freq) χ² = Σ w |V - g_p M' conj(g_q)|² of each bin, from the statistics."""
    ntime, nfreq, nbl, ncorr = S.shape
    out = D.copy()
    for t in range(ntime):
        for f in range(nfreq):
            acc = 0.0
            for b in range(nbl):
                p = pairs[b, 0]
                q = pairs[b, 1]
                for c in range(ncorr):
                    w = W[t, f, b, c]
                    if w == 0.0:
                        continue
                    gp = g[t, f, p, feeds[c, 0]]
                    gq = g[t, f, q, feeds[c, 1]]
                    x = np.conj(gp) * gq * S[t, f, b, c]
                    pq = gp * gq
                    acc += (pq.real * pq.real + pq.imag * pq.imag) * w - 2.0 * x.real
            out[t, f] += acc
    return out


@njit()
def mask_baselines(S, W, flagged, pairs, feeds):
    """Zero the statistics of baselines with a flagged antenna feed (``flagged`` [time, freq,
    ant, feed]), so a gain that is not solved does not bias the others."""
    ntime, nfreq, nbl, ncorr = S.shape
    for t in range(ntime):
        for f in range(nfreq):
            for b in range(nbl):
                p = pairs[b, 0]
                q = pairs[b, 1]
                for c in range(ncorr):
                    if flagged[t, f, p, feeds[c, 0]] or flagged[t, f, q, feeds[c, 1]]:
                        S[t, f, b, c] = 0.0
                        W[t, f, b, c] = 0.0


@njit()
def apply_products(vis, model, row_h, ant1, ant2, feeds, G, gflag, corrected, residual, out):
    """Write one output product per sample into ``out`` and return its gain-flag mask.

    With ``corrected`` the data are corrected, V / (G_p conj(G_q)); with ``residual`` the
    model corrupted by the gains is subtracted first. Samples whose gains are flagged (or
    zero) get 0 and are marked in the returned mask."""
    nrow, nchan, ncorr = vis.shape
    bad = np.zeros((nrow, nchan, ncorr), np.bool_)
    for r in range(nrow):
        h = row_h[r]
        p = ant1[r]
        q = ant2[r]
        for f in range(nchan):
            for c in range(ncorr):
                a = feeds[c, 0]
                e = feeds[c, 1]
                gain = G[h, f, p, a] * np.conj(G[h, f, q, e])
                if gflag[h, f, p, a] or gflag[h, f, q, e] or gain == 0:
                    out[r, f, c] = 0.0
                    bad[r, f, c] = True
                    continue
                v = vis[r, f, c]
                if residual:
                    v = v - gain * model[r, f, c]
                if corrected:
                    v = v / gain
                out[r, f, c] = v
    return bad
