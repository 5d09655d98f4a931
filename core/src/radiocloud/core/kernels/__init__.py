"""Numba kernels (``kernels.py``) and dask wrappers (``dask.py``), one folder per algorithm."""
