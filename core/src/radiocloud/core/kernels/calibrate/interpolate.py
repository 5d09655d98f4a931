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


def lerp_gains(gains, flags, x_src, x_dst, axis: int):
    """``gains`` and ``flags`` interpolated from ``x_src`` to ``x_dst`` along ``axis``."""
    order = np.argsort(x_src)
    g = np.take(gains, order, axis=axis)
    f = np.take(flags, order, axis=axis)
    lo, hi, w = neighbours(np.asarray(x_src)[order], np.asarray(x_dst))
    shape = [1] * g.ndim
    shape[axis] = len(w)
    w = w.reshape(shape)
    g0, g1 = np.take(g, lo, axis=axis), np.take(g, hi, axis=axis)
    amp = (1 - w) * np.abs(g0) + w * np.abs(g1)
    turn = np.angle(g1 * np.conj(g0))
    phase = np.angle(g0) + w * turn
    flag = (np.take(f, lo, axis=axis) & (w < 1)) | (np.take(f, hi, axis=axis) & (w > 0))
    return amp * np.exp(1j * phase), flag


def lerp_params(params, flags, x_src, x_dst, axis: int):
    """Real parameters (delays, phase offsets) interpolated linearly along ``axis``."""
    order = np.argsort(x_src)
    p = np.take(params, order, axis=axis)
    f = np.take(flags, order, axis=axis)
    lo, hi, w = neighbours(np.asarray(x_src)[order], np.asarray(x_dst))
    shape = [1] * p.ndim
    shape[axis] = len(w)
    wp = w.reshape(shape)
    fshape = [1] * f.ndim
    fshape[axis] = len(w)
    wf = w.reshape(fshape)
    out = (1 - wp) * np.take(p, lo, axis=axis) + wp * np.take(p, hi, axis=axis)
    flag = (np.take(f, lo, axis=axis) & (wf < 1)) | (np.take(f, hi, axis=axis) & (wf > 0))
    return out, flag
