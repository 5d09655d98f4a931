"""Time and channel averaging into bins: numba kernels, the bin plan, smearing predictions."""

from radiocloud.core.kernels.average.kernels import bin_rows, bin_visibilities, bin_weights
from radiocloud.core.kernels.average.plan import (
    BinPlan,
    ChunkBins,
    RowOrderError,
    TimeSamplingError,
    average_channels,
    channel_map,
    plan_bins,
    sampling_interval,
    segments,
)
from radiocloud.core.kernels.average.smearing import (
    BaselineMotion,
    bda_factors,
    decorrelation,
    dirichlet,
    edge_distance,
)

__all__ = [
    "BaselineMotion",
    "BinPlan",
    "ChunkBins",
    "RowOrderError",
    "TimeSamplingError",
    "average_channels",
    "bda_factors",
    "bin_rows",
    "bin_visibilities",
    "bin_weights",
    "channel_map",
    "decorrelation",
    "dirichlet",
    "edge_distance",
    "plan_bins",
    "sampling_interval",
    "segments",
]
