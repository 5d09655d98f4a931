"""amplitude: a real, positive gain per antenna and feed, per solution interval."""

from __future__ import annotations

import numpy as np

from radiocloud.core.kernels.calibrate.terms.base import Term, expand


class Amplitude(Term):
    type = "amplitude"
    params = ("amplitude",)
    summary = "amplitude per antenna and feed, phase 0"

    @classmethod
    def initial(cls, shape):
        return np.ones((*shape, 1))

    @classmethod
    def gains(cls, theta, fmap, nu):
        return expand(theta[..., 0].astype(np.complex128), fmap)

    @classmethod
    def jacobian(cls, theta, g, fmap, nu):
        return np.ones((*g.shape, 1), np.complex128)

    @classmethod
    def from_gains(cls, g):
        return np.abs(g)[..., None]
