"""crosshand-phase: the phase between the two feeds, one value for the whole array per
solution interval, J = diag(1, exp(iψ)) for every antenna.

Only the cross hands see it (XY turns by -ψ, YX by +ψ; the parallel hands not at all), so it
is solved from their statistics alone, by exact Gauss-Newton on the one shared parameter
(the per-antenna normal equations of the other terms would count the parallel hands, where ψ
cancels). It needs a polarised model: with Q = U = V = 0 the cross hands carry no signal.
"""

from __future__ import annotations

import numpy as np

from radiocloud.core.kernels.calibrate.terms.base import Term, expand


class CrosshandPhase(Term):
    type = "crosshand-phase"
    params = ("phase",)
    shared = True
    time_interval = 0
    summary = "X-Y phase of the whole array (needs a polarised model)"

    @classmethod
    def gains(cls, theta, fmap, nu):
        g = np.ones(theta.shape[:4], np.complex128)
        g[..., 1] = np.exp(1j * theta[..., 1, 0])
        return expand(g, fmap)

    @classmethod
    def jacobian(cls, theta, g, fmap, nu):
        raise NotImplementedError("solved by shared_step")

    @classmethod
    def from_gains(cls, g):
        phase = np.angle(g[..., 1] * np.conj(g[..., 0]))  # (time, freq, ant)
        return np.repeat(phase[..., None, None], 2, axis=3)

    @classmethod
    def shared_step(cls, theta, S, W, feeds, fmap):
        """(time, freq interval) the Gauss-Newton step of ψ from the cross hands."""
        psi = theta[:, :, 0, 1, 0][:, fmap]  # (time, bin)
        jtr = np.zeros(S.shape[:2])
        jtj = np.zeros(S.shape[:2])
        for c, (a, b) in enumerate(feeds):
            if a == b:
                continue
            s = S[:, :, :, c].sum(axis=2)
            w = W[:, :, :, c].sum(axis=2)
            sign = 1.0 if (a, b) == (1, 0) else -1.0  # YX sees +ψ, XY -ψ
            jtr += sign * np.imag(np.exp(-1j * sign * psi) * s)
            jtj += w
        starts = np.r_[0, np.flatnonzero(np.diff(fmap)) + 1]
        jtr, jtj = np.add.reduceat(jtr, starts, axis=1), np.add.reduceat(jtj, starts, axis=1)
        return np.where(jtj > 0, jtr / np.where(jtj > 0, jtj, 1), 0.0)

    @classmethod
    def initialise(cls, theta, stats, geo, ref):
        S = stats.S
        theta = theta.copy()
        z = np.zeros(S.shape[:2], np.complex128)
        for c, (a, b) in enumerate(geo.feeds):
            if a != b:
                s = S[:, :, :, c].sum(axis=2)
                z += s if (a, b) == (1, 0) else np.conj(s)
        starts = np.r_[0, np.flatnonzero(np.diff(geo.fmap)) + 1]
        psi = np.angle(np.add.reduceat(z, starts, axis=1))
        theta[...] = psi[:, :, None, None, None]
        return theta
