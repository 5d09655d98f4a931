"""Diagonal Jones application, V'_pq = J_p V_pq J_q^H, for 1, 2 or 4 correlations.

Gains are indexed ``[time, freq, ant, feed]`` with per-row ``time_index`` and per-channel
``chan_index`` into the first two axes, so one kernel serves solution intervals (several rows
or channels share a gain) and per-sample gains alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import prange

from radiocloud.core.jit import njit

_FEED_INDEX = {"X": 0, "Y": 1, "R": 0, "L": 1}


def corr_feeds(corr_names: Sequence[str]) -> np.ndarray:
    """(corr, 2) feed indices of each correlation: XX -> (0, 0), XY -> (0, 1), ..."""
    return np.array([[_FEED_INDEX[c[0]], _FEED_INDEX[c[1]]] for c in corr_names], np.int64)


# parallel: rows are independent and this runs once per visibility in a simulation
@njit(parallel=True)
def _apply_diag(vis, gains, time_index, chan_index, ant1, ant2, feeds, out):
    nrow, nchan, ncorr = vis.shape
    for r in prange(nrow):
        t = time_index[r]
        p = ant1[r]
        q = ant2[r]
        for f in range(nchan):
            fi = chan_index[f]
            for c in range(ncorr):
                gp = gains[t, fi, p, feeds[c, 0]]
                gq = gains[t, fi, q, feeds[c, 1]]
                out[r, f, c] = gp * vis[r, f, c] * np.conj(gq)
    return out


def apply_diag_jones(
    vis: np.ndarray,
    gains: np.ndarray,
    *,
    time_index: np.ndarray,
    chan_index: np.ndarray,
    ant1: np.ndarray,
    ant2: np.ndarray,
    feeds: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Corrupt ``vis`` (row, chan, corr) by diagonal gains (time, freq, ant, feed).

    ``time_index`` (row,) and ``chan_index`` (chan,) select each sample's gain; ``feeds`` is
    :func:`corr_feeds` of the dataset's correlations. Output has ``vis``'s dtype.
    """
    if out is None:
        out = np.empty_like(vis)
    return _apply_diag(
        vis,
        np.ascontiguousarray(gains, dtype=np.complex128),
        np.ascontiguousarray(time_index, dtype=np.int64),
        np.ascontiguousarray(chan_index, dtype=np.int64),
        np.ascontiguousarray(ant1, dtype=np.int64),
        np.ascontiguousarray(ant2, dtype=np.int64),
        np.ascontiguousarray(feeds, dtype=np.int64),
        out,
    )
