"""Gain tables: one zarr folder holding one dask-ms zarr store per term (``OUT.zarr/G``),
each an xarray dataset: read a table with :func:`read_gain_table`, or a term with
``daskms.experimental.zarr.xds_from_zarr("OUT.zarr/G")[0]``.

Layout of a term's group: ``gains`` and ``gain_flags`` (gain_time, gain_freq, ant, dir,
corr), the diagonal of the term's Jones matrix per feed at each solution interval in time and
each frequency bin (a channel for terms whose gain varies across their interval, such as a
delay); ``params`` (gain_time, param_freq, ant, dir, corr, param), the solved parameters;
``iterations``, ``converged``, ``chi2_before``, ``chi2_after`` (gain_time, param_freq), the
solver's record. A table is written beside its final place and moved there only when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import dask
import xarray as xr
import zarr
from daskms.experimental.zarr import xds_from_zarr, xds_to_zarr

from radiocloud.core.errors import DatasetNotFoundError, OutputExistsError
from radiocloud.core.io.write import move_into_place

MARKER = "radiocloud_gain_table"


def write_gain_table(path: str, terms: dict[str, xr.Dataset], attrs: dict) -> None:
    """Write ``terms`` (name -> dataset) as the table at ``path``, replacing an existing
    gain table there (but nothing else)."""
    final = str(Path(path))
    if os.path.exists(final) and not is_gain_table(final):
        raise OutputExistsError(
            f"--gain-table {path} exists and is not a radiocloud gain table: choose a new path"
        )
    tmp = f"{final}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        root = zarr.open_group(tmp, mode="w")
        root.attrs.update({MARKER: 1, "terms": list(terms), **attrs})
        writes = [xds_to_zarr([ds.chunk()], f"{tmp}/{name}") for name, ds in terms.items()]
        dask.compute(writes)
        move_into_place(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def is_gain_table(path: str) -> bool:
    try:
        return MARKER in zarr.open_group(path, mode="r").attrs
    except (zarr.errors.GroupNotFoundError, ValueError, OSError, KeyError):
        return False


def read_gain_table(path: str) -> tuple[dict[str, xr.Dataset], dict]:
    """The terms (in chain order) of the table at ``path``, loaded, and its attributes."""
    if not os.path.exists(path):
        raise DatasetNotFoundError(f"gain table '{path}' does not exist")
    if not is_gain_table(path):
        raise DatasetNotFoundError(
            f"'{path}' is not a radiocloud gain table (written by rc-calibrate --gain-table)"
        )
    attrs = dict(zarr.open_group(path, mode="r").attrs)
    terms = {name: xds_from_zarr(f"{path}/{name}")[0].load() for name in attrs["terms"]}
    return terms, json.loads(json.dumps(attrs))
