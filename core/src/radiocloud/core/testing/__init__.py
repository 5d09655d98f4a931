"""Test helpers every member uses: tiny dataset builders and hypothesis strategies."""

from radiocloud.core.testing.builders import MSSpec, build_ms, ms_datasets

__all__ = ["MSSpec", "build_ms", "ms_datasets"]
