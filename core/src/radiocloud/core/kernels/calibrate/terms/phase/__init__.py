"""phase: a phase per antenna and feed, per solution interval (unit amplitude)."""

from __future__ import annotations

import numpy as np

from radiocloud.core.kernels.calibrate.terms.base import Term, expand, reference_baselines


class Phase(Term):
    type = "phase"
    params = ("phase",)
    summary = "phase per antenna and feed, amplitude 1"

    @classmethod
    def gains(cls, theta, fmap, nu):
        return expand(np.exp(1j * theta[..., 0]), fmap)

    @classmethod
    def jacobian(cls, theta, g, fmap, nu):
        return (1j * g)[..., None]

    @classmethod
    def reference(cls, theta, ref):
        return theta - theta[:, :, ref : ref + 1]

    @classmethod
    def initialise(cls, theta, stats, geo, ref):
        """Each antenna's phase from its baselines to the reference antenna."""
        est = reference_baselines(stats.S, stats.W, geo, ref)
        return np.where((est != 0)[..., None], cls.from_gains(est), theta)

    @classmethod
    def from_gains(cls, g):
        return np.angle(g)[..., None]
