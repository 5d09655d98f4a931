"""phase: a phase per antenna and feed, per solution interval (unit amplitude)."""

from __future__ import annotations

import numpy as np

from radiocloud.core.kernels.calibrate.terms.base import Term, expand


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
    def from_gains(cls, g):
        return np.angle(g)[..., None]
