"""Solution intervals: which gain each row and channel uses, independent of dask chunks.

Time intervals count integrations within each partition (field, scan, DDID), so no interval
spans a scan boundary; ``0`` means the whole partition. Frequency intervals count channels
within the spectral window; ``0`` means the whole window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TimeIntervals:
    tmaps: tuple[np.ndarray, ...]  # per partition: unique-time index -> interval
    centre: np.ndarray  # (interval,) mean time of its integrations, s
    lo: np.ndarray  # first and last integration of each interval, s
    hi: np.ndarray
    partition: np.ndarray  # (interval,) the partition it belongs to

    @property
    def n(self) -> int:
        return len(self.centre)


def time_intervals(utimes: Sequence[np.ndarray], n: int) -> TimeIntervals:
    """Intervals of ``n`` integrations (0: all) over each partition's sorted unique times."""
    tmaps, centre, lo, hi, part = [], [], [], [], []
    offset = 0
    for k, times in enumerate(utimes):
        local = np.zeros(len(times), np.int64) if n <= 0 else np.arange(len(times)) // n
        count = int(local[-1]) + 1 if len(times) else 0
        tmaps.append(local + offset)
        sums = np.bincount(local, weights=times, minlength=count)
        centre.append(sums / np.bincount(local, minlength=count))
        lo.append(np.minimum.reduceat(times, np.r_[0, np.flatnonzero(np.diff(local)) + 1]))
        hi.append(np.maximum.reduceat(times, np.r_[0, np.flatnonzero(np.diff(local)) + 1]))
        part.append(np.full(count, k))
        offset += count

    def cat(xs):
        return np.concatenate(xs) if xs else np.zeros(0)

    return TimeIntervals(tuple(tmaps), cat(centre), cat(lo), cat(hi), cat(part).astype(np.int64))


@dataclass(frozen=True)
class FreqBins:
    chan_bin: np.ndarray  # (chan,) the statistics bin of each channel
    fmap: np.ndarray  # (bin,) the freq interval of each bin
    nu: np.ndarray  # (bin,) GHz from the centre of its interval
    freq: np.ndarray  # (bin,) Hz, each bin's mean frequency
    interval_freq: np.ndarray  # (interval,) Hz, each interval's centre

    @property
    def n(self) -> int:
        return len(self.interval_freq)


def freq_bins(freq: np.ndarray, n: int, per_channel: bool) -> FreqBins:
    """Intervals of ``n`` channels (0: all); bins are the intervals, or the channels for a
    term whose gain varies within its interval."""
    chan_interval = np.zeros(len(freq), np.int64) if n <= 0 else np.arange(len(freq)) // n
    count = int(chan_interval[-1]) + 1
    centre = np.bincount(chan_interval, weights=freq) / np.bincount(chan_interval)
    if per_channel:
        chan_bin = np.arange(len(freq))
        fmap, bin_freq = chan_interval, np.asarray(freq, float)
    else:
        chan_bin, fmap, bin_freq = chan_interval, np.arange(count), centre
    nu = (bin_freq - centre[fmap]) / 1e9
    return FreqBins(chan_bin, fmap, nu, bin_freq, centre)
