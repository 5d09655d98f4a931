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

# Shape of the main visibility columns (DATA, MODEL_DATA, FLAG, WEIGHT_SPECTRUM, ...)
VIS = (ROW, CHAN, CORR)
