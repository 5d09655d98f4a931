"""Aggregation of points into a pixel grid: the memory of a plot is its grid, never its points.

Pixels follow ``numpy.histogram2d``: a point at x lands in column floor((x - x0) / dx), the
right-most edge belongs to the last column, and points outside [x0, x1] x [y0, y1], NaN, or
not ``valid`` are skipped. Grids are (ny, nx), row 0 at y0.
"""

from __future__ import annotations

import numpy as np

from radiocloud.core.jit import njit


@njit()
def _edge(i, v0, v1, n):
    """Pixel edge i as numpy.linspace(v0, v1, n + 1) has it."""
    return v1 if i == n else i * ((v1 - v0) / n) + v0


@njit()
def _pixel(v, v0, v1, n):
    """The pixel of value v on [v0, v1] in n pixels, or -1 outside (or NaN): the scaled
    index, corrected against the edges so that rounding puts no point in the wrong pixel."""
    if not (v >= v0 and v <= v1):
        return -1
    i = min(max(int((v - v0) * (n / (v1 - v0))), 0), n - 1)
    if v < _edge(i, v0, v1, n):
        i -= 1
    elif i != n - 1 and v >= _edge(i + 1, v0, v1, n):
        i += 1
    return i


@njit()
def grid_counts(x, y, valid, x0, x1, y0, y1, counts):
    """Add each valid point's count into ``counts`` (ny, nx)."""
    ny, nx = counts.shape
    for k in range(x.size):
        if not valid[k]:
            continue
        i = _pixel(x[k], x0, x1, nx)
        j = _pixel(y[k], y0, y1, ny)
        if i >= 0 and j >= 0:
            counts[j, i] += 1


@njit()
def grid_categories(x, y, category, valid, x0, x1, y0, y1, counts):
    """Counts per category (ncat, ny, nx); points of a category outside [0, ncat) skipped."""
    ncat, ny, nx = counts.shape
    for k in range(x.size):
        c = category[k]
        if not valid[k] or c < 0 or c >= ncat:
            continue
        i = _pixel(x[k], x0, x1, nx)
        j = _pixel(y[k], y0, y1, ny)
        if i >= 0 and j >= 0:
            counts[c, j, i] += 1


@njit()
def grid_sums(x, y, value, valid, x0, x1, y0, y1, sums, counts):
    """Sum and count of a continuous ``value`` per pixel (colour by the pixel's mean)."""
    ny, nx = counts.shape
    for k in range(x.size):
        if not valid[k] or not np.isfinite(value[k]):
            continue
        i = _pixel(x[k], x0, x1, nx)
        j = _pixel(y[k], y0, y1, ny)
        if i >= 0 and j >= 0:
            sums[j, i] += value[k]
            counts[j, i] += 1


@njit()
def grid_counts3(x, y, valid, x0, x1, y0, y1, counts):
    """``grid_counts`` for (row, chan, corr) arrays that broadcast against each other (an
    axis of length 1 repeats), without materialising the broadcast."""
    ny, nx = counts.shape
    nr = max(x.shape[0], y.shape[0], valid.shape[0])
    nf = max(x.shape[1], y.shape[1], valid.shape[1])
    nc = max(x.shape[2], y.shape[2], valid.shape[2])
    for r in range(nr):
        rx, ry, rv = min(r, x.shape[0] - 1), min(r, y.shape[0] - 1), min(r, valid.shape[0] - 1)
        for f in range(nf):
            fx, fy, fv = min(f, x.shape[1] - 1), min(f, y.shape[1] - 1), min(f, valid.shape[1] - 1)
            for c in range(nc):
                if not valid[rv, fv, min(c, valid.shape[2] - 1)]:
                    continue
                i = _pixel(x[rx, fx, min(c, x.shape[2] - 1)], x0, x1, nx)
                j = _pixel(y[ry, fy, min(c, y.shape[2] - 1)], y0, y1, ny)
                if i >= 0 and j >= 0:
                    counts[j, i] += 1
