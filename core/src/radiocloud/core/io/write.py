"""Write columns back to a dataset, or a whole new dataset, so that a failure never leaves
something that reads as valid.

- :func:`write_columns` is lazy (dask-ms style): it returns the write graph, nothing runs until
  it is computed. Wrap build + compute in :func:`column_transaction`: it marks the columns as
  being written in a small marker file inside the dataset, and clears the mark only when the
  compute succeeded. :func:`radiocloud.core.io.open_dataset` refuses marked columns.
- :func:`new_dataset` writes a new dataset under a temporary name beside the final one and
  renames it into place on success (local paths); on object stores, where there is no rename,
  the marker file stays until the write is complete.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence

import dask.array as da
import xarray as xr
from daskms import xds_to_table
from daskms.experimental.arrow import xds_to_parquet
from daskms.experimental.zarr import xds_to_zarr

from radiocloud.core.errors import (
    ColumnError,
    OutputExistsError,
    OutputNotWritableError,
    UnsupportedLayoutError,
)
from radiocloud.core.io.read import PARTITION_KEY
from radiocloud.core.io.store import DatasetURL, Format, as_url, detect_format, format_from_suffix

MARKER = ".radiocloud-incomplete.json"
ALL_COLUMNS = "*"
# dask-ms's MS descriptor: standard column descriptions; columns of one shape across all
# partitions get a fixed shape in a TiledColumnStMan (else they stay variable-shaped).
MS_DESCRIPTOR = "ms"
# casacore's default MS description says ITRF for UVW; ours are J2000 (as CASA writes them).
MAIN_COLUMN_KEYWORDS = {
    "UVW": {"QuantumUnits": ["m", "m", "m"], "MEASINFO": {"type": "uvw", "Ref": "J2000"}}
}
# Subtables that casacore's MS definition knows; others are written with inferred descriptors.
MS_SUBTABLES = {
    "ANTENNA", "DATA_DESCRIPTION", "FEED", "FIELD", "FLAG_CMD", "HISTORY", "OBSERVATION",
    "POINTING", "POLARIZATION", "PROCESSOR", "SOURCE", "SPECTRAL_WINDOW", "STATE",
}  # fmt: skip


def _marker_path(url: DatasetURL) -> tuple:
    store = url.store()
    return store.fs, f"{store.root}/{MARKER}"


def partial_columns(url: str | DatasetURL, fmt: str | None = None) -> list[str]:
    """Columns an interrupted write left incomplete (``["*"]`` for a whole dataset)."""
    fs, path = _marker_path(as_url(url))
    if not fs.exists(path):
        return []
    with fs.open(path, "r") as f:
        return list(json.load(f)["columns"])


def _mark(url: DatasetURL, columns: Sequence[str]) -> None:
    fs, path = _marker_path(url)
    cols = sorted(set(partial_columns(url)) | set(columns))
    with fs.open(path, "w") as f:
        json.dump({"columns": cols, "writer": "radiocloud"}, f)


def _unmark(url: DatasetURL, columns: Sequence[str]) -> None:
    fs, path = _marker_path(url)
    left = sorted(set(partial_columns(url)) - set(columns))
    if left and ALL_COLUMNS not in columns:
        with fs.open(path, "w") as f:
            json.dump({"columns": left, "writer": "radiocloud"}, f)
    elif fs.exists(path):
        fs.rm(path)


@contextlib.contextmanager
def column_transaction(
    url: str | DatasetURL, columns: Sequence[str], *, commit: bool = True
) -> Iterator[None]:
    """Mark ``columns`` of ``url`` as being written for the duration of the block.

    If the block raises (or the process dies), the mark stays and readers refuse the columns
    with a message saying which run to repeat. In a delta-set, the columns are recorded in its
    manifest (``commit``) before the mark is cleared.
    """
    url = as_url(url)
    _mark(url, columns)
    yield
    if commit and detect_format(url) == "delta":
        from radiocloud.core.io.delta import commit as commit_delta

        commit_delta(url, columns)
    _unmark(url, columns)


def write_columns(
    datasets: Sequence[xr.Dataset],
    url: str | DatasetURL,
    columns: Sequence[str],
    *,
    fmt: Format | None = None,
) -> list[xr.Dataset]:
    """Lazily write ``columns`` of ``datasets`` (from :func:`open_dataset`) back to ``url``.

    Missing MS columns are created with the standard descriptors (MODEL_DATA, CORRECTED_DATA
    shaped like DATA, tiled storage). Returns the dask-ms write datasets: compute them.
    Parquet datasets are refused (dask-ms cannot write some of their columns in place); see
    :func:`rewrite_parquet_main` for replacing a parquet dataset's main table whole.
    """
    url = as_url(url)
    fmt = detect_format(url) if fmt in (None, "ms", "zarr") else fmt  # a delta-set wins
    columns = list(columns)
    if fmt == "delta":
        from radiocloud.core.io.delta import write_delta

        return write_delta(datasets, url, columns)
    if fmt == "parquet":
        # dask-ms writes a parquet table whole, one file per row chunk: writing some columns
        # would replace the files holding all the others
        raise UnsupportedLayoutError(
            f"cannot write {', '.join(columns)} into the parquet dataset '{url}' in place: "
            "convert it to .zarr or .ms (rc-data convert) and write there"
        )
    _check_matches_existing(datasets, url, columns, fmt)
    if fmt == "ms":
        with _quiet_stderr():  # adding a column prints casacore's SORT_COLUMNS lines
            return xds_to_table(list(datasets), url.store(), columns, descriptor=MS_DESCRIPTOR)
    return xds_to_zarr(list(datasets), url.store(), columns=columns, rechunk=True)


def _check_matches_existing(
    datasets: Sequence[xr.Dataset], url: DatasetURL, columns, fmt: Format
) -> None:
    """A column that exists already must keep its dtype and cell shape (per SPW)."""
    from radiocloud.core.io.read import open_dataset

    have = open_dataset(url, group_cols=("DATA_DESC_ID",), row_chunk=10_000, refuse_partial=False)
    if fmt != "ms" and len(have) == len(datasets):
        # zarr keeps the partitions it was written with, in order; they need not carry a
        # DATA_DESC_ID attribute (a builder's partitions keep it as a column)
        pairs = list(zip(datasets, have, strict=True))
    else:
        by_ddid = {ds.attrs.get("DATA_DESC_ID"): ds for ds in have}
        pairs = [(ds, by_ddid.get(ds.attrs.get("DATA_DESC_ID"), have[0])) for ds in datasets]
    for ds, old in pairs:
        for col in columns:
            if col not in old or col not in ds:
                continue
            new_var, old_var = ds[col], old[col]
            if new_var.dtype.kind != old_var.dtype.kind or new_var.shape[1:] != old_var.shape[1:]:
                raise ColumnError(
                    f"cannot write {col} to '{url}': it holds {old_var.dtype} cells of shape "
                    f"{old_var.shape[1:]}, the new values are {new_var.dtype} of shape "
                    f"{new_var.shape[1:]}; write to another column name"
                )


def write_tables(
    main: Sequence[xr.Dataset],
    subtables: Mapping[str, Sequence[xr.Dataset]],
    url: DatasetURL,
    fmt: Format,
) -> list:
    """The lazy writes of a whole dataset: the main table and each subtable, every column."""
    main = [_as_dask(_with_partition_columns(_without_delta_attrs(ds))) for ds in main]
    # Empty subtables are skipped: an MS gets the standard (empty) ones from its descriptor.
    subtables = {
        name: [_as_dask(ds.drop_vars("ROWID", errors="ignore")) for ds in dss]
        for name, dss in subtables.items()
        if any(ds.data_vars and ds.sizes.get("row", 0) for ds in dss)
    }
    if fmt == "ms":
        with _quiet_stderr():  # casacore prints 'SORT_COLUMNSnot handled' creating tables
            writes = xds_to_table(
                list(main),
                url.store(),
                "ALL",
                descriptor=MS_DESCRIPTOR,
                column_keywords=MAIN_COLUMN_KEYWORDS,
            )
            for name, dss in subtables.items():
                desc = f"mssubtable('{name}')" if name in MS_SUBTABLES else None
                writes += xds_to_table(list(dss), url.store(name), "ALL", descriptor=desc)
        return writes
    if fmt == "zarr":
        writes = xds_to_zarr(list(main), url.store(), rechunk=True)
        for name, dss in subtables.items():
            writes += xds_to_zarr(list(dss), url.store(name), rechunk=True)
        return writes
    _check_parquet_shapes(main)
    writes = xds_to_parquet(list(main), url.store())
    for name, dss in subtables.items():
        writes += xds_to_parquet(list(dss), url.store(name))
    return writes


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send the C++ libraries' stderr (file descriptor 2) to /dev/null for the block. Only
    around table creation, which runs in this thread before any compute; Python exceptions
    still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _check_parquet_shapes(datasets: Sequence[xr.Dataset]) -> None:
    """dask-ms's parquet tables hold one cell shape per column."""
    for name in datasets[0].data_vars if datasets else ():
        shapes = {ds[name].shape[1:] for ds in datasets if name in ds}
        if len(shapes) > 1:
            raise UnsupportedLayoutError(
                f"parquet keeps one shape per column, but {name} has shapes "
                f"{sorted(shapes)} (SPWs of different widths): write .zarr or .ms instead"
            )


def _without_delta_attrs(ds: xr.Dataset) -> xr.Dataset:
    """A delta-set's merged view tags partitions with their group; a new dataset needs not."""
    from radiocloud.core.io.deltaindex import GROUP_ATTR

    if GROUP_ATTR not in ds.attrs:
        return ds
    ds = ds.copy()
    ds.attrs = {k: v for k, v in ds.attrs.items() if k != GROUP_ATTR}
    return ds


def _with_partition_columns(ds: xr.Dataset) -> xr.Dataset:
    """Partitioning columns (FIELD_ID, DATA_DESC_ID, ...) live in attrs after a grouped read;
    a new table needs them back as columns."""
    schema = ds.attrs.get(PARTITION_KEY, ())
    nrow = ds.sizes.get("row", 0)
    chunks = ds.chunks.get("row", (nrow,)) if ds.chunks else (nrow,)
    columns = {
        name: (("row",), da.full(nrow, ds.attrs[name], dtype=dtype, chunks=chunks))
        for name, dtype in schema
        if name not in ds.variables and name in ds.attrs
    }
    return ds.assign(columns) if columns else ds


def _as_dask(ds: xr.Dataset) -> xr.Dataset:
    """dask-ms writes dask arrays only: wrap in-memory variables, matching the row chunks."""
    row_chunks = next(
        (v.data.chunks[0] for v in ds.data_vars.values() if isinstance(v.data, da.Array)), -1
    )
    wrapped = {}
    for name, var in ds.data_vars.items():
        if not isinstance(var.data, da.Array):
            chunks = (row_chunks, *(-1 for _ in var.shape[1:]))
            # name=False: unique keys. Content-derived names would merge equal columns of two
            # partitions (ANTENNA1 of two SPWs) into one task, and dask-ms would then add the
            # rows of only one of them to a new table.
            array = da.from_array(var.values, chunks=chunks, name=False)
            wrapped[name] = (var.dims, array, var.attrs)
    return ds.assign(wrapped) if wrapped else ds


def _close_tables(path: str) -> int:
    """Close the casacore tables under ``path`` that dask-ms holds open in this process.

    dask-ms closes a table when the last graph using it is garbage collected; a finished
    graph can outlive the compute (in distributed's message logs, in caller variables), and a
    table closed after its folder was renamed fails its closing writes. Uses dask-ms internals
    (``_table_cache``, pinned below 0.3)."""
    from daskms.table_proxy import _table_cache

    gc.collect()
    closed = 0
    for proxy in list(_table_cache.values()):
        name = str(proxy._args[0]) if proxy._args else ""
        if name.startswith(path):
            table = proxy._table_future.result()
            proxy._ex.submit(table.close).result()  # on the thread that opened it
            closed += 1
    return closed


def release_tables(path: str) -> None:
    """Close every table dask-ms opened under ``path``, here and on distributed workers."""
    _run_everywhere(_close_tables, os.path.abspath(path))


def move_into_place(tmp: str, final: str) -> None:
    """Put the finished local folder ``tmp`` at ``final``: an existing ``final`` is renamed
    aside, replaced, then removed, so ``final`` is never missing or half-written."""
    if os.path.exists(final):
        old = f"{tmp}.old"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)


@contextlib.contextmanager
def new_dataset(
    url: str | DatasetURL, *, overwrite: bool = False, storage_options: dict | None = None
) -> Iterator[tuple[DatasetURL, Format]]:
    """Yield a (temporary URL, format) to write a new dataset to; put it in place on success.

    An existing ``url`` is refused unless ``overwrite``; even then it is only replaced once the
    new dataset is complete, so a failed run leaves the old one as it was.
    """
    url = as_url(url, storage_options)
    fmt = format_from_suffix(url.url)
    store = url.store()
    fs, root = store.fs, store.root
    if fs.exists(root) and not overwrite:
        raise OutputExistsError(f"output '{url}' exists: choose another name or pass --overwrite")
    if url.is_local:
        parent = os.path.dirname(os.path.abspath(root)) or "."
        if not os.path.isdir(parent):
            raise OutputNotWritableError(f"cannot write '{url}': folder '{parent}' does not exist")
        if not os.access(parent, os.W_OK):
            raise OutputNotWritableError(f"cannot write '{url}': folder '{parent}' is read-only")
        tmp = os.path.join(parent, f".{os.path.basename(root)}.partial-{uuid.uuid4().hex[:8]}")
        try:
            yield DatasetURL(tmp, url.storage_options), fmt
            release_tables(tmp)
        except BaseException:
            release_tables(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        move_into_place(tmp, root)
        return
    # object store: no atomic rename; the marker says "incomplete" until the end
    if fs.exists(root):
        fs.rm(root, recursive=True)
    fs.makedirs(root, exist_ok=True)
    _mark(url, [ALL_COLUMNS])
    yield url, fmt
    _unmark(url, [ALL_COLUMNS])


def write_zarr(ds: xr.Dataset, url: str | DatasetURL) -> list:
    """Lazily write one xarray dataset (e.g. a gain table) as a zarr group readable with
    :func:`radiocloud.core.io.open_dataset`-style dask-ms readers. Compute the result."""
    ds = ds.assign(
        {name: (var.dims, da.asarray(var.data), var.attrs) for name, var in ds.data_vars.items()}
    )
    return xds_to_zarr([ds.unify_chunks()], as_url(url).store())


def rewrite_parquet_main(datasets: Sequence[xr.Dataset], url: str | DatasetURL) -> None:
    """Replace the main table of the parquet dataset ``url`` by ``datasets`` (every column of
    every partition, as :func:`radiocloud.core.io.open_dataset` read them, some replaced).

    Eager: the new table is written beside the dataset and computed, then swapped in for the
    old one (a rename on local paths; on object stores the dataset is marked incomplete until
    the copy is done). Call it inside a :func:`column_transaction` of the changed columns.
    """
    from radiocloud.core.progress import compute

    url = as_url(url)
    store = url.store()
    fs, root = store.fs, store.root.rstrip("/")
    parent, base = root.rsplit("/", 1) if "/" in root else (".", root)
    tmp = DatasetURL(f"{parent}/.{base}.main-{uuid.uuid4().hex[:8]}", url.storage_options)
    tmp_root = tmp.store().root
    try:
        main = [_as_dask(ds) for ds in datasets]
        compute(xds_to_parquet(main, tmp.store()), description=f"rewriting {url.name}")
    except BaseException:
        if fs.exists(tmp_root):
            fs.rm(tmp_root, recursive=True)
        raise
    # from here on the new table is the only complete one: a failed swap leaves it in place
    if url.is_local:
        os.rename(f"{root}/MAIN", f"{tmp_root}/MAIN.old")
        os.rename(f"{tmp_root}/MAIN", f"{root}/MAIN")
    else:
        _mark(url, [ALL_COLUMNS])
        fs.rm(f"{root}/MAIN", recursive=True)
        fs.mv(f"{tmp_root}/MAIN", f"{root}/MAIN", recursive=True)
        _unmark(url, [ALL_COLUMNS])
    fs.rm(tmp_root, recursive=True)
    _run_everywhere(_forget_parquet_files, root)


def _forget_parquet_files(root: str) -> int:
    """Make dask-ms reopen the parquet files under ``root`` on their next read.

    dask-ms keeps one open file per parquet fragment path for as long as a graph refers to
    it (``ParquetFileProxy``, a Multiton; internals of dask-ms pinned below 0.3); after the
    files were replaced it would go on reading the old ones."""
    from daskms.experimental.arrow.reads import ParquetFileProxy

    forgotten = 0
    for proxy in list(getattr(ParquetFileProxy, "_Multiton__cache", {}).values()):
        if str(proxy.store.root).startswith(root) and hasattr(proxy, "_file"):
            with proxy.lock:
                proxy._file = None
                del proxy._file
            forgotten += 1
    return forgotten


def _run_everywhere(func, *args) -> None:
    """``func(*args)`` here and on the distributed workers, if a client is in use."""
    func(*args)
    try:
        from distributed import get_client

        get_client().run(func, *args)
    except (ImportError, ValueError):  # no distributed client in use
        pass
