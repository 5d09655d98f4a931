"""Benchmark the ESO 137-006 selfcal recipe end to end: rc-simulate, then ``recipes/eso137.yml``
through the real rc-run, with wall time and peak memory per step and the science per round.

Data. rc-simulate writes a MeerKAT observation of the field (its default sky ``eso137``, gains,
delays, bandpass, RFI and thermal noise, four correlations, 8 s integrations) of
``--antennas`` x ``--channels`` x ``--integrations`` (default 64 x 256 x 300, ``--small``
16 x 64 x 120, the laptop size of ``make demo``) and its truth in ``OBS.truth/``.

The run. The same command line as tests/recipes/test_eso137.py, from the workspace venv:
``rc-run recipes/eso137.yml ms=obs.ms prefix=out/eso137 init-model.path=obs.truth/skymodel.txt
init-model.brightest=N truth-gains=obs.truth/gains.zarr --run-dir run`` with N every component
of the truth list (the test's 1000 is more than it has), plus ``imaging.size=`` /
``imaging.scale=`` when ``--size`` / ``--scale`` are given (else the recipe's defaults, 1024 x
3asec) and any ``--set PARAM=VALUE`` (at 64 x 256 the recipe's default 2 GiB budget is too small
for rc-calibrate's delay solve, which asks for 7.1 GiB: ``--set memory-budget=8GiB``).
Everything runs in ``--workdir`` (default a temporary folder, removed at the end unless
``--keep``; a folder given is kept), with each command's stdout and stderr as ``rc-simulate.*``
and ``rc-run.*``.

Figures. From ``run/provenance.json``: per step its status, ``seconds`` (wall) and
``peak_rss_mib`` (os.wait4 of the step's process) and exit code; the run's total wall (this
script's clock around rc-run, and rc-run's own ``elapsed_s``), the sum of the steps' seconds
(the rest is rc-run: start-up, validation, file digests) and the largest peak RSS of any step.
Per imaging round (the rc-image steps: image-0 of the raw DATA, then d1, p1 and ap1 of
CORRECTED_DATA), from its -image.fits and -residual.fits (astropy): the peak of the restored
image, the robust rms of the residual (1.4826 x its median absolute deviation) and the dynamic
range (peak / rms), as the test computes it. The last round's gains against the injected ones
(``truth-gains=``; core.io.gaintable.compare_gains): median and rms amplitude and phase errors,
and the amplitude errors with each channel's common scale divided out. The simulation's own
wall and peak RSS (GNU time) are reported apart, not in the recipe's totals.

Run with the workspace's Python (``.venv/bin/python benchmarks/eso137.py [--small]``). Prints
one JSON object (also written to ``--out``) and, on stderr, a short table. Timings on shared
machines are noisy: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from harness import REPO, git_commit, logger, machine, measure, tail, venv_tool

log = logger("eso137-bench")
RECIPE = REPO / "recipes" / "eso137.yml"
FULL = {"antennas": 64, "channels": 256, "integrations": 300}
SMALL = {"antennas": 16, "channels": 64, "integrations": 120}
PREFIX = "out/eso137"


def components(skymodel: Path) -> int:
    """Components in a WSClean component list (every line but the format line and comments)."""
    lines = skymodel.read_text().splitlines()
    return sum(1 for ln in lines if ln.strip() and not ln.lstrip().startswith(("Format", "#")))


def robust_rms(image: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(image - np.median(image))))


def science(prefix: Path) -> dict:
    """Peak of the restored image, robust rms of the residual and their ratio."""
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = np.asarray(fits.getdata(f"{prefix}-image.fits"), dtype=np.float64).squeeze()
        residual = np.asarray(fits.getdata(f"{prefix}-residual.fits"), dtype=np.float64)
    rms = robust_rms(residual.squeeze())
    peak = float(np.nanmax(image))
    return {
        "peak_jy": float(f"{peak:.6g}"),
        "residual_rms_jy": float(f"{rms:.4e}"),
        "dynamic_range": round(peak / rms, 1) if rms > 0 else None,
    }


def gains_vs_truth(workdir: Path) -> dict | None:
    """The last round's gains against the simulation's: errors as fractions and degrees."""
    from daskms.experimental.zarr import xds_from_zarr

    from radiocloud.core.io.gaintable import chain_gains, compare_gains, read_gain_table

    tables = [workdir / f"{PREFIX}-{r}-gains.zarr" for r in ("ap1", "p1", "d1")]
    found = [t for t in tables if t.exists()]
    if not found:
        return None
    truth = xds_from_zarr(str(workdir / "obs.truth" / "gains.zarr"))[0]
    terms, _ = read_gain_table(str(found[0]))
    net, flags = chain_gains(terms, truth.time.values, truth.chan.values)
    errors = compare_gains(net, flags, truth.gains.values.astype(np.complex128))
    ratio = np.where(errors.valid, errors.ratio, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # channels without a valid solution
        per_channel = ratio / np.nanmedian(np.abs(ratio), axis=(0, 2, 3))[None, :, None, None]
    amp, phase = errors.amplitude, errors.phase_deg
    amp_c = np.abs(per_channel[errors.valid]) - 1
    return {
        "table": found[0].name,
        "valid_fraction": round(float(errors.valid.mean()), 4),
        "scale": round(errors.scale, 4),
        "amplitude_rms": round(float(np.sqrt(np.mean(amp**2))), 4),
        "amplitude_median_abs": round(float(np.median(np.abs(amp))), 4),
        "phase_rms_deg": round(float(np.sqrt(np.mean(phase**2))), 3),
        "phase_median_abs_deg": round(float(np.median(np.abs(phase))), 3),
        "per_channel_scale_amplitude_median_abs": round(float(np.median(np.abs(amp_c))), 4),
    }


def steps_of(record: dict, cwd: Path) -> dict:
    out = {}
    for name, entry in record.get("steps", {}).items():
        out[name] = {
            "status": entry.get("status"),
            "cab": entry.get("cab"),
            "seconds": entry.get("seconds"),
            "peak_rss_mib": entry.get("peak_rss_mib"),
            "exit_code": entry.get("exit_code"),
        }
        if entry.get("status") == "failed":
            out[name]["argv"] = shlex.join(entry.get("argv") or [])
            log_tail = tail(cwd / entry.get("log", ""), 15)  # the log's path is rc-run's cwd's
            out[name]["log_tail"] = log_tail
            out[name]["error"] = next(
                (ln for ln in reversed(log_tail.splitlines()) if "error" in ln.lower()), None
            )
    return out


def rounds_of(record: dict, cwd: Path) -> dict:
    """Per rc-image step that ran: its products' science figures."""
    out = {}
    for name, entry in record.get("steps", {}).items():
        if entry.get("cab") != "rc-image" or entry.get("status") != "ok":
            continue
        prefix = cwd / entry["params"]["prefix"]
        try:
            out[name] = {"prefix": entry["params"]["prefix"], **science(prefix)}
        except Exception as exc:  # a product this script cannot read is a finding
            out[name] = {"prefix": entry["params"]["prefix"], "error": f"{exc}"}
    return out


def table(result: dict) -> str:
    rows = [f"{'step':<32} {'status':<8} {'wall s':>9} {'peak MiB':>9}"]
    for name, s in result["steps"].items():
        wall = f"{s['seconds']:.1f}" if s.get("seconds") is not None else "-"
        rss = f"{s['peak_rss_mib']:.0f}" if s.get("peak_rss_mib") is not None else "-"
        rows.append(f"{name.removeprefix('eso137.'):<32} {s['status']:<8} {wall:>9} {rss:>9}")
        if s.get("error"):
            rows.append(f"  {s['error']}")
    t = result["totals"]
    rows.append(f"{'steps (sum)':<32} {'':<8} {t['steps_s']:>9.1f} {t['max_peak_rss_mib']:>9.0f}")
    rows.append(f"{'rc-run total wall':<32} {result['run']['status']:<8} {t['wall_s']:>9.1f}")
    sim = result["simulation"]
    rows.append(f"{'(rc-simulate)':<32} {'':<8} {sim['wall_s']:>9.1f} {sim['peak_rss_mib']:>9.0f}")
    rows.append("")
    rows.append(f"{'round':<32} {'peak Jy':>9} {'rms Jy':>10} {'DR':>8}")
    for name, r in result["rounds"].items():
        if "error" in r:
            rows.append(f"{name.removeprefix('eso137.'):<32} {r['error']}")
            continue
        rows.append(f"{name.removeprefix('eso137.'):<32} {r['peak_jy']:>9.4f} "
                    f"{r['residual_rms_jy']:>10.3e} {r['dynamic_range']:>8.1f}")  # fmt: skip
    g = result.get("gains_vs_truth")
    if g:
        rows.append("")
        rows.append(f"gains against the truth ({g['table']}): amplitude errors "
                    f"{100 * g['amplitude_median_abs']:.2f}% median ("
                    f"{100 * g['per_channel_scale_amplitude_median_abs']:.2f}% with each "
                    f"channel's scale out), phase {g['phase_median_abs_deg']:.2f} deg "
                    "median")  # fmt: skip
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help="16 antennas, 64 channels, 120 integrations")  # fmt: skip
    parser.add_argument("--antennas", type=int, default=None, help="default 64 (16 --small)")
    parser.add_argument("--channels", type=int, default=None, help="default 256 (64 --small)")
    parser.add_argument("--integrations", type=int, default=None,
                        help="default 300 (120 --small)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="rc-simulate --seed")
    parser.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                        help="another recipe parameter for rc-run, e.g. memory-budget=8GiB "
                        "(repeatable)")  # fmt: skip
    parser.add_argument("--size", type=int, default=None,
                        help="imaging.size in pixels (default: the recipe's)")  # fmt: skip
    parser.add_argument("--scale", default=None, help="imaging.scale (default: the recipe's)")
    parser.add_argument("--timeout", type=float, default=6 * 3600.0, help="seconds per command")
    parser.add_argument("--workdir", default=None, help="default: a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--out", default=None, help="JSON file (default: WORKDIR/eso137.json)")
    args = parser.parse_args()
    commit = git_commit()  # at the start: the workspace may move on while this runs

    base = SMALL if args.small else FULL
    config = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in base.items()}
    if args.workdir:
        workdir = Path(args.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="eso137-bench-"))
    out = Path(args.out).resolve() if args.out else workdir / "eso137.json"
    log(f"work dir {workdir}")
    try:
        result = bench(args, config, workdir, commit)
    finally:
        if not args.keep and not args.workdir:  # a --workdir given is the caller's: kept
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(result, indent=2)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(text)
    print(table(result), file=sys.stderr)
    if result["run"]["status"] != "succeeded":
        sys.exit(1)


def bench(args, config: dict, workdir: Path, commit: str | None) -> dict:
    for name in ("obs.ms", "obs.ms.flagversions", "obs.truth", "out", "run"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    sim_cmd = [venv_tool("rc-simulate"), "obs.ms", "--antennas", str(config["antennas"]),
               "--channels", str(config["channels"]), "--integrations",
               str(config["integrations"]), "--seed", str(args.seed)]  # fmt: skip
    log(f"simulating: {shlex.join(sim_cmd)}")
    sim = measure(sim_cmd, workdir / "rc-simulate", args.timeout)  # cwd: workdir
    if sim["returncode"] != 0:
        raise SystemExit(f"rc-simulate failed:\n{sim.get('stderr_tail')}")
    manifest = json.loads((workdir / "obs.truth" / "manifest.json").read_text())
    n_comp = components(workdir / "obs.truth" / "skymodel.txt")

    run_cmd = [venv_tool("rc-run"), str(RECIPE), "ms=obs.ms", f"prefix={PREFIX}",
               "init-model.path=obs.truth/skymodel.txt",
               f"init-model.brightest={n_comp}", "truth-gains=obs.truth/gains.zarr"]  # fmt: skip
    if args.size is not None:
        run_cmd.append(f"imaging.size={args.size}")
    if args.scale is not None:
        run_cmd.append(f"imaging.scale={args.scale}")
    run_cmd += args.set
    run_cmd += ["--run-dir", "run"]
    log(f"running: {shlex.join(run_cmd)}")
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    run = measure(run_cmd, workdir / "rc-run", args.timeout)
    record_path = workdir / "run" / "provenance.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    steps = steps_of(record, workdir)
    ran = [s for s in steps.values() if s.get("seconds") is not None]
    obs = manifest.get("observation", {})
    result = {
        "benchmark": "ESO 137-006 selfcal recipe (rc-run recipes/eso137.yml)",
        "mode": "small" if args.small else "full",
        "config": {
            **config,
            "seed": args.seed,
            "image_size": args.size or "recipe default",
            "image_scale": args.scale or "recipe default",
            "init_model_components": n_comp,
            "recipe_params_set": args.set,
        },
        "ms": {
            "rows": obs.get("n_rows"),
            "baselines": obs.get("n_baselines"),
            "correlations": len(obs.get("correlations", [])),
            "visibilities": (obs.get("n_rows") or 0)
            * config["channels"]
            * len(obs.get("correlations", [])),
        },
        "simulation": {
            "command": shlex.join(sim_cmd),
            "wall_s": sim["wall_s"],
            "cpu_s": sim["cpu_s"],
            "peak_rss_mib": sim["peak_rss_mib"],
        },
        "run": {
            "command": shlex.join(run_cmd),
            "started": started,
            "status": record.get("status", "no provenance"),
            "returncode": run["returncode"],
            "load_average_before": run["load_average_before"],
        },
        "steps": steps,
        "totals": {
            "wall_s": run["wall_s"],
            "rc_run_elapsed_s": record.get("elapsed_s"),
            "cpu_s": run["cpu_s"],
            "steps_s": round(sum(s["seconds"] for s in ran), 2),
            "steps_run": sum(1 for s in steps.values() if s["status"] == "ok"),
            "max_peak_rss_mib": max((s["peak_rss_mib"] or 0 for s in ran), default=0),
            "max_peak_rss_step": max(steps, key=lambda k: steps[k].get("peak_rss_mib") or 0)
            if ran
            else None,
        },
        "rounds": rounds_of(record, workdir),
        "gains_vs_truth": gains_vs_truth(workdir),
        "notes": [
            "seconds and peak_rss_mib per step from rc-run's provenance.json (wall around the "
            "step's process; ru_maxrss from os.wait4); totals.wall_s is this script's clock "
            "around rc-run, steps_s the sum of the steps' seconds (the rest: rc-run's start-up, "
            "validation and file digests)",
            "rounds: peak = max of PREFIX-image.fits; residual_rms_jy = 1.4826 x the median "
            "absolute deviation of PREFIX-residual.fits; dynamic_range = peak / rms",
            "simulation: rc-simulate's wall and peak RSS (GNU time), not in the totals",
            "gains_vs_truth: the last round's chain over the injected gains, each feed's phase "
            "referenced to antenna 0, divided by its median amplitude (all); per_channel_scale "
            "divides each channel by its own median instead (selfcal cannot tell a common "
            "spectral factor from the model's spectrum)",
        ],
        "machine": machine(),
        "radiocloud_commit": commit,
        "workdir": str(workdir) if args.keep or args.workdir else "(removed)",
    }
    if run["returncode"] != 0:
        result["run"]["stderr_tail"] = run.get("stderr_tail") or tail(
            (workdir / "rc-run").with_suffix(".stderr"), 20
        )
    return result


if __name__ == "__main__":
    main()
