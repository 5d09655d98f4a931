"""Dimension names, declared once and used in every blockwise index and xarray dim."""

ROW = "row"
CHAN = "chan"
CORR = "corr"
ANT = "ant"
TIME = "time"
DIR = "dir"
SOURCE = "source"
UVW = "uvw"
L = "l"
M = "m"
BASELINE = "baseline"

# Shape of the main visibility columns (DATA, MODEL_DATA, FLAG, WEIGHT_SPECTRUM, ...)
VIS = (ROW, CHAN, CORR)

# Shape of per-baseline (time, chan) planes: the data and flag cubes of rc-flag's kernels
BASELINE_PLANES = (BASELINE, TIME, CHAN)
