"""Baseline-dependent averaging on the full MeerKAT array: factors and measured decorrelation.

Simulates (cached in ``--workdir``) a noise-free observation of one 1 Jy point source at the
edge of a 1° field (0.5° from the phase centre), 64 antennas, 64 channels of 209 kHz at
1.4 GHz, 32 integrations of 8 s; averages it with ``rc-average --bda`` and with the same
largest bins for every baseline; measures each output visibility's decorrelation
(1 - |V| / |V_in|: every input sample of a single point source has the same amplitude) and
plots it per baseline against the baseline's length, beside the factors BDA chose.

Run with the workspace's Python: ``.venv/bin/python benchmarks/bda_figure.py``. Prints JSON
and writes ``docs/figures/bda.png``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
from casacore.tables import table, taql
from harness import logger, venv_tool

log = logger("bda-figure")
TOLERANCE = 0.02
FOV_DEG = 1.0
OBSERVATION = ("--antennas", "64", "--channels", "64", "--freq-start", "1.4GHz", "--bandwidth",
               "13.376MHz", "--integrations", "32", "--noise", "0", "--no-gains", "--no-delays",
               "--no-bandpass", "--no-rfi")  # fmt: skip


def edge_source(path: Path) -> Path:
    from astropy.coordinates import SkyCoord
    from astropy.units import rad

    from radiocloud.simulate.sky import ESO137_DEC, ESO137_RA

    centre = SkyCoord(ESO137_RA * rad, ESO137_DEC * rad)
    pos = centre.directional_offset_by(np.radians(60) * rad, np.radians(FOV_DEG / 2) * rad)
    ra = pos.ra.to_string(unit="hourangle", sep=":", precision=4)
    dec = pos.dec.to_string(unit="deg", sep=".", precision=3, alwayssign=True)
    path.write_text(
        "Format = Name, Type, Ra, Dec, I, SpectralIndex, LogarithmicSI, "
        "ReferenceFrequency='1400000000', MajorAxis, MinorAxis, Orientation\n"
        f"edge,POINT,{ra},{dec},1.0,[],true,1400000000,,,\n"
    )
    return path


def run(*cmd) -> str:
    log(" ".join(str(c) for c in cmd))
    done = subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True)
    return done.stdout


def per_baseline(ms_in: Path, ms_out: Path) -> dict[tuple[int, int], dict]:
    """Per baseline: |uv| length, time and channel factors, worst measured decorrelation."""
    amp_in = np.abs(
        taql(f"select DATA from '{ms_in}' where ANTENNA1!=ANTENNA2").getcol("DATA")[..., 0]
    ).mean()
    spw = table(f"{ms_out}::SPECTRAL_WINDOW", ack=False)
    nchan = spw.getcol("NUM_CHAN")
    spw.close()
    ddi = table(f"{ms_out}::DATA_DESCRIPTION", ack=False)
    ddid_spw = ddi.getcol("SPECTRAL_WINDOW_ID")
    ddi.close()
    out: dict[tuple[int, int], dict] = {}
    for ddid, spw_id in enumerate(ddid_spw):
        t = taql(
            f"select ANTENNA1, ANTENNA2, UVW, INTERVAL, DATA from '{ms_out}' "
            f"where DATA_DESC_ID=={ddid}"
        )
        if not t.nrows():
            continue
        a1, a2 = t.getcol("ANTENNA1"), t.getcol("ANTENNA2")
        loss = 1.0 - np.abs(t.getcol("DATA")[..., 0]).min(axis=1) / amp_in  # worst channel
        uv = np.hypot(*t.getcol("UVW")[:, :2].T)
        interval = t.getcol("INTERVAL")
        for i in range(len(a1)):
            key = (int(a1[i]), int(a2[i]))
            entry = out.setdefault(
                key, {"uv": 0.0, "loss": 0.0, "time": 0, "chan": int(64 // nchan[spw_id])}
            )
            entry["uv"] = max(entry["uv"], float(uv[i]))
            entry["loss"] = max(entry["loss"], float(loss[i]))
            entry["time"] = max(entry["time"], round(float(interval[i]) / 8.0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rc-bda-figure"))
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/bda.png"))
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    ms = work / "edge.ms"
    if not ms.exists():
        run(venv_tool("rc-simulate"), ms, "--sky", edge_source(work / "edge.txt"), *OBSERVATION)
    bda, uniform = work / "bda.ms", work / "uniform.ms"
    summary = run(venv_tool("rc-average"), ms, bda, "--bda", "--fov", FOV_DEG,
                  "--max-decorrelation", TOLERANCE, "--overwrite")  # fmt: skip
    run(venv_tool("rc-average"), ms, uniform, "--time-bin", "16", "--chan-bin", "16", "--fov",
        FOV_DEG, "--force", "--overwrite")  # fmt: skip
    got_bda, got_uni = per_baseline(ms, bda), per_baseline(ms, uniform)
    keys = sorted(got_bda)
    uv = np.array([got_bda[k]["uv"] for k in keys])
    loss_bda = np.array([got_bda[k]["loss"] for k in keys])
    loss_uni = np.array([got_uni[k]["loss"] for k in keys])
    factor = np.array([got_bda[k]["time"] * got_bda[k]["chan"] for k in keys])
    compression = float(summary.split("rows out, ")[1].split("×")[0])
    result = {
        "observation": "64 antennas, 64 x 209 kHz at 1.4 GHz, 32 x 8 s, 1 Jy point 0.5° out",
        "max_decorrelation": TOLERANCE,
        "fov_deg": FOV_DEG,
        "bda": {
            "compression": compression,
            "measured_worst_decorrelation": float(loss_bda.max()),
            "baselines_per_factor": {
                str(f): int(n) for f, n in zip(*np.unique(factor, return_counts=True), strict=True)
            },
        },
        "uniform_16x16": {
            "compression": 256.0,
            "measured_worst_decorrelation": float(loss_uni.max()),
            "baselines_beyond_tolerance": int((loss_uni > TOLERANCE).sum()),
        },
        "summary": summary.strip(),
    }
    print(json.dumps(result, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    ax1.scatter(uv / 1e3, factor, s=6, c="tab:blue")
    ax1.set_xlabel("projected baseline length (km)")
    ax1.set_ylabel("samples per output visibility (time × channel)")
    ax1.set_yscale("log", base=2)
    ax1.set_title(f"BDA factors: {compression:.1f}x fewer visibilities")
    floor = 1e-3  # %, where the plot shows losses too small to see
    ax2.scatter(uv / 1e3, np.maximum(100 * loss_uni, floor), s=6, c="tab:red",
                label="16 × 16 for every baseline")  # fmt: skip
    ax2.scatter(uv / 1e3, np.maximum(100 * loss_bda, floor), s=6, c="tab:blue", label="BDA")
    ax2.axhline(100 * TOLERANCE, color="k", ls="--", lw=1, label="--max-decorrelation")
    ax2.set_xlabel("projected baseline length (km)")
    ax2.set_ylabel("measured amplitude loss at the field edge (%)")
    ax2.set_yscale("log")
    ax2.set_ylim(floor, 150)
    ax2.set_title("A 1 Jy source 0.5° from the phase centre")
    ax2.legend(loc="lower right", fontsize=8)
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=110)
    log(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
