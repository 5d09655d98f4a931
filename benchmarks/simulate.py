"""Benchmark rc-simulate: a 64-antenna, 256-channel, 300-integration observation of the eso137
field (all corruptions on), run as the user runs it, in a subprocess.

Prints one JSON object: visibilities/s, wall and CPU time, peak RSS of the run, the data
volume written, and the machine. ``--antennas/--channels/--integrations`` change the size.
Timings on shared machines are noisy: compare runs on the same machine, not across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--antennas", default="64")
    parser.add_argument("--channels", default="256")
    parser.add_argument("--integrations", default="300")
    parser.add_argument("--memory-budget", default="4GiB")
    parser.add_argument("--workdir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the simulated MS")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="rc-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "bench.ms"
    exe = shutil.which("rc-simulate") or str(Path(sys.executable).with_name("rc-simulate"))
    cmd = [exe, str(out), "--antennas", args.antennas, "--channels", args.channels,
           "--integrations", args.integrations, "--integration-time", "8s", "--sky", "eso137",
           "--seed", "7", "--memory-budget", args.memory_budget, "--overwrite"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(proc.returncode)
    manifest = json.loads((workdir / "bench.truth" / "manifest.json").read_text())
    obs = manifest["observation"]
    n_vis = (
        obs["n_rows"]
        * (args.channels and int(manifest["settings"]["channels"]))
        * len(obs["correlations"])
    )
    result = {
        "benchmark": "rc-simulate",
        "command": " ".join(cmd[1:]),
        "antennas": len(obs["antennas"]),
        "channels": manifest["settings"]["channels"],
        "integrations": manifest["settings"]["integrations"],
        "sky_components": manifest["sky"]["components"],
        "rows": obs["n_rows"],
        "visibilities": n_vis,
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "visibilities_per_s": round(n_vis / wall),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "ms_bytes": du(out),
        "truth_bytes": du(workdir / "bench.truth"),
        "rfi_mask_fraction": manifest.get("rfi_mask_fraction"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "summary": proc.stdout.strip().splitlines()[-1],
    }
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
