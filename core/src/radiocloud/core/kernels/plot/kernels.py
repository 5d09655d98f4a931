"""Aggregation of points into a pixel grid: the memory of a plot is its grid, never its points.

Pixels follow ``numpy.histogram2d``: a point at x lands in column floor((x - x0) / dx), the
right-most edge belongs to the last column, and points outside [x0, x1] x [y0, y1], NaN, or
not ``valid`` are skipped. Grids are (ny, nx), row 0 at y0.
"""

from __future__ import annotations

import numpy as np

from radiocloud.core.jit import njit


@njit()
def _edge(i, v0, v1, n, step):
    """Pixel edge i as numpy.linspace(v0, v1, n + 1) has it (``step`` = (v1 - v0) / n)."""
    return v1 if i == n else i * step + v0


@njit()
def _pixel(v, v0, v1, n, scale, step):
    """The pixel of value v on [v0, v1] in n pixels, or -1 outside (or NaN): the scaled
    index (``scale`` = n / (v1 - v0)), corrected against the edges so that rounding puts no
    point in the wrong pixel."""
    if not (v >= v0 and v <= v1):
        return -1
    i = min(max(int((v - v0) * scale), 0), n - 1)
    if v < _edge(i, v0, v1, n, step):
        i -= 1
    elif i != n - 1 and v >= _edge(i + 1, v0, v1, n, step):
        i += 1
    return i


@njit()
def grid(x, y, valid, category, value, use_category, use_value, x0, x1, y0, y1, counts, sums):
    """Aggregate points given as (row, chan, corr) arrays that broadcast against each other
    (a length-1 axis repeats; nothing is materialised): each valid point adds 1 to
    ``counts[c, j, i]``, c its category (with ``use_category``; points of a category outside
    [0, ncat) are skipped) or 0, and with ``use_value`` its finite value to ``sums[c, j, i]``
    (points whose value is not finite are skipped).

    Indices are clamped once per loop level, and a point's column (row) is recomputed only
    when its x (y) changes: an x that varies by row only (uv distance) costs once per row."""
    ncat, ny, nx = counts.shape
    # an unused category or value is one element: it does not widen the loops
    nr, nf, nc = _grow(_grow(_grow(_grow(x.shape, y), valid), category), value)
    xscale, xstep = nx / (x1 - x0), (x1 - x0) / nx
    yscale, ystep = ny / (y1 - y0), (y1 - y0) / ny
    last_u, last_w, i, j = np.nan, np.nan, -1, -1
    for r in range(nr):
        xr, yr, vr = _last(r, x, 0), _last(r, y, 0), _last(r, valid, 0)
        cr, wr = _last(r, category, 0), _last(r, value, 0)
        for f in range(nf):
            xf, yf, vf = _last(f, x, 1), _last(f, y, 1), _last(f, valid, 1)
            cf, wf = _last(f, category, 1), _last(f, value, 1)
            for k in range(nc):
                if not valid[vr, vf, _last(k, valid, 2)]:
                    continue
                c = category[cr, cf, _last(k, category, 2)] if use_category else 0
                if c < 0 or c >= ncat:
                    continue
                v = value[wr, wf, _last(k, value, 2)] if use_value else 0.0
                if not np.isfinite(v):
                    continue
                u = x[xr, xf, _last(k, x, 2)]
                if u != last_u:
                    i, last_u = _pixel(u, x0, x1, nx, xscale, xstep), u
                w = y[yr, yf, _last(k, y, 2)]
                if w != last_w:
                    j, last_w = _pixel(w, y0, y1, ny, yscale, ystep), w
                if i >= 0 and j >= 0:
                    counts[c, j, i] += 1
                    if use_value:
                        sums[c, j, i] += v


@njit()
def extent(x, y, valid, out):
    """Widen ``out`` = [xmin, xmax, ymin, ymax] to the valid points (broadcast like ``grid``)
    whose x and y are both finite."""
    nr, nf, nc = _grow(_grow(x.shape, y), valid)
    u0, u1, v0, v1 = out[0], out[1], out[2], out[3]
    for r in range(nr):
        xr, yr, vr = _last(r, x, 0), _last(r, y, 0), _last(r, valid, 0)
        for f in range(nf):
            xf, yf, vf = _last(f, x, 1), _last(f, y, 1), _last(f, valid, 1)
            for k in range(nc):
                if not valid[vr, vf, _last(k, valid, 2)]:
                    continue
                u, v = x[xr, xf, _last(k, x, 2)], y[yr, yf, _last(k, y, 2)]
                if np.isfinite(u) and np.isfinite(v):
                    u0, u1, v0, v1 = min(u0, u), max(u1, u), min(v0, v), max(v1, v)
    out[0], out[1], out[2], out[3] = u0, u1, v0, v1


@njit()
def _grow(shape, a):
    """The shape ``shape`` and ``a`` broadcast to (both 3-d)."""
    return max(shape[0], a.shape[0]), max(shape[1], a.shape[1]), max(shape[2], a.shape[2])


@njit()
def _last(index, a, axis):
    """``index`` along ``axis`` of ``a``, where a length-1 axis repeats (broadcasts)."""
    return min(index, a.shape[axis] - 1)


_NONE_INT = np.zeros((1, 1, 1), np.int64)
_NONE_FLOAT = np.zeros((1, 1, 1))


def _3d(a):
    return a.reshape(-1, 1, 1)


def grid_counts(x, y, valid, x0, x1, y0, y1, counts):
    """Add each valid point (1-d arrays) into ``counts`` (ny, nx)."""
    grid(_3d(x), _3d(y), _3d(valid), _NONE_INT, _NONE_FLOAT, False, False, x0, x1, y0, y1,
         counts[None], _NONE_FLOAT)  # fmt: skip


def grid_categories(x, y, category, valid, x0, x1, y0, y1, counts):
    """Counts per category (ncat, ny, nx) of 1-d points."""
    grid(_3d(x), _3d(y), _3d(valid), _3d(category), _NONE_FLOAT, True, False, x0, x1, y0, y1,
         counts, _NONE_FLOAT)  # fmt: skip


def grid_sums(x, y, value, valid, x0, x1, y0, y1, sums, counts):
    """Sum and count of a continuous ``value`` per pixel (colour by the pixel's mean)."""
    grid(_3d(x), _3d(y), _3d(valid), _NONE_INT, _3d(value), False, True, x0, x1, y0, y1,
         counts[None], sums[None])  # fmt: skip
