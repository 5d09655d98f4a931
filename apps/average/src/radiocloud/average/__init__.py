"""rc-average: time/channel averaging and baseline-dependent averaging (BDA)."""
