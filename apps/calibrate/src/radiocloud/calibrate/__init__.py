"""rc-calibrate: solve chains of gain terms, apply them, store them as zarr gain tables."""
