"""radiocloud.core.io: the only code that touches casacore, zarr and fsspec.

Open any dataset URL (MS, zarr, parquet; local or ``s3://``) with :func:`open_dataset`, its
subtables with :func:`open_subtables`, write columns back lazily with :func:`write_columns`
inside a :func:`column_transaction`, and write a whole new dataset with :func:`new_dataset` +
:func:`write_tables`. :func:`convert` copies a dataset between formats. Flag versions
(:func:`save_version`, :func:`restore_version`, ...) keep named copies of FLAG beside a dataset.
"""

from radiocloud.core.io.convert import convert
from radiocloud.core.io.flagversions import (
    FlagVersion,
    delete_version,
    list_versions,
    restore_version,
    save_version,
    version_exists,
)
from radiocloud.core.io.gaintable import is_gain_table, read_gain_table, write_gain_table
from radiocloud.core.io.npy import store_npy
from radiocloud.core.io.read import (
    DEFAULT_GROUP_COLS,
    DEFAULT_MEMORY_BUDGET,
    column_names,
    open_dataset,
    read_table,
    row_bytes,
    rows_per_chunk,
)
from radiocloud.core.io.store import (
    DatasetURL,
    Format,
    as_url,
    detect_format,
    format_from_suffix,
    list_subtables,
)
from radiocloud.core.io.subtables import STOKES_CODES, STOKES_NAMES, Subtables, open_subtables
from radiocloud.core.io.write import (
    column_transaction,
    new_dataset,
    partial_columns,
    rewrite_parquet_main,
    write_columns,
    write_tables,
    write_zarr,
)

__all__ = [
    "DEFAULT_GROUP_COLS",
    "DEFAULT_MEMORY_BUDGET",
    "STOKES_CODES",
    "STOKES_NAMES",
    "DatasetURL",
    "FlagVersion",
    "Format",
    "Subtables",
    "as_url",
    "column_names",
    "column_transaction",
    "convert",
    "delete_version",
    "detect_format",
    "format_from_suffix",
    "is_gain_table",
    "list_subtables",
    "list_versions",
    "new_dataset",
    "open_dataset",
    "open_subtables",
    "partial_columns",
    "read_gain_table",
    "read_table",
    "restore_version",
    "rewrite_parquet_main",
    "row_bytes",
    "rows_per_chunk",
    "save_version",
    "store_npy",
    "version_exists",
    "write_columns",
    "write_gain_table",
    "write_tables",
    "write_zarr",
]
