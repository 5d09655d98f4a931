"""Apply per-antenna Jones matrices to visibilities."""

from radiocloud.core.kernels.jones.kernels import apply_diag_jones, corr_feeds

__all__ = ["apply_diag_jones", "corr_feeds"]
