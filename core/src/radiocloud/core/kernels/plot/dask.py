"""Aggregating dask arrays of points chunk by chunk: each chunk adds into its own grid and
grids are summed in a tree, so memory is a few grids whatever the number of points."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from radiocloud.core.kernels.plot.kernels import grid_categories, grid_counts3, grid_sums


def _flat(*arrays):
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    return [np.ascontiguousarray(np.broadcast_to(a, shape)).ravel() for a in arrays]


def _counts_block(x, y, valid, *, ranges, shape):
    out = np.zeros(shape, np.int64)
    grid_counts3(_as3(x), _as3(y), _as3(valid), *ranges, out)
    return out


def _as3(a):
    """A block as a 3-d array of one of the kernel's few dtypes (no broadcast copies)."""
    a = np.asarray(a)
    a = a.reshape(a.shape + (1,) * (3 - a.ndim))
    if a.dtype == np.bool_:
        return np.ascontiguousarray(a)
    return np.ascontiguousarray(a, dtype=np.float64 if a.dtype.itemsize > 4 else np.float32)


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
    """Matching row blocks of (row, chan, corr) arrays that broadcast against each other:
    each keeps its own shape (length-1 axes stay 1), rows chunked like the longest; numpy
    arrays and arrays of one row are passed whole to every block."""
    shaped = [a.reshape(a.shape + (1,) * (3 - a.ndim)) for a in arrays]
    lazy = [a for a in shaped if isinstance(a, da.Array)]
    big = max(lazy, key=lambda a: a.shape[0])
    rows = big.rechunk({1: -1, 2: -1}).chunks[0]
    blocks = []
    for a in shaped:
        if isinstance(a, da.Array) and a.shape[0] == big.shape[0] and a.shape[0] > 1:
            a = a.rechunk({0: rows, 1: -1, 2: -1})
            blocks.append(list(a.to_delayed().ravel()))
        else:
            whole = a.rechunk(-1).to_delayed().ravel()[0] if isinstance(a, da.Array) else a
            blocks.append([whole] * len(rows))
    return zip(*blocks, strict=True)


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
