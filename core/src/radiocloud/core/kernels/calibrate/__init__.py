"""Gain calibration: the gain-term registry, the shared numba kernels, the solver working on
sufficient statistics, solution intervals, and the dask passes over the visibilities."""

from radiocloud.core.kernels.calibrate.dask import (
    Lookup,
    Partition,
    Reweight,
    apply_chain,
    apply_full_chain,
    full_stats,
    gain_flags,
    term_stats,
)
from radiocloud.core.kernels.calibrate.intervals import (
    FreqBins,
    TimeIntervals,
    freq_bins,
    time_intervals,
)
from radiocloud.core.kernels.calibrate.solver import Geometry, Solution, Stats, solve
from radiocloud.core.kernels.calibrate.terms import DEFAULT_TYPES, TERM_TYPES, Term

__all__ = [
    "DEFAULT_TYPES",
    "TERM_TYPES",
    "FreqBins",
    "Geometry",
    "Lookup",
    "Partition",
    "Reweight",
    "Solution",
    "Stats",
    "Term",
    "TimeIntervals",
    "apply_chain",
    "apply_full_chain",
    "freq_bins",
    "full_stats",
    "gain_flags",
    "solve",
    "term_stats",
    "time_intervals",
]
