"""Versioned datasets ("delta-sets"): a read-only parent (MS, zarr, parquet, local or s3://, or
another delta-set) plus a store holding only the columns written since.

Opening a delta-set gives the merged view: each column of each partition comes from the
nearest level that holds it (rows a level did not write fall through to the level below).
Writes go to the delta-set only; the parent is never written, not even its metadata. The
layout on disk is in :mod:`radiocloud.core.io.deltaindex`.

Rows line up by key, not by position: a row's key is its MS row number (dask-ms's ROWID), or
its place in a zarr/parquet parent's stored partitions, so a delta written from a read sorted
by TIME reads back right in a read grouped by scan. With the root reachable, partitions and
row order come from the root's reader (exactly as for the plain dataset); without it, from the
index kept in the delta, and then only columns the delta holds whole can be read.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask
import dask.array as da
import numpy as np
import xarray as xr

from radiocloud.core import dims
from radiocloud.core.errors import ColumnError, NotADatasetError, UnsupportedLayoutError
from radiocloud.core.io.deltaindex import GROUP_ATTR, Chain, Level, resolve
from radiocloud.core.io.deltastore import (
    Target,
    owned_chunks,
    positions,
    read_rows,
    stored_chunk_rows,
    write_rows,
)
from radiocloud.core.io.read import (
    PARTITION_KEY,
    _normalise,
    _read,
    check_not_partial,
    rows_per_chunk,
)
from radiocloud.core.io.store import DatasetURL, as_url


def canonical_partitions(url: DatasetURL, fmt: str, columns) -> list[xr.Dataset]:
    """The parent's groups: one per DATA_DESC_ID of an MS (rows in table order), the stored
    partitions of zarr and parquet."""
    group_cols = ("DATA_DESC_ID",) if fmt == "ms" else ()
    return _read(url, fmt, columns, group_cols, 100_000)


# -- reading --------------------------------------------------------------------------------


def open_delta(
    url: str | DatasetURL,
    *,
    columns: Sequence[str] | None,
    group_cols: Sequence[str],
    memory_budget: int,
    threads: int,
    row_chunk: int | None,
    sort_by: Sequence[str],
    row_chunks,
    refuse_partial: bool,
) -> list[xr.Dataset]:
    """The merged view of a delta-set (see :func:`radiocloud.core.io.open_dataset`)."""
    url = as_url(url)
    chain = resolve(url)
    top = chain.top.manifest
    deltas = [lv for lv in chain.levels if not lv.is_root]
    root_cols = dict(_bottom(chain).manifest["parent_fingerprint"].get("columns", {}))
    if _bottom(chain).manifest["parent_fingerprint"]["kind"] == "delta":
        root_cols = {}  # the chain stops at a missing delta: its root's columns are unknown
    root_cols.pop("ROWID", None)  # a parquet archive may keep row ids as a column: ours win
    delta_cols = {c for lv in deltas for c in lv.columns()}
    keys = {}  # grouping columns of an MS: partition attributes, as dask-ms gives them
    if top["root_format"] == "ms":
        keys = {c: root_cols.pop(c) for c in group_cols if c in root_cols and c not in delta_cols}
    have = dict.fromkeys([*root_cols, *sorted(delta_cols - set(root_cols))])
    wanted = list(have) if columns is None else list(dict.fromkeys(columns))
    have |= dict.fromkeys(keys)  # asked for by name: a constant column (as zarr keeps them)
    if refuse_partial:  # first: a column an interrupted write left is not "missing"
        for lv in deltas:
            check_not_partial(lv.url, "delta", wanted)
    missing = [c for c in wanted if c not in have]
    if missing:
        chain.need_parent()  # a missing level may hold them
        raise ColumnError(
            f"dataset '{url}' has no column {', '.join(missing)} "
            f"(it has: {', '.join(sorted(have))})"
        )
    ngroups = len(top["groups"])
    from_root = [c for c in wanted if c in root_cols and not _whole_in_deltas(deltas, c, ngroups)]
    if row_chunk is None and row_chunks is None:
        row_chunk = rows_per_chunk(
            _row_bytes(wanted, root_cols | keys, deltas),
            memory_budget=memory_budget,
            threads=threads,
        )
    if chain.root is not None:
        if refuse_partial and from_root:
            check_not_partial(chain.root.url, top["root_format"], from_root)
        base = _root_partitions(chain.root.url, top, from_root, group_cols, row_chunk, sort_by,
                                row_chunks)  # fmt: skip
    else:
        if columns is None or from_root:
            chain.need_parent()
        base = _index_partitions(chain.top.url, top, group_cols, row_chunk or 100_000, sort_by)
    out = []
    for ds in base:
        gi = ds.attrs[GROUP_ATTR]
        variables = {
            c: _key_column(ds, c, keys[c][0]) if c in keys else _compose(ds, c, gi, deltas, chain)
            for c in wanted
        }
        out.append(xr.Dataset(variables, coords={"ROWID": ds.ROWID}, attrs=ds.attrs))
    return out


def _key_column(ds: xr.Dataset, column: str, dtype: str):
    rowid = ds.ROWID.data
    return ((dims.ROW,), da.full(rowid.shape, ds.attrs[column], dtype=dtype, chunks=rowid.chunks))


def _bottom(chain: Chain) -> Level:
    return [lv for lv in chain.levels if not lv.is_root][-1]


def _whole_in_deltas(deltas: Sequence[Level], column: str, ngroups: int) -> bool:
    full = set()
    for lv in deltas:
        full |= set(lv.columns().get(column, {}).get("full", []))
    return full >= set(range(ngroups))


def _row_bytes(wanted, root_cols: dict, deltas) -> int:
    total = 0
    for c in wanted:
        info = next((lv.columns()[c] for lv in deltas if c in lv.columns()), None)
        if info is not None:
            shape = next(iter(info["groups"].values()))["shape"]
            dtype = info["dtype"]
        else:
            dtype, shape = root_cols[c]
        total += int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return max(total, 1)


def _root_partitions(root: DatasetURL, top: dict, columns, group_cols, row_chunk, sort_by,
                     row_chunks) -> list[xr.Dataset]:  # fmt: skip
    fmt = top["root_format"]
    if fmt == "ms":
        chunk = None if row_chunks else row_chunk
        dss = _read(root, fmt, list(columns) or ["TIME"], group_cols, chunk, sort_by, row_chunks)
        by_ddid = {g["attrs"].get("DATA_DESC_ID"): i for i, g in enumerate(top["groups"])}
        out = []
        for ds in dss:
            if "DATA_DESC_ID" in ds.attrs:
                gi = by_ddid[int(ds.attrs["DATA_DESC_ID"])]
            elif len(by_ddid) == 1:
                gi = 0
            else:
                raise UnsupportedLayoutError(
                    "a delta-set of a Measurement Set with several DATA_DESC_IDs is read with "
                    "DATA_DESC_ID among the grouping columns"
                )
            out.append(ds.assign_attrs({GROUP_ATTR: gi}))
        return out
    if row_chunks is not None:
        raise ValueError("row_chunks is for Measurement Sets only; rechunk other formats")
    dss = _read(root, fmt, list(columns), (), row_chunk)
    return [_with_key(ds, gi, top, row_chunk) for gi, ds in enumerate(dss)]


def _with_key(ds: xr.Dataset, gi: int, top: dict, row_chunk: int) -> xr.Dataset:
    """A zarr/parquet partition with its row keys (offset of its group + position)."""
    groups = top["groups"]
    offset = sum(g["rows"] for g in groups[:gi])
    n = groups[gi]["rows"]
    chunks = ds.chunks.get(dims.ROW) if ds.chunks else None
    rowid = da.arange(offset, offset + n, chunks=chunks or row_chunk, dtype=np.int64)
    ds = ds.drop_vars("ROWID", errors="ignore")
    return ds.assign_coords(ROWID=((dims.ROW,), rowid)).assign_attrs({GROUP_ATTR: gi})


def _index_partitions(url: DatasetURL, top: dict, group_cols, row_chunk: int, sort_by):
    """Partitions rebuilt from the delta's own index (the root cannot be reached)."""
    from radiocloud.core.io.deltastore import read_index

    groups = top["groups"]
    if top["root_format"] != "ms":
        out = []
        for gi, g in enumerate(groups):
            attrs = _normalise(xr.Dataset(attrs=dict(g["attrs"]))).attrs
            out.append(_with_key(xr.Dataset(attrs=attrs), gi, top, row_chunk))
        return out
    index = [read_index(url, gi) for gi in range(len(groups))]
    unknown = [c for c in [*group_cols, *sort_by] if c not in index[0]]
    if unknown:
        raise UnsupportedLayoutError(
            f"cannot group or sort by {', '.join(unknown)} without the parent: the delta's "
            "index keeps FIELD_ID, DATA_DESC_ID, SCAN_NUMBER and TIME"
        )
    keys = {c: np.concatenate([ix[c] for ix in index]) for c in index[0]}
    gis = np.concatenate([np.full(len(ix["ROWID"]), gi) for gi, ix in enumerate(index)])
    order = np.argsort(keys["ROWID"], kind="stable")
    keys = {c: v[order] for c, v in keys.items()}
    gis = gis[order]
    table = np.stack([keys[c] for c in group_cols], axis=1) if group_cols else np.zeros((1, 0))
    combos, first = np.unique(table, axis=0, return_index=True)
    combos = combos[np.argsort(first)]  # as dask-ms: groups in order of their first row
    out = []
    for combo in combos:
        sel = np.ones(len(gis), bool)
        for c, v in zip(group_cols, combo, strict=True):
            sel &= keys[c] == v
        rows = np.flatnonzero(sel)
        if sort_by:
            rows = rows[np.lexsort([keys[c][rows] for c in reversed(sort_by)])]
        attrs = {c: int(v) for c, v in zip(group_cols, combo, strict=True)}
        attrs[PARTITION_KEY] = tuple((c, "int32") for c in group_cols)
        attrs[GROUP_ATTR] = int(gis[rows[0]])
        rowid = da.from_array(keys["ROWID"][rows], chunks=row_chunk)
        out.append(xr.Dataset(coords={"ROWID": ((dims.ROW,), rowid)}, attrs=attrs))
    return out


def _compose(ds: xr.Dataset, column: str, gi: int, deltas, chain: Chain):
    """One column of one partition: nearest level first, falling through where not written."""
    providers = []
    for lv in deltas:
        info = lv.columns().get(column)
        if info and str(gi) in info["groups"]:
            providers.append((lv, info))
            if gi in info["full"]:
                break
    rowid = ds.ROWID.data
    value = None
    if not providers or gi not in providers[-1][1]["full"]:
        if column in ds:
            value = ds[column].data
        elif column not in _root_columns(chain):
            if not providers:
                raise ColumnError(
                    f"column {column} of '{chain.top.url}' holds no rows of partition "
                    f"{_describe(ds.attrs)}: it was written for other partitions only"
                )
        else:
            chain.need_parent()
    dim_names = None
    for lv, info in reversed(providers):
        target = Target.column(lv.url, gi, column)
        shape = tuple(info["groups"][str(gi)]["shape"])
        dim_names = tuple(info.get("dims") or (dims.ROW, *(f"{column}-{i}" for i in shape)))
        rows = read_rows(target, chain.top.url, rowid, np.dtype(info["dtype"]), shape)
        if gi in info["full"]:
            value = rows
            continue
        if value is None:
            value = da.zeros_like(rows)
        written = read_rows(target.mask(), chain.top.url, rowid, np.dtype(bool), ())
        value = da.where(written.reshape((-1,) + (1,) * len(shape)), rows, value)
    dim_names = ds[column].dims if column in ds else dim_names
    return (dim_names, value)


def _root_columns(chain: Chain) -> set:
    return set(_bottom(chain).manifest["parent_fingerprint"].get("columns", {}))


def _describe(attrs: dict) -> str:
    keys = [c for c, *_ in attrs.get(PARTITION_KEY, ())]
    return ", ".join(f"{c}={attrs[c]}" for c in keys if c in attrs) or "0"


# -- writing --------------------------------------------------------------------------------


def write_delta(datasets: Sequence[xr.Dataset], url: str | DatasetURL, columns) -> list:
    """Lazily write ``columns`` of ``datasets`` (read from this delta-set) into it.

    The rows of each group (from all the datasets that hold some) are put in stored order and
    cut where stored chunks start, so every zarr chunk is written by one task: reads sorted by
    TIME, or grouped more finely than the delta-set, are written without any two tasks (or
    workers) touching the same chunk. The row keys are read now (a few bytes per row).
    """
    from radiocloud.core.io.deltaindex import read_manifest
    from radiocloud.core.io.deltastore import ensure_column

    url = as_url(url)
    manifest = read_manifest(url)
    _check_like_below(url, datasets, columns)
    for ds in datasets:
        if GROUP_ATTR not in ds.attrs or "ROWID" not in ds.coords:
            raise NotADatasetError(
                f"cannot write to delta-set '{url}' datasets that were not read from it "
                "(open it with open_dataset first)"
            )
    keys = dask.compute(*[ds.ROWID.data for ds in datasets])  # every partition's, in one pass
    by_group: dict[int, list[tuple[xr.Dataset, np.ndarray]]] = {}
    for ds, rowid in zip(datasets, keys, strict=True):
        by_group.setdefault(int(ds.attrs[GROUP_ATTR]), []).append((ds, rowid))
    writes = []
    for gi, held in by_group.items():
        parts = [ds for ds, _ in held]
        rows = manifest["groups"][gi]["rows"]
        pos = positions(url, np.concatenate([np.asarray(r, np.int64) for _, r in held]))
        order = np.argsort(pos, kind="stable")
        in_order = bool(np.all(order == np.arange(len(order))))
        ordered = pos[order]
        out = {}
        for column in columns:
            data = da.concatenate([da.asarray(ds[column].data) for ds in parts], axis=0)
            if not in_order:
                data = data[order]
            key = (_ident(url), gi, column)
            fresh = column not in manifest["columns"] and key not in _MADE
            _MADE.add(key)
            target = ensure_column(url, gi, column, data.dtype, data.shape[1:],
                                   parts[0][column].dims, rows, fresh=fresh)  # fmt: skip
            per_task = max(max(data.chunks[0]), 1)
            chunks = owned_chunks(ordered, stored_chunk_rows(target), per_task)
            data = data.rechunk((chunks, *(-1 for _ in data.shape[1:])))
            places = da.from_array(ordered, chunks=(chunks,))
            out[column] = ((f"write-{gi}-{column}",), write_rows(target, places, data))
        writes.append(xr.Dataset(out))
    return writes


# (delta-set, group, column) of columns this process made and has not committed yet: arrays of
# an uncommitted column that are not in here are what an interrupted run left, and are dropped
_MADE: set[tuple[str, int, str]] = set()


def _ident(url: DatasetURL) -> str:
    return url.url.rstrip("/")


def _check_like_below(url: DatasetURL, datasets, columns) -> None:
    """A column the levels below hold keeps its dtype kind and cell shape (as a plain
    dataset's column does); the root's cell shape is known for its first group."""
    chain = resolve(url)
    bottom = _bottom(chain).manifest["parent_fingerprint"].get("columns", {})
    for ds in datasets:
        gi = int(ds.attrs.get(GROUP_ATTR, -1))
        for column in columns:
            new = ds[column]
            held = (lv.columns().get(column) for lv in chain.levels[1:])
            info = next((h for h in held if h and str(gi) in h["groups"]), None)
            if info is not None:
                dtype, shape = info["dtype"], info["groups"][str(gi)]["shape"]
            elif column in bottom:
                dtype, shape = bottom[column][0], bottom[column][1] if gi == 0 else None
            else:
                continue
            same_shape = shape is None or tuple(shape) == tuple(new.shape[1:])
            if np.dtype(dtype).kind != new.dtype.kind or not same_shape:
                raise ColumnError(
                    f"cannot write {column} to '{url}': its parent holds {dtype} cells of "
                    f"shape {tuple(shape or ())}, the new values are {new.dtype} of shape "
                    f"{new.shape[1:]}; write to another column name"
                )


def commit(url: str | DatasetURL, columns: Sequence[str], *, cached: bool = False) -> dict:
    """Record ``columns`` as written in the delta-set's manifest (after a successful write):
    which groups they fill whole, how many rows; bump its generation. Two runs committing to
    one local delta-set at once take turns (a file lock); on object stores they must not."""
    from radiocloud.core.io.deltastore import manifest_lock

    url = as_url(url)
    with manifest_lock(url):
        return _commit(url, columns, cached)


def _commit(url: DatasetURL, columns: Sequence[str], cached: bool) -> dict:
    from radiocloud.core.io.deltaindex import read_manifest, write_manifest
    from radiocloud.core.io.deltastore import column_state

    manifest = read_manifest(url)
    for column in columns:
        state = column_state(url, manifest, column)
        if state is None:
            continue
        before = manifest["columns"].get(column, {})
        state["changed"] = bool(before.get("changed")) or not cached
        manifest["columns"][column] = state
        _MADE.difference_update({k for k in _MADE if k[0] == _ident(url) and k[2] == column})
    manifest["generation"] = int(manifest["generation"]) + 1
    write_manifest(url, manifest)
    return manifest
