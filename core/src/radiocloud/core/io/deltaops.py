"""What ``rc-data`` does with delta-sets: branch, log, diff, cache (consolidate is
:func:`radiocloud.core.io.convert` of the merged view), and their subtables."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import xarray as xr

from radiocloud.core.errors import (
    ColumnError,
    OutputExistsError,
    OutputNotWritableError,
)
from radiocloud.core.io.deltaindex import (
    INDEX_KEYS,
    LAYOUT,
    parent_url,
    public_options,
    read_manifest,
    resolve,
    write_manifest,
)
from radiocloud.core.io.deltaprint import fingerprint
from radiocloud.core.io.store import DatasetURL, as_url, detect_format


def branch(
    parent: str | DatasetURL,
    delta: str | DatasetURL,
    *,
    parent_storage_options: dict | None = None,
    storage_options: dict | None = None,
) -> dict:
    """Create the delta-set ``delta`` on ``parent`` (read only). Returns its manifest."""
    parent = as_url(parent, parent_storage_options)
    delta = as_url(delta, storage_options)
    fmt = detect_format(parent)
    if fmt == "delta":
        resolve(parent)  # the parent's own chain must be sound
    if delta.exists():
        raise OutputExistsError(f"delta-set '{delta}' exists: choose another name")
    name = os.path.abspath(parent.url) if parent.is_local else parent.url
    manifest = {
        "layout": LAYOUT,
        "parent": name,
        "parent_storage_options": public_options(parent.storage_options),
        "parent_fingerprint": fingerprint(parent),
        "created": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "radiocloud_version": _version(),
        "generation": 0,
        "columns": {},
    }
    with _staging(delta) as tmp:
        if fmt == "delta":
            _branch_of_delta(parent, tmp, manifest)
        else:
            _branch_of_dataset(parent, tmp, fmt, manifest)
        write_manifest(tmp, manifest)  # last: the manifest makes the delta-set
    return manifest


def _branch_of_delta(parent: DatasetURL, tmp: DatasetURL, manifest: dict) -> None:
    from radiocloud.core.io.deltastore import copy_index

    above = read_manifest(parent)
    manifest.update(root_format=above["root_format"], groups=above["groups"], nrow=above["nrow"])
    copy_index(parent, tmp, len(above["groups"]))


def _branch_of_dataset(parent: DatasetURL, tmp: DatasetURL, fmt: str, manifest: dict) -> None:
    from radiocloud.core.io.delta import canonical_partitions
    from radiocloud.core.io.deltastore import write_index
    from radiocloud.core.io.read import column_names

    have = column_names(parent)
    keys = [c for c in INDEX_KEYS if c in have] if fmt == "ms" else []
    parts = canonical_partitions(parent, fmt, keys or ["TIME"])
    groups, index, offset = [], [], 0
    for ds in parts:
        n = int(ds.sizes["row"])
        if fmt == "ms":
            rowid = ds.ROWID.values.astype(np.int64)
            order = np.argsort(rowid, kind="stable")
            entry = {"ROWID": rowid[order]}
            entry |= {c: np.asarray(ds[c].values)[order] for c in keys}
            entry["DATA_DESC_ID"] = np.full(n, int(ds.attrs["DATA_DESC_ID"]), np.int32)
        else:
            entry = {"ROWID": np.arange(offset, offset + n, dtype=np.int64)}
        offset += n
        index.append(entry)
        groups.append({"rows": n, "attrs": _json_attrs(ds.attrs)})
    write_index(tmp, index)
    manifest.update(root_format=fmt, groups=groups, nrow=offset)


def _json_attrs(attrs: dict) -> dict:
    def plain(v):
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        return v.item() if isinstance(v, np.generic) else v

    return {k: plain(v) for k, v in attrs.items()}


class _staging:
    """Write a new delta-set under a temporary name, rename it into place (local paths); on
    object stores in place, where only the manifest, written last, makes it a delta-set."""

    def __init__(self, url: DatasetURL):
        self.url = url

    def __enter__(self) -> DatasetURL:
        if not self.url.is_local:
            return self.url
        root = os.path.abspath(self.url.url.removeprefix("file://"))
        folder = os.path.dirname(root)
        if not os.path.isdir(folder):
            raise OutputNotWritableError(
                f"cannot create delta-set '{self.url}': folder '{folder}' does not exist; "
                "create it or choose another location"
            )
        if not os.access(folder, os.W_OK):
            raise OutputNotWritableError(
                f"cannot create delta-set '{self.url}': folder '{folder}' is not writable; "
                "choose a writable location"
            )
        self.tmp = os.path.join(folder, f".{os.path.basename(root)}.partial-{uuid.uuid4().hex[:8]}")
        self.root = root
        os.makedirs(self.tmp)
        return DatasetURL(self.tmp, self.url.storage_options)

    def __exit__(self, kind, exc, tb) -> None:
        if not self.url.is_local:
            return
        if kind is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        os.rename(self.tmp, self.root)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("radiocloud-core")
    except PackageNotFoundError:
        return "unknown"


# -- log, diff --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSource:
    column: str
    level: int  # 0 = this delta-set, ... len(levels)-1 = the root
    rows: int  # rows this level holds (all rows when it is the only source)
    falls_through: bool  # some rows come from levels below


def log(url: str | DatasetURL) -> tuple[list[dict], list[ColumnSource]]:
    """The chain (nearest first: url, created, kind) and where each column comes from."""
    url = as_url(url)
    chain = resolve(url)
    levels = []
    for lv in chain.levels:
        m = lv.manifest
        entry = {"url": str(lv.url), "kind": "delta" if m else detect_format(lv.url)}
        if m:
            entry |= {"created": m["created"], "generation": m["generation"],
                      "columns": sorted(m["columns"])}  # fmt: skip
        levels.append(entry)
    if chain.missing is not None:
        last = chain.levels[-1].manifest
        levels.append({"url": last["parent"], "kind": "missing"})
    bottom = next(lv for lv in reversed(chain.levels) if lv.manifest)
    root_cols = set(bottom.manifest["parent_fingerprint"].get("columns", {}))
    names = sorted(root_cols | {c for lv in chain.levels for c in lv.columns()})
    nrow, ngroups = chain.top.manifest["nrow"], len(chain.top.manifest["groups"])
    sources = []
    for c in names:
        for i, lv in enumerate(chain.levels):
            info = lv.columns().get(c)
            if info:
                whole = len(info["full"]) == ngroups
                sources.append(ColumnSource(c, i, info["rows"], not whole))
                break
        else:
            sources.append(ColumnSource(c, len(levels) - 1, nrow, False))
    return levels, sources


def diff(url: str | DatasetURL) -> list[dict]:
    """The columns written to this delta-set (not those only cached): name, rows, new or
    changed (whether its parent has the column)."""
    url = as_url(url)
    manifest = read_manifest(url)
    parent_has = _parent_columns(url, manifest)
    return [
        {"column": c, "rows": info["rows"], "of": manifest["nrow"],
         "status": "changed" if c in parent_has else "new"}
        for c, info in sorted(manifest["columns"].items())
        if info.get("changed")
    ]  # fmt: skip


def _parent_columns(url: DatasetURL, manifest: dict) -> set:
    fp = manifest["parent_fingerprint"]
    if fp["kind"] != "delta":
        return set(fp["columns"])
    _, sources = log(parent_url(url, manifest))
    return {s.column for s in sources}


# -- cache ------------------------------------------------------------------------------------


def cache(url: str | DatasetURL, columns: Sequence[str], *, memory_budget: int, threads: int):
    """Copy ``columns`` (as the parent levels hold them) and the subtables into the delta-set,
    so that reading them no longer touches the parent. Returns rows copied."""
    from radiocloud.core.io.delta import commit, open_delta, write_delta
    from radiocloud.core.io.write import column_transaction
    from radiocloud.core.progress import compute

    url = as_url(url)
    chain = resolve(url)
    chain.need_parent()
    columns = list(dict.fromkeys(columns))
    if not columns:
        raise ColumnError("name the columns to cache (e.g. DATA FLAG)")
    dss = open_delta(url, columns=columns, group_cols=("DATA_DESC_ID",),
                     memory_budget=memory_budget, threads=threads, row_chunk=None, sort_by=(),
                     row_chunks=None, refuse_partial=True)  # fmt: skip
    with column_transaction(url, columns, commit=False):
        compute(write_delta(dss, url, columns), description=f"caching {', '.join(columns)}")
        commit(url, columns, cached=True)
    _cache_subtables(url, chain)
    return sum(ds.sizes["row"] for ds in dss)


def _cache_subtables(url: DatasetURL, chain) -> None:
    from daskms.experimental.zarr import xds_to_zarr

    from radiocloud.core.io.read import read_table
    from radiocloud.core.io.store import list_subtables
    from radiocloud.core.progress import compute

    have = set(cached_subtables(url))
    for name in list_subtables(url):
        if name in have:
            continue
        dss = [ds.drop_vars("ROWID", errors="ignore") for ds in read_table(url, name)]
        dss = [ds for ds in dss if ds.data_vars and ds.sizes.get("row", 0)]
        if dss:
            compute(xds_to_zarr(dss, DatasetURL(f"{url.url}/SUBTABLES", url.storage_options)
                                .store(name)), description=f"caching {name}")  # fmt: skip


def cached_subtables(url: DatasetURL) -> list[str]:
    store = url.store()
    path = f"{store.root}/SUBTABLES"
    if not store.fs.isdir(path):
        return []
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in store.fs.ls(path, detail=False)
                  if not p.rstrip("/").rsplit("/", 1)[-1].startswith("."))  # fmt: skip


def list_delta_subtables(url: DatasetURL) -> list[str]:
    from radiocloud.core.io.store import list_subtables

    chain = resolve(url)
    names = set()
    for lv in chain.levels:
        names |= set(list_subtables(lv.url)) if lv.is_root else set(cached_subtables(lv.url))
    if chain.root is None and not names:
        chain.need_parent()
    return sorted(names)


def read_delta_table(url: DatasetURL, subtable: str) -> list[xr.Dataset]:
    """A subtable of a delta-set: the nearest level's cached copy, else the root's."""
    from daskms.experimental.zarr import xds_from_zarr

    from radiocloud.core.io.read import _normalise, read_table

    chain = resolve(url)
    for lv in chain.levels:
        if lv.is_root:
            return read_table(lv.url, subtable)
        if subtable in cached_subtables(lv.url):
            where = DatasetURL(f"{lv.url.url}/SUBTABLES", lv.url.storage_options)
            return [_normalise(ds) for ds in xds_from_zarr(where.store(subtable))]
    chain.need_parent()
    raise ColumnError(f"delta-set '{url}' has no subtable {subtable}")
