"""A delta-set's manifest, row index and level chain (see :mod:`radiocloud.core.io.delta`).

On disk, a delta-set ``d`` (any name; a local folder or an fsspec URL)::

    d/
        radiocloud-delta.json   the manifest (written last at branch, replaced whole on commit):
                                layout, parent URL, the parent's fingerprint, created (UTC),
                                radiocloud version, root format, groups (rows and partition
                                attrs of each), nrow, generation, columns (per column: full
                                groups, rows written, changed or only cached)
        INDEX/                  zarr: GROUP (int32) and POSITION (int64) of every parent row
                                (indexed by row key: the MS row number, or the row's place in
                                a zarr/parquet parent's stored partitions); g<i>/ROWID and the
                                partition keys FIELD_ID, DATA_DESC_ID, SCAN_NUMBER, TIME of
                                each group's rows (to rebuild partitions without the parent)
        MAIN/g<i>/<COLUMN>/     zarr: data (rows of group i, cell shape) and written (bool)
        SUBTABLES/<NAME>        zarr copies of the parent's subtables (after rc-data cache)
        .radiocloud-incomplete.json   columns being written (as for any dataset)

A group is one DATA_DESC_ID of an MS parent (rows in table order) or one stored partition of
a zarr or parquet parent: every row of a group has the same cell shapes.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass

from radiocloud.core.errors import (
    DeltaCycleError,
    DeltaParentMissingError,
    NotADatasetError,
)
from radiocloud.core.io.store import DELTA_MANIFEST as MANIFEST
from radiocloud.core.io.store import DatasetURL, as_url

LAYOUT = 1
GROUP_ATTR = "__radiocloud_delta_group__"
INDEX_KEYS = ("FIELD_ID", "DATA_DESC_ID", "SCAN_NUMBER", "TIME")
# storage options that may be kept in a manifest (never credentials)
PUBLIC_OPTIONS = ("client_kwargs", "endpoint_url", "region_name", "anon", "use_ssl")


def is_delta(url: str | DatasetURL) -> bool:
    store = as_url(url).store()
    try:
        return store.exists(MANIFEST)
    except (FileNotFoundError, NotADirectoryError):
        return False


def read_manifest(url: DatasetURL) -> dict:
    store = url.store()
    try:
        with store.fs.open(f"{store.root}/{MANIFEST}", "r") as f:
            manifest = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise NotADatasetError(f"'{url}' is not a delta-set (no readable {MANIFEST})") from exc
    if manifest.get("layout") != LAYOUT:
        raise NotADatasetError(
            f"delta-set '{url}' has layout {manifest.get('layout')}, this radiocloud reads "
            f"layout {LAYOUT}: consolidate it with the radiocloud that wrote it"
        )
    return manifest


def write_manifest(url: DatasetURL, manifest: dict) -> None:
    """Replace the manifest whole: a rename on local paths, one PUT on object stores."""
    store = url.store()
    path = f"{store.root}/{MANIFEST}"
    text = json.dumps(manifest, indent=1, sort_keys=True)
    if url.is_local:
        tmp = f"{path}.{uuid.uuid4().hex[:8]}"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    else:
        store.fs.pipe(path, text.encode())


def public_options(options: dict) -> dict:
    return {k: v for k, v in options.items() if k in PUBLIC_OPTIONS}


def parent_url(url: DatasetURL, manifest: dict) -> DatasetURL:
    """The parent as the manifest names it; credentials come from ``url``'s own storage
    options (when the parent is on the same kind of store) or the environment."""
    parent = manifest["parent"]
    options = dict(manifest.get("parent_storage_options") or {})
    same_store = parent.split("://")[0] == url.url.split("://")[0] and not url.is_local
    if same_store:
        options = {**url.storage_options, **options}
    return DatasetURL(parent, options)


@dataclass(frozen=True)
class Level:
    """One level of a chain: a delta-set (with its manifest) or the root dataset."""

    url: DatasetURL
    manifest: dict | None  # None for the root

    @property
    def is_root(self) -> bool:
        return self.manifest is None

    def columns(self) -> dict:
        return {} if self.manifest is None else self.manifest.get("columns", {})


@dataclass(frozen=True)
class Chain:
    """The levels of a delta-set, nearest first, as far as they can be reached.

    ``missing`` is the error to raise when a read needs a level past the last one reached.
    """

    levels: tuple[Level, ...]
    missing: Exception | None = None

    @property
    def top(self) -> Level:
        return self.levels[0]

    @property
    def root(self) -> Level | None:
        last = self.levels[-1]
        return last if last.is_root else None

    def need_parent(self) -> None:
        if self.missing is not None:
            raise self.missing


def resolve(url: str | DatasetURL, *, verify: bool = True) -> Chain:
    """Walk from the delta-set ``url`` to its root, checking each parent's fingerprint."""
    from radiocloud.core.io.deltaprint import check_fingerprint

    url = as_url(url)
    levels: list[Level] = []
    seen = [_identity(url)]
    current = url
    while True:
        manifest = read_manifest(current)
        levels.append(Level(current, manifest))
        parent = parent_url(current, manifest)
        ident = _identity(parent)
        if ident in seen:
            names = " -> ".join([*(str(lv.url) for lv in levels), str(parent)])
            raise DeltaCycleError(
                f"delta-set chain of '{url}' has a cycle ({names}): a parent manifest was "
                "edited or a delta moved onto an ancestor's path; branch again from the archive"
            )
        seen.append(ident)
        if not parent.exists():
            error = DeltaParentMissingError(
                f"parent '{parent}' of delta-set '{current}' is missing: put it back at that "
                "path (or re-branch from where it is now); only columns cached with "
                "'rc-data cache' can be read without it"
            )
            return Chain(tuple(levels), error)
        if verify:
            check_fingerprint(current, manifest, parent)
        if not is_delta(parent):
            levels.append(Level(parent, None))
            return Chain(tuple(levels))
        current = parent


def _identity(url: DatasetURL) -> str:
    if url.is_local:
        path = url.url.removeprefix("file://")
        return os.path.realpath(path)
    return url.url.rstrip("/")
