"""Numba kernels that average visibilities into (time, channel) bins.

The caller maps input samples to output bins: ``rows`` are the input rows that take part (an
autocorrelation left out is simply not listed), ``out_row[i]`` is the output row of
``rows[i]`` and ``chan_out[c]`` the output channel of input channel ``c``. Every input sample
then adds to exactly one output sample, so one pass over the input does all the work.

Semantics (the ones documented in rc-average's README section):

- A sample is *good* if neither FLAG nor FLAG_ROW is set and its weight is positive.
- An output sample with good inputs is their weighted mean; its weight is the sum of their
  weights and it is unflagged. Its sigma is propagated, ``sqrt(Σ w² σ²) / Σ w``, which is the
  noise of the weighted mean whatever the weights' convention.
- An output sample without good inputs is flagged and holds the plain average of all its
  inputs (weighted, or unweighted if all weights are zero), with those inputs' summed weight:
  un-flagging it later gives what averaging would have given had nothing been flagged.
- Per output row: TIME is the centre and INTERVAL the length of the span the input rows
  cover, EXPOSURE their summed exposure; TIME_CENTROID and UVW are the means over the input
  rows weighted by each row's good weight (plain means if the row is entirely flagged).

Weights and sigmas are read with broadcasting: an axis of length 1 stands for all, so WEIGHT
(row, corr) is passed as ``weight[:, None, :]`` and natural weights as ``ones((1, 1, 1))``.
"""

from __future__ import annotations

import math

import numpy as np

from radiocloud.core.jit import njit


@njit()
def _at(a, r, c, p):
    """``a[r, c, p]`` with length-1 axes broadcast."""
    return a[
        r if a.shape[0] > 1 else 0,
        c if a.shape[1] > 1 else 0,
        p if a.shape[2] > 1 else 0,
    ]


@njit()
def _is_good(w, bad_row, flagged):
    return w > 0.0 and not bad_row and not flagged


@njit()
def bin_weights(rows, out_row, n_out, chan_out, n_chan_out, flag, flag_row, weight, sigma):
    """Output weights, sigmas and flags, (n_out, n_chan_out, corr) each, plus each listed
    input row's good weight (rows,), for :func:`bin_rows`.

    ``flag`` (row, chan, corr) bool, ``flag_row`` (row,) bool, ``weight`` and ``sigma``
    broadcastable to (row, chan, corr).
    """
    nchan, ncorr = flag.shape[1], flag.shape[2]
    shape = (n_out, n_chan_out, ncorr)
    w_good = np.zeros(shape)
    s2_good = np.zeros(shape)  # Σ w² σ²
    row_good = np.zeros(rows.shape[0])
    for i in range(rows.shape[0]):
        r, o = rows[i], out_row[i]
        bad_row = flag_row[r]
        for c in range(nchan):
            oc = chan_out[c]
            for p in range(ncorr):
                w = np.float64(_at(weight, r, c, p))
                if _is_good(w, bad_row, flag[r, c, p]):
                    s = np.float64(_at(sigma, r, c, p))
                    w_good[o, oc, p] += w
                    s2_good[o, oc, p] += w * w * s * s
                    row_good[i] += w
    weight_out = np.empty(shape, dtype=np.float32)
    sigma_out = np.empty(shape, dtype=np.float32)
    flag_out = np.empty(shape, dtype=np.bool_)
    fallback = np.zeros(n_out, dtype=np.bool_)  # rows with an output sample without good input
    for o in range(n_out):
        for oc in range(n_chan_out):
            for p in range(ncorr):
                if w_good[o, oc, p] > 0.0:
                    weight_out[o, oc, p] = w_good[o, oc, p]
                    sigma_out[o, oc, p] = math.sqrt(s2_good[o, oc, p]) / w_good[o, oc, p]
                    flag_out[o, oc, p] = False
                else:
                    flag_out[o, oc, p] = True
                    fallback[o] = True
    if not fallback.any():
        return weight_out, sigma_out, flag_out, row_good
    # Flagged output samples: the same over all their inputs, a second pass over only the
    # input rows that feed them (few, in data that is mostly good).
    w_all = np.zeros(shape)
    s2_all = np.zeros(shape)
    s2_plain = np.zeros(shape)  # Σ σ², for bins whose weights are all zero
    n_all = np.zeros(shape, dtype=np.int64)
    for i in range(rows.shape[0]):
        r, o = rows[i], out_row[i]
        if not fallback[o]:
            continue
        for c in range(nchan):
            oc = chan_out[c]
            for p in range(ncorr):
                w = np.float64(_at(weight, r, c, p))
                s = np.float64(_at(sigma, r, c, p))
                w_all[o, oc, p] += w
                s2_all[o, oc, p] += w * w * s * s
                s2_plain[o, oc, p] += s * s
                n_all[o, oc, p] += 1
    for o in range(n_out):
        if not fallback[o]:
            continue
        for oc in range(n_chan_out):
            for p in range(ncorr):
                if not flag_out[o, oc, p]:
                    continue
                weight_out[o, oc, p] = w_all[o, oc, p]
                if w_all[o, oc, p] > 0.0:
                    sigma_out[o, oc, p] = math.sqrt(s2_all[o, oc, p]) / w_all[o, oc, p]
                elif n_all[o, oc, p] > 0:
                    sigma_out[o, oc, p] = math.sqrt(s2_plain[o, oc, p]) / n_all[o, oc, p]
                else:  # no input at all (cannot happen for a bin the caller listed)
                    sigma_out[o, oc, p] = 0.0
    return weight_out, sigma_out, flag_out, row_good


@njit()
def bin_visibilities(rows, out_row, n_out, chan_out, n_chan_out, flag, flag_row, weight, data):
    """Averaged ``data`` (n_out, n_chan_out, corr), in ``data``'s dtype, by the rules above."""
    nchan, ncorr = flag.shape[1], flag.shape[2]
    shape = (n_out, n_chan_out, ncorr)
    sum_good = np.zeros(shape, dtype=np.complex128)
    w_good = np.zeros(shape)
    for i in range(rows.shape[0]):
        r, o = rows[i], out_row[i]
        bad_row = flag_row[r]
        for c in range(nchan):
            oc = chan_out[c]
            for p in range(ncorr):
                w = np.float64(_at(weight, r, c, p))
                if _is_good(w, bad_row, flag[r, c, p]):
                    sum_good[o, oc, p] += w * np.complex128(data[r, c, p])
                    w_good[o, oc, p] += w
    out = np.zeros(shape, dtype=data.dtype)
    fallback = np.zeros(n_out, dtype=np.bool_)
    for o in range(n_out):
        for oc in range(n_chan_out):
            for p in range(ncorr):
                if w_good[o, oc, p] > 0.0:
                    out[o, oc, p] = sum_good[o, oc, p] / w_good[o, oc, p]
                else:
                    fallback[o] = True
    if not fallback.any():
        return out
    sum_all = np.zeros(shape, dtype=np.complex128)
    sum_plain = np.zeros(shape, dtype=np.complex128)
    w_all = np.zeros(shape)
    n_all = np.zeros(shape, dtype=np.int64)
    for i in range(rows.shape[0]):
        r, o = rows[i], out_row[i]
        if not fallback[o]:
            continue
        for c in range(nchan):
            oc = chan_out[c]
            for p in range(ncorr):
                w = np.float64(_at(weight, r, c, p))
                v = np.complex128(data[r, c, p])
                sum_all[o, oc, p] += w * v
                w_all[o, oc, p] += w
                sum_plain[o, oc, p] += v
                n_all[o, oc, p] += 1
    for o in range(n_out):
        if not fallback[o]:
            continue
        for oc in range(n_chan_out):
            for p in range(ncorr):
                if w_good[o, oc, p] > 0.0:
                    continue
                if w_all[o, oc, p] > 0.0:
                    out[o, oc, p] = sum_all[o, oc, p] / w_all[o, oc, p]
                elif n_all[o, oc, p] > 0:
                    out[o, oc, p] = sum_plain[o, oc, p] / n_all[o, oc, p]
    return out


@njit()
def bin_rows(rows, out_row, n_out, row_good, time, interval, exposure, time_centroid, uvw):
    """Per output row: TIME, INTERVAL, EXPOSURE, TIME_CENTROID, UVW (n_out, 3) and the index
    of its first input row (to copy ANTENNA1, FIELD_ID and the other keys from).

    ``row_good`` is :func:`bin_weights`' good weight of each listed row.
    """
    lo = np.full(n_out, np.inf)
    hi = np.full(n_out, -np.inf)
    exposure_out = np.zeros(n_out)
    w_sum = np.zeros(n_out)
    n_rows = np.zeros(n_out)
    centroid_w = np.zeros(n_out)
    centroid_plain = np.zeros(n_out)
    uvw_w = np.zeros((n_out, 3))
    uvw_plain = np.zeros((n_out, 3))
    first = np.full(n_out, -1, dtype=np.int64)
    # Times are summed relative to the first row: MJD seconds (~5e9) leave float64 only
    # microseconds of room, which a sum of many rows would eat into.
    t_ref = time[rows[0]] if rows.shape[0] else 0.0
    for i in range(rows.shape[0]):
        r, o = rows[i], out_row[i]
        if first[o] < 0:
            first[o] = r
        half = 0.5 * interval[r]
        lo[o] = min(lo[o], time[r] - half)
        hi[o] = max(hi[o], time[r] + half)
        exposure_out[o] += exposure[r]
        w = row_good[i]
        dt = time_centroid[r] - t_ref
        w_sum[o] += w
        n_rows[o] += 1.0
        centroid_w[o] += w * dt
        centroid_plain[o] += dt
        for k in range(3):
            uvw_w[o, k] += w * uvw[r, k]
            uvw_plain[o, k] += uvw[r, k]
    time_out = np.empty(n_out)
    interval_out = np.empty(n_out)
    centroid_out = np.empty(n_out)
    uvw_out = np.empty((n_out, 3))
    for o in range(n_out):
        time_out[o] = 0.5 * (lo[o] + hi[o])
        interval_out[o] = hi[o] - lo[o]
        if w_sum[o] > 0.0:
            centroid_out[o] = t_ref + centroid_w[o] / w_sum[o]
            for k in range(3):
                uvw_out[o, k] = uvw_w[o, k] / w_sum[o]
        else:
            centroid_out[o] = t_ref + centroid_plain[o] / n_rows[o]
            for k in range(3):
                uvw_out[o, k] = uvw_plain[o, k] / n_rows[o]
    return time_out, interval_out, exposure_out, centroid_out, uvw_out, first
