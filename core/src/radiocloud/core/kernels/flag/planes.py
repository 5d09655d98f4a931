"""Serial numba kernels on one (time, chan) plane: the algorithms behind :mod:`.kernels`.

Every function takes C-contiguous arrays as :mod:`.kernels` prepares them (data float32 or
float64, masks bool) and never writes to its data or flag inputs; those that grow a mask say
so and are handed a copy. A *mask* here is the user's flags OR non-finite data: the samples no
statistic may use (:func:`excluded`).
"""

from __future__ import annotations

import math

import numpy as np

from radiocloud.core.jit import njit
from radiocloud.core.kernels.flag.background import smooth_plane_linear

# Bits of the SumThreshold direction code.
ALONG_TIME = 1
ALONG_CHAN = 2

# Axis codes of the per-line statistics: the axis the statistics run over.
OVER_TIME = 0  # one statistic per channel
OVER_CHAN = 1  # one statistic per time

MAD_TO_SIGMA = 1.4826
"""1 / Φ⁻¹(3/4): the MAD of Gaussian noise times this is its standard deviation."""


@njit()
def excluded(data, flags):
    """(time, chan) bool: ``flags`` OR non-finite ``data``."""
    ntime, nchan = data.shape
    mask = np.empty((ntime, nchan), dtype=np.bool_)
    for t in range(ntime):
        for c in range(nchan):
            mask[t, c] = flags[t, c] or not np.isfinite(data[t, c])
    return mask


# --- SumThreshold -------------------------------------------------------------------------


@njit()
def sum_threshold_plane(data, mask, windows, chis, direction, absolute):
    """Grow ``mask`` (time, chan) in place by SumThreshold, and return it.

    One pass per window size ``windows[i]`` with threshold ``chis[i]``, all along time first,
    then all along frequency, as ``direction`` (:data:`ALONG_TIME` | :data:`ALONG_CHAN`) asks.
    A pass reads the mask as the earlier passes left it and writes its flags to a scratch
    copy, so flags of one window size do not feed back into the same pass.
    """
    ntime, nchan = data.shape
    scratch = mask.copy()
    if direction & ALONG_TIME:
        for i in range(windows.shape[0]):
            for c in range(nchan):
                _sum_threshold_line(
                    data[:, c], mask[:, c], scratch[:, c], windows[i], chis[i], absolute
                )
            mask[:] = scratch
    if direction & ALONG_CHAN:
        for i in range(windows.shape[0]):
            for t in range(ntime):
                _sum_threshold_line(data[t], mask[t], scratch[t], windows[i], chis[i], absolute)
            mask[:] = scratch
    return mask


@njit()
def _sum_threshold_line(x, mask, out, window, chi, absolute):
    """Set ``out`` over every run of ``window`` samples of ``x`` whose unmasked sum exceeds
    ``chi`` times their count (their mean exceeds ``chi``; with ``absolute``, its magnitude).

    Counting masked samples as ``chi`` (AOFlagger) gives the same test: the window mean
    ``(s + n_masked chi) / window`` exceeds ``chi`` exactly when ``s > n_unmasked chi``.
    The window sum runs in float64, one sample in and one out per step.
    """
    n = x.shape[0]
    if window > n:
        return
    total = 0.0
    count = 0
    marked = -1  # the last index of out this pass has set
    for right in range(n):
        if not mask[right]:
            total += x[right]
            count += 1
        left = right - window + 1
        if left < 0:
            continue
        level = abs(total) if absolute else total
        if count > 0 and level > count * chi:
            for k in range(max(left, marked + 1), right + 1):
                out[k] = True
            marked = right
        if not mask[left]:
            total -= x[left]
            count -= 1


# --- Background and noise -------------------------------------------------------------------


@njit()
def smooth_plane(data, mask, time_kernel, chan_kernel):
    """(time, chan) float64: Σ g w x / Σ g w over the separable kernel g = time ⊗ chan.

    ``w`` is 0 on masked samples and 1 elsewhere; the kernels are odd-length, centred. Where
    no unmasked sample lies under the kernel, the median of the unmasked samples (0.0 if there
    are none).
    """
    ntime, nchan = data.shape
    ht = time_kernel.shape[0] // 2
    hc = chan_kernel.shape[0] // 2
    # Along frequency, scattering each unmasked sample into its neighbours.
    num1 = np.zeros((ntime, nchan))
    den1 = np.zeros((ntime, nchan))
    for t in range(ntime):
        for c in range(nchan):
            if mask[t, c]:
                continue
            value = np.float64(data[t, c])
            for k in range(max(-hc, -c), min(hc, nchan - 1 - c) + 1):
                num1[t, c + k] += chan_kernel[hc + k] * value
                den1[t, c + k] += chan_kernel[hc + k]
    # Along time, whole rows at a time so the inner loop reads contiguous memory.
    num = np.zeros((ntime, nchan))
    den = np.zeros((ntime, nchan))
    for t in range(ntime):
        for k in range(max(-ht, -t), min(ht, ntime - 1 - t) + 1):
            g = time_kernel[ht + k]
            for c in range(nchan):
                num[t + k, c] += g * num1[t, c]
                den[t + k, c] += g * den1[t, c]
    fill = np.nan  # the median, computed when first needed
    for t in range(ntime):
        for c in range(nchan):
            if den[t, c] > 0.0:
                num[t, c] = num[t, c] / den[t, c]
            else:
                if math.isnan(fill):
                    fill = masked_median(data, mask)
                    fill = 0.0 if math.isnan(fill) else fill
                num[t, c] = fill
    return num


@njit()
def _unmasked(x, mask):
    """float64 copy of the unmasked samples of ``x`` (any shape), in memory order."""
    flat_x = x.ravel()
    flat_mask = mask.ravel()
    values = np.empty(flat_x.shape[0])
    n = 0
    for i in range(flat_x.shape[0]):
        if not flat_mask[i]:
            values[n] = flat_x[i]
            n += 1
    return values[:n]


@njit()
def masked_median(x, mask):
    """Median of the unmasked samples of ``x``; NaN if there are none."""
    values = _unmasked(x, mask)
    return np.median(values) if values.shape[0] else np.nan


@njit()
def robust_sigma_plane(data, mask):
    """1.4826 × median absolute deviation of the unmasked samples; NaN if there are none."""
    values = _unmasked(data, mask)
    if values.shape[0] == 0:
        return np.nan
    centre = np.median(values)
    return MAD_TO_SIGMA * np.median(np.abs(values - centre))


# --- The iterated strategy ------------------------------------------------------------------


@njit()
def flag_plane(
    data, flags, iterations, windows, chis, direction, time_kernel, chan_kernel, absolute
):
    """(time, chan) bool: ``flags``, non-finite samples, and what the iterations find.

    Iteration ``i`` (0-based) subtracts the masked smooth background, divides by the robust
    sigma of the residual and runs SumThreshold at ``chis`` × 2**(iterations - 1 - i), so the
    last iteration uses ``chis`` itself. A residual without spread (sigma 0 or NaN: constant
    or fully flagged data) ends the iterations.
    """
    mask = excluded(data, flags)
    ntime, nchan = data.shape
    residual = np.empty((ntime, nchan))
    for i in range(iterations):
        background = smooth_plane_linear(data, mask, time_kernel, chan_kernel)
        for t in range(ntime):
            for c in range(nchan):
                residual[t, c] = data[t, c] - background[t, c]
        sigma = robust_sigma_plane(residual, mask)
        if not sigma > 0.0:
            break
        for t in range(ntime):
            for c in range(nchan):
                residual[t, c] = residual[t, c] / sigma
        factor = 2.0 ** (iterations - 1 - i)
        sum_threshold_plane(residual, mask, windows, factor * chis, direction, absolute)
    return mask


# --- Robust outliers, dilation, dense lines ---------------------------------------------------


@njit()
def mad_flag_plane(data, mask, threshold, over, upper):
    """(time, chan) bool: ``mask`` OR unmasked samples farther than ``threshold`` robust sigmas
    (1.4826 MAD) from the median of their line (only above it if ``upper``), lines running over
    time (``over`` = :data:`OVER_TIME`, one median per channel) or over frequency
    (:data:`OVER_CHAN`)."""
    out = mask.copy()
    ntime, nchan = data.shape
    if over == OVER_TIME:
        for c in range(nchan):
            _mad_line(data[:, c], mask[:, c], threshold, upper, out[:, c])
    else:
        for t in range(ntime):
            _mad_line(data[t], mask[t], threshold, upper, out[t])
    return out


@njit()
def _mad_line(x, mask, threshold, upper, out):
    values = _unmasked(x, mask)
    if values.shape[0] == 0:
        return
    centre = np.median(values)
    limit = threshold * (MAD_TO_SIGMA * np.median(np.abs(values - centre)))
    for i in range(x.shape[0]):
        deviation = x[i] - centre if upper else abs(x[i] - centre)
        if not mask[i] and deviation > limit:
            out[i] = True


@njit()
def dilate_plane(flags, time, chan):
    """(time, chan) bool: ``flags`` grown by ``time`` samples either side in time, then by
    ``chan`` either side in frequency (a (2 time + 1) × (2 chan + 1) rectangle)."""
    ntime, nchan = flags.shape
    grown = flags.copy()
    if time > 0:
        for c in range(nchan):
            _dilate_line(flags[:, c], time, grown[:, c])
    out = grown.copy()
    if chan > 0:
        for t in range(ntime):
            _dilate_line(grown[t], chan, out[t])
    return out


@njit()
def _dilate_line(flags, reach, out):
    """Set ``out`` wherever a flag of ``flags`` lies at most ``reach`` samples away."""
    n = flags.shape[0]
    last = -reach - 1  # the latest flag at or before i
    for i in range(n):
        if flags[i]:
            last = i
        if i - last <= reach:
            out[i] = True
    following = n + reach  # the earliest flag at or after i
    for i in range(n - 1, -1, -1):
        if flags[i]:
            following = i
        if following - i <= reach:
            out[i] = True


@njit()
def flag_dense_plane(flags, max_fraction, over):
    """(time, chan) bool: ``flags`` with every line flagged in more than ``max_fraction`` of
    its samples flagged whole; lines over time (channels) or over frequency (times)."""
    out = flags.copy()
    ntime, nchan = flags.shape
    if over == OVER_TIME:
        for c in range(nchan):
            if ntime and np.sum(flags[:, c]) / ntime > max_fraction:
                out[:, c] = True
    else:
        for t in range(ntime):
            if nchan and np.sum(flags[t]) / nchan > max_fraction:
                out[t] = True
    return out
