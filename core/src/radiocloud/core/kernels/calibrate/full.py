"""Full 2x2 Jones terms ("complex"): statistics, alternating least squares and application.

For gains constant over a bin, V_pq = G_p M_pq G_q^H has sufficient statistics per bin and
baseline (i, j: the correlation; k, l, m, n: model elements)

    T1[i, j, k, l]       = Σ w_ij V_ij conj(M_kl)
    T2[i, j, k, l, m, n] = Σ w_ij M_kl conj(M_mn)

from which each row of G_p solves a 2x2 system with every other gain fixed, and χ² of any
gains follows exactly, as for the diagonal terms. The solution is unique only up to
G -> G U with U unitary and commuting with the model (a phase for a polarised sky, any
unitary for an unpolarised one): ``reference`` fixes the phase.
"""

from __future__ import annotations

import numpy as np

from radiocloud.core.jit import njit


@njit()
def accumulate_full(vis, model, weight, row_t, chan_f, bl, feeds, T1, T2, D, C):
    nrow, nchan, ncorr = vis.shape
    M = np.zeros((2, 2), np.complex128)
    for r in range(nrow):
        b = bl[r]
        if b < 0:
            continue
        t = row_t[r]
        for f in range(nchan):
            fb = chan_f[f]
            for c in range(ncorr):
                M[feeds[c, 0], feeds[c, 1]] = model[r, f, c]
            for c in range(ncorr):
                w = weight[r, f, c]
                if w == 0.0:
                    continue
                i = feeds[c, 0]
                j = feeds[c, 1]
                v = vis[r, f, c]
                D[t, fb] += w * (v.real * v.real + v.imag * v.imag)
                C[t, fb] += 1.0
                for k in range(2):
                    for el in range(2):
                        wm = w * M[k, el]
                        T1[t, fb, b, i, j, k, el] += w * v * np.conj(M[k, el])
                        for m in range(2):
                            for n in range(2):
                                T2[t, fb, b, i, j, k, el, m, n] += wm * np.conj(M[m, n])


@njit()
def full_normal(T1, T2, G, pairs, nant):
    """Per antenna and row i of its gain: the 2x2 normal matrix A[m, k] and right side B[m]
    of row i with every other antenna's gain fixed (conjugate-transposed for antenna 2)."""
    ntime, nfreq, nbl = T1.shape[:3]
    A = np.zeros((ntime, nfreq, nant, 2, 2, 2), np.complex128)
    B = np.zeros((ntime, nfreq, nant, 2, 2), np.complex128)
    for t in range(ntime):
        for f in range(nfreq):
            for b in range(nbl):
                p = pairs[b, 0]
                q = pairs[b, 1]
                for i in range(2):
                    for j in range(2):
                        for m in range(2):
                            for n in range(2):
                                B[t, f, p, i, m] += G[t, f, q, j, n] * T1[t, f, b, i, j, m, n]
                                B[t, f, q, i, m] += G[t, f, p, j, n] * np.conj(
                                    T1[t, f, b, j, i, n, m]
                                )
                                for k in range(2):
                                    for el in range(2):
                                        A[t, f, p, i, m, k] += (
                                            np.conj(G[t, f, q, j, el])
                                            * G[t, f, q, j, n]
                                            * T2[t, f, b, i, j, k, el, m, n]
                                        )
                                        A[t, f, q, i, m, k] += (
                                            np.conj(G[t, f, p, j, el])
                                            * G[t, f, p, j, n]
                                            * np.conj(T2[t, f, b, j, i, el, k, n, m])
                                        )
    return A, B


@njit()
def full_chi2(T1, T2, D, G, pairs):
    """(time, freq) χ² = Σ w_ij |V_ij - (G_p M G_q^H)_ij|² of each bin, from the statistics."""
    ntime, nfreq, nbl = T1.shape[:3]
    out = D.copy()
    for t in range(ntime):
        for f in range(nfreq):
            acc = 0.0
            for b in range(nbl):
                p = pairs[b, 0]
                q = pairs[b, 1]
                for i in range(2):
                    for j in range(2):
                        for k in range(2):
                            for el in range(2):
                                gk = G[t, f, p, i, k] * np.conj(G[t, f, q, j, el])
                                acc -= 2.0 * (np.conj(gk) * T1[t, f, b, i, j, k, el]).real
                                for m in range(2):
                                    for n in range(2):
                                        gm = np.conj(G[t, f, p, i, m]) * G[t, f, q, j, n]
                                        acc += (gk * gm * T2[t, f, b, i, j, k, el, m, n]).real
            out[t, f] += acc
    return out


@njit()
def _mul(a, b):
    """a @ b for 2x2 complex matrices (numba's @ would need scipy's BLAS)."""
    out = np.empty((2, 2), np.complex128)
    for i in range(2):
        for j in range(2):
            out[i, j] = a[i, 0] * b[0, j] + a[i, 1] * b[1, j]
    return out


@njit()
def _mul_h(a, b):
    """a @ b^H for 2x2 complex matrices."""
    out = np.empty((2, 2), np.complex128)
    for i in range(2):
        for j in range(2):
            out[i, j] = a[i, 0] * np.conj(b[j, 0]) + a[i, 1] * np.conj(b[j, 1])
    return out


@njit()
def apply_full(vis, model, row_t, chan_f, ant1, ant2, feeds, G, gflag, corrected, residual, out):
    """Output products with full 2x2 gains (row_t, chan_f index ``G`` [time, bin, ant, 2, 2]);
    samples whose gains are flagged or singular get 0 and are marked in the returned mask."""
    nrow, nchan, ncorr = vis.shape
    bad = np.zeros((nrow, nchan, ncorr), np.bool_)
    V = np.zeros((2, 2), np.complex128)
    M = np.zeros((2, 2), np.complex128)
    for r in range(nrow):
        t = row_t[r]
        p = ant1[r]
        q = ant2[r]
        for f in range(nchan):
            fb = chan_f[f]
            gp = G[t, fb, p]
            gq = G[t, fb, q]
            dp = gp[0, 0] * gp[1, 1] - gp[0, 1] * gp[1, 0]
            dq = gq[0, 0] * gq[1, 1] - gq[0, 1] * gq[1, 0]
            if gflag[t, fb, p] or gflag[t, fb, q] or dp == 0 or dq == 0:
                for c in range(ncorr):
                    out[r, f, c] = 0.0
                    bad[r, f, c] = True
                continue
            for c in range(ncorr):
                V[feeds[c, 0], feeds[c, 1]] = vis[r, f, c]
                M[feeds[c, 0], feeds[c, 1]] = model[r, f, c]
            X = V.copy()
            if residual:
                X = V - _mul_h(_mul(gp, M), gq)
            if corrected:
                ip = np.empty((2, 2), np.complex128)
                iq = np.empty((2, 2), np.complex128)
                ip[0, 0], ip[0, 1], ip[1, 0], ip[1, 1] = gp[1, 1], -gp[0, 1], -gp[1, 0], gp[0, 0]
                iq[0, 0], iq[0, 1], iq[1, 0], iq[1, 1] = gq[1, 1], -gq[0, 1], -gq[1, 0], gq[0, 0]
                X = _mul_h(_mul(ip / dp, X), iq / dq)
            for c in range(ncorr):
                out[r, f, c] = X[feeds[c, 0], feeds[c, 1]]
    return bad


def reference(G: np.ndarray, ref: int) -> np.ndarray:
    """G times the phase that makes G[ref][0, 0] real and positive. The other freedom of an
    unpolarised sky (G -> G U, U any unitary) is left as solved: no single choice of U is
    right for a polarised model, and corrected data do not depend on it."""
    g = G[:, :, ref, 0, 0]
    phase = np.where(np.abs(g) > 0, np.conj(g) / np.where(np.abs(g) > 0, np.abs(g), 1), 1)
    return G * phase[:, :, None, None, None]


def solve_full(T1, T2, D, C, pairs, nant, *, max_iter, tol=1e-6, ref=0):
    """Alternating least squares with an exact line search on χ², from unit gains."""
    ntime, nfreq = D.shape
    G = np.zeros((ntime, nfreq, nant, 2, 2), np.complex128)
    G[..., 0, 0] = G[..., 1, 1] = 1.0
    chi2 = chi2_before = full_chi2(T1, T2, D, G, pairs)
    active = C > 0
    converged = ~active
    iterations = np.zeros((ntime, nfreq), np.int32)
    A0, _ = full_normal(T1, T2, G, pairs, nant)
    flags = np.abs(A0).sum(axis=(3, 4, 5)) == 0  # (time, freq, ant): no data
    for _ in range(max_iter):
        if converged.all():
            break
        A, B = full_normal(T1, T2, G, pairs, nant)
        ok = np.abs(np.linalg.det(A)) > 1e-12 * np.abs(A).max(axis=(-2, -1)) ** 2
        safe = np.where(ok[..., None, None], A, np.eye(2))
        rows = np.linalg.solve(safe, B[..., None])[..., 0]  # (time, freq, ant, i, k)
        new = np.where(ok[..., None], rows, G)
        delta = new - G
        best, best_chi2 = G, chi2
        for s in (1.0, 0.5, 0.25, 0.125):
            trial = G + s * delta
            c = full_chi2(T1, T2, D, trial, pairs)
            take = (c < best_chi2) & ~converged
            best = np.where(take[:, :, None, None, None], trial, best)
            best_chi2 = np.where(take, c, best_chi2)
        improved = (best_chi2 < chi2) & ~converged
        change = (np.abs(best - G).max(axis=(2, 3, 4))
                  / np.maximum(np.abs(G).max(axis=(2, 3, 4)), 1e-12))  # fmt: skip
        iterations += ~converged
        # an unpolarised sky leaves G -> G U free: χ² is flat along it, so also stop when χ²
        # improves by less than tol (relative)
        flat = (chi2 - best_chi2) <= tol * np.abs(chi2)
        converged |= ~improved | (change < tol) | flat
        G, chi2 = best, np.where(improved, best_chi2, chi2)
    G = reference(G, ref)
    return G, flags | ~active[:, :, None], iterations, converged & active, chi2_before, chi2
