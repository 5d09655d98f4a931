"""Local-linear masked smoothing: the background of the iterated SumThreshold.

A masked Gaussian average (local-constant kernel regression) is biased wherever the signal has
a slope and the kernel is one-sided: at the first and last integrations and channels of a
window, and beside flagged gaps. The sky on short baselines changes by several noise sigmas per
integration, so that bias alone crosses SumThreshold's long-window thresholds. Fitting a plane
``b0 + bt·dt + bc·dc`` by weighted least squares under the same separable Gaussian weights
(local-linear regression) removes the bias for any linear trend, at the edges and gaps too.
Where the unmasked samples under the kernel cannot fix a plane (they lie on one line, or the
kernel has no extent along an axis), a line along the other axis is fitted, and where they
cannot fix a line either, their weighted mean.
"""

from __future__ import annotations

import numpy as np

from radiocloud.core.jit import njit

_SINGULAR = 1e-9  # a determinant below this (relative to S0**n) fits a line or a mean instead


@njit()
def _moments_along_chan(data, mask, kernel):
    """Per sample, Σ_k g(k) k^p w(c+k) (p = 0, 1, 2) and Σ_k g(k) k^p w y (p = 0, 1) along
    frequency: (5, time, chan). Loops run over the kernel offset outside and channels inside,
    so the inner loops read and write contiguous memory and vectorise."""
    ntime, nchan = data.shape
    half = kernel.shape[0] // 2
    w = np.empty((ntime, nchan))
    wy = np.empty((ntime, nchan))
    for t in range(ntime):
        for c in range(nchan):
            usable = not mask[t, c]
            w[t, c] = 1.0 if usable else 0.0
            wy[t, c] = np.float64(data[t, c]) if usable else 0.0
    out = np.zeros((5, ntime, nchan))
    for t in range(ntime):
        for k in range(-half, half + 1):
            g = kernel[half + k]
            gk, gkk = g * k, g * k * k
            for c in range(max(0, -k), min(nchan, nchan - k)):
                out[0, t, c] += g * w[t, c + k]
                out[1, t, c] += gk * w[t, c + k]
                out[2, t, c] += gkk * w[t, c + k]
                out[3, t, c] += g * wy[t, c + k]
                out[4, t, c] += gk * wy[t, c + k]
    return out


@njit()
def smooth_plane_linear(data, mask, time_kernel, chan_kernel):
    """(time, chan) float64: the local-linear fit at every sample (see the module docstring);
    where no unmasked sample lies under the kernel, the median of the unmasked samples (0.0
    if there are none)."""
    ntime, nchan = data.shape
    chan = _moments_along_chan(data, mask, chan_kernel)
    half = time_kernel.shape[0] // 2
    # moments (t) of S0, St, Stt, Sc, Stc, Scc, Sy, Sty, Scy, each a sum over time offsets j
    # of g(j) j^p times a chan moment of the sample j away
    sums = np.zeros((9, ntime, nchan))
    for t in range(ntime):
        for j in range(max(-half, -t), min(half, ntime - 1 - t) + 1):
            g = time_kernel[half + j]
            gj, gjj = g * j, g * j * j
            for c in range(nchan):
                a0, a1, b0 = chan[0, t + j, c], chan[1, t + j, c], chan[3, t + j, c]
                sums[0, t, c] += g * a0
                sums[1, t, c] += gj * a0
                sums[2, t, c] += gjj * a0
                sums[3, t, c] += g * a1
                sums[4, t, c] += gj * a1
                sums[5, t, c] += g * chan[2, t + j, c]
                sums[6, t, c] += g * b0
                sums[7, t, c] += gj * b0
                sums[8, t, c] += g * chan[4, t + j, c]
    out = np.empty((ntime, nchan))
    fill = np.nan
    for t in range(ntime):
        for c in range(nchan):
            s0 = sums[0, t, c]
            if s0 <= 0.0:
                if np.isnan(fill):
                    fill = _fill(data, mask)
                out[t, c] = fill
            else:
                out[t, c] = _fit(sums[:, t, c])
    return out


@njit()
def _fit(moments):
    """b0 of the weighted least-squares plane from its moments (S0, St, Stt, Sc, Stc, Scc, Sy,
    Sty, Scy); a line along one axis where the samples have no extent along the other, the
    mean where they have none at all."""
    s0, st, stt, sc, stc, scc, sy, sty, scy = (moments[0], moments[1], moments[2], moments[3],
                                               moments[4], moments[5], moments[6], moments[7],
                                               moments[8])  # fmt: skip
    det = s0 * (stt * scc - stc * stc) - st * (st * scc - stc * sc) + sc * (st * stc - stt * sc)
    if abs(det) > _SINGULAR * s0 * s0 * s0:
        return (sy * (stt * scc - stc * stc) - st * (sty * scc - stc * scy)
                + sc * (sty * stc - stt * scy)) / det  # fmt: skip
    for m1, m11, y1 in ((sc, scc, scy), (st, stt, sty)):  # a line along chan, or along time
        det = s0 * m11 - m1 * m1
        if det > _SINGULAR * s0 * s0:
            return (sy * m11 - m1 * y1) / det
    return sy / s0


@njit()
def _fill(data, mask):
    values = np.empty(data.size)
    n = 0
    for t in range(data.shape[0]):
        for c in range(data.shape[1]):
            if not mask[t, c]:
                values[n] = data[t, c]
                n += 1
    return np.median(values[:n]) if n else 0.0
