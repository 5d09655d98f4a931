"""Store a dask array into a ``.npy`` file block by block, from threads or worker processes
(each block opens the file itself, so nothing large is pickled or held in memory)."""

from __future__ import annotations

import os

import dask.array as da
import numpy as np


def _write_block(block: np.ndarray, path: str, block_info=None) -> np.ndarray:
    where = block_info[0]["array-location"]
    target = np.load(path, mmap_mode="r+")
    target[tuple(slice(lo, hi) for lo, hi in where)] = block
    target.flush()
    del target
    return np.zeros((1,) * block.ndim, dtype=np.int8)


def store_npy(array: da.Array, path: str | os.PathLike) -> da.Array:
    """Create ``path`` (shape and dtype of ``array``) now; return the lazy block writes."""
    path = os.fspath(path)
    header = np.lib.format.open_memmap(path, mode="w+", dtype=array.dtype, shape=array.shape)
    del header
    return da.map_blocks(
        _write_block,
        array,
        path,
        dtype=np.int8,
        chunks=tuple((1,) * len(c) for c in array.chunks),
        meta=np.empty((0,) * array.ndim, np.int8),
    )
