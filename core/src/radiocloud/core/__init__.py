"""radiocloud core."""
