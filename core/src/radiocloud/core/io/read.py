"""Open a dataset as dask-ms xarray datasets, with row chunks chosen from a memory budget."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from daskms import xds_from_ms, xds_from_table
from daskms.experimental.arrow import reads as _parquet_reads
from daskms.experimental.arrow import xds_from_parquet
from daskms.experimental.zarr import xds_from_zarr

from radiocloud.core import dims
from radiocloud.core.errors import ColumnError, NotADatasetError
from radiocloud.core.io.store import DatasetURL, as_url, detect_format

DEFAULT_GROUP_COLS = ("FIELD_ID", "DATA_DESC_ID", "SCAN_NUMBER")
DEFAULT_MEMORY_BUDGET = 2 * 2**30
# A chunk's columns are copied a few times on their way through a graph (read, cast, kernel
# output, write): size chunks at budget / (threads * WORKING_COPIES) so the peak stays in budget.
WORKING_COPIES = 4
MIN_ROW_CHUNK = 1_000


# dask-ms shares one pyarrow ParquetFile (one open file) per fragment between the threads that
# read its columns, and ParquetFile.read is not thread-safe: concurrent reads fail with
# "ReadRangeCache did not find matching cache entry" or crash the process. Reads of one
# fragment take turns on the proxy's own lock (other fragments still read in parallel).
_read_parquet_column = _parquet_reads.ParquetFileProxy.read_column


def _read_parquet_column_in_turn(self, column, start=None, end=None):
    _ = self.file  # open first: opening takes the same lock
    with self.lock:
        return _read_parquet_column(self, column, start, end)


_parquet_reads.ParquetFileProxy.read_column = _read_parquet_column_in_turn


def row_bytes(ds: xr.Dataset, columns: Sequence[str] | None = None) -> int:
    """Bytes one row takes in the given (default: all) row-shaped variables of ``ds``."""
    total = 0
    for name in columns or list(ds.data_vars):
        var = ds[name]
        if var.dims and var.dims[0] == dims.ROW:
            total += int(np.prod(var.shape[1:], dtype=np.int64)) * var.dtype.itemsize
    return max(total, 1)


def rows_per_chunk(bytes_per_row: int, *, memory_budget: int, threads: int) -> int:
    """Rows in one chunk such that ``threads`` chunks in flight stay within ``memory_budget``."""
    per_chunk = memory_budget / (max(threads, 1) * WORKING_COPIES)
    return max(MIN_ROW_CHUNK, int(per_chunk // bytes_per_row))


def _reader(fmt: str):
    return {"ms": xds_from_ms, "zarr": xds_from_zarr, "parquet": xds_from_parquet}[fmt]


PARTITION_KEY = "__daskms_partition_schema__"


def _normalise(ds: xr.Dataset) -> xr.Dataset:
    """zarr stores the partition schema as JSON lists; dask-ms's writers expect tuples."""
    schema = ds.attrs.get(PARTITION_KEY)
    if isinstance(schema, list):
        ds = ds.assign_attrs({PARTITION_KEY: tuple(tuple(item) for item in schema)})
    return ds


def _read(
    url: DatasetURL,
    fmt: str,
    columns,
    group_cols,
    row_chunk: int | None,
    index_cols=(),
    row_chunks=None,
):
    chunks = {dims.ROW: row_chunk} if row_chunk else None
    if row_chunks is not None:  # per group (Measurement Sets only)
        chunks = [{dims.ROW: tuple(c)} for c in row_chunks]
    if fmt == "ms":
        # index_cols=[]: rows keep their stored order within each group (else sorted by them)
        kwargs = {
            "group_cols": list(group_cols),
            "index_cols": list(index_cols),
            "table_keywords": False,
        }
        if chunks:
            kwargs["chunks"] = chunks
        return xds_from_ms(url.store(), columns=columns, **kwargs)
    return [_normalise(ds) for ds in _reader(fmt)(url.store(), columns=columns, chunks=chunks)]


def open_dataset(
    url: str | DatasetURL,
    *,
    columns: Sequence[str] | None = None,
    group_cols: Sequence[str] = DEFAULT_GROUP_COLS,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    threads: int = 1,
    row_chunk: int | None = None,
    storage_options: dict | None = None,
    refuse_partial: bool = True,
    sort_by: Sequence[str] = (),
    row_chunks: Sequence[Sequence[int]] | None = None,
) -> list[xr.Dataset]:
    """Open the main table of a dataset as a list of lazy xarray datasets, one per group.

    Parameters
    ----------
    url:
        MS directory, zarr store, parquet dataset or delta-set (its merged view); a local
        path or an fsspec URL.
    columns:
        Columns to read (default: all). Asking for a missing column is an error naming it.
    group_cols:
        Partitioning columns for a Measurement Set (zarr and parquet keep the partitioning
        they were written with).
    memory_budget, threads:
        Row chunks are chosen so ``threads`` chunks of the asked-for columns fit the budget.
    row_chunk:
        Rows per chunk, overriding the memory-based choice.
    refuse_partial:
        Refuse columns an interrupted write left incomplete (only the writer itself, inside
        its own ``column_transaction``, reads them).
    sort_by:
        Columns to order a Measurement Set's rows by within each group (e.g. ``("TIME",)``);
        by default rows keep their stored order. zarr and parquet keep their stored order.
    row_chunks:
        The row chunks of each group, exactly (Measurement Sets only; the groups as a first
        open with the same ``group_cols`` and ``sort_by`` gave them).
    """
    url = as_url(url, storage_options)
    fmt = detect_format(url)
    if fmt == "delta":
        from radiocloud.core.io.delta import open_delta

        return open_delta(url, columns=columns, group_cols=group_cols, memory_budget=memory_budget,
                          threads=threads, row_chunk=row_chunk, sort_by=sort_by,
                          row_chunks=row_chunks, refuse_partial=refuse_partial)  # fmt: skip
    if row_chunks is not None and fmt != "ms":
        raise ValueError("row_chunks is for Measurement Sets only; rechunk other formats")
    wanted = None if columns is None else list(dict.fromkeys(columns))
    probe = _read(url, fmt, wanted, group_cols, row_chunk or 10_000, sort_by)
    if not probe:
        raise NotADatasetError(f"dataset '{url}' has no rows")
    if wanted is not None:
        have = set(probe[0].data_vars) | set(probe[0].coords)
        missing = [c for c in wanted if c not in have]
        if missing:
            raise ColumnError(
                f"dataset '{url}' has no column {', '.join(missing)} "
                f"(it has: {', '.join(sorted(probe[0].data_vars))})"
            )
    if refuse_partial:
        check_not_partial(url, fmt, wanted or list(probe[0].data_vars))
    if row_chunk is None:
        row_chunk = rows_per_chunk(
            max(row_bytes(ds) for ds in probe), memory_budget=memory_budget, threads=threads
        )
    if row_chunks is not None:
        return _read(url, fmt, wanted, group_cols, None, sort_by, row_chunks)
    if fmt == "ms" or row_chunk != 10_000:
        return _read(url, fmt, wanted, group_cols, row_chunk, sort_by)
    return probe


def column_names(
    url: str | DatasetURL, *, storage_options: dict | None = None, refuse_partial: bool = True
) -> set[str]:
    """The columns of a dataset's main table (partition keys of a Measurement Set excluded),
    from its metadata: no column is read."""
    probe = open_dataset(
        url,
        group_cols=("DATA_DESC_ID",),
        row_chunk=100_000,
        storage_options=storage_options,
        refuse_partial=refuse_partial,
    )
    return set(probe[0].data_vars)


def check_not_partial(url: DatasetURL, fmt: str, columns: Sequence[str]) -> None:
    """Refuse columns an interrupted write left incomplete (see ``write.column_transaction``)."""
    from radiocloud.core.io.write import ALL_COLUMNS, partial_columns

    partial = set(partial_columns(url, fmt))
    if ALL_COLUMNS in partial:
        raise NotADatasetError(
            f"dataset '{url}' is incomplete: the run that wrote it was interrupted; write it again"
        )
    bad = sorted(partial & set(columns))
    if bad:
        raise ColumnError(
            f"column {', '.join(bad)} of '{url}' was left half-written by an interrupted run: "
            "re-run the step that writes it (or drop the column)"
        )


# Subtables whose rows can differ in shape (channels per SPW, correlations per setup)
ROW_GROUPED_SUBTABLES = ("SPECTRAL_WINDOW", "POLARIZATION")


def read_table(url: str | DatasetURL, subtable: str, *, storage_options=None) -> list[xr.Dataset]:
    """A subtable (ANTENNA, SPECTRAL_WINDOW, ...) as lazy datasets.

    SPECTRAL_WINDOW and POLARIZATION give one dataset per row, since their rows may differ in
    shape; the others give one dataset.
    """
    url = as_url(url, storage_options)
    fmt = detect_format(url)
    if fmt == "delta":
        from radiocloud.core.io.deltaops import read_delta_table

        return read_delta_table(url, subtable)
    store = url.store(subtable)
    if fmt == "ms":
        group = "__row__" if subtable in ROW_GROUPED_SUBTABLES else None
        return list(xds_from_table(store, group_cols=group))
    return [_normalise(ds) for ds in _reader(fmt)(store)]
