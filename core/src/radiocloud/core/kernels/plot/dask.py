"""Aggregating dask arrays of points chunk by chunk: each chunk adds into its own grid and
grids are summed in a tree, so memory is a few grids whatever the number of points."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from radiocloud.core.kernels.plot.kernels import grid_categories, grid_counts, grid_sums


def _flat(*arrays):
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    return [np.ascontiguousarray(np.broadcast_to(a, shape)).ravel() for a in arrays]


def _counts_block(x, y, valid, *, ranges, shape):
    x, y, valid = _flat(x, y, valid)
    out = np.zeros(shape, np.int64)
    grid_counts(x.astype(np.float64), y.astype(np.float64), valid, *ranges, out)
    return out


def _categories_block(x, y, category, valid, *, ranges, shape):
    x, y, category, valid = _flat(x, y, category, valid)
    out = np.zeros(shape, np.int64)
    grid_categories(x.astype(np.float64), y.astype(np.float64), category.astype(np.int64),
                    valid, *ranges, out)  # fmt: skip
    return out


def _sums_block(x, y, value, valid, *, ranges, shape):
    x, y, value, valid = _flat(x, y, value, valid)
    sums, counts = np.zeros(shape), np.zeros(shape, np.int64)
    grid_sums(x.astype(np.float64), y.astype(np.float64), value.astype(np.float64), valid,
              *ranges, sums, counts)  # fmt: skip
    return np.stack([sums, counts.astype(np.float64)])


def _sum(a, b):
    a += b
    return a


def _tree(leaves):
    while len(leaves) > 1:
        pairs = [dask.delayed(_sum)(a, b) for a, b in zip(leaves[::2], leaves[1::2], strict=False)]
        leaves = pairs + ([leaves[-1]] if len(leaves) % 2 else [])
    return leaves[0]


def _blocks(*arrays):
    """Matching blocks of arrays broadcast against each other (chunked alike along rows)."""
    arrays = da.broadcast_arrays(*(da.asarray(a) for a in arrays))
    arrays = [a.rechunk(arrays[0].chunks) for a in arrays]
    return zip(*(a.to_delayed().ravel() for a in arrays), strict=True)


def aggregate(x, y, valid, *, ranges, shape, category=None, value=None):
    """A delayed grid of the points (x, y) where ``valid``: counts (ny, nx); counts per
    category (ncat, ny, nx) with ``category`` (and ``shape`` = (ncat, ny, nx)); or, with
    ``value``, sums and counts stacked (2, ny, nx). ``ranges`` = (x0, x1, y0, y1)."""
    if category is not None:
        leaves = [dask.delayed(_categories_block)(*b, ranges=ranges, shape=shape)
                  for b in _blocks(x, y, category, valid)]  # fmt: skip
    elif value is not None:
        leaves = [dask.delayed(_sums_block)(*b, ranges=ranges, shape=shape)
                  for b in _blocks(x, y, value, valid)]  # fmt: skip
    else:
        leaves = [dask.delayed(_counts_block)(*b, ranges=ranges, shape=shape)
                  for b in _blocks(x, y, valid)]  # fmt: skip
    return _tree(leaves)


def data_range(values, valid) -> tuple:
    """Lazy (min, max) of the valid, finite values (NaN, NaN when there are none)."""
    v = da.where(valid & da.isfinite(values), values, np.nan)
    return da.nanmin(v), da.nanmax(v)
