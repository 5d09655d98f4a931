"""Linear interpolation of gains in amplitude and phase along one axis.

Amplitude is interpolated linearly, phase along the shorter arc between the two neighbours,
so a gain rotating by less than half a turn between solutions is followed exactly when its
phase and amplitude change linearly. Outside the sampled range the nearest gain is used. An
interpolated gain is flagged when a neighbour it draws on is flagged.
"""

from __future__ import annotations

import numpy as np


def neighbours(x_src: np.ndarray, x_dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the neighbours below and above each destination point, and the weight of
    the upper one (0 below the first point, 1 beyond the last). ``x_src`` is sorted."""
    n = len(x_src)
    if n == 1:
        zero = np.zeros(len(x_dst), np.int64)
        return zero, zero, np.zeros(len(x_dst))
    hi = np.clip(np.searchsorted(x_src, x_dst), 1, n - 1)
    lo = hi - 1
    w = np.clip((x_dst - x_src[lo]) / (x_src[hi] - x_src[lo]), 0.0, 1.0)
    return lo, hi, w


def _sides(values, flags, x_src, x_dst, axis: int):
    """Each destination point's neighbours below and above along ``axis`` (``values``
    and ``flags`` taken there), the upper one's weight shaped to broadcast against the
    values, and the flag of what the interpolation draws on."""
    order = np.argsort(x_src)
    lo, hi, w = neighbours(np.asarray(x_src)[order], np.asarray(x_dst))
    lo, hi = order[lo], order[hi]
    shape = [1] * values.ndim
    shape[axis] = len(w)
    v0, v1 = np.take(values, lo, axis=axis), np.take(values, hi, axis=axis)
    fshape = [1] * flags.ndim
    fshape[axis] = len(w)
    wf = w.reshape(fshape)
    flag = (np.take(flags, lo, axis=axis) & (wf < 1)) | (np.take(flags, hi, axis=axis) & (wf > 0))
    return v0, v1, w.reshape(shape), flag


def lerp_gains(gains, flags, x_src, x_dst, axis: int):
    """``gains`` and ``flags`` interpolated from ``x_src`` to ``x_dst`` along ``axis``."""
    g0, g1, w, flag = _sides(gains, flags, x_src, x_dst, axis)
    amp = (1 - w) * np.abs(g0) + w * np.abs(g1)
    phase = np.angle(g0) + w * np.angle(g1 * np.conj(g0))
    return amp * np.exp(1j * phase), flag


def lerp_params(params, flags, x_src, x_dst, axis: int):
    """Real parameters (delays, phase offsets) interpolated linearly along ``axis``."""
    p0, p1, w, flag = _sides(params, flags, x_src, x_dst, axis)
    return (1 - w) * p0 + w * p1, flag
