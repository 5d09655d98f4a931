"""Dataset URLs: local paths or fsspec URLs (``s3://bucket/x.zarr``) naming an MS, zarr or parquet.

This is the only module that decides what kind of dataset a URL holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

from daskms.fsspec_store import DaskMSStore

from radiocloud.core.errors import (
    DatasetAccessError,
    DatasetNotFoundError,
    NotADatasetError,
    OptionError,
)

Format = Literal["ms", "zarr", "parquet", "delta"]
FORMATS: tuple[Format, ...] = ("ms", "zarr", "parquet")
_SUFFIXES = {".ms": "ms", ".zarr": "zarr", ".parquet": "parquet", ".pq": "parquet"}
_DASKMS_TYPES = {"casa": "ms", "zarr": "zarr", "parquet": "parquet"}
DELTA_MANIFEST = "radiocloud-delta.json"  # what makes a folder a delta-set (io.delta)


@dataclass(frozen=True)
class DatasetURL:
    """A dataset location and how to reach it (``storage_options`` go to fsspec)."""

    url: str
    storage_options: dict = field(default_factory=dict, compare=False, hash=False)

    def store(self, subtable: str | None = None) -> DaskMSStore:
        url = f"{self.url}::{subtable}" if subtable else self.url
        return DaskMSStore(url, **self.storage_options)

    @property
    def is_local(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    @property
    def name(self) -> str:
        return PurePosixPath(self.url.rstrip("/")).name

    def exists(self) -> bool:
        s = self.store()
        return _exists(self, s.root)

    def __str__(self) -> str:
        return self.url


def _exists(url: DatasetURL, root: str) -> bool:
    """Whether ``root`` exists; an object store refusing the credentials is a clear error."""
    try:
        return url.store().fs.exists(root)
    except PermissionError as exc:
        raise DatasetAccessError(
            f"cannot read '{url}': access denied ({exc}); check the credentials "
            "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the storage options)"
        ) from exc
    except Exception as exc:
        if type(exc).__name__ not in ("NoCredentialsError", "PartialCredentialsError"):
            raise
        raise DatasetAccessError(
            f"cannot read '{url}': no credentials ({exc}); set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or give key/secret in the storage options)"
        ) from exc


def as_url(url: str | DatasetURL, storage_options: dict | None = None) -> DatasetURL:
    if isinstance(url, DatasetURL):
        return url
    return DatasetURL(str(url), dict(storage_options or {}))


def format_from_suffix(url: str | DatasetURL) -> Format:
    """The format a new dataset gets from its name: ``.ms``, ``.zarr`` or ``.parquet``."""
    suffix = PurePosixPath(str(url).rstrip("/")).suffix.lower()
    try:
        return _SUFFIXES[suffix]
    except KeyError:
        raise OptionError(
            f"cannot tell the format of '{url}' from its name: end it in .ms, .zarr or .parquet"
        ) from None


def detect_format(url: str | DatasetURL) -> Format:
    """The format of an existing dataset, or a clear error if it is missing or not a dataset."""
    url = as_url(url)
    store = url.store()
    if not _exists(url, store.root):
        raise DatasetNotFoundError(f"dataset '{url}' does not exist: check the path")
    if store.exists(DELTA_MANIFEST):
        return "delta"
    if store.exists("table.dat"):
        if not store.exists("ANTENNA/table.dat"):
            raise NotADatasetError(
                f"'{url}' is a casacore table but not a Measurement Set (it has no ANTENNA "
                "subtable): give the MS directory itself"
            )
        return "ms"
    if store.exists(".zgroup") or store.exists("MAIN/.zgroup"):
        return "zarr"
    if store.fs.isdir(store.root) and store.exists("MAIN"):
        # MAIN/COL=value/.../n.parquet: one folder level per partitioning column
        main = store.fs.find(f"{store.root}/MAIN", maxdepth=6)
        if any(p.endswith(".parquet") for p in main):
            return "parquet"
    if store.fs.isfile(store.root):
        raise NotADatasetError(
            f"'{url}' is a file, not a dataset: give a Measurement Set directory, "
            "a zarr store or a parquet dataset"
        )
    raise NotADatasetError(
        f"'{url}' is not a Measurement Set, zarr store or parquet dataset "
        "(no table.dat, .zgroup or MAIN/*.parquet in it)"
    )


def list_subtables(url: str | DatasetURL, fmt: Format | None = None) -> list[str]:
    """Names of the subtables a dataset holds (ANTENNA, SPECTRAL_WINDOW, ...)."""
    url = as_url(url)
    fmt = fmt or detect_format(url)
    if fmt == "delta":
        from radiocloud.core.io.deltaops import list_delta_subtables

        return list_delta_subtables(url)
    if fmt == "ms":
        from casacore.tables import table

        t = table(url.url, ack=False, readonly=True)
        try:
            keywords = t.getkeywords()
        finally:
            t.close()
        return sorted(
            k for k, v in keywords.items() if isinstance(v, str) and v.startswith("Table: ")
        )
    store = url.store()
    names = []
    for path in store.fs.ls(store.root, detail=False):
        name = PurePosixPath(path).name
        if name != "MAIN" and not name.startswith(".") and store.fs.isdir(path):
            names.append(name)
    return sorted(names)
