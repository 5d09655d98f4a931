"""Benchmark rc-calibrate against QuartiCal, the peer tool, solving the same gain chains on
the same simulated calibrator scans, and score both against the simulator's true gains.

Data. rc-simulate writes (once per case, cached in ``--workdir``) a 64-antenna, 256-channel
(856-1712 MHz, 3.3 MHz channels), 300 x 8 s MeerKAT scan of J1939-6342 (PKS 1934-638, a
14.9 Jy point source, at the phase centre) with MODEL_DATA holding the uncorrupted sky, thermal
noise from the SEFD, no RFI. Delays and bandpasses are solved on a primary calibrator in
practice, and on the default ESO 137-006 field (191 components over arcminutes) QuartiCal's
delay solve fails outright: its first estimate is the peak of an FFT of the raw DATA on the
baselines to the reference antenna, not divided by the model, which the extended field puts
up to 1.7 ns off, and Gauss-Newton then diverges (gain error ~1); ``--sky eso137`` shows this.
Two correlations (XX YY): both tools solve diagonal terms from the parallel hands only, and
two halve the volume of which QuartiCal holds several complex128 copies per chunk.

Cases, each tool on its own fresh copy in its own process (wall, CPU and peak RSS from the
harness; the copy is not timed), after one warm-up run of every command on a tiny MS:

1. ``KG``: time-variable gains (5% amplitude, 30 degree phase drifts, 15 min coherence) and
   2 ns rms delays, no bandpass. K (a delay and a phase offset per antenna and feed over the
   whole band) then G (diagonal complex, per integration, whole band).
2. ``B``: a bandpass only (ripple and edge roll-off). B (diagonal complex per channel, over
   the whole scan).

What makes the solves alike:

* K's time interval. QuartiCal solves only within a chunk of ``input_ms.time_chunk``
  integrations (its ``time_interval=0`` means the chunk), and a whole-scan chunk of the full MS
  exceeds the 23 GiB of this machine. So K is solved per ``--k-interval`` (20) integrations
  (160 s) in both tools: ``input_ms.time_chunk=20 K.time_interval=20``, ``--time-interval
  K=20``. G, per integration over the whole band, is the same problem in both.
* K's model. rc-calibrate's ``delay`` is a delay and a phase offset, both started from the
  peak of an FFT of the visibilities to the reference antenna; QuartiCal's nearest is
  ``delay_and_offset`` with ``initial_estimate=True`` (which starts the delay from its FFT
  and the offset from zero). QuartiCal's plain ``delay`` has no offset (its phase is zero at
  mid-band), so solved before G it cannot follow the antennas' phases: it diverges here.
* Iterations: at most 100 for K and 25 for G or B in both (``--iter-recipe 100,25``,
  ``solver.iter_recipe=[100,25]``), stopping at a gain change of 1e-6 (rc-calibrate per
  solution interval, QuartiCal once 99% of a chunk's gains have). QuartiCal's
  delay_and_offset needs 29-52 iterations where it converges: with 25, on the quick MS, it
  leaves one chunk's delays 6 ps off and that chunk's chi-squared 1.5 times the noise.
* B over the whole scan: QuartiCal chunks in frequency instead (``input_ms.time_chunk=0
  input_ms.freq_chunk=16``), which keeps its memory small and its solution interval the scan,
  like rc-calibrate's ``--time-interval 0``.
* Weights: QuartiCal from SIGMA (``input_ms.sigma_column=SIGMA``), rc-calibrate from WEIGHT
  (= SIGMA^-2 here). Both: 2 dask threads, reference antenna 0. rc-calibrate
  ``--memory-budget 8GiB``.

On the full MS (seed 7) QuartiCal's K does not converge in 4 of its 15 chunks: one antenna's
X delay settles 1.67 ns off (1.43 / bandwidth, the first sidelobe of the band's delay
response) after 100 iterations, though the FFT of the same data peaks at the true delay; a
second cycle (``[100,25,100,25]``) stays there. ``chunks_unconverged`` and
``gain_error_median`` against ``gain_error_rms`` show it.

Figures per tool: wall, CPU, peak RSS, visibilities/s (rows x channels x correlations of the
input / wall), iterations per term (rc-calibrate's --report; QuartiCal's ``conv_iter`` and
``conv_perc`` per chunk, from its gain datasets), and the quality of the solution:

* ``gain_error_rms``: the total Jones (the product of the terms, each looked up at the
  solution interval nearest each integration and channel) against the true one, both rephased
  per (time, channel, feed) to antenna 0 (times conj(J_ref)/|J_ref|), rms |J_est - J_true|
  over every unflagged sample; ``reference.gain_error_noise_floor_rms`` is what thermal noise
  alone gives an unbiased solver of the finest term with the exact model (first order: per
  interval 2/sum(|M_pq|^2 |J_q|^2/sigma^2), plus the reference antenna's phase error; K's own
  noise is left out);
* ``corrected_residual_over_sigma``: the rms of CORRECTED_DATA - MODEL_DATA per real and
  imaginary part in units of SIGMA over the samples unflagged in the output; it exceeds 1
  where |J| < 1 (the bandpass roll-off), so ``reference`` gives the same figure for DATA
  corrected by the true gains;
* ``residual_over_sigma``: DATA - J_p M J_q^H with the tool's gains, in units of SIGMA: 1 when
  the gains explain the data to the noise, whatever their amplitude.

Run with the workspace's Python (``.venv/bin/python benchmarks/calibrate.py``; ``--quick``
for a 16-antenna, 64-channel, 60-integration check). QuartiCal comes from the ``peers``
harness. Prints one JSON object. Timings on shared machines are noisy: compare runs on the
same machine.
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
from harness import (
    copy_ms,
    git_commit,
    logger,
    machine,
    measure,
    peer_exe,
    venv_tool,
    version_of,
)

log = logger("calibrate-bench")
SEED = 7
ROWS_PER_PASS = 20_160  # rows read at a time when scoring (10 integrations of 64 antennas)
FULL = ("--antennas", "64", "--channels", "256", "--integrations", "300")
QUICK = ("--antennas", "16", "--channels", "64", "--integrations", "60")
WARMUP = ("--antennas", "8", "--channels", "32", "--integrations", "40")
OBSERVATION = ("--correlations", "2", "--integration-time", "8s", "--model-data", "--no-rfi")
CALIBRATOR = (
    "Format = Name, Type, Ra, Dec, I, Q, U, V, SpectralIndex, LogarithmicSI, "
    "ReferenceFrequency, MajorAxis, MinorAxis, Orientation\n"
    "J1939-6342,POINT,19:39:25.026,-63.42.45.63,14.9,0.0,0.0,0.0,[-0.3,0.0],true,"
    "1400000000.0,,,\n"
)
CALIBRATOR_POINTING = "19h39m25.026s,-63d42m45.63s"
CASES = {  # corruptions simulated, terms solved, the finest term's (time, freq) interval
    "KG": {"simulate": ("--no-bandpass",), "terms": ["K", "G"], "finest": (1, 0)},
    "B": {"simulate": ("--no-gains", "--no-delays"), "terms": ["B"], "finest": (0, 1)},
}
QC_B_FREQ_CHUNK = 16
QC_CONVERGENCE_FRACTION = 0.99  # QuartiCal's solver.convergence_fraction (its default)


# ---- data ---------------------------------------------------------------------------------


def simulate(ms: Path, sim_args: list[str]) -> None:
    """Write ``ms`` with rc-simulate unless it exists with the same settings (a stamp file)."""
    cmd = [venv_tool("rc-simulate"), str(ms), *sim_args, "--seed", str(SEED), "--overwrite"]
    stamp = ms.with_suffix(".json")
    sky = Path(sim_args[sim_args.index("--sky") + 1])
    settings = {"simulate": cmd[2:], "sky": sky.read_text() if sky.exists() else str(sky)}
    if ms.exists() and stamp.exists() and json.loads(stamp.read_text()) == settings:
        return
    stamp.unlink(missing_ok=True)
    log(f"simulating {ms.name}: {shlex.join(cmd[2:])}")
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    stamp.write_text(json.dumps(settings))


def sim_args(size: tuple[str, ...], case: str, sky: str, workdir: Path) -> list[str]:
    if sky == "calibrator":
        path = workdir / "calibrator.txt"
        path.write_text(CALIBRATOR)
        where = ["--sky", str(path), "--pointing", CALIBRATOR_POINTING]
    else:
        where = ["--sky", sky]
    return [*size, *OBSERVATION, *where, *CASES[case]["simulate"], "--threads", "2"]


def ms_facts(ms: Path) -> dict:
    from casacore.tables import table

    with table(str(ms), ack=False) as t:
        rows, (nchan, ncorr) = t.nrows(), t.getcell("DATA", 0).shape
    return {"rows": rows, "channels": nchan, "correlations": ncorr,
            "visibilities": rows * nchan * ncorr}  # fmt: skip


# ---- the two tools' commands ----------------------------------------------------------------


# Command templates: {in}, {table}, {report}, {logs} are filled per run, the rest per benchmark.
RC = """{in} --data-column DATA --model-column MODEL_DATA --output-column CORRECTED_DATA
    --gain-table {table} --report {report} --threads {threads} --memory-budget {budget}"""
QC = """input_ms.path={in} input_ms.data_column=DATA input_ms.sigma_column=SIGMA
    input_model.recipe=MODEL_DATA output.gain_directory={table} output.log_directory={logs}
    output.products=[corrected_data] output.columns=[CORRECTED_DATA] dask.threads={threads}
    solver.reference_antenna=0"""
TEMPLATES = {
    "KG": {
        "rc_calibrate": """--terms K,G --type K=delay,G=diag-complex --time-interval K={k},G=1
            --freq-interval K=0,G=0 --iter-recipe 100,25""",
        "quartical": """input_ms.time_chunk={k} solver.terms=[K,G] solver.iter_recipe=[100,25]
            K.type=delay_and_offset K.initial_estimate=True K.time_interval={k}
            K.freq_interval=0 G.type=diag_complex G.time_interval=1 G.freq_interval=0""",
    },
    "B": {
        "rc_calibrate": "--terms B --type B=bandpass --time-interval 0 --freq-interval 1 "
        "--iter-recipe 25",
        "quartical": """input_ms.time_chunk=0 input_ms.freq_chunk={freq_chunk} solver.terms=[B]
            solver.iter_recipe=[25] B.type=diag_complex B.time_interval=0 B.freq_interval=1""",
    },
}


def commands(args, qc: str) -> dict[str, dict[str, list[str]]]:
    """Per case, per tool: the command, with {in}, {table}, {report} and {logs} to fill in."""
    values = {"k": args.k_interval, "threads": args.threads, "budget": args.memory_budget,
              "freq_chunk": QC_B_FREQ_CHUNK}  # fmt: skip
    heads = {
        "rc_calibrate": [venv_tool("rc-calibrate"), *RC.split()],
        "quartical": [qc, *QC.split()],
    }
    return {
        case: {tool: fill(heads[tool] + text.split(), **values) for tool, text in tools.items()}
        for case, tools in TEMPLATES.items()
    }


def fill(cmd: list[str], **values) -> list[str]:
    out = []
    for arg in cmd:
        for key, value in values.items():
            arg = arg.replace("{" + key + "}", str(value))
        out.append(arg)
    return out


def outputs(workdir: Path, stem: str) -> dict[str, Path]:
    return {"table": workdir / f"{stem}.gains", "report": workdir / f"{stem}.report.json",
            "logs": workdir / f"{stem}.logs"}  # fmt: skip


def clear(paths: dict[str, Path]) -> None:
    for path in paths.values():
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def warm_up(workdir: Path, cases: dict, sky: str) -> None:
    """Both tools cache compiled numba kernels on disk: one run of each command on a tiny MS
    of its case (QuartiCal's first run compiles for about two minutes)."""
    for case, tools in cases.items():
        warm = workdir / f"warmup-{case}.ms"
        simulate(warm, sim_args(WARMUP, case, sky, workdir))
        for tool, cmd in tools.items():
            log(f"warm-up run of {tool} ({case})")
            copy, out = workdir / f"warmup-{case}-{tool}.ms", outputs(workdir, f"warmup-{tool}")
            copy_ms(warm, copy)
            clear(out)
            result = measure(fill(cmd, **{"in": copy}, **out), workdir / f"warmup-{tool}", 1800)
            if result["returncode"] != 0:
                log(f"warm-up of {tool} ({case}) failed:\n{result.get('stderr_tail')}")
            shutil.rmtree(copy, ignore_errors=True)
            clear(out)


# ---- gain tables ------------------------------------------------------------------------------


def read_groups(store: Path, name: str) -> list:
    """Every zarr group at or under ``store/name`` holding a ``gains`` array, as an xarray
    dataset (dask-ms partitions such as ``G/G_0`` or ``G/MAIN/MAIN_0`` each give one)."""
    import xarray as xr
    import zarr

    def walk(group) -> list:
        if "gains" in group.array_keys():
            return [group]
        return [g for key in sorted(group.group_keys()) for g in walk(group[key])]

    found = walk(zarr.open_group(str(store), mode="r")[name])
    return [xr.Dataset({k: (a.attrs["_ARRAY_DIMENSIONS"], a[...]) for k, a in g.arrays()})
            for g in found]  # fmt: skip


def truth_jones(src: Path):
    """(time, chan, ant, feed) true Jones diagonals, and their times, frequencies, names."""
    (ds,) = read_groups(src.with_suffix(".truth") / "gains.zarr", "MAIN")
    names = [str(n) for n in ds["ant"].values]
    return ds["gains"].values.astype(np.complex128), ds["time"].values, ds["chan"].values, names


def tool_jones(table: Path, terms: list[str], truth) -> tuple[np.ndarray, np.ndarray]:
    """The product of ``terms``' gains at every (time, chan, ant, feed) of ``truth``, each
    looked up at the nearest solution centre in time and frequency, and where any is flagged."""
    true, times, freqs, names = truth
    jones, flagged = np.ones_like(true), np.zeros(true.shape, bool)
    for term in terms:
        parts = read_groups(table, term)  # one per scan, field and spw: join them in time
        g, f, centres = [], [], []
        for ds in parts:
            ant_dim = "ant" if "ant" in ds.dims else "antenna"
            order = [list(map(str, ds[ant_dim].values)).index(n) for n in names]
            gains = ds["gains"].values[:, :, order, 0][..., [0, -1]]  # the diagonal (2 or 4)
            flags = ds["gain_flags"].values[:, :, order, 0].astype(bool)
            flags = flags[..., None] if flags.ndim == 3 else flags[..., [0, -1]]
            g.append(gains)
            f.append(np.broadcast_to(flags, gains.shape))
            centres.append(ds["gain_time"].values)
        f_centres = parts[0]["gain_freq"].values
        g, f, t_centres = np.concatenate(g), np.concatenate(f), np.concatenate(centres)
        ti = np.abs(times[:, None] - t_centres[None]).argmin(axis=1)
        fi = np.abs(freqs[:, None] - f_centres[None]).argmin(axis=1)
        jones *= g[ti][:, fi]
        flagged |= f[ti][:, fi]
    return jones, flagged


def rephase(jones: np.ndarray, ref: int = 0) -> np.ndarray:
    r = jones[:, :, ref : ref + 1]
    return jones * np.conj(r) / np.where(np.abs(r) > 0, np.abs(r), 1)


def gain_error(jones: np.ndarray, flagged: np.ndarray, true: np.ndarray) -> dict:
    good = ~flagged & ~flagged[:, :, :1]  # a sample whose reference gain is flagged is lost
    err = np.abs(rephase(jones) - rephase(true))[good]
    if err.size == 0:
        return {"gain_flagged_fraction": 1.0}
    return {"gain_error_rms": float(f"{np.sqrt(np.mean(err**2)):.4e}"),
            "gain_error_median": float(f"{np.median(err):.4e}"),
            "gain_error_max": float(f"{err.max():.4e}"),
            "gain_flagged_fraction": round(float(flagged.mean()), 5)}  # fmt: skip


def iterations_rc(report: Path) -> dict:
    steps = json.loads(report.read_text()).get("steps", [])
    keys = ("cycle", "intervals", "iterations_max", "iterations_mean", "converged_fraction",
            "chi2_before", "chi2_after", "flagged_fraction")  # fmt: skip
    out: dict = {}
    for step in steps:
        entry = {k: step.get(k) for k in keys}
        entry = {k: float(f"{v:.5g}") if isinstance(v, float) else v for k, v in entry.items()}
        out.setdefault(step["term"], []).append(entry)
    return out


def iterations_qc(table: Path, terms: list[str]) -> dict:
    out = {}
    for term in terms:
        (ds,) = read_groups(table, term)[:1]
        its, conv = ds["conv_iter"].values.ravel(), ds["conv_perc"].values.ravel()
        out[term] = {"chunks": int(its.size), "iterations_max": int(its.max()),
                     "iterations_mean": round(float(its.mean()), 2),
                     "converged_fraction": round(float(conv.mean()), 4),
                     "chunks_unconverged": int((conv < QC_CONVERGENCE_FRACTION).sum())}  # fmt: skip
    return out


# ---- residuals and the noise floor ------------------------------------------------------------


def passes(ms: Path, columns: list[str]):
    """The MS's ``columns`` in row slices of ROWS_PER_PASS."""
    from casacore.tables import table

    with table(str(ms), ack=False) as t:
        for start in range(0, t.nrows(), ROWS_PER_PASS):
            n = min(ROWS_PER_PASS, t.nrows() - start)
            yield {c: t.getcol(c, start, n) for c in columns}


def _rows(cols: dict, times: np.ndarray) -> tuple[np.ndarray, ...]:
    ti = np.abs(cols["TIME"][:, None] - times[None]).argmin(axis=1)
    return ti, cols["ANTENNA1"], cols["ANTENNA2"], cols["SIGMA"][:, None, :]


def _chi2(diff: np.ndarray, sigma: np.ndarray, good: np.ndarray) -> float:
    return float((np.abs(diff / sigma) ** 2)[good].sum())


def _rms(total: float, count: int) -> float | None:
    """sqrt(sum |r/sigma|^2 / (2 count)): per real and imaginary part."""
    return round(float(np.sqrt(total / (2 * count))), 4) if count else None


def residuals(ms: Path, jones: np.ndarray, times: np.ndarray) -> dict:
    """A tool's CORRECTED_DATA - MODEL_DATA, and DATA - J_p M J_q^H with its gains, in units of
    SIGMA, over the samples unflagged in its output."""
    cols = ["TIME", "ANTENNA1", "ANTENNA2", "SIGMA", "FLAG", "DATA", "MODEL_DATA",
            "CORRECTED_DATA"]  # fmt: skip
    corrected, residual, count, flagged, total = 0.0, 0.0, 0, 0, 0
    for c in passes(ms, cols):
        ti, a1, a2, sigma = _rows(c, times)
        good = ~c["FLAG"]
        model = jones[ti, :, a1] * c["MODEL_DATA"] * np.conj(jones[ti, :, a2])
        corrected += _chi2(c["CORRECTED_DATA"] - c["MODEL_DATA"], sigma, good)
        residual += _chi2(c["DATA"] - model, sigma, good)
        count, flagged = count + int(good.sum()), flagged + int((~good).sum())
        total += good.size
    return {"corrected_residual_over_sigma": _rms(corrected, count),
            "residual_over_sigma": _rms(residual, count),
            "output_flagged_fraction": round(flagged / max(total, 1), 5)}  # fmt: skip


def _bins(n: int, interval: int) -> np.ndarray:
    return np.arange(n) // interval if interval > 0 else np.zeros(n, np.int64)


def reference(src: Path, truth, interval: tuple[int, int]) -> dict:
    """With the true gains: the corrected residual (noise alone) and the gain error that
    thermal noise gives an unbiased solve of a term on ``interval`` (integrations, channels;
    0 = all) with the exact model, to first order."""
    true, times, _, _ = truth
    nt, nf, nant, nfeed = true.shape
    tbin, fbin = _bins(nt, interval[0]), _bins(nf, interval[1])
    ntb, nfb = tbin.max() + 1, fbin.max() + 1
    info = np.zeros(ntb * nfb * nant * nfeed)
    corrected, count = 0.0, 0
    cols = ["TIME", "ANTENNA1", "ANTENNA2", "SIGMA", "FLAG", "DATA", "MODEL_DATA"]
    for c in passes(src, cols):
        ti, a1, a2, sigma = _rows(c, times)
        good = ~c["FLAG"]
        jp, jq = true[ti, :, a1], true[ti, :, a2]
        corrected += _chi2(c["DATA"] / (jp * np.conj(jq)) - c["MODEL_DATA"], sigma, good)
        count += int(good.sum())
        m2 = np.abs(c["MODEL_DATA"]) ** 2 / sigma**2 * good
        base = (tbin[ti][:, None] * nfb + fbin[None, :])[:, :, None]  # (row, chan, 1)
        feed = np.arange(nfeed)[None, None, :]
        for ant, other in ((a1, jq), (a2, jp)):
            index = ((base * nant + ant[:, None, None]) * nfeed + feed).ravel()
            info += np.bincount(index, (m2 * np.abs(other) ** 2).ravel(), minlength=info.size)
    var = 2 / np.where(info > 0, info, np.inf).reshape(ntb, nfb, nant, nfeed)
    var = var[tbin][:, fbin]  # at every (time, chan, ant, feed)
    ratio = np.abs(true) ** 2 / np.maximum(np.abs(true[:, :, :1]) ** 2, 1e-30)
    floor = var + ratio * var[:, :, :1] / 2
    floor[:, :, 0] = var[:, :, 0] / 2
    return {"corrected_residual_over_sigma": _rms(corrected, count),
            "gain_error_noise_floor_rms": float(f"{np.sqrt(floor.mean()):.4e}")}  # fmt: skip


# ---- running --------------------------------------------------------------------------------


def run_tool(tool: str, cmd: list[str], src: Path, workdir: Path, case: str, args, truth,
             facts: dict) -> dict:  # fmt: skip
    copy, out = workdir / f"{case}-{tool}.ms", outputs(workdir, f"{case}-{tool}")
    clear(out)
    copy_s = copy_ms(src, copy)
    full = fill(cmd, **{"in": copy}, **out)
    log(f"{case} {tool}: {shlex.join(full)}")
    result = measure(full, workdir / f"{case}-{tool}", args.timeout)
    result["copy_s_excluded"] = round(copy_s, 1)
    if result["returncode"] != 0 or "timed_out" in result or not out["table"].exists():
        result["failed"] = True
    else:
        result["visibilities_per_s"] = round(facts["visibilities"] / result["wall_s"])
        terms = CASES[case]["terms"]
        try:
            if tool == "rc_calibrate":
                result["iterations"] = iterations_rc(out["report"])
            else:
                result["iterations"] = iterations_qc(out["table"], terms)
            jones, flagged = tool_jones(out["table"], terms, truth)
            result.update(gain_error(jones, flagged, truth[0]))
            log(f"{case} {tool}: scoring the residuals")
            result.update(residuals(copy, jones, truth[1]))
        except Exception as exc:  # a tool's output this script cannot read is a finding
            result["scoring_error"] = f"{type(exc).__name__}: {exc}"
    if not args.keep:
        shutil.rmtree(copy, ignore_errors=True)
        clear(out)
    return result


def ratios(runs: dict) -> dict:
    rc, qc = runs.get("rc_calibrate", {}), runs.get("quartical", {})
    if rc.get("failed") or qc.get("failed") or not rc or not qc:
        return {}
    out = {"throughput_ratio": round(qc["wall_s"] / rc["wall_s"], 3),
           "peak_rss_ratio": round(rc["peak_rss_mib"] / qc["peak_rss_mib"], 3),
           "cpu_s_ratio": round(rc["cpu_s"] / max(qc["cpu_s"], 1e-3), 3)}  # fmt: skip
    if rc.get("gain_error_rms") and qc.get("gain_error_rms"):
        out["gain_error_ratio"] = round(rc["gain_error_rms"] / qc["gain_error_rms"], 3)
    return out


NOTES = [
    "throughput_ratio = QuartiCal wall / rc-calibrate wall (>1: rc-calibrate faster); "
    "peak_rss_ratio and cpu_s_ratio = rc-calibrate / QuartiCal (<1: rc-calibrate leaner); "
    "gain_error_ratio = rc-calibrate / QuartiCal (<1: rc-calibrate closer to the truth); "
    "visibilities are rows x channels x correlations of the input",
    "timings are warm: each command first ran on a tiny MS of its case (both tools cache "
    "compiled numba kernels on disk); each run works on its own fresh cp -r copy (copy time "
    "excluded), writing CORRECTED_DATA into it",
    "KG: K is solved per k_interval integrations in both tools, because QuartiCal cannot solve "
    "across its time chunks and a whole-scan chunk does not fit in memory; rc-calibrate's "
    "'delay' (delay + phase offset, FFT start) against QuartiCal's 'delay_and_offset' with "
    "initial_estimate=True",
    "B: QuartiCal chunks in frequency (time_chunk=0, freq_chunk=16) so that its solution "
    "interval is the whole scan, like rc-calibrate's --time-interval 0",
    "iterations: QuartiCal's per chunk (conv_iter; converged_fraction = mean conv_perc, the "
    "fraction of gains that met the criterion); rc-calibrate's per pass from its --report",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="16 antennas, 64 channels, 60 integrations")  # fmt: skip
    parser.add_argument("--cases", default="KG,B")
    parser.add_argument("--sky", default="calibrator", help="'calibrator' or rc-simulate --sky")
    parser.add_argument("--k-interval", type=int, default=20,
                        help="K's interval, QuartiCal's time chunk (integrations)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-budget", default="8GiB", help="rc-calibrate --memory-budget")
    parser.add_argument("--quartical", default=None, help="goquartical executable")
    parser.add_argument("--no-warmup", action="store_true", help="skip the JIT warm-up runs")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    parser.add_argument("--workdir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the calibrated copies")
    args = parser.parse_args()
    commit = git_commit()  # at the start: the workspace may move on while this runs

    temporary = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="rc-calibrate-bench-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    qc = peer_exe("quartical", args.quartical, log)
    if qc is None:
        raise SystemExit("QuartiCal is not installed: 'peers install quartical'")
    wanted = args.cases.split(",")
    cases = {c: tools for c, tools in commands(args, qc).items() if c in wanted}
    size = QUICK if args.quick else FULL
    sims = {case: sim_args(size, case, args.sky, workdir) for case in cases}
    prefix = "quick-" if args.quick else ""
    for case, sim in sims.items():
        simulate(workdir / f"{prefix}{case}.ms", sim)
    if not args.no_warmup:
        warm_up(workdir, cases, args.sky)

    results = {}
    for case, tools in cases.items():
        src = workdir / f"{prefix}{case}.ms"
        facts, truth = ms_facts(src), truth_jones(src)
        log(f"{case}: scoring the true gains")
        ref = reference(src, truth, CASES[case]["finest"])
        runs = {}
        for tool, cmd in tools.items():
            runs[tool] = run_tool(tool, cmd, src, workdir, case, args, truth, facts)
            log(json.dumps({k: v for k, v in runs[tool].items() if k != "stderr_tail"}))
        results[case] = {"ms": facts, "reference": ref, "runs": runs, "ratios": ratios(runs)}

    result = {
        "benchmark": "rc-calibrate vs QuartiCal",
        "mode": "quick" if args.quick else "full",
        "simulation": {case: shlex.join(s) for case, s in sims.items()},
        "sky": CALIBRATOR if args.sky == "calibrator" else args.sky,
        "k_interval": args.k_interval,
        "commands": {c: {t: shlex.join(x) for t, x in tools.items()} for c, tools in cases.items()},
        "warm": not args.no_warmup,
        "cases": results,
        "notes": NOTES,
        "machine": machine(),
        "versions": {
            "radiocloud-calibrate": version_of(Path(sys.executable), "radiocloud-calibrate"),
            "quartical": version_of(Path(qc).with_name("python"), "quartical"),
            "radiocloud_commit": commit,
        },
    }
    print(json.dumps(result, indent=2))
    if temporary and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
