"""The memory plan: rows per chunk, and whether the data stay in memory between passes.

Every term solve is one pass over the visibilities. When the data a pass reads (data, model
and weights: 20 bytes per visibility) fit in half the budget beside the statistics, they are
read once and kept; otherwise every pass streams them from the dataset again. Chunks are
sized so that ``threads`` of them, with their statistics, fit what remains.
"""

from __future__ import annotations

from dataclasses import dataclass

from radiocloud.core.errors import OptionError
from radiocloud.core.units import format_size

HELD_BYTES_PER_VIS = 20  # complex64 data and model, float32 weight
CHUNK_BYTES_PER_VIS = 48  # columns as read (data, model, weight, flag), weights, residuals
STATS_BYTES = 24  # S (complex128) and W (float64) per bin, baseline and correlation
MIN_ROWS = 64
# larger chunks gain nothing and pipeline worse (reads and kernels overlap less): on the
# 64-antenna benchmark, chunks of 2.4M visibilities ran K+G in 26 s, chunks of 39M in 40 s
MAX_CHUNK_VIS = 4_000_000


@dataclass(frozen=True)
class Plan:
    rows: int
    keep: bool
    n_vis: int
    stats_bytes: int
    passes: int
    budget: int

    def describe(self) -> str:
        held = (
            f"data held in memory ({format_size(self.n_vis * HELD_BYTES_PER_VIS)}, read once)"
            if self.keep
            else f"data streamed from the dataset in each of the {self.passes} passes"
        )
        return (
            f"memory plan ({format_size(self.budget)} budget): chunks of {self.rows:,} rows; "
            f"{held}; statistics of the largest term {format_size(self.stats_bytes)}"
        )


def make_plan(*, n_row: int, nchan: int, ncorr: int, stats_bins: list[int], nbl: int,
              chunk_bins: list[int], memory_budget: int, threads: int,
              passes: int) -> Plan:  # fmt: skip
    """``stats_bins``: each term's (time intervals x freq bins); ``chunk_bins``: the bins
    one chunk's statistics can cover (freq bins, for a chunk inside one time interval)."""
    threads = max(threads, 1)
    stats = max(stats_bins) * nbl * ncorr * STATS_BYTES
    partial = 2 * max(chunk_bins) * nbl * ncorr * STATS_BYTES  # a chunk's own and a merge
    n_vis = n_row * nchan * ncorr
    free = memory_budget - 2 * stats - threads * partial  # the last merge: its parts and sum
    keep = n_vis * HELD_BYTES_PER_VIS <= free // 2
    if keep:
        free -= n_vis * HELD_BYTES_PER_VIS
    rows = free // (threads * nchan * ncorr * CHUNK_BYTES_PER_VIS)
    if rows < MIN_ROWS:
        need = 2 * stats + threads * (partial + MIN_ROWS * nchan * ncorr * CHUNK_BYTES_PER_VIS)
        raise OptionError(
            f"--memory-budget {format_size(memory_budget)} cannot hold the solve's statistics "
            f"({format_size(stats)}) and {threads} chunks: give at least {format_size(need)}, "
            "or fewer --threads, or longer solution intervals"
        )
    per_thread = -(-n_row // (4 * threads))  # at least 4 chunks per thread, to balance
    rows = min(rows, max(per_thread, MIN_ROWS), max(MAX_CHUNK_VIS // (nchan * ncorr), MIN_ROWS))
    return Plan(rows=int(rows), keep=keep, n_vis=n_vis,
                stats_bytes=stats, passes=passes, budget=memory_budget)  # fmt: skip
