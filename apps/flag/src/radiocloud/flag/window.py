"""Windows: the rows of a block as a dense (baseline, time, chan, corr) cube and back.

A Measurement Set stores one row per baseline and integration, usually time-major. Flagging
looks along time and frequency on one baseline at a time, so each block of rows (a few tens of
whole integrations, cut at integration boundaries by the pipeline) is scattered into a cube
indexed by its own baselines and times; slots with no row start flagged, so they never enter
a statistic, and are dropped when the flags are gathered back into rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radiocloud.flag.steps import Window


@dataclass(frozen=True)
class RowIndex:
    """Where each row of a block sits in its window's cube."""

    time: np.ndarray  # (row,) index into the block's distinct times
    baseline: np.ndarray  # (row,) index into the block's distinct baselines
    n_time: int
    antenna1: np.ndarray  # (baseline,)
    antenna2: np.ndarray  # (baseline,)

    @classmethod
    def of(cls, time: np.ndarray, antenna1: np.ndarray, antenna2: np.ndarray) -> RowIndex:
        times, t_index = np.unique(time, return_inverse=True)
        n_ant = int(max(antenna1.max(initial=0), antenna2.max(initial=0))) + 1
        key = antenna1.astype(np.int64) * n_ant + antenna2
        keys, b_index = np.unique(key, return_inverse=True)
        return cls(t_index, b_index, len(times), keys // n_ant, keys % n_ant)

    @property
    def n_baseline(self) -> int:
        return len(self.antenna1)

    def to_cube(self, values: np.ndarray, fill) -> np.ndarray:
        """(row, ...) -> (baseline, time, ...), empty slots set to ``fill``."""
        cube = np.full((self.n_baseline, self.n_time, *values.shape[1:]), fill, values.dtype)
        cube[self.baseline, self.time] = values
        return cube

    def to_rows(self, cube: np.ndarray) -> np.ndarray:
        return cube[self.baseline, self.time]


def flag_block(data, flag, time, antenna1, antenna2, uvw, frequency, channel, *, steps,
               corr_names):  # fmt: skip
    """New FLAG (row, chan, corr) of one block: the dataset's flags plus every step's."""
    index = RowIndex.of(time, antenna1, antenna2)
    window = Window(
        data=index.to_cube(data, 0),
        flags=index.to_cube(flag, True),
        frequency=frequency,
        corr_names=corr_names,
        antenna1=index.antenna1,
        antenna2=index.antenna2,
        uv_distance=index.to_cube(np.hypot(uvw[:, 0], uvw[:, 1]), np.nan),
        first_channel=int(channel[0]) if len(channel) else 0,
    )
    for step in steps:
        step.apply(window)
    return index.to_rows(window.flags)  # the window's flags started as FLAG: they only grew
