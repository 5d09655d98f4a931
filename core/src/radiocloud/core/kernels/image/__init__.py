"""Imaging kernels: visibility weighting, gridding with ducc0's wgridder, CLEAN minor cycles."""
