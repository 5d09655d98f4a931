"""Hypothesis strategies for visibility-shaped data and test datasets."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from radiocloud.core.testing.builders import MSSpec


@st.composite
def ms_specs(draw, max_ant: int = 5, max_chan: int = 8) -> MSSpec:
    """Small but varied datasets: 1/2/4 correlations, several SPWs of different widths,
    several fields and scans, single or double precision, optional extra columns."""
    return MSSpec(
        n_ant=draw(st.integers(2, max_ant)),
        n_time=draw(st.integers(1, 3)),
        spw_chans=tuple(draw(st.lists(st.integers(1, max_chan), min_size=1, max_size=2))),
        n_corr=draw(st.sampled_from([1, 2, 4])),
        n_field=draw(st.integers(1, 2)),
        n_scan=draw(st.integers(1, 2)),
        autocorrelations=draw(st.booleans()),
        vis_dtype=draw(st.sampled_from(["complex64", "complex128"])),
        extra_columns=tuple(
            draw(st.lists(st.sampled_from(["MODEL_DATA", "WEIGHT_SPECTRUM"]), unique=True))
        ),
        seed=draw(st.integers(0, 2**16)),
    )


def visibilities(
    max_rows: int = 50, max_chan: int = 16, dtype=np.complex64
) -> st.SearchStrategy[np.ndarray]:
    """(row, chan, corr) complex arrays with finite values, corr in 1, 2 or 4."""
    shape = st.tuples(
        st.integers(1, max_rows), st.integers(1, max_chan), st.sampled_from([1, 2, 4])
    )
    return hnp.arrays(dtype, shape, elements=st.complex_numbers(max_magnitude=1e3, width=64))
