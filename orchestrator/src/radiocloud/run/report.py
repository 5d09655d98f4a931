"""The run report: ``RUN_DIR/report.md``, written when a run ends (or by ``rc-run report DIR``).

From the provenance record alone: how the run went (status, time, the command that repeats it),
each step's status, wall time, peak memory and exit code; the images the steps wrote, with their
peak, the robust rms of the matching residual and the dynamic range; flag fractions from
rc-flag's summaries; gain tables against a simulation's truth, from rc-plot --truth's line in
the step's log; and the PNGs of steps given a PNG file name, shown inline.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

MAD_TO_SIGMA = 1.4826
TRUTH_LINE = re.compile(r"gains against the truth: (.*?); [0-9.]+ s wall")


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.md`` from its provenance record; its path."""
    record = json.loads((run_dir / "provenance.json").read_text())
    steps = record.get("steps") or {}
    cwd = Path(record.get("cwd") or ".")
    lines = [
        f"# rc-run report: {record.get('recipe')}",
        "",
        f"**{record.get('status')}** in {record.get('elapsed_s', 0):.1f} s on "
        f"{record.get('host')}, started {record.get('started')}.",
        "",
        f"Repeat it: `cd {shlex.quote(str(cwd))} && {shlex.join(record.get('command') or [])}`",
        "",
        "## Steps",
        "",
        "| step | status | wall s | peak MiB | exit |",
        "|---|---|---|---|---|",
    ]
    for name, entry in steps.items():
        lines.append(
            f"| {name} | {entry.get('status')} | {_num(entry.get('seconds'))} | "
            f"{_num(entry.get('peak_rss_mib'))} | {entry.get('exit_code', '')} |"
        )
    outputs = [(name, path) for name, entry in steps.items() for path in entry.get("outputs") or {}]
    pngs = [
        (name, str(png.relative_to(cwd)))
        for name, entry in steps.items()
        for value in (entry.get("params") or {}).values()
        if isinstance(value, str) and value.endswith(".png")
        for png in _pngs(cwd / value)
    ]
    lines += _images(outputs, cwd) + _flags(outputs, cwd) + _truth(steps, run_dir)
    lines += _plots(pngs, cwd, run_dir)
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _images(outputs: list[tuple[str, str]], cwd: Path) -> list[str]:
    rows = []
    for step, path in outputs:
        if not path.endswith("-image.fits") or not (cwd / path).exists():
            continue
        import numpy as np
        from astropy.io import fits  # only when there are images to measure

        peak = float(np.nanmax(fits.getdata(cwd / path)))
        residual = cwd / path.replace("-image.fits", "-residual.fits")
        rms = float("nan")
        if residual.exists():
            data = fits.getdata(residual)
            rms = MAD_TO_SIGMA * float(np.nanmedian(np.abs(data - np.nanmedian(data))))
        rows.append(f"| {step} | {path} | {peak:.4g} | {rms:.3g} | {peak / rms:.1f} |")
    if not rows:
        return []
    return [
        "",
        "## Images",
        "",
        "| step | image | peak Jy/beam | residual rms Jy/beam (robust) | dynamic range |",
        "|---|---|---|---|---|",
        *rows,
    ]


def _flags(outputs: list[tuple[str, str]], cwd: Path) -> list[str]:
    rows = []
    for step, path in outputs:
        if not path.endswith(".json") or not (cwd / path).exists():
            continue
        try:
            summary: Any = json.loads((cwd / path).read_text())
            before = summary["before"]["total"]["fraction"]
            after = summary["after"]["total"]["fraction"]
        except (ValueError, KeyError, TypeError):
            continue  # not an rc-flag summary
        rows.append(f"| {step} | {100 * before:.2f}% | {100 * after:.2f}% |")
    if not rows:
        return []
    return ["", "## Flags", "", "| step | flagged before | after |", "|---|---|---|", *rows]


def _pngs(path: Path) -> list[Path]:
    """rc-plot writes OUT.png, or OUT-K.png, OUT-G.png ... for several plots (a gain table's
    terms: names without a hyphen, so that another step's OUT-x-y.png is not taken)."""
    if path.exists():
        return [path]
    found = path.parent.glob(f"{glob.escape(path.stem)}-*.png")
    return sorted(p for p in found if "-" not in p.stem[len(path.stem) + 1 :])


def _truth(steps: dict, run_dir: Path) -> list[str]:
    rows = []
    for name in steps:
        log = run_dir / "logs" / f"{name}.log"
        if not log.exists():
            continue
        found = TRUTH_LINE.findall(log.read_text(errors="replace"))
        if found:
            rows.append(f"| {name} | {found[-1]} |")
    if not rows:
        return []
    return ["", "## Gains against the truth", "", "| step | errors |", "|---|---|", *rows]


def _plots(pngs: list[tuple[str, str]], cwd: Path, run_dir: Path) -> list[str]:
    lines = ["", "## Plots", ""] if pngs else []
    for step, path in pngs:
        relative = os.path.relpath((cwd / path).resolve(), run_dir.resolve())
        lines += [f"**{step}**: `{path}`", "", f"![{step}]({relative})", ""]
    return lines


def _num(value: Any) -> str:
    return "" if value is None else f"{value:g}"
