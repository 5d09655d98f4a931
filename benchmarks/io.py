"""Benchmark dataset I/O: read throughput of DATA from a Measurement Set, zarr and zarr on S3,
with 1 and 2 dask worker processes, and write throughput of a new column to a delta-set
against the same write into the Measurement Set.

Data. rc-simulate writes ``obs.ms`` (``--antennas`` x ``--channels`` x ``--integrations``,
default 32 x 256 x 120: 60 k rows, 61 M visibilities, 490 MB of DATA); ``rc-data convert``
copies it to ``obs.zarr``; the zarr copy is uploaded to ``s3://bench/obs.zarr`` on a moto
server on 127.0.0.1 (loopback: what S3 costs in requests and encoding, not the network).

Reads. ``radiocloud.core.io.open_dataset(url, columns=["DATA"], row_chunk=R)`` with R the rows
of the zarr copy's stored chunks (``rc-data convert`` writes about 64 MiB of DATA per chunk),
every chunk read and one value kept from each (so the figure is the read, not a reduction).
Schedulers: dask's threads in one process (1 or 2 threads; how the apps run by default), and
a ``distributed.LocalCluster`` of 1 or 2 worker processes of one thread each (started before
the clock). Each figure is the best of ``--repeat`` runs, in MB/s of DATA (complex64). Local
files are read warm (the page cache holds them) and, where this process may drop the page
cache (root on Linux), cold: the cache is dropped before each read.

Writes. ``rc-data branch obs.ms delta`` then MODEL_DATA = DATA / 2 written through
``io.write_columns`` inside ``io.column_transaction`` (as every app writes), into the delta;
then the same into a copy of the MS (a new column there too), with the threaded scheduler.

Run with the workspace's Python: ``.venv/bin/python benchmarks/io.py [--small]``. Prints one
JSON object (also to ``--out``) and a short table on stderr. Timings on shared machines are
noisy: the ratios (zarr / MS) are the figures to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import git_commit, logger, machine, venv_tool

log = logger("io-bench")
BUCKET = "bench"
REGION = "eu-west-1"


def run(cmd: list[str], cwd: Path) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{result.stderr[-2000:]}")


def stored_rows(path: str) -> int:
    """Rows per stored chunk of the zarr copy's DATA (what rc-data convert chose)."""
    import zarr

    return int(zarr.open_group(f"{path}/MAIN/MAIN_0", mode="r")["DATA"].chunks[0])


def drop_page_cache() -> bool:
    """Drop Linux's page cache (root only); whether it was dropped."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def _last_value(block):
    """One value of a block (the read is the work; nothing else is computed)."""
    import numpy as np

    return np.asarray(block.reshape(-1)[-1:]).reshape((1,) * block.ndim)


def read_data(url, scheduler: dict, nbytes: int, repeat: int, rows: int, cold: bool) -> dict:
    """Best-of-``repeat`` wall time of reading every DATA chunk of ``url``."""
    import dask
    import dask.array as da
    import numpy as np

    from radiocloud.core import io

    walls, kept = [], []
    for _ in range(repeat):
        if cold:
            drop_page_cache()
        start = time.perf_counter()
        datasets = io.open_dataset(url, columns=["DATA"], row_chunk=rows)
        kept = dask.compute(
            *[da.map_blocks(_last_value, ds.DATA.data, chunks=(1, 1, 1)) for ds in datasets],
            **scheduler,
        )
        walls.append(time.perf_counter() - start)
    best = min(walls)
    return {
        "wall_s": round(best, 3),
        "walls_s": [round(w, 3) for w in walls],
        "mb_per_s": round(nbytes / best / 1e6, 1),
        "checksum": complex(sum(np.sum(k) for k in kept)),
    }


def write_model(url, threads: int) -> float:
    """Wall time of writing MODEL_DATA = DATA / 2 into ``url`` as the apps write columns."""
    import dask

    from radiocloud.core import io

    start = time.perf_counter()
    datasets = io.open_dataset(url, columns=["DATA"])
    out = [ds.assign(MODEL_DATA=(ds.DATA.dims, ds.DATA.data / 2)) for ds in datasets]
    with io.column_transaction(url, ["MODEL_DATA"]):
        writes = io.write_columns(out, url, ["MODEL_DATA"])
        dask.compute(writes, scheduler="threads", num_workers=threads)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="16 x 64 x 60 (a quick check)")
    parser.add_argument("--antennas", type=int)
    parser.add_argument("--channels", type=int)
    parser.add_argument("--integrations", type=int)
    parser.add_argument("--repeat", type=int, default=3, help="reads per case (best is kept)")
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder, removed")
    parser.add_argument("--out", type=Path, help="JSON file (default: WORKDIR/io.json)")
    args = parser.parse_args()
    size = (16, 64, 60) if args.small else (32, 256, 120)
    ants = args.antennas or size[0]
    chans = args.channels or size[1]
    ints = args.integrations or size[2]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rc-io-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = bench(workdir, ants, chans, ints, args.repeat)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(result, indent=2)
    out = args.out or (workdir / "io.json" if args.workdir else None)
    if out is not None:
        out.write_text(text + "\n")
    print(text)
    print(table(result), file=sys.stderr)


def bench(workdir: Path, ants: int, chans: int, ints: int, repeat: int) -> dict:
    import s3fs
    from distributed import Client, LocalCluster

    from radiocloud.core import io
    from radiocloud.core.testing.s3 import moto_server

    for name in ("obs.ms", "obs.truth", "obs.zarr", "copy.ms", "obs.delta"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    log(f"simulating {ants} x {chans} x {ints} in {workdir}")
    run([venv_tool("rc-simulate"), "obs.ms", "--antennas", str(ants), "--channels", str(chans),
         "--integrations", str(ints), "--no-rfi"], workdir)  # fmt: skip
    run([venv_tool("rc-data"), "convert", "obs.ms", "obs.zarr"], workdir)
    ms, zarr = str(workdir / "obs.ms"), str(workdir / "obs.zarr")
    first = io.open_dataset(ms, columns=["DATA"])
    nbytes = sum(ds.DATA.nbytes for ds in first)
    visibilities = sum(ds.DATA.size for ds in first)
    with moto_server() as endpoint:
        options = {"key": "bench", "secret": "bench",
                   "client_kwargs": {"endpoint_url": endpoint, "region_name": REGION}}  # fmt: skip
        s3fs.S3FileSystem(**options).mkdir(BUCKET, region_name=REGION)
        remote = io.DatasetURL(f"s3://{BUCKET}/obs.zarr", options)
        log("uploading the zarr copy to S3 (moto on loopback)")
        io.convert(zarr, remote)
        rows = stored_rows(zarr)
        cold = drop_page_cache()
        cases = [("ms", ms, False), ("zarr", zarr, False), ("zarr_s3", remote, False)]
        if cold:
            cases[2:2] = [("ms_cold", ms, True), ("zarr_cold", zarr, True)]
        reads: dict[str, dict] = {}

        def read_all(label: str, scheduler: dict) -> None:
            for name, url, drop in cases:
                log(f"reading DATA of {name} with {label}")
                reads[f"{name}_{label}"] = read_data(url, scheduler, nbytes, repeat, rows, drop)

        for threads in (1, 2):
            read_all(f"{threads}t", {"scheduler": "threads", "num_workers": threads})
        for workers in (1, 2):
            with (
                LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
                ) as cluster,  # fmt: skip
                Client(cluster) as client,
            ):
                read_all(f"{workers}w", {"scheduler": client})
    shutil.copytree(ms, workdir / "copy.ms")
    run([venv_tool("rc-data"), "branch", "obs.ms", "obs.delta"], workdir)
    log("writing MODEL_DATA into the delta-set and into a copy of the MS")
    delta_s = write_model(str(workdir / "obs.delta"), threads=2)
    ms_s = write_model(str(workdir / "copy.ms"), threads=2)
    reference = reads["ms_1t"]["checksum"]
    for r in reads.values():  # every case read the same values
        r["same_checksum_as_ms"] = r["checksum"] == reference
        r["checksum"] = [r["checksum"].real, r["checksum"].imag]
    return {
        "benchmark": "dataset I/O: DATA reads (MS, zarr, zarr on S3) and a column write to a "
        "delta-set",
        "config": {
            "antennas": ants,
            "channels": chans,
            "integrations": ints,
            "repeat": repeat,
            "row_chunk": rows,
            "cold_reads": cold,
        },
        "data": {"visibilities": int(visibilities), "data_mb": round(nbytes / 1e6, 1)},
        "reads": reads,
        "ratios": ratios(reads),
        "writes": {
            "delta_wall_s": round(delta_s, 3),
            "delta_mb_per_s": round(nbytes / delta_s / 1e6, 1),
            "ms_wall_s": round(ms_s, 3),
            "ms_mb_per_s": round(nbytes / ms_s / 1e6, 1),
            "delta_over_ms": round(ms_s / delta_s, 2),
        },
        "notes": [
            "reads: best of the repeats; MB/s of DATA (complex64) as stored; row chunks of the "
            "zarr copy's stored chunks for every format; Nt: dask threads in one process, Nw: "
            "a LocalCluster of N one-thread worker processes, started before the clock",
            "warm: the files in the page cache; _cold: the page cache dropped before each read",
            "zarr on S3: moto_server on 127.0.0.1, so request handling and encoding, no network",
            "writes: MODEL_DATA = DATA / 2 through io.write_columns in io.column_transaction, "
            "threaded scheduler with 2 threads; delta_over_ms > 1: the delta is faster",
        ],
        "machine": machine(),
        "radiocloud_commit": git_commit(),
    }


def ratios(reads: dict) -> dict:
    """Read throughput of each zarr case over the MS's with the same scheduler (and cache)."""
    out = {}
    for key, r in reads.items():
        name, _, label = key.rpartition("_")
        ms = "ms_cold" if name.endswith("_cold") else "ms"
        if name.startswith("zarr"):
            out[f"{name}_over_{ms}_{label}"] = round(
                r["mb_per_s"] / reads[f"{ms}_{label}"]["mb_per_s"], 2
            )
    return out


def table(result: dict) -> str:
    rows = [f"{'case':<16} {'MB/s':>8} {'wall s':>8}"]
    for name, r in result["reads"].items():
        rows.append(f"{name:<16} {r['mb_per_s']:>8.1f} {r['wall_s']:>8.3f}")
    rows += [f"{k:<28} {v:>6.2f}" for k, v in result["ratios"].items()]
    w = result["writes"]
    rows.append(f"write MODEL_DATA: delta {w['delta_mb_per_s']} MB/s, MS {w['ms_mb_per_s']} MB/s")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
