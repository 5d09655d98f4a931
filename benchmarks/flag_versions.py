"""Benchmark flag versions: save and restore time, and store size against the raw FLAG column.

Builds (in ``--workdir``) a test MS of ``--antennas`` x ``--channels`` x 4 correlations x
``--integrations`` with the core's builder, and a zarr copy, then for two flag patterns,
"random" (10% of flags set independently: the worst case for compression) and "rfi" (whole
channels, a time range and one antenna flagged, as flaggers leave them), times
``save_version`` and ``restore_version`` in this process (threaded scheduler, ``--threads``)
and checks the restore is bit-exact. Prints one JSON object.

Run with the workspace's Python: ``.venv/bin/python benchmarks/flag_versions.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from radiocloud.core import io
from radiocloud.core.cli import RuntimeOptions, dask_runtime
from radiocloud.core.testing import MSSpec, build_ms


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def rfi_flags(ds, rng) -> da.Array:
    """Channels 10-19 and every 16th channel, the middle tenth of the rows and antenna 3."""
    nrow, nchan, ncorr = ds.FLAG.shape
    chan = np.zeros(nchan, bool)
    chan[10:20] = True
    chan[::16] = True
    rows = np.zeros(nrow, bool)
    rows[int(0.45 * nrow) : int(0.55 * nrow)] = True
    rows |= (ds.ANTENNA1.values == 3) | (ds.ANTENNA2.values == 3)
    flag = rows[:, None, None] | chan[None, :, None] | (rng.random((nrow, nchan, ncorr)) < 0.002)
    return da.from_array(np.broadcast_to(flag, (nrow, nchan, ncorr)).copy())


def write_flags(url: str, pattern: str) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    dss = io.open_dataset(url, columns=["FLAG", "FLAG_ROW", "ANTENNA1", "ANTENNA2"])
    new = []
    for ds in dss:
        if pattern == "random":
            flag = da.from_array(rng.random(ds.FLAG.shape) < 0.1)
        else:
            flag = rfi_flags(ds, rng)
        new.append(ds.assign(FLAG=(ds.FLAG.dims, flag), FLAG_ROW=(("row",), flag.all(axis=(1, 2)))))
    with io.column_transaction(url, ["FLAG", "FLAG_ROW"]):
        dask.compute(io.write_columns(new, url, ["FLAG", "FLAG_ROW"]))
    return [ds.FLAG.values for ds in io.open_dataset(url, columns=["FLAG"])]


def measure(url: str, pattern: str, threads: int) -> dict:
    flags = write_flags(url, pattern)
    store = Path(f"{url}.flagversions") / pattern
    t0 = time.perf_counter()
    version = io.save_version(url, pattern, threads=threads)
    t_save = time.perf_counter() - t0
    write_flags(url, "rfi" if pattern == "random" else "random")  # something else in FLAG
    t0 = time.perf_counter()
    io.restore_version(url, pattern, threads=threads)
    t_restore = time.perf_counter() - t0
    back = [ds.FLAG.values for ds in io.open_dataset(url, columns=["FLAG"])]
    exact = all(np.array_equal(a, b) for a, b in zip(flags, back, strict=True))
    raw = sum(f.size for f in flags)  # bytes: casacore and numpy keep a bool in a byte
    return {
        "flagged_fraction": round(version.flagged_fraction, 4),
        "save_s": round(t_save, 3),
        "restore_s": round(t_restore, 3),
        "store_bytes": du(store),
        "raw_flag_bytes": raw,
        "packed_bytes": sum(f.shape[0] * -(-f.shape[1] * f.shape[2] // 8) for f in flags),
        "ratio_raw_to_store": round(raw / du(store), 1),
        "bit_exact": exact,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--antennas", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--integrations", type=int, default=100)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="rc-flagversions-"))
    work.mkdir(parents=True, exist_ok=True)
    spec = MSSpec(n_ant=args.antennas, n_time=args.integrations, spw_chans=(args.channels,))
    ms = build_ms(work / "bench.ms", spec, overwrite=True)
    zarr = str(work / "bench.zarr")
    shutil.rmtree(zarr, ignore_errors=True)
    io.convert(ms, zarr)
    for url in (ms, zarr):
        shutil.rmtree(f"{url}.flagversions", ignore_errors=True)
    runtime = RuntimeOptions(threads=args.threads)
    with dask_runtime(runtime):
        results = {
            fmt: {p: measure(url, p, runtime.nthreads) for p in ("random", "rfi")}
            for fmt, url in (("ms", ms), ("zarr", zarr))
        }
    rows = args.antennas * (args.antennas - 1) // 2 * args.integrations
    shape = {"antennas": args.antennas, "channels": args.channels, "correlations": 4}
    print(json.dumps({"dataset": {**shape, "rows": rows}, "threads": args.threads, **results}))


if __name__ == "__main__":
    main()
