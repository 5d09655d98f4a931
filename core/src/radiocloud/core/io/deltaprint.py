"""The fingerprint a delta-set records of its parent when branched, and the check on open.

For a dataset parent (MS, zarr, parquet): its format, row count, rows per group, every main
column's dtype and cell shape, a SHA-256 of TIME, ANTENNA1, ANTENNA2 and UVW in the first and
last ``SAMPLE_ROWS`` rows of every group, and a SHA-256 of the ANTENNA, FIELD, SPECTRAL_WINDOW,
POLARIZATION and DATA_DESCRIPTION subtables' contents. For a delta-set parent: its generation
(a counter every commit to it increments) and row count.

Not detected: a change to the values of other columns (DATA, FLAG, ...) or of rows between
the sampled ones that leaves all of the above as they were.
"""

from __future__ import annotations

import hashlib
import json
import time

import dask
import numpy as np

from radiocloud.core.errors import DeltaParentChangedError
from radiocloud.core.io.store import DatasetURL

SAMPLE_ROWS = 8
SAMPLE_COLUMNS = ("TIME", "ANTENNA1", "ANTENNA2", "UVW")
RECHECK_SECONDS = 30.0
_checked: dict[tuple[str, str], float] = {}
SUBTABLES = ("ANTENNA", "FIELD", "SPECTRAL_WINDOW", "POLARIZATION", "DATA_DESCRIPTION")


def fingerprint(parent: DatasetURL) -> dict:
    from radiocloud.core.io.deltaindex import is_delta, read_manifest

    if is_delta(parent):
        manifest = read_manifest(parent)
        return {
            "kind": "delta",
            "generation": int(manifest["generation"]),
            "rows": int(manifest["nrow"]),
        }
    return _dataset_fingerprint(parent)


def _dataset_fingerprint(parent: DatasetURL) -> dict:
    from radiocloud.core.io.delta import canonical_partitions
    from radiocloud.core.io.read import read_table
    from radiocloud.core.io.store import detect_format, list_subtables

    fmt = detect_format(parent)
    parts = canonical_partitions(parent, fmt, columns=None)
    columns = {
        name: [str(var.dtype), list(var.shape[1:])]
        for name, var in sorted(parts[0].data_vars.items())
    }
    samples = []
    for ds in parts:
        n = ds.sizes["row"]
        rows = np.unique(np.r_[0 : min(n, SAMPLE_ROWS), max(n - SAMPLE_ROWS, 0) : n])
        samples += [ds[c].data[rows] for c in SAMPLE_COLUMNS if c in ds]
    digest = hashlib.sha256()
    for block in dask.compute(*samples, scheduler="sync"):
        digest.update(np.ascontiguousarray(block).tobytes())
    sub = hashlib.sha256()
    have = set(list_subtables(parent, fmt))
    for name in SUBTABLES:
        if name not in have:
            continue
        for ds in dask.compute(*read_table(parent, name), scheduler="sync"):
            for var in sorted(ds.data_vars):
                values = ds[var].values
                sub.update(var.encode())
                plain = values.astype(str) if values.dtype == object else values
                sub.update(plain.tobytes())
    return {
        "kind": "dataset",
        "format": fmt,
        "rows": int(sum(ds.sizes["row"] for ds in parts)),
        "group_rows": [int(ds.sizes["row"]) for ds in parts],
        "columns": columns,
        "sample_sha256": digest.hexdigest(),
        "subtables_sha256": sub.hexdigest(),
    }


def check_fingerprint(delta: DatasetURL, manifest: dict, parent: DatasetURL) -> None:
    """Raise :class:`DeltaParentChangedError` if ``parent`` is not what ``delta`` branched.

    A parent found as recorded is not checked again for ``RECHECK_SECONDS`` in this process
    (one app run opens its dataset a dozen times; each check reads the parent's subtables)."""
    then = manifest["parent_fingerprint"]
    key = (parent.url, json.dumps(then, sort_keys=True))
    if time.monotonic() - _checked.get(key, -RECHECK_SECONDS) < RECHECK_SECONDS:
        return
    now = fingerprint(parent)
    if now == then:
        _checked[key] = time.monotonic()
        return
    what = _first_difference(then, now)
    raise DeltaParentChangedError(
        f"parent '{parent}' of delta-set '{delta}' changed since it was branched ({what}): "
        "the delta no longer lines up with it; put the original parent back, or branch "
        "again from the parent as it is now"
    )


def _first_difference(then: dict, now: dict) -> str:
    labels = {
        "kind": "it is now another kind of dataset",
        "format": "its format",
        "rows": "its row count",
        "group_rows": "its rows per partition",
        "columns": "its columns or their shapes",
        "sample_sha256": "the content of sampled rows",
        "subtables_sha256": "its subtables",
        "generation": "new columns were committed to it",
    }
    for key, label in labels.items():
        if then.get(key) != now.get(key):
            return label
    return "its fingerprint"
