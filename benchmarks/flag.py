"""Benchmark rc-flag against tricolour and AOFlagger on the same RFI-injected MS.

Simulates (once, cached in ``--workdir``) the same MeerKAT observation twice with rc-simulate,
with and without RFI (same seed: identical sky, gains and noise), at MeerKAT 4k channel width
(209 kHz; 256 channels from 1540 MHz by default, which hold Inmarsat and GPS L1 emitters; the
broadband bursts and baseline-local interference fall everywhere). Each tool flags its own
fresh copy of the RFI MS in its own subprocess (wall, CPU and peak RSS from ``wait4``; the
copy is not timed); its FLAG is then scored against the truth:

* ``precision``, ``recall``, ``f1`` against the simulator's truth mask (injected RFI at least
  1 sigma of the noise, ``OUT.truth/rfi_mask.npy``);
* ``recall_5sigma``: the fraction of samples with injected RFI of at least 5 sigma that are
  flagged, from |DATA(rfi) - DATA(clean)| directly;
* ``false_flag_rate``: the fraction of samples without any injected RFI that are flagged.

Run with the workspace's Python (``.venv/bin/python benchmarks/flag.py``). tricolour and
AOFlagger come from the ``peers`` harness. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from harness import copy_ms, logger, machine, measure, peer_exe, venv_tool, version_of

log = logger("flag-bench")
SCORE_ROWS = 20_000  # rows per chunk when scoring
WARMUP_MS = ("--antennas", "8", "--channels", "64", "--integrations", "40")


def simulate(ms: Path, sim_args: list[str], rfi: bool) -> None:
    """Write ``ms`` with rc-simulate unless it exists with the same settings (a stamp file)."""
    cmd = [venv_tool("rc-simulate"), str(ms), *sim_args, "--seed", "11", "--overwrite"]
    cmd += [] if rfi else ["--no-rfi"]
    stamp = ms.with_suffix(".json")
    if ms.exists() and stamp.exists() and json.loads(stamp.read_text()) == cmd[2:]:
        return
    log(f"simulating {ms.name}: {shlex.join(cmd[2:])}")
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    stamp.write_text(json.dumps(cmd[2:]))


def noise_sigma(ms: Path) -> float:
    manifest = json.loads((ms.with_suffix(".truth") / "manifest.json").read_text())
    return float(np.max(manifest["observation"]["noise_sigma_jy"]))


def score(flagged_ms: Path, rfi_ms: Path, clean_ms: Path, sigma: float) -> dict:
    """Precision, recall and F1 against the truth mask, recall of >= 5 sigma RFI, false flags."""
    from casacore.tables import table

    mask = np.load(rfi_ms.with_suffix(".truth") / "rfi_mask.npy", mmap_mode="r")
    counts = dict(tp=0, fp=0, fn=0, strong=0, strong_found=0, clean=0, clean_flagged=0)
    total = flagged_total = 0
    with table(str(flagged_ms), ack=False) as f, table(str(rfi_ms), ack=False) as r, \
            table(str(clean_ms), ack=False) as c:  # fmt: skip
        for start in range(0, f.nrows(), SCORE_ROWS):
            n = min(SCORE_ROWS, f.nrows() - start)
            flags = f.getcol("FLAG", start, n)
            truth = np.asarray(mask[start : start + n])
            level = np.abs(r.getcol("DATA", start, n) - c.getcol("DATA", start, n)) / sigma
            counts["tp"] += int(np.sum(flags & truth))
            counts["fp"] += int(np.sum(flags & ~truth))
            counts["fn"] += int(np.sum(~flags & truth))
            strong = level >= 5
            counts["strong"] += int(strong.sum())
            counts["strong_found"] += int(np.sum(flags & strong))
            clean = level == 0
            counts["clean"] += int(clean.sum())
            counts["clean_flagged"] += int(np.sum(flags & clean))
            total += flags.size
            flagged_total += int(flags.sum())
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    return {
        "flagged_fraction": round(flagged_total / total, 5),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / max(precision + recall, 1e-12), 4),
        "recall_5sigma": round(counts["strong_found"] / max(counts["strong"], 1), 4),
        "false_flag_rate": round(counts["clean_flagged"] / max(counts["clean"], 1), 5),
        "truth_fraction": round((tp + fn) / total, 5),
    }


def ms_facts(ms: Path) -> dict:
    from casacore.tables import table

    with table(str(ms), ack=False) as t:
        rows = t.nrows()
        shape = t.getcell("DATA", 0).shape
    with table(f"{ms}::ANTENNA", ack=False) as t:
        n_ant = t.nrows()
    data_bytes = rows * int(np.prod(shape)) * 8
    return {"rows": rows, "antennas": n_ant, "channels": shape[0], "correlations": shape[1],
            "visibilities": rows * int(np.prod(shape)), "data_bytes": data_bytes}  # fmt: skip


def commands(args, exes: dict) -> dict:
    threads = str(args.threads)
    cmds = {"rc_flag": [venv_tool("rc-flag"), "{ms}", "--threads", threads, "--no-backup"]}
    if args.memory_budget:
        cmds["rc_flag"] += ["--memory-budget", args.memory_budget]
    if exes.get("tricolour"):
        # tricolour without a terminal sleeps in its progress bar: give it a pty
        inner = shlex.join([exes["tricolour"], "-dc", "DATA", "-nw", threads]) + " {ms}"
        cmds["tricolour"] = ["script", "-qec", inner, "/dev/null"]
    if exes.get("aoflagger"):
        cmds["aoflagger"] = [exes["aoflagger"], "-j", threads, "-column", "DATA", "{ms}"]
    return cmds


def fill(cmd: list[str], ms: Path) -> list[str]:
    return [a.replace("{ms}", str(ms)) for a in cmd]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--antennas", default="64")
    parser.add_argument("--channels", default="256")
    parser.add_argument("--freq-start", default="1540MHz")
    parser.add_argument("--bandwidth", default="53.5MHz", help="256 x 209 kHz (MeerKAT 4k)")
    parser.add_argument("--integrations", default="300")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-budget", default=None, help="rc-flag --memory-budget")
    parser.add_argument("--tools", default="rc_flag,tricolour,aoflagger")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    parser.add_argument("--workdir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the flagged copies")
    args = parser.parse_args()

    temporary = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="rc-flag-bench-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    sim = ["--antennas", args.antennas, "--channels", args.channels, "--freq-start",
           args.freq_start, "--bandwidth", args.bandwidth, "--integrations", args.integrations,
           "--integration-time", "8s"]  # fmt: skip
    rfi_ms, clean_ms = workdir / "rfi.ms", workdir / "clean.ms"
    simulate(rfi_ms, sim, rfi=True)
    simulate(clean_ms, sim, rfi=False)
    facts, sigma = ms_facts(rfi_ms), noise_sigma(rfi_ms)
    wanted = args.tools.split(",")
    exes = {t: peer_exe(t, log=log) for t in ("tricolour", "aoflagger") if t in wanted}
    cmds = {t: c for t, c in commands(args, exes).items() if t in wanted}

    warm = workdir / "warmup.ms"  # numba caches compiled kernels on disk: time warm runs
    simulate(warm, [*WARMUP_MS, "--freq-start", args.freq_start], rfi=True)
    for tool in ("rc_flag", "tricolour"):
        if tool in cmds:
            copy_ms(warm, workdir / "warm-copy.ms")
            log(f"warm-up run of {tool}")
            measure(fill(cmds[tool], workdir / "warm-copy.ms"), workdir / f"warm-{tool}", 900)
    shutil.rmtree(workdir / "warm-copy.ms", ignore_errors=True)

    runs = {}
    for tool, cmd in cmds.items():
        copy = workdir / f"{tool}.ms"
        copy_ms(rfi_ms, copy)
        log(f"{tool}: {shlex.join(fill(cmd, copy))}")
        result = measure(fill(cmd, copy), workdir / tool, args.timeout)
        if result["returncode"] == 0 and "timed_out" not in result:
            result["visibilities_per_s"] = round(facts["visibilities"] / result["wall_s"])
            result["data_gb_per_s"] = round(facts["data_bytes"] / result["wall_s"] / 1e9, 3)
            log(f"scoring {tool}")
            result.update(score(copy, rfi_ms, clean_ms, sigma))
        else:
            result["failed"] = True
        log(json.dumps({k: v for k, v in result.items() if k != "stderr_tail"}))
        runs[tool] = result
        if not args.keep:
            shutil.rmtree(copy, ignore_errors=True)

    rc = runs.get("rc_flag", {})
    ratios = {}
    for peer in ("tricolour", "aoflagger"):
        other = runs.get(peer, {})
        if "f1" in rc and "f1" in other:
            ratios[peer] = {
                "speed_ratio": round(other["wall_s"] / rc["wall_s"], 3),
                "peak_rss_ratio": round(rc["peak_rss_mib"] / other["peak_rss_mib"], 3),
                "f1_rc_minus_peer": round(rc["f1"] - other["f1"], 4),
            }
    result = {
        "benchmark": "rc-flag vs tricolour and AOFlagger",
        "ms": {**facts, "simulation": sim, "noise_sigma_jy": sigma},
        "commands": {tool: shlex.join(cmd) for tool, cmd in cmds.items()},
        "runs": runs,
        "ratios": ratios,
        "machine": machine(),
        "versions": {
            "radiocloud-flag": version_of(Path(sys.executable), "radiocloud-flag"),
            "tricolour": exes.get("tricolour")
            and version_of(Path(exes["tricolour"]).with_name("python"), "tricolour"),
        },
        "notes": [
            "speed_ratio = peer wall / rc-flag wall (>1: rc-flag faster); peak_rss_ratio = "
            "rc-flag / peer (<1: rc-flag leaner)",
            "each tool flags its own cp -r copy (copy not timed), warm (numba caches compiled)",
            "tricolour and AOFlagger run their default strategies (AOFlagger 3.1 from Debian "
            "has no MeerKAT strategy)",
        ],
    }
    print(json.dumps(result, indent=2))
    if temporary and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
