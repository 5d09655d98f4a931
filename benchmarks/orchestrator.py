"""Benchmark rc-run against Stimela2, the peer tool: start-up, and the overhead per step of
validating and dispatching a recipe of no-op steps.

The recipe. One file that both tools accept (Stimela2 syntax: ``cabs:`` and one top-level
recipe with ``steps:``), written in ``--workdir`` for N = 1 and N = ``--steps`` steps. The cab
``noop`` runs ``true`` (about 1 ms) with four typed inputs (str, str, int, float; ``--``
prefix); the recipe has one str input, ``prefix``. Every step sets ``label`` by substitution
(``"{recipe.prefix}-{info.fqname}"``), ``mode`` by formula (``=recipe.prefix``) and ``count``
to its number, and leaves ``scale`` at its default, so each step exercises the evaluator, the
type checks and the command line. Both tools build the same command line for each step
(``true --label bench-noop_recipe.s002 --mode bench --count 2 --scale 1.5``).

Cases, each tool in its own process, one after the other (one core busy):

1. ``startup``: ``rc-run --help`` against ``stimela --help``;
2. ``validate_1``, ``validate_N``: ``rc-run recipe.yml --dry-run`` against
   ``stimela -B run -d recipe.yml`` (``-B``: no Rich display, as in
   ``shared/stimela2-recipes/INDEX.md``);
3. ``run_1``, ``run_N``: ``rc-run recipe.yml --run-dir RUN`` against
   ``stimela -B run -N recipe.yml`` (``-N``: native backend, each step a subprocess).

Per-step overhead = (wall at N - wall at 1) / (N - 1): the fixed cost (interpreter, imports,
loading the cabs and the recipe) cancels. The ``run`` figure is the whole cost of a step,
validation and dispatch included; ``true`` itself costs about 1 ms of it. The issue's
targets: under 50 ms per step for a 100-step recipe, start-up under 1 s.

Every command runs in a fresh directory of its own (both tools write logs, run records or
dependency files into the working directory), once untimed first (byte-code and Stimela's
configuration caches), then ``--repeat`` times with the tools and cases interleaved; each
figure is the median. Wall from ``time.perf_counter`` around the process, CPU from wait4,
peak RSS from GNU time's ``%M`` (``harness.measure`` explains why not wait4's). Every exit
code must be 0, and the steps run are counted (rc-run's summary line; Stimela's per-step log
files).

Run with the workspace's Python (``.venv/bin/python benchmarks/orchestrator.py``;
``--rc-revision HEAD`` measures rc-run as committed while its working tree is being edited).
Stimela comes from the ``peers`` harness. Prints one JSON object (also written to ``--out``)
and, on stderr, a short table. Timings on shared machines are noisy: compare runs on the same
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness import (
    GNU_TIME,
    REPO,
    git_commit,
    logger,
    machine,
    peer_exe,
    rc_source,
    tail,
    venv_tool,
    version_of,
)

log = logger("orchestrator-bench")
RECIPE = "noop_recipe"
TARGETS = {"per_step_ms": 50.0, "startup_s": 1.0}


# ---- the recipe -----------------------------------------------------------------------------

CAB = """\
cabs:
  noop:
    info: Does nothing (runs true).
    command: "true"
    policies:
      prefix: --
    inputs:
      label:
        dtype: str
        required: true
      mode:
        dtype: str
      count:
        dtype: int
        default: 1
      scale:
        dtype: float
        default: 1.5

{recipe}:
  info: {steps} no-op steps
  inputs:
    prefix:
      dtype: str
      default: bench
  steps:
"""

STEP = """\
    s{i:03d}:
      cab: noop
      params:
        label: "{{recipe.prefix}}-{{info.fqname}}"
        mode: =recipe.prefix
        count: {i}
"""


# Errors planted in the last step of the N-step recipe: a dry run that really validates every
# step must exit non-zero on each (a check that the validate figures measure validation).
BROKEN = {
    "unknown_formula_name": ("mode: =recipe.prefix", "mode: =recipe.nosuch"),
    "wrong_dtype": ("count: {n}", "count: notanint"),
    "unknown_parameter": ("count: {n}", "cnt: {n}"),
}


def write_recipe(path: Path, steps: int) -> Path:
    text = CAB.format(recipe=RECIPE, steps=steps)
    text += "".join(STEP.format(i=i) for i in range(1, steps + 1))
    path.write_text(text)
    return path


# ---- the two tools' commands ----------------------------------------------------------------


def commands(rc: list[str], stimela: str) -> dict[str, dict[str, list[str]]]:
    """Per mode, per tool: the command, with {recipe} and {run} to fill in."""
    return {
        "startup": {"rc_run": [*rc, "--help"], "stimela": [stimela, "--help"]},
        "validate": {
            "rc_run": [*rc, "{recipe}", "--dry-run"],
            "stimela": [stimela, "-B", "run", "-d", "{recipe}"],
        },
        "run": {
            "rc_run": [*rc, "{recipe}", "--run-dir", "{run}"],
            "stimela": [stimela, "-B", "run", "-N", "{recipe}"],
        },
    }


def fill(cmd: list[str], recipe: Path, run: Path) -> list[str]:
    return [str(recipe) if a == "{recipe}" else str(run) if a == "{run}" else a for a in cmd]


def write_broken(workdir: Path, steps: int) -> dict[str, Path]:
    """The N-step recipe with one error in its last step, per kind of error."""
    text = CAB.format(recipe=RECIPE, steps=steps)
    text += "".join(STEP.format(i=i) for i in range(1, steps))
    out = {}
    for kind, (good, bad) in BROKEN.items():
        last = STEP.format(i=steps).replace(good.format(n=steps), bad.format(n=steps))
        out[kind] = workdir / f"broken-{kind}.yml"
        out[kind].write_text(text + last)
    return out


def controls(tools: list[str], validate: dict, workdir: Path, steps: int, timeout: float):
    """Per planted error, per tool: the dry run's exit code and its last line of output."""
    out = {}
    for kind, recipe in write_broken(workdir, steps).items():
        out[kind] = {}
        for tool in tools:
            cwd = workdir / "runs" / f"control-{kind}-{tool}"
            shutil.rmtree(cwd, ignore_errors=True)
            cwd.mkdir(parents=True)
            result = timed(fill(validate[tool], recipe, cwd / "run"), cwd, timeout)
            lines = [ln.strip() for ln in (tail(cwd / "stderr.txt", 30) + "\n"
                     + tail(cwd / "stdout.txt", 30)).splitlines() if ln.strip()]  # fmt: skip
            said = [ln for ln in lines if re.search(r"unknown|invalid|not a valid|expected|"
                                                    r"failed|error", ln, re.I)]  # fmt: skip
            caught = result["returncode"] != 0
            out[kind][tool] = {"returncode": result["returncode"], "caught": caught,
                               "message": said[-1] if said and caught else None}  # fmt: skip
            log(f"control {kind} {tool}: exit {result['returncode']}")
    return out


# ---- running --------------------------------------------------------------------------------


def timed(cmd: list[str], cwd: Path, timeout: float) -> dict:
    """Run ``cmd`` in ``cwd`` (stdout and stderr to files there): wall (ms resolution), CPU
    from wait4, peak RSS from GNU time (the tool's own, not this process's high-water mark)."""
    rss_file = cwd / "maxrss.txt"
    full = [str(GNU_TIME), "-f", "%M", "-o", str(rss_file), *cmd] if GNU_TIME.exists() else cmd
    load = os.getloadavg()[0]
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(full, stdout=stdout, stderr=stderr, cwd=cwd)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        timer.cancel()
    code = proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    try:
        rss_kib = int(rss_file.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        rss_kib = None
    result = {
        "returncode": code,
        "wall_s": round(wall, 4),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mib": round(rss_kib / 1024, 1) if rss_kib else None,
        "load_average_before": round(load, 2),
    }
    if code != 0:
        result["stderr_tail"] = tail(err) or tail(out)
    return result


def steps_run(tool: str, cwd: Path) -> int | None:
    """How many steps the tool ran: rc-run's summary line, or Stimela's per-step log files."""
    if tool == "stimela":
        return len(list(cwd.glob(f"log-{RECIPE}.s*.txt")))
    match = re.search(r"succeeded in .*?: (\d+) run", tail(cwd / "stderr.txt", 5))
    return int(match.group(1)) if match else None


def run_once(tool: str, cmd: list[str], case: str, steps: int | None, recipes: dict,
             workdir: Path, name: str, timeout: float) -> dict:  # fmt: skip
    cwd = workdir / "runs" / name
    shutil.rmtree(cwd, ignore_errors=True)
    cwd.mkdir(parents=True)
    recipe = recipes.get(steps)
    full = fill(cmd, recipe, cwd / "run") if recipe else cmd
    result = timed(full, cwd, timeout)
    if tool == "rc_run":  # rc-run's own timing of the validate and run stages
        lines = tail(cwd / "stderr.txt", 5).splitlines()
        result["reported"] = [ln for ln in lines if ln.startswith("rc-run: ")][-2:] or None
    if result["returncode"] != 0:
        result["failed"] = True
        log(f"{name} failed (exit {result['returncode']}): {shlex.join(full)}\n"
            f"{result.get('stderr_tail')}")  # fmt: skip
    elif case == "run":
        result["steps_run"] = steps_run(tool, cwd)
        if result["steps_run"] != steps:
            result["failed"] = f"ran {result['steps_run']} steps of {steps}"
            log(f"{name}: {result['failed']}")
    return result


def median_of(runs: list[dict]) -> dict:
    """The median figures of the runs that succeeded (and every wall time)."""
    done = [r for r in runs if not r.get("failed")]
    if not done:
        return {"failed": True, "runs": runs}
    out = {
        "wall_s": round(statistics.median(r["wall_s"] for r in done), 4),
        "cpu_s": round(statistics.median(r["cpu_s"] for r in done), 3),
        "peak_rss_mib": max(r["peak_rss_mib"] or 0 for r in done),
        "returncodes": [r["returncode"] for r in runs],
        "wall_s_all": [r["wall_s"] for r in runs],
    }
    if any(r.get("reported") for r in runs):
        out["reported"] = min(done, key=lambda r: abs(r["wall_s"] - out["wall_s"])).get("reported")
    if any("steps_run" in r for r in runs):
        out["steps_run"] = [r.get("steps_run") for r in runs]
    if len(done) < len(runs):
        out["failures"] = [r for r in runs if r.get("failed")]
    return out


def per_step_ms(one: dict, many: dict, steps: int) -> float | None:
    if one.get("failed") or many.get("failed") or steps < 2:
        return None
    return round((many["wall_s"] - one["wall_s"]) / (steps - 1) * 1000, 2)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def summarise(cases: dict, steps: int) -> dict:
    """Per tool: start-up, per-step validate and run overheads, peak RSS of the N-step run."""
    out = {}
    for tool in ("rc_run", "stimela"):
        figures = {t: cases[c][tool] for c in cases for t in [c] if tool in cases[c]}
        if not figures:
            continue
        out[tool] = {
            "startup_s": figures["startup"].get("wall_s"),
            "validate_1_s": figures["validate_1"].get("wall_s"),
            f"validate_{steps}_s": figures[f"validate_{steps}"].get("wall_s"),
            "validate_per_step_ms": per_step_ms(figures["validate_1"],
                                                figures[f"validate_{steps}"], steps),
            "run_1_s": figures["run_1"].get("wall_s"),
            f"run_{steps}_s": figures[f"run_{steps}"].get("wall_s"),
            "run_per_step_ms": per_step_ms(figures["run_1"], figures[f"run_{steps}"], steps),
            f"run_{steps}_peak_rss_mib": figures[f"run_{steps}"].get("peak_rss_mib"),
            f"run_{steps}_cpu_s": figures[f"run_{steps}"].get("cpu_s"),
        }  # fmt: skip
    rc = out.get("rc_run", {})
    out["targets"] = {
        "startup_under_1_s": rc.get("startup_s") is not None
        and rc["startup_s"] < TARGETS["startup_s"],
        "per_step_under_50_ms": rc.get("run_per_step_ms") is not None
        and rc["run_per_step_ms"] < TARGETS["per_step_ms"],
    }
    if "stimela" in out:
        peer = out["stimela"]
        out["ratios_rc_run_over_stimela"] = {
            key: ratio(rc.get(key), peer.get(key))
            for key in rc
            if isinstance(rc.get(key), float | int)
        }
    return out


def table(summary: dict, steps: int) -> str:
    rows = [
        ("start-up (--help), s", "startup_s"),
        ("validate, 1 step, s", "validate_1_s"),
        (f"validate, {steps} steps, s", f"validate_{steps}_s"),
        ("validate per step, ms", "validate_per_step_ms"),
        ("run, 1 step, s", "run_1_s"),
        (f"run, {steps} steps, s", f"run_{steps}_s"),
        ("run per step, ms", "run_per_step_ms"),
        (f"run {steps}: peak RSS, MiB", f"run_{steps}_peak_rss_mib"),
    ]
    rc, peer = summary.get("rc_run", {}), summary.get("stimela", {})
    ratios = summary.get("ratios_rc_run_over_stimela", {})

    def cell(value) -> str:
        return "-" if value is None else f"{value:g}"

    lines = [f"{'':28} {'rc-run':>10} {'stimela':>10} {'rc/stimela':>11}"]
    for label, key in rows:
        lines.append(f"{label:28} {cell(rc.get(key)):>10} {cell(peer.get(key)):>10} "
                     f"{cell(ratios.get(key)):>11}")  # fmt: skip
    return "\n".join(lines)


# ---- versions -------------------------------------------------------------------------------


def source_state() -> dict:
    """The workspace's commit, and whether rc-run's sources differ from it."""
    status = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                             "orchestrator", "core"], capture_output=True, text=True)  # fmt: skip
    return {"commit": git_commit(), "orchestrator_or_core_modified": bool(status.stdout.strip())}


def stimela_version(exe: str, cwd: Path) -> str | None:
    """``stimela --version``, run in ``cwd`` (Stimela drops log and deps files where it runs)."""
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, cwd=cwd)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return next((ln.strip() for ln in reversed(lines) if "version" in ln.lower()), None)


def peer_versions(stimela: str, cwd: Path) -> dict:
    python = Path(stimela).with_name("python")
    py = subprocess.run([str(python), "--version"], capture_output=True, text=True)
    return {
        "stimela": stimela_version(stimela, cwd),
        "stimela_dist": version_of(python, "stimela"),
        "cult-cargo": version_of(python, "cult-cargo"),
        "stimela_python": py.stdout.strip(),
        "stimela_exe": stimela,
    }


# ---- main -----------------------------------------------------------------------------------

NOTES = [
    "per-step overhead = (median wall at N steps - median wall at 1 step) / (N - 1); "
    "run_per_step_ms is validation and dispatch of a step together, 'true' (~1 ms) included",
    "wall of the whole process: interpreter start-up, imports and loading included",
    "stimela runs with -B (no Rich display); its run mode with -N (native backend); "
    "rc-run with its default (native) backend",
    "ratios are rc-run / stimela (<1: rc-run faster or leaner)",
    "peak_rss_mib: GNU time %M of the tool's process (the largest over the repeats)",
    "every command ran once untimed first (byte-code and configuration caches)",
    "a per-step figure below ~0.2 ms is within the noise of the wall-time difference "
    "(+-10 ms over N - 1 steps); rc-run's 'reported' line gives its own in-process timing",
    "validate_catches_errors_in_last_step: dry runs of the N-step recipe with one error "
    "planted in its last step (caught = non-zero exit)",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="steps of the long recipe")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per command (median)")
    parser.add_argument("--rc-revision", default=None,
                        help="measure rc-run as of this git revision (e.g. HEAD) instead of "
                        "the working tree")  # fmt: skip
    parser.add_argument("--stimela", default=None, help="stimela executable")
    parser.add_argument("--no-stimela", action="store_true", help="measure rc-run alone")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed first runs")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    parser.add_argument("--workdir", default="/tmp/rc-run-bench",
                        help="where the recipes are written and the tools run")  # fmt: skip
    parser.add_argument("--out", default=None,
                        help="JSON file (default: WORKDIR/orchestrator.json)")  # fmt: skip
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    commit = source_state()  # at the start: the workspace may move on while this runs
    load_start = os.getloadavg()

    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    recipes = {n: write_recipe(workdir / f"recipe-{n}.yml", n) for n in (1, args.steps)}
    prefix, rc_commit = [], None
    if args.rc_revision:
        prefix, rc_commit = rc_source(workdir, args.rc_revision, ("core/src", "orchestrator/src"))
    rc = [*prefix, venv_tool("rc-run")]
    stimela = None if args.no_stimela else peer_exe("stimela", args.stimela, log)
    if stimela is None and not args.no_stimela:
        log("Stimela is not installed ('peers install stimela' failed): measuring rc-run alone")

    modes = commands(rc, stimela or "stimela")
    cases = {"startup": ("startup", None), "validate_1": ("validate", 1),
             f"validate_{args.steps}": ("validate", args.steps), "run_1": ("run", 1),
             f"run_{args.steps}": ("run", args.steps)}  # fmt: skip
    tools = ["rc_run"] + (["stimela"] if stimela else [])

    if not args.no_warmup:
        for case, (mode, steps) in cases.items():
            for tool in tools:
                log(f"warm-up: {tool} {case}")
                run_once(tool, modes[mode][tool], mode, steps, recipes, workdir,
                         f"warmup-{case}-{tool}", args.timeout)  # fmt: skip

    runs: dict[str, dict[str, list[dict]]] = {c: {t: [] for t in tools} for c in cases}
    for i in range(args.repeat):
        for case, (mode, steps) in cases.items():
            for tool in tools:
                result = run_once(tool, modes[mode][tool], mode, steps, recipes, workdir,
                                  f"{case}-{tool}-{i}", args.timeout)  # fmt: skip
                log(f"{case} {tool} #{i}: {result['wall_s']:.3f} s, exit {result['returncode']}"
                    f", {result['peak_rss_mib']} MiB")  # fmt: skip
                runs[case][tool].append(result)

    checks = controls(tools, modes["validate"], workdir, args.steps, args.timeout)
    figures = {case: {tool: median_of(r) for tool, r in per_tool.items()}
               for case, per_tool in runs.items()}  # fmt: skip
    summary = summarise(figures, args.steps)
    result = {
        "benchmark": "rc-run vs Stimela2: start-up and per-step overhead",
        "steps": args.steps,
        "repeat": args.repeat,
        "recipe": {"path": str(recipes[args.steps]), "step_example": STEP.format(i=1)},
        "commands": {
            mode: {t: shlex.join(c) for t, c in per_tool.items() if t in tools}
            for mode, per_tool in modes.items()
        },
        "warm": not args.no_warmup,
        "summary": summary,
        "validate_catches_errors_in_last_step": checks,
        "cases": figures,
        "notes": NOTES,
        "machine": {
            **machine(),
            "nproc": os.cpu_count(),
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {
            "radiocloud_commit": commit["commit"],
            "orchestrator_or_core_modified": commit["orchestrator_or_core_modified"],
            "rc_run_source": f"git {rc_commit}" if rc_commit else "the working tree",
            "radiocloud-orchestrator": version_of(Path(sys.executable), "radiocloud-orchestrator"),
            **(peer_versions(stimela, workdir) if stimela else {}),
        },
    }
    text = json.dumps(result, indent=2)
    out = Path(args.out) if args.out else workdir / "orchestrator.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(text)
    print(table(summary, args.steps), file=sys.stderr)


if __name__ == "__main__":
    main()
