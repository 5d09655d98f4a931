"""Benchmark rc-predict against crystalball, the peer tool, on the same MS and sky models.

Simulates (once, cached in ``--workdir``) a 64-antenna, 256-channel, 300-integration MS of the
eso137 field with rc-simulate, writes WSClean component lists of N components (80% points,
20% Gaussians of 5-60 arcsec FWHM, within 1 degree of the phase centre, Stokes I with one
logarithmic spectral index term around -0.7 at 1.284 GHz: the subset of the format both tools
read identically), then for each N predicts MODEL_DATA into a fresh copy of the MS with each
tool, each in its own subprocess (wall, CPU and peak RSS from ``wait4`` of that process; the
copy is not timed), and compares the two MODEL_DATA columns row chunk by row chunk.

Run with the workspace's Python (``.venv/bin/python benchmarks/predict.py``). crystalball comes
from the ``peers`` harness (``peers install crystalball``, done here if it is missing). Prints
one JSON object. Timings on shared machines are noisy: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from harness import (
    copy_ms,
    logger,
    machine,
    measure,
    peer_exe,
    summary_line,
    venv_tool,
    version_of,
)

REF_FREQ = 1.284e9  # Hz, reference frequency of the sky models
# Mean and rms of the spectral index: one logarithmic term only, since codex-africanus (under
# crystalball) reads further terms as powers of ln(ν/ν₀) where WSClean has log₁₀(ν/ν₀).
SPECTRAL_INDEX = (-0.7, 0.2)
GAUSSIAN_FRACTION = 0.2
GAUSSIAN_FWHM = (5.0, 60.0)  # arcsec, major axis
RADIUS_DEG = 1.0  # components lie within this distance of the phase centre
COMPARE_CHUNK_BYTES = 64 << 20  # complex128 bytes per column per row chunk in the comparison
CORR_NAMES = {5: "RR", 6: "RL", 7: "LR", 8: "LL", 9: "XX", 10: "XY", 11: "YX", 12: "YY"}
PARALLEL_HANDS = ("XX", "YY", "RR", "LL")
# Where each tool reports its own summary: stream and a marker of the line.
SUMMARY = {"rc_predict": ("stdout", "rc-predict:"), "crystalball": ("stderr", "Elapsed time")}
log = logger("predict-bench")
# crystalball chunks sources by rows / 100 and divides by zero below 100 rows: 224 rows here.
WARMUP_MS = ("--antennas", "8", "--channels", "8", "--integrations", "8")


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def simulate(ms: Path, antennas: str, channels: str, integrations: str) -> None:
    """Write ``ms`` with rc-simulate unless it exists with the same settings (a stamp file)."""
    cmd = [venv_tool("rc-simulate"), str(ms), "--antennas", antennas, "--channels", channels,
           "--integrations", integrations, "--integration-time", "8s", "--sky", "eso137",
           "--seed", "7", "--no-rfi", "--overwrite"]  # fmt: skip
    stamp = ms.with_suffix(".json")
    if ms.exists() and stamp.exists() and json.loads(stamp.read_text()) == cmd[2:]:
        return
    log(f"simulating {ms} ({antennas} antennas, {channels} channels, {integrations} dumps)")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"rc-simulate failed ({proc.returncode})")
    stamp.write_text(json.dumps(cmd[2:]))


def ms_info(ms: Path) -> dict:
    from casacore.tables import table

    with table(str(ms), ack=False) as main:
        rows = main.nrows()
    with table(f"{ms}::FIELD", ack=False) as field:
        ra0, dec0 = (float(x) for x in field.getcol("PHASE_DIR")[0, 0])
    with table(f"{ms}::SPECTRAL_WINDOW", ack=False) as spw:
        channels = int(spw.getcol("NUM_CHAN")[0])
    with table(f"{ms}::POLARIZATION", ack=False) as pol:
        corrs = [CORR_NAMES.get(int(c), str(c)) for c in pol.getcol("CORR_TYPE")[0]]
    with table(f"{ms}::ANTENNA", ack=False) as ant:
        antennas = ant.nrows()
    return {"path": str(ms), "antennas": antennas, "rows": rows, "channels": channels,
            "correlations": corrs, "visibilities": rows * channels * len(corrs),
            "phase_centre_rad": [ra0, dec0], "bytes": du(ms)}  # fmt: skip


def make_skymodel(n: int, ra0: float, dec0: float, path: Path, seed: int) -> int:
    """Write ``n`` components about (ra0, dec0) to ``path``; returns the Gaussian count."""
    from radiocloud.core.skymodel import SkyModel, write_skymodel

    rng = np.random.default_rng([seed, n])
    radius = math.radians(RADIUS_DEG) * np.sqrt(rng.uniform(0.0, 1.0, n))  # uniform in area
    angle = rng.uniform(0.0, 2.0 * math.pi, n)
    l_, m_ = radius * np.sin(angle), radius * np.cos(angle)
    n_ = np.sqrt(1.0 - l_**2 - m_**2)  # inverse SIN projection
    dec = np.arcsin(m_ * math.cos(dec0) + n_ * math.sin(dec0))
    ra = (ra0 + np.arctan2(l_, n_ * math.cos(dec0) - m_ * math.sin(dec0))) % (2.0 * math.pi)
    n_gauss = round(GAUSSIAN_FRACTION * n)
    is_gaussian = np.zeros(n, dtype=bool)
    is_gaussian[rng.permutation(n)[:n_gauss]] = True
    major = rng.uniform(*GAUSSIAN_FWHM, n)
    minor = major * rng.uniform(0.3, 1.0, n)
    pa = rng.uniform(0.0, math.pi, n)
    shape = np.stack([np.radians(major / 3600.0), np.radians(minor / 3600.0), pa], axis=-1)
    shape[~is_gaussian] = 0.0
    stokes = np.zeros((n, 4))
    stokes[:, 0] = 10.0 ** rng.uniform(-3.0, 0.0, n)  # 1 mJy to 1 Jy, log-uniform
    model = SkyModel(
        names=tuple(f"c{i:06d}" for i in range(n)),
        is_gaussian=is_gaussian,
        ra=ra,
        dec=dec,
        stokes=stokes,
        spectral_coeffs=rng.normal(*SPECTRAL_INDEX, (n, 1)),
        log_si=True,
        ref_freq=np.full(n, REF_FREQ),
        shape=shape,
    )
    write_skymodel(model, path)
    return n_gauss


def compare(ref_ms: Path, test_ms: Path, column: str, corrs: list[str]) -> dict:
    """Per correlation, |a - b| statistics of ``column`` (a: ``ref_ms``, b: ``test_ms``),
    reading row chunks so that memory stays small; ``conj`` figures compare a* with b
    (a phase-sign mismatch shows as a small conj figure)."""
    from casacore.tables import table

    with table(str(ref_ms), ack=False) as a, table(str(test_ms), ack=False) as b:
        nrow = a.nrows()
        if b.nrows() != nrow:
            raise ValueError(f"{ref_ms} has {nrow} rows but {test_ms} has {b.nrows()}")
        nchan, ncorr = a.getcell(column, 0).shape
        step = max(1, COMPARE_CHUNK_BYTES // (nchan * ncorr * 16))
        max_diff, max_ref = np.zeros(ncorr), np.zeros(ncorr)
        ss_diff, ss_conj, ss_ref = np.zeros(ncorr), np.zeros(ncorr), np.zeros(ncorr)
        for start in range(0, nrow, step):
            count = min(step, nrow - start)
            x = a.getcol(column, start, count).astype(np.complex128)
            y = b.getcol(column, start, count).astype(np.complex128)
            diff = np.abs(x - y)
            max_diff = np.maximum(max_diff, diff.max(axis=(0, 1)))
            max_ref = np.maximum(max_ref, np.abs(x).max(axis=(0, 1)))
            ss_diff += (diff**2).sum(axis=(0, 1))
            ss_conj += (np.abs(x.conj() - y) ** 2).sum(axis=(0, 1))
            ss_ref += (np.abs(x) ** 2).sum(axis=(0, 1))

    def ratio(num: float, den: float) -> float | None:
        return float(f"{num / den:.3e}") if den > 0 else None

    per_corr = {
        name: {
            "max_abs_diff": float(f"{max_diff[i]:.3e}"),
            "max_abs": float(f"{max_ref[i]:.3e}"),
            "max_rel_diff": ratio(max_diff[i], max_ref[i]),
            "rms_rel_diff": ratio(math.sqrt(ss_diff[i]), math.sqrt(ss_ref[i])),
            "rms_rel_diff_conj": ratio(math.sqrt(ss_conj[i]), math.sqrt(ss_ref[i])),
        }
        for i, name in enumerate(corrs)
    }
    hands = [i for i, name in enumerate(corrs) if name in PARALLEL_HANDS] or list(range(ncorr))
    return {
        "max_rel_diff": ratio(max_diff[hands].max(), max_ref[hands].max()),
        "rms_rel_diff": ratio(math.sqrt(ss_diff[hands].sum()), math.sqrt(ss_ref[hands].sum())),
        "compared_correlations": [corrs[i] for i in hands],
        "per_correlation": per_corr,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--antennas", default="64")
    parser.add_argument("--channels", default="256")
    parser.add_argument("--integrations", default="300")
    parser.add_argument("--components", default="100,10000", help="sky model sizes, e.g. 100,1e4")
    parser.add_argument(
        "--threads", type=int, default=2, help="crystalball -j, rc-predict --threads"
    )
    parser.add_argument("--memory-budget", default=None, help="rc-predict --memory-budget")
    parser.add_argument("--timeout", type=float, default=2400.0, help="seconds per crystalball run")
    parser.add_argument(
        "--rc-timeout", type=float, default=2400.0, help="seconds per rc-predict run"
    )
    parser.add_argument("--crystalball", default=None, help="crystalball executable")
    parser.add_argument("--no-warmup", action="store_true", help="skip the JIT warm-up runs")
    parser.add_argument("--seed", type=int, default=7, help="seed of the sky models")
    parser.add_argument("--workdir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the MS copies the tools wrote")
    args = parser.parse_args()
    sizes = [int(float(n)) for n in args.components.split(",")]

    temporary = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="rc-bench-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ms = workdir / "bench.ms"
    simulate(ms, args.antennas, args.channels, args.integrations)
    info = ms_info(ms)
    ra0, dec0 = info["phase_centre_rad"]

    rc_cmd = [venv_tool("rc-predict"), "{ms}", "--model", "{sky}", "--output-column",
              "MODEL_DATA", "--threads", str(args.threads)]  # fmt: skip
    if args.memory_budget:
        rc_cmd += ["--memory-budget", args.memory_budget]
    cb_exe = peer_exe("crystalball", args.crystalball, log)
    cb_cmd = [cb_exe or "crystalball", "{ms}", "-sm", "{sky}", "-o", "MODEL_DATA",
              "-j", str(args.threads)]  # fmt: skip
    tools = {"rc_predict": rc_cmd, "crystalball": cb_cmd}
    timeouts = {"rc_predict": args.rc_timeout, "crystalball": args.timeout}

    def command(tool: str, copy: Path, sky: Path) -> list[str]:
        return [str(copy) if a == "{ms}" else str(sky) if a == "{sky}" else a for a in tools[tool]]

    if not args.no_warmup:  # numba caches compiled kernels on disk: time warm runs only
        warm_ms = workdir / "warmup.ms"
        simulate(warm_ms, *WARMUP_MS[1::2])
        warm_sky = workdir / "warmup-sky.txt"
        make_skymodel(5, *ms_info(warm_ms)["phase_centre_rad"], warm_sky, args.seed)
        for tool in tools:
            if tool == "crystalball" and cb_exe is None:
                continue
            log(f"warm-up run of {tool}")
            copy = workdir / f"warmup-{tool}.ms"
            copy_ms(warm_ms, copy)
            warm = measure(command(tool, copy, warm_sky), workdir / f"warmup-{tool}", 600.0)
            if warm["returncode"] != 0:
                log(f"warm-up run of {tool} failed:\n{warm['stderr_tail']}")
            shutil.rmtree(copy, ignore_errors=True)

    runs = []
    for n in sizes:
        sky = workdir / f"sky-{n}.txt"
        n_gauss = make_skymodel(n, ra0, dec0, sky, args.seed)
        run: dict = {"components": n, "gaussians": n_gauss, "visibilities": info["visibilities"],
                     "sky_model": str(sky)}  # fmt: skip
        copies, written = {}, []  # copies: the ones holding a complete MODEL_DATA
        for tool in tools:
            copy = workdir / f"{tool}-{n}.ms"
            if tool == "crystalball" and cb_exe is None:
                run[tool] = {"failed": True, "error": "crystalball is not installed"}
                continue
            copy_s = copy_ms(ms, copy)
            written.append(copy)
            log(f"{tool}: {n} components")
            logs = workdir / f"{tool}-{n}"
            result = measure(command(tool, copy, sky), logs, timeouts[tool])
            result["copy_s_excluded"] = round(copy_s, 1)
            if result["returncode"] == 0 and "timed_out" not in result:
                result["vis_components_per_s"] = round(n * info["visibilities"] / result["wall_s"])
                result["summary"] = summary_line(logs, *SUMMARY[tool])
                copies[tool] = copy
            else:
                result["failed"] = True
            run[tool] = result
            log(json.dumps({k: v for k, v in result.items() if k != "stderr_tail"}))
        rc, cb = run["rc_predict"], run["crystalball"]
        if "rc_predict" in copies and "crystalball" in copies:
            run["ratio_throughput"] = round(cb["wall_s"] / rc["wall_s"], 3)
            run["ratio_peak_rss"] = round(rc["peak_rss_mib"] / cb["peak_rss_mib"], 3)
            log("comparing MODEL_DATA")
            # crystalball is the reference: relative figures are |cb - rc| over |cb|
            run.update(compare(copies["crystalball"], copies["rc_predict"], "MODEL_DATA",
                               info["correlations"]))  # fmt: skip
        elif "rc_predict" in copies and cb.get("timed_out"):  # crystalball took longer still
            run["ratio_throughput_at_least"] = round(cb["wall_s"] / rc["wall_s"], 3)
        if not args.keep:
            for copy in written:
                shutil.rmtree(copy, ignore_errors=True)
        runs.append(run)

    result = {
        "benchmark": "rc-predict vs crystalball",
        "ms": {k: v for k, v in info.items() if k != "phase_centre_rad"},
        "commands": {tool: shlex.join(cmd) for tool, cmd in tools.items()},
        "warm": not args.no_warmup,
        "runs": runs,
        "machine": machine(),
        "versions": {
            "radiocloud-predict": version_of(Path(sys.executable), "radiocloud-predict"),
            "crystalball": cb_exe and version_of(Path(cb_exe).with_name("python"), "crystalball"),
        },
        "notes": [
            "relative differences are |crystalball - rc-predict| / |crystalball| over the "
            "parallel hands; rms_rel_diff_conj compares conj(crystalball) instead",
            "each tool runs on its own fresh cp -r copy (page cache warm for both); the copy "
            "time is excluded; peak RSS and CPU come from wait4 of that process",
        ],
    }
    print(json.dumps(result, indent=2))
    if temporary and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
