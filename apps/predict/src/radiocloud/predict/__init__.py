"""rc-predict."""
