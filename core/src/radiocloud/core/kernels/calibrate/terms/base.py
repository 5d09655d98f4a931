"""What a gain term is to the solver: real parameters per solution interval, antenna and
feed, the gains they give at each bin of the statistics, and the gains' derivatives.

A term's parameters ``theta`` are (time, freq interval, ant, feed, param); its gains ``g``
are (time, bin, ant, feed), where a bin is a freq interval, or a channel for terms whose gain
varies within the interval (``per_channel``). ``fmap`` maps bins to freq intervals and ``nu``
is each bin's frequency offset from its interval's centre in GHz.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np


class Term:
    """A diagonal gain term. Subclasses set the class attributes and ``gains``/``jacobian``."""

    type: ClassVar[str]
    params: ClassVar[tuple[str, ...]]
    per_channel: ClassVar[bool] = False
    #: one value for the whole array (solved by ``shared_step``, not per antenna)
    shared: ClassVar[bool] = False
    #: a full 2x2 Jones matrix (solved by ``calibrate.full``, not as a diagonal term)
    full: ClassVar[bool] = False
    #: default solution intervals (samples; 0 = the whole axis)
    time_interval: ClassVar[int] = 1
    freq_interval: ClassVar[int] = 0
    summary: ClassVar[str] = ""

    @classmethod
    def initial(cls, shape: tuple[int, ...]) -> np.ndarray:
        """Parameters of unit gains, (time, freq interval, ant, feed, param)."""
        return np.zeros((*shape, len(cls.params)))

    @classmethod
    def gains(cls, theta: np.ndarray, fmap: np.ndarray, nu: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def jacobian(cls, theta, g, fmap, nu) -> np.ndarray:
        """(time, bin, ant, feed, param) complex d g / d theta."""
        raise NotImplementedError

    @classmethod
    def reference(cls, theta: np.ndarray, ref: int) -> np.ndarray:
        """Fix the gauge: the reference antenna's phase is zero (terms without a phase
        leave ``theta`` as it is)."""
        return theta

    @classmethod
    def from_gains(cls, g: np.ndarray) -> np.ndarray:
        """Parameters that best match the given gains at (time, freq interval, ant, feed)
        (used for initial values loaded from a table)."""
        raise NotImplementedError

    @classmethod
    def initialise(cls, theta, stats, geo, ref) -> np.ndarray:
        """A first estimate from the statistics (``stats.S``, ``stats.W``) before iterating
        (default: as given)."""
        return theta


def reference_baselines(S: np.ndarray, W: np.ndarray, geo, ref: int) -> np.ndarray:
    """(time, freq interval, ant, feed) estimates of g_p conj(g_ref) from each antenna's
    baselines to the reference antenna (V_pq ≈ g_p M_pq conj(g_q), so S/W over the interval
    is g_p conj(g_q)); 1 for the reference antenna, 0 where there is no data to say.

    A start for terms with a free phase: from unit gains, Gauss-Newton with block-diagonal
    normal equations needs many iterations to unwind phases spread over the whole circle."""
    starts = np.r_[0, np.flatnonzero(np.diff(geo.fmap)) + 1]
    S = np.add.reduceat(S, starts, axis=1)
    W = np.add.reduceat(W, starts, axis=1)
    nfeed = int(geo.feeds.max()) + 1
    est = np.zeros((S.shape[0], S.shape[1], geo.nant, nfeed), np.complex128)
    est[:, :, ref] = 1.0
    for b, (p, q) in enumerate(geo.pairs):
        if ref not in (p, q) or p == q:
            continue
        other, conj = (p, False) if q == ref else (q, True)
        for c, (fa, fb) in enumerate(geo.feeds):
            if fa != fb:
                continue
            s, w = S[:, :, b, c], W[:, :, b, c]
            ratio = np.where(w > 0, s / np.where(w > 0, w, 1.0), 0.0)
            est[:, :, other, fa] = np.conj(ratio) if conj else ratio
    return est


def expand(values: np.ndarray, fmap: np.ndarray) -> np.ndarray:
    """Per-interval values (time, freq interval, ...) at each bin (time, bin, ...)."""
    return values[:, fmap]
