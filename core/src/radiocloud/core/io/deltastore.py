"""The zarr arrays of a delta-set: its row index and its columns, read and written by row key.

Every task opens the arrays it needs itself (a :class:`Target` is a small picklable address),
so the graphs run on threads or distributed workers alike. Each zarr chunk of a column is
written by one task only (see :func:`owned_chunks`), so writers in many processes, on S3 too,
never read-modify-write the same chunk at once. Local delta-sets also take a file lock per
chunk, as a second guard.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import dask.array as da
import numpy as np
import zarr

from radiocloud.core.errors import ColumnError
from radiocloud.core.io.store import DatasetURL

INDEX_CHUNK = 1 << 20
CHUNK_BYTES = 1 << 25  # rows per zarr chunk of a column: about 32 MiB of cells


@dataclass(frozen=True)
class Target:
    """A zarr array inside a delta-set: ``path`` under its root."""

    url: str
    storage_options: tuple
    path: str

    @classmethod
    def at(cls, url: DatasetURL, path: str) -> Target:
        return cls(url.url, tuple(sorted(_freeze(url.storage_options).items())), path)

    @classmethod
    def column(cls, url: DatasetURL, gi: int, column: str) -> Target:
        return cls.at(url, f"MAIN/g{gi}/{column}/data")

    def mask(self) -> Target:
        return Target(self.url, self.storage_options, self.path.rsplit("/", 1)[0] + "/written")

    def dataset_url(self) -> DatasetURL:
        return DatasetURL(self.url, _thaw(dict(self.storage_options)))

    def store(self):
        url = self.dataset_url()
        s = url.store()
        if url.is_local:
            return zarr.DirectoryStore(s.root)
        return zarr.storage.FSStore(s.root, fs=s.fs)

    def open(self, mode: str = "r"):
        sync = _synchronizer(self.dataset_url()) if mode != "r" else None  # local only
        return zarr.open_array(self.store(), path=self.path, mode=mode, synchronizer=sync)


def _freeze(options: dict) -> dict:
    return {k: (tuple(sorted(_freeze(v).items())) if isinstance(v, dict) else v)
            for k, v in options.items()}  # fmt: skip


def _thaw(options: dict) -> dict:
    return {k: (_thaw(dict(v)) if isinstance(v, tuple) and v and isinstance(v[0], tuple) else v)
            for k, v in options.items()}  # fmt: skip


def _synchronizer(url: DatasetURL):
    if url.is_local:
        return zarr.ProcessSynchronizer(f"{url.store().root}/.locks")
    return None  # object stores have no locks: whole chunks per task make them unneeded


@contextlib.contextmanager
def manifest_lock(url: DatasetURL) -> Iterator[None]:
    """Hold the delta-set's manifest for a read-modify-write (local delta-sets: a file lock)."""
    if not url.is_local:
        yield
        return
    import fasteners  # zarr's ProcessSynchronizer uses it too

    with fasteners.InterProcessLock(f"{url.store().root}/.locks/manifest.lock"):
        yield


# -- the index ------------------------------------------------------------------------------


def write_index(url: DatasetURL, groups: list[dict]) -> None:
    """GROUP and POSITION of every row key, and each group's keys (ROWID, FIELD_ID, ...)."""
    root = zarr.open_group(Target.at(url, "").store(), mode="a")
    index = root.require_group("INDEX")
    size = max(int(g["ROWID"].max()) + 1 for g in groups if len(g["ROWID"]))
    group_of = np.full(size, -1, np.int32)
    position = np.full(size, -1, np.int64)
    for gi, g in enumerate(groups):
        group_of[g["ROWID"]] = gi
        position[g["ROWID"]] = np.arange(len(g["ROWID"]))
        sub = index.require_group(f"g{gi}")
        for name, values in g.items():
            sub.array(name, values, chunks=INDEX_CHUNK, overwrite=True)
    index.array("GROUP", group_of, chunks=INDEX_CHUNK, overwrite=True)
    index.array("POSITION", position, chunks=INDEX_CHUNK, overwrite=True)


def read_index(url: DatasetURL, gi: int) -> dict[str, np.ndarray]:
    group = zarr.open_group(Target.at(url, "").store(), mode="r")[f"INDEX/g{gi}"]
    return {name: group[name][:] for name in group.array_keys()}


def copy_index(src: DatasetURL, dst: DatasetURL, ngroups: int) -> None:
    write_index(dst, [read_index(src, gi) for gi in range(ngroups)])


def _positions(index: Target, rowid: np.ndarray) -> np.ndarray:
    """Places of ``rowid`` within their group (one slice of POSITION read)."""
    rowid = np.asarray(rowid, dtype=np.int64)
    if rowid.size == 0:
        return rowid
    lo, hi = int(rowid.min()), int(rowid.max())
    return index.open()[lo : hi + 1][rowid - lo]


def _contiguous(pos: np.ndarray) -> slice | None:
    """``pos`` as one slice when it is a run of consecutive places (the usual case)."""
    if pos.size and pos[-1] - pos[0] == pos.size - 1 and np.all(np.diff(pos) == 1):
        return slice(int(pos[0]), int(pos[-1]) + 1)
    return None


def _select(array, pos: np.ndarray):
    run = _contiguous(pos)
    return array[run] if run is not None else array.get_orthogonal_selection((pos,))


def _assign(array, pos: np.ndarray, values) -> None:
    run = _contiguous(pos)
    if run is not None:
        array[run] = values  # whole chunks are encoded without reading them first
    else:
        array.set_orthogonal_selection((pos,), values)


def _read_block(rowid: np.ndarray, target: Target, index: Target) -> np.ndarray:
    return _select(target.open(), _positions(index, rowid))


def read_rows(target: Target, top: DatasetURL, rowid: da.Array, dtype, shape: tuple) -> da.Array:
    """The rows ``rowid`` (a dask array of row keys) of the column at ``target``."""
    index = Target.at(top, "INDEX/POSITION")
    new_axis = list(range(1, 1 + len(shape)))
    return da.map_blocks(
        _read_block, rowid, target, index, dtype=dtype,
        chunks=(rowid.chunks[0], *((s,) for s in shape)), new_axis=new_axis or None,
        meta=np.empty((0,) * (1 + len(shape)), dtype),
    )  # fmt: skip


def positions(url: DatasetURL, rowid: np.ndarray) -> np.ndarray:
    """Places of the row keys ``rowid`` within their group, from the delta-set's index."""
    return _positions(Target.at(url, "INDEX/POSITION"), rowid)


def owned_chunks(pos: np.ndarray, chunk: int, rows_per_task: int) -> tuple[int, ...]:
    """Row chunks of the ascending places ``pos`` such that no stored chunk of ``chunk`` rows
    is written by two tasks: cuts fall only where a stored chunk starts, at least
    ``rows_per_task`` rows apart."""
    starts = np.flatnonzero(np.diff(pos // chunk)) + 1
    cuts = [0]
    for start in starts:
        if start - cuts[-1] >= rows_per_task:
            cuts.append(int(start))
    if len(pos) > cuts[-1]:
        cuts.append(len(pos))
    return tuple(np.diff(cuts).tolist()) or (0,)


def _write_block(pos: np.ndarray, values, target: Target):
    while isinstance(values, list):  # the cell dimensions' one block each (see write_rows)
        (values,) = values
    if pos.size:
        _assign(target.open("r+"), pos, values)
        _assign(target.mask().open("r+"), pos, True)
    return np.ones(1, bool)


def write_rows(target: Target, pos: da.Array, data: da.Array) -> da.Array:
    """Write ``data`` at the places ``pos`` (same row chunks) of the column at ``target``.
    The chunks must own whole stored chunks (:func:`owned_chunks`): no two tasks then write
    one stored chunk, so writers need no lock, in threads or on a cluster's workers alike."""
    inner = tuple(f"d{i}" for i in range(1, data.ndim))
    return da.blockwise(
        _write_block, ("row",), pos, ("row",), data, ("row", *inner),
        target=target, dtype=bool, adjust_chunks={"row": 1},
        # not concatenate=True: it copies even a single block (the cells are one block each)
        concatenate=False, meta=np.empty((0,), bool),
    )  # fmt: skip


def stored_chunk_rows(target: Target) -> int:
    return int(target.open().chunks[0])


# -- columns --------------------------------------------------------------------------------


def ensure_column(url: DatasetURL, gi: int, column: str, dtype, shape, dim_names, rows: int,
                  *, fresh: bool) -> Target:  # fmt: skip
    """The column's arrays for group ``gi``, made if new (or ``fresh``: what an interrupted
    first write of the column left is dropped); refuse another dtype or cell shape."""
    target = Target.column(url, gi, column)
    root = zarr.open_group(Target.at(url, "").store(), mode="a")
    shape = tuple(int(s) for s in shape)
    path = f"MAIN/g{gi}/{column}"
    if fresh and path in root:
        del root[path]
    if f"{path}/data" in root:
        old = root[f"{path}/data"]
        if old.dtype.kind != np.dtype(dtype).kind or old.shape[1:] != shape:
            raise ColumnError(
                f"cannot write {column} to '{url}': it holds {old.dtype} cells of shape "
                f"{old.shape[1:]}, the new values are {np.dtype(dtype)} of shape {shape}; "
                "write to another column name"
            )
        return target
    cell = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    chunk = max(1, min(rows, CHUNK_BYTES // max(cell, 1)))
    group = root.require_group(path)
    data = group.zeros("data", shape=(rows, *shape), chunks=(chunk, *shape), dtype=dtype)
    data.attrs["dims"] = list(dim_names)
    group.zeros("written", shape=(rows,), chunks=(chunk,), dtype=bool)
    return target


def column_state(url: DatasetURL, manifest: dict, column: str) -> dict | None:
    """What the manifest records of a column after a write: groups, full groups, rows."""
    root = zarr.open_group(Target.at(url, "").store(), mode="r")
    groups, full, dtype, dim_names, written_rows = {}, [], None, None, 0
    for gi in range(len(manifest["groups"])):
        path = f"MAIN/g{gi}/{column}"
        if f"{path}/data" not in root:
            continue
        data = root[f"{path}/data"]
        written = int(np.count_nonzero(root[f"{path}/written"][:]))
        groups[str(gi)] = {"shape": list(data.shape[1:]), "rows": written}
        if written == data.shape[0]:
            full.append(gi)
        written_rows += written
        dtype, dim_names = str(data.dtype), data.attrs.get("dims")
    if not groups:
        return None
    return {"dtype": dtype, "dims": dim_names, "groups": groups, "full": full,
            "rows": written_rows}  # fmt: skip
