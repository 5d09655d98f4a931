"""Plot aggregation: points into pixel grids (numba) chunk by chunk (dask), memory flat in
the number of points."""

from radiocloud.core.kernels.plot.dask import aggregate, aggregate_all, data_extent
from radiocloud.core.kernels.plot.kernels import (
    extent,
    grid,
    grid_categories,
    grid_counts,
    grid_sums,
)

__all__ = [
    "aggregate",
    "aggregate_all",
    "data_extent",
    "extent",
    "grid",
    "grid_categories",
    "grid_counts",
    "grid_sums",
]
