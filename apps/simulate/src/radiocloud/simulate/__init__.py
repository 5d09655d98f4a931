"""rc-simulate."""
