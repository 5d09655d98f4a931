"""Benchmark rc-plot against shadeMS, the peer tool: amplitude against uv distance over every
visibility of the same MS, drawn from the same spec, in one run.

Data. rc-simulate writes (once, cached in ``--workdir`` with a stamp of its settings) a
64-antenna, 256-channel (856-1712 MHz), 300 x 8 s MeerKAT observation of the default ESO 137-006
field with four correlations (XX XY YX YY, as MeerKAT records them) and all corruptions on:
604,800 rows, 619,315,200 points. rc-simulate writes no flags, so every point is drawn; both
tools would leave flagged points out.

The spec, made the same in both tools:

* x: uv distance in wavelengths per channel (rc-plot ``UVWAVE``, shadeMS ``uv``; shadeMS has
  no uv distance in metres, so rc-plot's ``UV`` would be a lighter, per-row axis);
* y: amplitude of DATA, every correlation (neither tool is given a correlation selection);
* an aggregation grid of ``--canvas`` pixels (default 1280x900, shadeMS's default canvas;
  rc-plot ``--pixels``), axis ranges from the data (both find them in a first pass over the
  data; shadeMS is told not to save them, ``--no-lim-save``), one PNG of about 1600x1200.

Cases, each tool in its own process (wall, CPU and peak RSS of the process tree from the
harness), after one warm-up run of every command on a tiny MS (numba's on-disk caches):

1. ``density``: counts per pixel. rc-plot at its default memory budget (2 GiB), rc-plot with
   ``--memory-budget 512MiB`` (the flat-memory claim), shadeMS at its defaults.
2. ``antenna1``: counts per pixel per ANTENNA1, one colour per antenna (rc-plot ``--colour-by
   ANTENNA1``; shadeMS ``-c ANTENNA1 --cnum <antennas>``: its default ``--cnum 16`` would fold
   antennas modulo 16 into 16 colours); rc-plot at its default budget only: 64 grids of
   1280x900 int64 counts are 590 MB, held once per thread and once for the result, which
   exceeds 512 MiB by itself (rc-plot refuses that up front, saying how much it needs).

Both tools run with their defaults otherwise: rc-plot on dask threads over every core, shadeMS
on dask's threaded scheduler (also every core; its ``-j`` parallelises whole plots, of which
there is one) with 5,000-row chunks. Each timed run starts with the MS in the page cache (its
files are read once, untimed, just before). Wall time is the whole process, Python start-up
and imports included; each tool's own figure is in ``reported``.

Figures per tool: wall, CPU, peak RSS, points/s (rows x channels x correlations of the MS,
flagged or not, over wall), and the fraction of the output PNG's pixels that are coloured (a
check that the tool drew something); per case the ratios rc-plot / shadeMS. With ``--repeat
N`` each figure is from the run of median wall time (the lower middle one for an even N).

Run with the workspace's Python (``.venv/bin/python benchmarks/plot.py``; ``--quick`` for a
16-antenna, 64-channel, 60-integration check; ``--rc-revision HEAD`` measures rc-plot as
committed while its working tree is being edited). shadeMS comes from the ``peers`` harness.
Prints one JSON object (also written to ``--out``). Timings on shared machines are noisy:
compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
from harness import (
    git_commit,
    logger,
    machine,
    measure,
    peer_exe,
    rc_source,
    summary_line,
    venv_tool,
    version_of,
)

log = logger("plot-bench")
SEED = 3
FULL = ("--antennas", "64", "--channels", "256", "--integrations", "300")
QUICK = ("--antennas", "16", "--channels", "64", "--integrations", "60")
WARMUP = ("--antennas", "8", "--channels", "32", "--integrations", "40")
OBSERVATION = ("--correlations", "4", "--integration-time", "8s")
IMAGE = "1600x1200"  # rc-plot --size; shadeMS makes 1740x1252 around a 1280x900 canvas
READ_BYTES = 16 * 2**20
REPORTED = {"rc": ("stdout", "rc-plot:"), "shadems": ("stderr", "Total time")}


# ---- data ---------------------------------------------------------------------------------


def simulate(ms: Path, size: tuple[str, ...]) -> None:
    """Write ``ms`` with rc-simulate unless it exists with the same settings (a stamp file)."""
    cmd = [venv_tool("rc-simulate"), str(ms), *size, *OBSERVATION, "--seed", str(SEED),
           "--overwrite"]  # fmt: skip
    stamp = ms.with_suffix(".json")
    if ms.exists() and stamp.exists() and json.loads(stamp.read_text()) == cmd[2:]:
        return
    stamp.unlink(missing_ok=True)
    log(f"simulating {ms.name}: {shlex.join(cmd[2:])}")
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    stamp.write_text(json.dumps(cmd[2:]))


def ms_facts(ms: Path) -> dict:
    """Rows, channels, correlations, points (all of them, flagged or not), the flagged
    fraction, antennas, and the sizes on disk."""
    from casacore.tables import table

    with table(f"{ms}::ANTENNA", ack=False) as t:
        antennas = t.nrows()
    flagged = 0
    with table(str(ms), ack=False) as t:
        rows, (nchan, ncorr) = t.nrows(), t.getcell("DATA", 0).shape
        for start in range(0, rows, 50_000):
            flagged += int(t.getcol("FLAG", start, min(50_000, rows - start)).sum())
    points = rows * nchan * ncorr
    return {"antennas": antennas, "rows": rows, "channels": nchan, "correlations": ncorr,
            "points": points, "flagged_fraction": round(flagged / points, 5),
            "data_column_gib": round(points * 8 / 2**30, 2),
            "ms_gib": round(sum(f.stat().st_size for f in ms.rglob("*") if f.is_file())
                            / 2**30, 2)}  # fmt: skip


def read_through(ms: Path) -> None:
    """Read every file of ``ms`` once, so that each timed run finds it in the page cache."""
    for path in sorted(p for p in ms.rglob("*") if p.is_file()):
        with path.open("rb", buffering=0) as f:
            while f.read(READ_BYTES):
                pass


# ---- the two tools' commands ----------------------------------------------------------------


def commands(args, shadems: str, antennas: int, prefix: list[str]) -> dict[str, dict]:
    """Per case, per tool: the command, with {ms} and {png} to fill in; rc-plot's after
    ``prefix``."""
    nx, ny = (int(v) for v in args.canvas.lower().split("x"))
    rc = [*prefix, venv_tool("rc-plot"), "{ms}", "-x", "UVWAVE", "-y", "DATA:amp", "--pixels",
          f"{nx}x{ny}", "--size", IMAGE, "--output", "{png}"]  # fmt: skip
    small = ["--memory-budget", args.small_budget]
    sm = [shadems, "{ms}", "-x", "uv", "-y", "DATA:amp", "-X", str(nx), "-Y", str(ny),
          "--no-lim-save", "--png", "{png}"]  # fmt: skip
    by_antenna = ["--colour-by", "ANTENNA1"]
    cases = {
        "density": {"rc_plot": rc, "rc_plot_small_budget": [*rc, *small], "shadems": sm},
        "antenna1": {
            "rc_plot": [*rc, *by_antenna],
            "shadems": [*sm, "-c", "ANTENNA1", "--cnum", str(antennas)],
        },
    }
    return {c: tools for c, tools in cases.items() if c in args.cases.split(",")}


def fill(cmd: list[str], ms: Path, png: Path) -> list[str]:
    return [str(ms) if a == "{ms}" else str(png) if a == "{png}" else a for a in cmd]


def coloured_fraction(png: Path) -> float | None:
    """The fraction of the image's pixels with colour in them (RGB spread > 40 of 255): axes,
    labels and background are grey, so an empty plot scores about 0."""
    from PIL import Image

    try:
        rgb = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    except OSError:
        return None
    return round(float((np.ptp(rgb, axis=2) > 40).mean()), 4)


def warm_up(workdir: Path, cases: dict) -> None:
    """Numba caches compiled kernels on disk: one run of each command on a tiny MS."""
    ms = workdir / "warmup.ms"
    simulate(ms, WARMUP)
    for case, tools in cases.items():
        for tool, cmd in tools.items():
            log(f"warm-up run of {tool} ({case})")
            result = measure(fill(cmd, ms, workdir / "warmup.png"), workdir / "warmup", 900)
            if result["returncode"] != 0:
                log(f"warm-up of {tool} ({case}) failed:\n{result.get('stderr_tail')}")


# ---- running --------------------------------------------------------------------------------


def run_once(tool: str, cmd: list[str], ms: Path, workdir: Path, name: str, args) -> dict:
    png = workdir / "png" / f"{name}.png"
    png.unlink(missing_ok=True)
    read_through(ms)
    full = fill(cmd, ms, png)
    log(f"{name}: {shlex.join(full)}")
    logs = workdir / "logs" / name
    result = measure(full, logs, args.timeout)
    if result["returncode"] != 0 or "timed_out" in result or not png.exists():
        result["failed"] = True
        return result
    result["reported"] = summary_line(logs, *REPORTED["shadems" if tool == "shadems" else "rc"])
    result["png"] = str(png)
    result["png_coloured_fraction"] = coloured_fraction(png)
    if not result["png_coloured_fraction"]:
        result["failed"] = "the PNG has no coloured pixels: nothing was drawn"
    return result


def run_tool(tool: str, cmd: list[str], ms: Path, workdir: Path, case: str, args,
             points: int) -> dict:  # fmt: skip
    runs = [run_once(tool, cmd, ms, workdir, f"{case}-{tool}-{i}", args)
            for i in range(args.repeat)]  # fmt: skip
    done = [r for r in runs if not r.get("failed")]
    if not done:
        return runs[0]
    result = sorted(done, key=lambda r: r["wall_s"])[(len(done) - 1) // 2]
    result["points_per_s"] = round(points / result["wall_s"])
    if args.repeat > 1:
        result["wall_s_all"] = [r.get("wall_s") for r in runs]
        result["peak_rss_mib_all"] = [r.get("peak_rss_mib") for r in runs]
    return result


def ratios(runs: dict) -> dict:
    """Each rc-plot run over shadeMS: throughput (>1: rc-plot faster), peak RSS and CPU
    (<1: rc-plot leaner)."""
    peer = runs.get("shadems", {})
    out = {}
    for tool, run in runs.items():
        if tool.startswith("rc_plot") and not run.get("failed") and not peer.get("failed"):
            out[tool] = {
                "throughput_ratio": round(run["points_per_s"] / peer["points_per_s"], 3),
                "peak_rss_ratio": round(run["peak_rss_mib"] / peer["peak_rss_mib"], 3),
                "cpu_s_ratio": round(run["cpu_s"] / max(peer["cpu_s"], 1e-3), 3),
            }
    return out


NOTES = [
    "points = rows x channels x correlations of the MS, flagged or not (none are flagged "
    "here); points_per_s = points / wall_s, wall_s of the whole process including Python "
    "start-up and imports ('reported' holds each tool's own timing line)",
    "throughput_ratio = rc-plot points/s / shadeMS points/s (>1: rc-plot faster); "
    "peak_rss_ratio and cpu_s_ratio = rc-plot / shadeMS (<1: rc-plot leaner)",
    "x is uv distance in wavelengths per channel in both tools (rc-plot UVWAVE, shadeMS uv): "
    "shadeMS has no uv distance in metres",
    "timings are warm: each command first ran on a tiny MS (numba caches compiled kernels on "
    "disk), and the MS's files are read once, untimed, before every timed run",
    "rc_plot_small_budget: rc-plot with --memory-budget as given in 'small_budget'; "
    "rc_plot: its default budget (2 GiB)",
    "antenna1: shadeMS --cnum set to the antenna count, so both draw one colour per antenna",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="16 antennas, 64 channels, 60 integrations")  # fmt: skip
    parser.add_argument("--cases", default="density,antenna1")
    parser.add_argument("--canvas", default="1280x900", help="aggregation grid, NXxNY")
    parser.add_argument("--small-budget", default="512MiB",
                        help="rc-plot --memory-budget of rc_plot_small_budget")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per tool (median)")
    parser.add_argument("--rc-revision", default=None,
                        help="measure rc-plot as of this git revision (e.g. HEAD) instead of "
                        "the working tree")  # fmt: skip
    parser.add_argument("--shadems", default=None, help="shadems executable")
    parser.add_argument("--no-warmup", action="store_true", help="skip the JIT warm-up runs")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--workdir", default="/tmp/rc-plot-bench",
                        help="where the MS is cached and the PNGs and logs written")  # fmt: skip
    parser.add_argument("--out", default=None,
                        help="JSON file (default: WORKDIR/plot[-quick].json)")  # fmt: skip
    args = parser.parse_args()
    commit = git_commit()  # at the start: the workspace may move on while this runs

    workdir = Path(args.workdir).resolve()
    for sub in ("png", "logs"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    shadems = peer_exe("shadems", args.shadems, log)
    if shadems is None:
        raise SystemExit("shadeMS is not installed: 'peers install shadems'")
    ms = workdir / ("quick.ms" if args.quick else "full.ms")
    simulate(ms, QUICK if args.quick else FULL)
    facts = ms_facts(ms)
    prefix, rc_commit = [], None
    if args.rc_revision:
        prefix, rc_commit = rc_source(workdir, args.rc_revision, ("core/src", "apps/plot/src"))
    cases = commands(args, shadems, facts["antennas"], prefix)
    if not args.no_warmup:
        warm_up(workdir, cases)

    results = {}
    for case, tools in cases.items():
        runs = {}
        for tool, cmd in tools.items():
            runs[tool] = run_tool(tool, cmd, ms, workdir, case, args, facts["points"])
            log(json.dumps({k: v for k, v in runs[tool].items() if k != "stderr_tail"}))
        results[case] = {"runs": runs, "ratios": ratios(runs)}

    simulation = shlex.join(json.loads(ms.with_suffix(".json").read_text()))
    result = {
        "benchmark": "rc-plot vs shadeMS",
        "mode": "quick" if args.quick else "full",
        "ms": {**facts, "path": str(ms), "simulation": simulation},
        "canvas": args.canvas,
        "small_budget": args.small_budget,
        "repeat": args.repeat,
        "commands": {c: {t: shlex.join(x) for t, x in tools.items()} for c, tools in cases.items()},
        "warm": not args.no_warmup,
        "cases": results,
        "notes": NOTES,
        "machine": machine(),
        "versions": {
            "radiocloud-plot": version_of(Path(sys.executable), "radiocloud-plot"),
            "shadems": version_of(Path(shadems).with_name("python"), "shadems"),
            "datashader": version_of(Path(shadems).with_name("python"), "datashader"),
            "radiocloud_commit": commit,
            "rc_plot_source": f"git {rc_commit}" if rc_commit else "the working tree",
        },
    }
    text = json.dumps(result, indent=2)
    out = Path(args.out) if args.out else workdir / f"plot{'-quick' if args.quick else ''}.json"
    out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
