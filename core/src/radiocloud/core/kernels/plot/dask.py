"""Aggregating dask arrays of points chunk by chunk into grids, memory flat in the number of
points. Two ways, for small and for large grids:

* a tree (``lanes=None``): each block adds into a grid of its own, as soon as it is read, and
  grids are summed pairwise. Blocks never wait, so none is read ahead of its use; the cost is
  a grid per block, cheap for a density plot's few megabytes;
* lanes (``lanes=N``): blocks add in place into N accumulating grids, block i into lane
  i mod N after that lane's previous block, and the lanes are summed at the end. A plot holds
  N grids whatever the number of blocks, and no block allocates or zeroes a grid: the way for
  a grid per antenna, which would cost more than the points. The price: while blocks wait for
  their lane, dask reads others ahead (about one memory budget more, measured).
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from radiocloud.core.kernels.plot.kernels import extent, grid
from radiocloud.core.reduce import tree_reduce

# dtypes the kernels take as they are (one compiled version each); others are converted
_NATIVE = {"bool": (np.bool_,), "int": (np.int32, np.int64), "float": (np.float32, np.float64)}
_CAST = {"bool": np.bool_, "int": np.int64, "float": np.float64}


def _as3(a, kind):
    """A block as a contiguous 3-d array the kernels take (float32 stays float32: no
    widening copy; broadcast axes stay length 1: no copy of the broadcast)."""
    a = np.asarray(a)
    a = a.reshape(a.shape + (1,) * (3 - a.ndim))
    dtype = a.dtype if a.dtype.type in _NATIVE[kind] else _CAST[kind]
    return np.ascontiguousarray(a, dtype=dtype)


def _add(acc, x, y, valid, category, value, *, shape, ranges):
    """Add one block's points into the lane ``acc`` = (counts, sums), made on first use, and
    return it (each lane value has exactly one consumer, the lane's next block)."""
    if acc is None:
        counts = np.zeros((1, *shape) if len(shape) == 2 else shape, np.int64)
        sums = np.zeros(counts.shape) if value is not None else np.zeros((1, 1, 1))
        acc = counts, sums
    grid(_as3(x, "float"), _as3(y, "float"), _as3(valid, "bool"),
         _as3(0 if category is None else category, "int"),
         _as3(0.0 if value is None else value, "float"), category is not None,
         value is not None, *ranges, *acc)  # fmt: skip
    return acc


def _result(acc, *, shape, value: bool):
    counts, sums = acc
    if value:
        return np.stack([sums.reshape(shape), counts.reshape(shape).astype(np.float64)])
    return counts.reshape(shape)


def _merge(a, b):
    a[0][...] += b[0]
    a[1][...] += b[1]
    return a


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


def aggregate(x, y, valid, *, ranges, shape, category=None, value=None, lanes=None):
    """A delayed grid of the points (x, y) where ``valid``: counts (ny, nx); counts per
    category (ncat, ny, nx) with ``category`` (and ``shape`` = (ncat, ny, nx)); or, with
    ``value``, sums and counts stacked (2, *shape). ``ranges`` = (x0, x1, y0, y1)."""
    return aggregate_all([(x, y, valid, category, value)], ranges=ranges, shape=shape,
                         value=value is not None, lanes=lanes)  # fmt: skip


def aggregate_all(sources, *, ranges, shape, value: bool, lanes: int | None = None):
    """Like ``aggregate``, for several sets of points (x, y, valid, category or None, value
    or None) into the same grid, e.g. a plot's partitions: their blocks share the lanes (or
    the tree, with ``lanes=None``)."""
    accs = [None] * (lanes or 1)
    leaves = []
    n = 0
    for x, y, valid, cat, val in sources:
        extra = [a for a in (cat, val) if a is not None]
        for b in _blocks(x, y, valid, *extra):
            c = b[3] if cat is not None else None
            v = b[-1] if val is not None else None
            if lanes is None:
                leaves.append(dask.delayed(_add)(None, b[0], b[1], b[2], c, v, shape=shape,
                                                 ranges=ranges))  # fmt: skip
                continue
            k = n % len(accs)
            accs[k] = dask.delayed(_add)(accs[k], b[0], b[1], b[2], c, v, shape=shape,
                                         ranges=ranges)  # fmt: skip
            n += 1
    used = leaves + [a for a in accs if a is not None]
    if not used:
        used = [dask.delayed(_add)(None, np.zeros(1), np.zeros(1), np.zeros(1, bool), None,
                                   0.0 if value else None, shape=shape, ranges=ranges)]  # fmt: skip
    return dask.delayed(_result)(tree_reduce(used, _merge), shape=shape, value=value)


def _extent_block(x, y, valid):
    out = np.array([np.inf, -np.inf, np.inf, -np.inf])
    extent(_as3(x, "float"), _as3(y, "float"), _as3(valid, "bool"), out)
    return out


def _widen(a, b):
    return np.array([min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])])


def data_extent(x, y, valid):
    """Delayed [xmin, xmax, ymin, ymax] of the valid points whose x and y are finite, in one
    pass over the blocks (inf, -inf when there are none)."""
    return tree_reduce([dask.delayed(_extent_block)(*b) for b in _blocks(x, y, valid)], _widen)
