"""Imaging weights of rc-image's Stokes I: natural, uniform or Briggs, a Gaussian taper and
uv cuts (core's weighting kernels), the uv cells counted first in a pass of their own so that
the weighting pass holds only the blocks in flight."""

from __future__ import annotations

from radiocloud.core.kernels.image import weighting_dask
from radiocloud.core.kernels.image.gridding import Geometry
from radiocloud.core.progress import compute


def imaging_weights(parts, cfg, geom: Geometry) -> list:
    """Lazy (row, chan) imaging weights of each part (zero where flagged)."""
    partitions = [(p.uvw, p.freq, p.weight, p.weight <= 0) for p in parts]
    common = {"npix_x": geom.nx, "npix_y": geom.ny, "cell": geom.cell,
              "uv_min": cfg.uv_range[0], "uv_max": cfg.uv_range[1]}  # fmt: skip
    cells = None
    if cfg.weight != "natural":
        (cells,) = compute(weighting_dask.uv_cell_weights(partitions, **common),
                           description="counting the uv cells")  # fmt: skip
    return weighting_dask.imaging_weights(partitions, scheme=cfg.weight, robust=cfg.robust,
                                          cell_weights=cells, taper_fwhm=cfg.taper or 0.0,
                                          **common)  # fmt: skip
