"""Plot aggregation against numpy's histogram2d, and dask == numpy."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from radiocloud.core.kernels.plot import aggregate, data_extent, grid_counts, grid_sums

points = st.integers(1, 300).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.float64, n, elements=st.one_of(st.floats(-10, 10), st.just(np.nan))),
        hnp.arrays(np.float64, n, elements=st.floats(-10, 10)),
        hnp.arrays(np.bool_, n),
    )
)


@settings(max_examples=60, deadline=None)
@given(points, st.integers(1, 9), st.integers(1, 7))
def test_counts_equal_histogram2d(pts, nx, ny):
    x, y, valid = pts
    ranges = (-5.0, 5.0, -3.0, 4.0)
    out = np.zeros((ny, nx), np.int64)
    grid_counts(x, y, valid, *ranges, out)  # NaN x: skipped
    keep = valid & np.isfinite(x)
    want, _, _ = np.histogram2d(y[keep], x[keep], bins=(ny, nx),
                                range=((ranges[2], ranges[3]), (ranges[0], ranges[1])))  # fmt: skip
    np.testing.assert_array_equal(out, want)


def test_sums_give_each_pixels_mean():
    x = np.array([0.1, 0.2, 0.9, 0.9, np.nan])
    y = np.array([0.1, 0.1, 0.9, 0.95, 0.5])
    value = np.array([1.0, 3.0, 5.0, np.nan, 7.0])
    sums, counts = np.zeros((2, 2)), np.zeros((2, 2), np.int64)
    grid_sums(x, y, value, np.ones(5, bool), 0.0, 1.0, 0.0, 1.0, sums, counts)
    np.testing.assert_array_equal(counts, [[2, 0], [0, 1]])
    np.testing.assert_array_equal(sums / np.maximum(counts, 1), [[2.0, 0], [0, 5.0]])


@pytest.mark.parametrize("lanes", [None, 1, 3])
def test_dask_chunks_sum_to_the_numpy_grid(lanes):
    """Per-row x broadcast over (row, chan, corr) y, in chunks of rows: the grid is the same
    as numpy's on the whole, and so are categories per correlation, whether blocks are summed
    in a tree (None) or added in place into lanes."""
    rng = np.random.default_rng(0)
    uv = rng.uniform(0, 100, (500, 1, 1))
    amp = rng.uniform(0, 1, (500, 8, 2))
    flag = rng.random((500, 8, 2)) < 0.1
    corr = np.broadcast_to(np.arange(2)[None, None, :], amp.shape)
    ranges, shape = (0.0, 100.0, 0.0, 1.0), (16, 32)
    X, Y = da.from_array(uv, chunks=(64, 1, 1)), da.from_array(amp, chunks=(64, 8, 2))
    valid = ~da.from_array(flag, chunks=(64, 8, 2))
    (grid,) = dask.compute(aggregate(X, Y, valid, ranges=ranges, shape=shape, lanes=lanes))
    xb = np.broadcast_to(uv, amp.shape)
    want, _, _ = np.histogram2d(amp[~flag], xb[~flag], bins=shape, range=((0, 1), (0, 100)))
    np.testing.assert_array_equal(grid, want)
    C = da.from_array(np.ascontiguousarray(corr), chunks=(64, 8, 2))
    (cats,) = dask.compute(
        aggregate(X, Y, valid, ranges=ranges, shape=(2, *shape), category=C, lanes=lanes)
    )
    for c in range(2):
        sel = ~flag & (corr == c)
        want, _, _ = np.histogram2d(amp[sel], xb[sel], bins=shape, range=((0, 1), (0, 100)))
        np.testing.assert_array_equal(cats[c], want)


def test_extent_of_valid_finite_points_in_one_pass():
    """A point is in the extent when valid and both its x and y are finite."""
    rng = np.random.default_rng(1)
    uv = rng.uniform(0, 100, (300, 1, 1))
    amp = rng.uniform(0, 1, (300, 8, 2)).astype(np.float32)
    flag = rng.random(amp.shape) < 0.2
    amp[~flag] = np.where(rng.random((~flag).sum()) < 0.01, np.nan, amp[~flag])
    X, Y = da.from_array(uv, chunks=(64, 1, 1)), da.from_array(amp, chunks=(64, 8, 2))
    (ext,) = dask.compute(data_extent(X, Y, ~da.from_array(flag, chunks=(64, 8, 2))))
    keep = ~flag & np.isfinite(amp)
    xb = np.broadcast_to(uv, amp.shape)
    want = [xb[keep].min(), xb[keep].max(), amp[keep].min(), amp[keep].max()]
    np.testing.assert_array_equal(ext, want)
    (none,) = dask.compute(data_extent(X, Y, da.zeros(amp.shape, bool, chunks=(64, 8, 2))))
    np.testing.assert_array_equal(none, [np.inf, -np.inf, np.inf, -np.inf])
