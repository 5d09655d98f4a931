"""Benchmark rc-run's backends on one recipe: the ESO 137-006 selfcal recipe at the laptop size
of ``make demo``, run natively and with ``--backend container`` (every step in its app's image,
podman), on copies of one simulated observation.

Data. ``rc-simulate obs.ms`` of 16 antennas x 64 channels x 120 integrations (``--antennas``,
``--channels``, ``--integrations``), seed ``--seed``. Each backend gets its own copy of the MS.

Runs. The command line of benchmarks/eso137.py (``rc-run recipes/eso137.yml ms=COPY
prefix=out-BACKEND/eso137 init-model.path=... --run-dir run-BACKEND``), plus ``--backend``; the
backends run one after the other, natively first. The images must exist
(``containers/build --local-base all``); podman's socket is started by the backend if needed
(its start-up is inside the container run's wall time).

Figures. Per backend: rc-run's wall (this script's clock), the sum of its steps' seconds, and
per step its seconds and peak RSS (provenance.json; in containers, the wrapper's ru_maxrss).
The ratios container / native: total wall, and per step. The science per imaging round
(dynamic range, as benchmarks/eso137.py computes it), and the largest difference between the
two runs' first dirty images (the same data through the same code: it should be float32
rounding), so the equality of results is measured alongside the time.

Run with the workspace's Python: ``.venv/bin/python benchmarks/backends.py``. Prints one JSON
object (also to ``--out``) and a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from eso137 import PREFIX, RECIPE, components, rounds_of, steps_of
from harness import REPO, copy_ms, git_commit, logger, machine, measure, venv_tool

log = logger("backends-bench")
BACKENDS = ("native", "container")


def run_recipe(workdir: Path, backend: str, n_comp: int, timeout: float) -> dict:
    ms = f"{backend}.ms"
    copy_ms(workdir / "obs.ms", workdir / ms)
    prefix = PREFIX.replace("out/", f"out-{backend}/")
    cmd = [venv_tool("rc-run"), str(RECIPE), f"ms={ms}", f"prefix={prefix}",
           "init-model.path=obs.truth/skymodel.txt", f"init-model.brightest={n_comp}",
           "--run-dir", f"run-{backend}", "--backend", backend]  # fmt: skip
    log(f"running the recipe with the {backend} backend")
    done = measure(cmd, workdir / f"rc-run-{backend}", timeout)
    record_path = workdir / f"run-{backend}" / "provenance.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    steps = steps_of(record, workdir)
    return {
        "status": record.get("status", "no provenance"),
        "returncode": done["returncode"],
        "wall_s": done["wall_s"],
        "steps_s": round(sum(s["seconds"] or 0 for s in steps.values()), 2),
        "steps": steps,
        "rounds": rounds_of(record, workdir),
        "prefix": prefix,
    }


def first_dirty_difference(workdir: Path, runs: dict) -> float:
    from astropy.io import fits

    a, b = (fits.getdata(workdir / f"{runs[k]['prefix']}-0-dirty.fits") for k in BACKENDS)
    return float(np.abs(a - b).max() / np.abs(a).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--antennas", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--integrations", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per command")
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder, removed")
    parser.add_argument("--out", type=Path, help="JSON file (default: WORKDIR/backends.json)")
    args = parser.parse_args()
    commit = git_commit()
    os.environ.setdefault("CONTAINERS_CONF", str(REPO / "containers" / "containers.conf"))
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="rc-backends-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        sim = [venv_tool("rc-simulate"), "obs.ms", "--antennas", str(args.antennas),
               "--channels", str(args.channels), "--integrations", str(args.integrations),
               "--integration-time", "8s", "--seed", str(args.seed), "--overwrite"]  # fmt: skip
        log("simulating")
        if measure(sim, workdir / "rc-simulate", args.timeout)["returncode"] != 0:
            raise SystemExit("rc-simulate failed")
        n_comp = components(workdir / "obs.truth" / "skymodel.txt")
        runs = {b: run_recipe(workdir, b, n_comp, args.timeout) for b in BACKENDS}
        ok = all(r["status"] == "succeeded" for r in runs.values())
        result = {
            "benchmark": "rc-run backends on the ESO 137-006 recipe (make demo's size)",
            "config": vars(args) | {"workdir": str(args.workdir), "out": str(args.out)},
            "runs": runs,
            "ratios": ratios(runs) if ok else None,
            "first_dirty_max_rel_difference": first_dirty_difference(workdir, runs) if ok else None,
            "notes": [
                "wall_s: this script's clock around rc-run; steps_s: the sum of the steps' "
                "seconds from provenance.json (container steps: creation to removal)",
                "container: podman through its Docker-compatible socket, images from "
                "containers/build --local-base",
            ],
            "machine": machine(),
            "radiocloud_commit": commit,
        }
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(result, indent=2)
    out = args.out or (workdir / "backends.json" if args.workdir else None)
    if out is not None:
        out.write_text(text + "\n")
    print(text)
    print(table(result), file=sys.stderr)
    if not ok:
        sys.exit(1)


def ratios(runs: dict) -> dict:
    native, container = runs["native"], runs["container"]
    per_step = {
        name: round(step["seconds"] / native["steps"][name]["seconds"], 2)
        for name, step in container["steps"].items()
        if step.get("seconds") and (native["steps"].get(name) or {}).get("seconds")
    }
    return {
        "wall_container_over_native": round(container["wall_s"] / native["wall_s"], 2),
        "steps_container_over_native": round(container["steps_s"] / native["steps_s"], 2),
        "per_step": per_step,
    }


def table(result: dict) -> str:
    rows = [f"{'backend':<10} {'wall s':>8} {'steps s':>8}  dynamic range per round"]
    for name, run in result["runs"].items():
        drs = ", ".join(f"{r.get('dynamic_range', '?'):.0f}" for r in run["rounds"].values())
        rows.append(f"{name:<10} {run['wall_s']:>8.1f} {run['steps_s']:>8.1f}  {drs}")
    if result["ratios"]:
        rows.append(f"container / native wall: {result['ratios']['wall_container_over_native']}")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
