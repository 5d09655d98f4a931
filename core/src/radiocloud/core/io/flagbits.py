"""Bit-packed flags and row fingerprints: the pieces of a flag version (see flagversions).

A row's flags, (chan, corr) flattened chan-major, are packed 8 to a byte with ``np.packbits``
in little bit order: flag j = chan * n_corr + corr is bit j % 8 (least significant first) of
byte j // 8. A partition's fingerprint is a 64-bit digest of its rows (position, row id, TIME,
ANTENNA1, ANTENNA2), the same whatever the chunking.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from radiocloud.core import dims

BIT_ORDER = "little"
ROW_ID_COLUMNS = ("TIME", "ANTENNA1", "ANTENNA2")  # with ROWID: what makes a row that row


def regular_rows(array: da.Array) -> da.Array:
    """Whole cells per chunk, and rows in equal chunks (the last may be shorter), as zarr
    chunks must be."""
    rows = array.chunks[0]
    regular = all(c == rows[0] for c in rows[:-1]) and rows[-1] <= rows[0]
    wanted = {axis: -1 for axis in range(1, array.ndim) if len(array.chunks[axis]) > 1}
    if not regular:
        wanted[0] = rows[0]
    return array.rechunk(wanted) if wanted else array


def _pack_block(flag: np.ndarray) -> np.ndarray:
    return np.packbits(flag.reshape(flag.shape[0], -1), axis=1, bitorder=BIT_ORDER)


def _unpack_block(packed: np.ndarray, nchan: int, ncorr: int) -> np.ndarray:
    bits = np.unpackbits(packed, axis=1, count=nchan * ncorr, bitorder=BIT_ORDER)
    return bits.view(bool).reshape(packed.shape[0], nchan, ncorr)


def pack_flags(flag: da.Array) -> da.Array:
    """(row, chan, corr) bool -> (row, ceil(chan * corr / 8)) uint8, lazily, row chunks kept."""
    nbytes = -(-flag.shape[1] * flag.shape[2] // 8)
    chunks = (flag.chunks[0], (nbytes,))
    return flag.map_blocks(_pack_block, dtype=np.uint8, chunks=chunks, drop_axis=2)


def unpack_flags(packed: da.Array, nchan: int, ncorr: int) -> da.Array:
    """The inverse of :func:`pack_flags`: (row, nbytes) uint8 -> (row, nchan, ncorr) bool."""
    chunks = (packed.chunks[0], (nchan,), (ncorr,))
    return packed.map_blocks(_unpack_block, nchan, ncorr, dtype=bool, new_axis=2, chunks=chunks)


def _count_block(flag: np.ndarray) -> np.ndarray:
    return np.array([np.count_nonzero(flag)], np.int64)


def count_flags(flag: da.Array) -> da.Array:
    """The number of set flags (lazy scalar), without the int copy of every block that
    ``da.count_nonzero`` makes. ``flag``: whole cells per chunk (see :func:`regular_rows`)."""
    counts = flag.map_blocks(
        _count_block, dtype=np.int64, chunks=((1,) * flag.numblocks[0],), drop_axis=(1, 2)
    )
    return counts.sum()


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-spread 64-bit hash of each uint64 (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(np.uint64) if a.dtype.itemsize == 8 else a.astype(np.int64).view(np.uint64)


def _hash_rows(pos, rowid, time, a1, a2) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = _mix(_bits(pos) + np.uint64(0x9E3779B97F4A7C15))
        h = _mix(h ^ _bits(rowid))
        h = _mix(h ^ _bits(time.astype(np.float64)))
        return _mix(h ^ ((_bits(a1) << np.uint64(32)) ^ _bits(a2)))


def row_fingerprint(ds: xr.Dataset, chunks: tuple[int, ...]) -> da.Array:
    """A 64-bit digest of which rows a partition holds, and in which order (lazy)."""
    pos = da.arange(ds.sizes[dims.ROW], chunks=(chunks,), dtype=np.int64)
    rowid = ds.ROWID.data if "ROWID" in ds.coords else pos
    columns = (pos, rowid, *(ds[c].data for c in ROW_ID_COLUMNS))
    parts = [da.asarray(x).rechunk((chunks,)) for x in columns]
    return da.map_blocks(_hash_rows, *parts, dtype=np.uint64).sum(dtype=np.uint64)
