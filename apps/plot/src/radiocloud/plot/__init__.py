"""rc-plot: visibilities aggregated into pictures, memory flat in the number of points."""
