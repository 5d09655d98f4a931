"""rc-image: visibilities to images: weighting, gridding, CLEAN, FITS products."""
