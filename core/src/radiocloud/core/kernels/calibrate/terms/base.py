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
    def initialise(cls, theta, S, geo, ref) -> np.ndarray:
        """A first estimate from the statistics before iterating (default: as given)."""
        return theta


def expand(values: np.ndarray, fmap: np.ndarray) -> np.ndarray:
    """Per-interval values (time, freq interval, ...) at each bin (time, bin, ...)."""
    return values[:, fmap]
