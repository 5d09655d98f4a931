"""Flag versions: named copies of a dataset's FLAG and FLAG_ROW, kept beside it and restored
bit for bit (CASA's ``MS.flagversions``, compact, for MS, zarr and parquet, local or s3://).

On disk, beside the dataset ``x.ms`` (likewise ``x.zarr``, ``x.parquet``)::

    x.ms.flagversions/
        <name>/              one zarr (v2) group per version
            .zattrs          written last: name, description, created (UTC, ISO 8601), format,
                             group_cols, columns, bit_order, partitions (key, shape, rows,
                             flagged, fingerprint), rows, flagged, flags, flagged_fraction,
                             complete = true
            p000/            one group per partition, in the order open_dataset returns them
                FLAG         uint8 (row, ceil(chan * corr / 8)): each row's (chan, corr) flags
                             flattened (chan-major) and packed with np.packbits, bitorder
                             "little": flag j of a row is bit j % 8 (least significant first)
                             of byte j // 8, j = chan * n_corr + corr
                FLAG_ROW     bool (row,), when the dataset has FLAG_ROW
                ROWID        int64 (row,), where the reader gives row ids (MS: the table row)
            p001/ ...
        .<name>.partial-<id>/   a save in progress (local paths); never listed

A save writes under the temporary name and renames it into place when complete. Object stores
have no rename: there the version is written in place and only its ``.zattrs`` (with
``complete``), written last, makes it a version; one without is ignored.

A restore checks the version against the dataset before writing anything: the same partitions
(keys, rows, FLAG shapes, columns) and the same rows, by a fingerprint of each partition's row
positions, ROWIDs, TIME, ANTENNA1 and ANTENNA2 (one pass over those small columns). Then it
writes FLAG and FLAG_ROW inside a :func:`column_transaction`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from numcodecs import Blosc

from radiocloud.core import dims
from radiocloud.core.errors import (
    ColumnError,
    FlagVersionExistsError,
    FlagVersionMismatchError,
    FlagVersionNameError,
    FlagVersionNotFoundError,
)
from radiocloud.core.io.flagbits import (
    BIT_ORDER,
    ROW_ID_COLUMNS,
    count_flags,
    pack_flags,
    regular_rows,
    row_fingerprint,
    unpack_flags,
)
from radiocloud.core.io.read import (
    DEFAULT_GROUP_COLS,
    DEFAULT_MEMORY_BUDGET,
    PARTITION_KEY,
    check_not_partial,
    column_names,
    open_dataset,
)
from radiocloud.core.io.store import DatasetURL, as_url, detect_format
from radiocloud.core.io.write import (
    column_transaction,
    move_into_place,
    rewrite_parquet_main,
    write_columns,
)
from radiocloud.core.progress import compute

SUFFIX = ".flagversions"
LAYOUT = 1  # version of the on-disk layout above
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# zstd on the bit-packed flags as they are (bytes are single items: nothing to shuffle); bit
# shuffle packs FLAG_ROW's bools 8 to a byte, byte shuffle lays out ROWID's increasing int64s
COMPRESSORS = {
    "FLAG": Blosc(cname="zstd", clevel=5, shuffle=Blosc.NOSHUFFLE),
    "FLAG_ROW": Blosc(cname="zstd", clevel=5, shuffle=Blosc.BITSHUFFLE),
    "ROWID": Blosc(cname="zstd", clevel=5, shuffle=Blosc.SHUFFLE),
}


@dataclass(frozen=True)
class FlagVersion:
    """What :func:`list_versions` shows of a saved version."""

    name: str
    description: str
    created: datetime  # UTC
    rows: int
    flagged_fraction: float  # of all FLAG cells (visibilities x correlations)


# -- where versions live ----------------------------------------------------------------------


def _root(url: DatasetURL):
    store = url.store()
    return store.fs, store.root.rstrip("/") + SUFFIX


def _zarr_store(fs, path: str, local: bool):
    return zarr.DirectoryStore(path) if local else zarr.storage.FSStore(path, fs=fs)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise FlagVersionNameError(
            f"flag version name '{name}' is not allowed: use letters, digits, '_', '.' and '-' "
            "(starting with a letter or digit, at most 128 characters)"
        )


def _complete_attrs(fs, path: str) -> dict | None:
    """The attributes of the version at ``path``, or None if it is missing or incomplete."""
    try:
        with fs.open(f"{path}/.zattrs", "r") as f:
            attrs = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    ok = isinstance(attrs, dict) and attrs.get("complete") and attrs.get("layout") == LAYOUT
    return attrs if ok else None


def _as_version(attrs: dict) -> FlagVersion:
    return FlagVersion(
        name=attrs["name"],
        description=attrs.get("description", ""),
        created=datetime.fromisoformat(attrs["created"]),
        rows=int(attrs["rows"]),
        flagged_fraction=float(attrs["flagged_fraction"]),
    )


def _require(url: DatasetURL, name: str) -> dict:
    fs, root = _root(url)
    attrs = _complete_attrs(fs, f"{root}/{name}")
    if attrs is None:
        raise FlagVersionNotFoundError(f"no flag version '{name}' of '{url}' ({_known(url)})")
    return attrs


def _known(url: DatasetURL) -> str:
    names = [v.name for v in list_versions(url)]
    return f"it has: {', '.join(names)}" if names else "it has no flag versions"


# -- the public API ---------------------------------------------------------------------------


def list_versions(
    url: str | DatasetURL, *, storage_options: dict | None = None
) -> list[FlagVersion]:
    """The complete flag versions of a dataset, oldest first."""
    url = as_url(url, storage_options)
    detect_format(url)
    fs, root = _root(url)
    fs.invalidate_cache(root)
    if not fs.isdir(root):
        return []
    versions = []
    for path in fs.ls(root, detail=False):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if not name.startswith(".") and (attrs := _complete_attrs(fs, path)) is not None:
            versions.append(_as_version(attrs))
    return sorted(versions, key=lambda v: (v.created, v.name))


def version_exists(
    url: str | DatasetURL, name: str, *, storage_options: dict | None = None
) -> bool:
    """Whether a complete flag version ``name`` of the dataset exists."""
    url = as_url(url, storage_options)
    _check_name(name)
    detect_format(url)
    fs, root = _root(url)
    return _complete_attrs(fs, f"{root}/{name}") is not None


def delete_version(
    url: str | DatasetURL, name: str, *, storage_options: dict | None = None
) -> None:
    """Delete flag version ``name`` (also the remains of an interrupted save of that name)."""
    url = as_url(url, storage_options)
    _check_name(name)
    detect_format(url)
    fs, root = _root(url)
    path = f"{root}/{name}"
    if not fs.exists(path):
        raise FlagVersionNotFoundError(f"no flag version '{name}' of '{url}' ({_known(url)})")
    _delete(fs, path)


def save_version(
    url: str | DatasetURL,
    name: str,
    *,
    description: str = "",
    overwrite: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    threads: int = 1,
    storage_options: dict | None = None,
) -> FlagVersion:
    """Save FLAG and FLAG_ROW of the dataset as version ``name``; one dask compute, in row
    chunks sized from ``memory_budget`` and ``threads`` (runs on the caller's scheduler)."""
    url = as_url(url, storage_options)
    _check_name(name)
    fmt = detect_format(url)
    fs, root = _root(url)
    if not overwrite and _complete_attrs(fs, f"{root}/{name}") is not None:
        raise FlagVersionExistsError(
            f"flag version '{name}' of '{url}' exists: choose another name or pass --overwrite"
        )
    created = datetime.now(UTC).replace(microsecond=0)
    columns = ["FLAG", *(["FLAG_ROW"] if "FLAG_ROW" in _columns(url) else [])]
    dss = open_dataset(
        url, columns=[*columns, *ROW_ID_COLUMNS], memory_budget=memory_budget, threads=threads
    )
    with _staging(fs, root, name, url.is_local) as path:
        group = zarr.open_group(_zarr_store(fs, path, url.is_local), mode="w")
        partitions = _write_partitions(dss, group, columns, description=f"saving flags '{name}'")
        attrs = _version_attrs(name, description, created, fmt, columns, partitions)
        group.attrs.put(attrs)  # last: its "complete" makes the version
    return _as_version(attrs)


def restore_version(
    url: str | DatasetURL,
    name: str,
    *,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    threads: int = 1,
    storage_options: dict | None = None,
) -> FlagVersion:
    """Write version ``name`` back into FLAG (and FLAG_ROW), bit for bit, after checking it
    was saved from this dataset (else :class:`FlagVersionMismatchError`, nothing written)."""
    url = as_url(url, storage_options)
    _check_name(name)
    fmt = detect_format(url)
    attrs = _require(url, name)
    columns = list(attrs["columns"])
    have = _columns(url)
    flag_columns = [c for c in ("FLAG", "FLAG_ROW") if c in have]
    dss = open_dataset(
        url,
        columns=None if fmt == "parquet" else [*flag_columns, *ROW_ID_COLUMNS],  # parquet: whole
        group_cols=attrs.get("group_cols", DEFAULT_GROUP_COLS),
        memory_budget=memory_budget,
        threads=threads,
        refuse_partial=False,  # restoring flags a run left half-written is what this is for
    )
    check_not_partial(url, fmt, ROW_ID_COLUMNS)
    _check_layout(url, name, attrs, dss, flag_columns)
    _check_rows(url, name, attrs, dss)
    fs, root = _root(url)
    group = zarr.open_group(_zarr_store(fs, f"{root}/{name}", url.is_local), mode="r")
    restored = [_restored(ds, group[f"p{i:03d}"], columns) for i, ds in enumerate(dss)]
    with column_transaction(url, columns):
        if fmt == "parquet":
            rewrite_parquet_main(restored, url)
        else:
            writes = write_columns(restored, url, columns, fmt=fmt)
            compute(writes, description=f"restoring flags '{name}'")
    return _as_version(attrs)


# -- saving -----------------------------------------------------------------------------------


def _columns(url: DatasetURL) -> set[str]:
    have = column_names(url, refuse_partial=False)
    if "FLAG" not in have:
        raise ColumnError(f"dataset '{url}' has no FLAG column: there are no flags to version")
    return have


@contextlib.contextmanager
def _staging(fs, root: str, name: str, local: bool) -> Iterator[str]:
    """Yield the path to write version ``name`` to; in place (as ``name``) only on success."""
    final = f"{root}/{name}"
    if not local:  # no rename: an overwrite drops the old version first
        if fs.exists(final):
            _delete(fs, final)
        yield final
        return
    os.makedirs(root, exist_ok=True)
    tmp = f"{root}/.{name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp, recursive=True)
        raise
    move_into_place(tmp, final)


def _delete(fs, path: str) -> None:
    if fs.exists(f"{path}/.zattrs"):  # first, so a delete cut short leaves no valid version
        fs.rm(f"{path}/.zattrs")
    fs.rm(path, recursive=True)


def _write_partitions(dss, group: zarr.Group, columns, *, description: str) -> list[dict]:
    """Store every partition's packed flags (one compute); their descriptions."""
    sources, targets, flagged, prints, partitions = [], [], [], [], []
    for i, ds in enumerate(dss):
        flag = regular_rows(ds.FLAG.data)
        nrow, nchan, ncorr = flag.shape
        arrays = {"FLAG": pack_flags(flag)}
        if "FLAG_ROW" in columns:
            arrays["FLAG_ROW"] = ds.FLAG_ROW.data.rechunk((flag.chunks[0],))
        if "ROWID" in ds.coords:
            arrays["ROWID"] = ds.ROWID.data.astype(np.int64).rechunk((flag.chunks[0],))
        sub = group.create_group(f"p{i:03d}")
        for key, array in arrays.items():
            target = sub.create_dataset(
                key, shape=array.shape, dtype=array.dtype, compressor=COMPRESSORS[key],
                chunks=(max(flag.chunks[0][0], 1), *array.shape[1:]),
            )  # fmt: skip
            sources.append(array)
            targets.append(target)
        flagged.append(count_flags(flag))
        prints.append(row_fingerprint(ds, flag.chunks[0]))
        partitions.append(
            {"key": _key(ds), "rows": nrow, "shape": [nrow, nchan, ncorr], "rowid": "ROWID" in ds}
        )
    stored = da.store(sources, targets, lock=False, compute=False)
    _, flagged, prints = compute(stored, flagged, prints, description=description)
    for part, n, fp in zip(partitions, flagged, prints, strict=True):
        part.update(flagged=int(n), fingerprint=f"{int(fp):016x}")
    return partitions


def _version_attrs(name, description, created, fmt, columns, partitions) -> dict:
    flagged = sum(p["flagged"] for p in partitions)
    flags = sum(int(np.prod(p["shape"])) for p in partitions)
    return {
        "layout": LAYOUT,
        "name": name,
        "description": description,
        "created": created.isoformat(),
        "format": fmt,
        "group_cols": list(DEFAULT_GROUP_COLS),
        "columns": list(columns),
        "bit_order": BIT_ORDER,
        "partitions": partitions,
        "rows": sum(p["rows"] for p in partitions),
        "flagged": flagged,
        "flags": flags,
        "flagged_fraction": flagged / flags if flags else 0.0,
        "complete": True,
    }


def _key(ds: xr.Dataset) -> dict[str, int]:
    """The partition's grouping values (FIELD_ID, DATA_DESC_ID, SCAN_NUMBER for an MS)."""
    schema = ds.attrs.get(PARTITION_KEY) or ()
    return {col: int(ds.attrs[col]) for col, *_ in schema if col in ds.attrs}


# -- restoring --------------------------------------------------------------------------------


def _mismatch(url, name: str, what: str) -> FlagVersionMismatchError:
    return FlagVersionMismatchError(
        f"flag version '{name}' does not fit '{url}': {what}; it was saved from another "
        "dataset, or this one was rewritten since. Nothing was restored"
    )


def _check_layout(url, name: str, attrs: dict, dss: Sequence[xr.Dataset], columns) -> None:
    stored = attrs["partitions"]
    if list(attrs["columns"]) != list(columns):
        what = f"it holds {' and '.join(attrs['columns'])}, the dataset has {' and '.join(columns)}"
        raise _mismatch(url, name, what)
    if len(stored) != len(dss):
        raise _mismatch(url, name, f"it has {len(stored)} partitions, the dataset {len(dss)}")
    for i, (part, ds) in enumerate(zip(stored, dss, strict=True)):
        key, shape = _key(ds), [int(s) for s in ds.FLAG.shape]
        if part["key"] != key:
            what = f"its partition {i} is {_describe(part['key'])}, the dataset's {_describe(key)}"
            raise _mismatch(url, name, what)
        if part["shape"] != shape:
            raise _mismatch(
                url,
                name,
                f"its partition {i} ({_describe(key)}) holds FLAG of shape "
                f"{tuple(part['shape'])}, the dataset's {tuple(shape)}",
            )


def _describe(key: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items()) or "no grouping"


def _check_rows(url, name: str, attrs: dict, dss: Sequence[xr.Dataset]) -> None:
    prints = [row_fingerprint(ds, regular_rows(ds.FLAG.data).chunks[0]) for ds in dss]
    (prints,) = compute(prints, description="checking rows")
    for i, (part, fp) in enumerate(zip(attrs["partitions"], prints, strict=True)):
        if part["fingerprint"] != f"{int(fp):016x}":
            raise _mismatch(
                url,
                name,
                f"partition {i} ({_describe(part['key'])}) has as many rows, but not the same "
                "ones (TIME, ANTENNA1, ANTENNA2, row ids or their order differ)",
            )


def _restored(ds: xr.Dataset, group: zarr.Group, columns) -> xr.Dataset:
    """``ds`` with FLAG (and FLAG_ROW) read from the version, in ``ds``'s row chunks."""
    rows = regular_rows(ds.FLAG.data).chunks[0]
    _, nchan, ncorr = ds.FLAG.shape
    flag = unpack_flags(da.from_zarr(group["FLAG"], chunks=(rows, -1)), nchan, ncorr)
    new = {"FLAG": (ds.FLAG.dims, flag)}
    if "FLAG_ROW" in columns:
        new["FLAG_ROW"] = ((dims.ROW,), da.from_zarr(group["FLAG_ROW"], chunks=(rows,)))
    return ds.assign(new)
