"""Pairwise (tree) reduction of delayed results: the one way every app combines per-chunk
partial results (grids, images, statistics), so the graph is log-deep, not a chain, and at
most a few partial results are alive at once."""

from __future__ import annotations

from collections.abc import Callable

import dask


def tree_reduce(leaves: list, combine: Callable):
    """One delayed result of ``leaves`` combined pairwise by ``combine(a, b)``; ``combine``
    may reuse ``a`` (each intermediate has exactly one consumer)."""
    if not leaves:
        raise ValueError("tree_reduce needs at least one leaf")
    while len(leaves) > 1:
        pairs = [
            dask.delayed(combine)(a, b) for a, b in zip(leaves[::2], leaves[1::2], strict=False)
        ]
        leaves = pairs + ([leaves[-1]] if len(leaves) % 2 else [])
    return leaves[0]


def add_into(a, b):
    """``a + b`` written into ``a`` (a leaf's or a pair's own array, used by this sum only)."""
    a += b
    return a


def tree_sum(leaves: list):
    """One delayed sum of ``leaves`` (numpy arrays), added pairwise in place."""
    return tree_reduce(leaves, add_into)
