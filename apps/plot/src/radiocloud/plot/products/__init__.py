"""The other data rc-plot draws: gain tables of rc-calibrate, flag summaries of rc-flag and
FITS images of rc-image. Each ``plot_*`` writes PNG files and returns their paths; :func:`kind`
tells which one a path needs."""

from __future__ import annotations

import json
import os

from radiocloud.core.io import is_gain_table
from radiocloud.plot.products.flags import KEYS as FLAG_SUMMARY_KEYS
from radiocloud.plot.products.flags import plot_flag_summary
from radiocloud.plot.products.gains import plot_gain_table
from radiocloud.plot.products.image import plot_fits_image
from radiocloud.plot.products.truth import plot_gains_vs_truth

FITS_SUFFIXES = (".fits", ".fit", ".fts")
SNIFF_BYTES = 1 << 20  # a flag summary larger than this is not looked into


def kind(path: str) -> str:
    """What ``path`` holds: "gains" (an rc-calibrate gain table), "fits" (by suffix or the
    FITS signature), "flag-summary" (a .json file, or JSON holding a summary's keys) or
    "visibilities" (anything else: a dataset for rc-plot's visibility plots). A file named
    .fits or .json is taken at its word; its plotter says if it is not what it claims."""
    if os.path.isdir(path) and is_gain_table(path):  # gain tables are local (read_gain_table)
        return "gains"
    name = path.lower().rstrip("/")
    if name.endswith(FITS_SUFFIXES):
        return "fits"
    if name.endswith(".json"):
        return "flag-summary"
    if os.path.isfile(path):
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
        if head.startswith(b"SIMPLE  ="):
            return "fits"
        if head.lstrip().startswith(b"{") and _is_flag_summary(head):
            return "flag-summary"
    return "visibilities"


def _is_flag_summary(text: bytes) -> bool:
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and all(k in data for k in FLAG_SUMMARY_KEYS)


__all__ = [
    "kind",
    "plot_fits_image",
    "plot_flag_summary",
    "plot_gain_table",
    "plot_gains_vs_truth",
]
