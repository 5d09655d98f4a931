"""Plot aggregation: points into pixel grids (numba) chunk by chunk (dask), memory flat in
the number of points."""

from radiocloud.core.kernels.plot.dask import aggregate, data_range
from radiocloud.core.kernels.plot.kernels import grid, grid_categories, grid_counts, grid_sums

__all__ = ["aggregate", "data_range", "grid", "grid_categories", "grid_counts", "grid_sums"]
