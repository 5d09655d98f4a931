"""Degridding: model visibilities of FITS model images with ducc0's wgridder."""

from radiocloud.core.kernels.degrid.kernels import degrid_vis

__all__ = ["degrid_vis"]
