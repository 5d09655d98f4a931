"""diag-complex (G): a free complex gain per antenna and feed, per solution interval."""

from __future__ import annotations

import numpy as np

from radiocloud.core.kernels.calibrate.terms.base import Term, expand, reference_baselines


class DiagComplex(Term):
    type = "diag-complex"
    params = ("re", "im")
    summary = "complex gain per antenna and feed (G)"

    @classmethod
    def initial(cls, shape):
        theta = np.zeros((*shape, 2))
        theta[..., 0] = 1.0
        return theta

    @classmethod
    def gains(cls, theta, fmap, nu):
        return expand(theta[..., 0] + 1j * theta[..., 1], fmap)

    @classmethod
    def jacobian(cls, theta, g, fmap, nu):
        d = np.empty((*g.shape, 2), np.complex128)
        d[..., 0] = 1.0
        d[..., 1] = 1j
        return d

    @classmethod
    def reference(cls, theta, ref):
        g = theta[..., 0] + 1j * theta[..., 1]
        r = g[:, :, ref : ref + 1]
        rot = np.where(np.abs(r) > 0, np.conj(r) / np.where(np.abs(r) > 0, np.abs(r), 1), 1)
        return cls.from_gains(g * rot)

    @classmethod
    def initialise(cls, theta, stats, geo, ref):
        """Each antenna's gain from its baselines to the reference antenna."""
        est = reference_baselines(stats.S, stats.W, geo, ref)
        return np.where((est != 0)[..., None], cls.from_gains(est), theta)

    @classmethod
    def from_gains(cls, g):
        return np.stack([g.real, g.imag], axis=-1)
