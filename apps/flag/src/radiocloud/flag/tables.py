"""Flag summaries on the terminal: rich tables of one summary, or of two side by side."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from rich.console import Group
from rich.table import Table

from radiocloud.flag.summary import Count, FlagSummary, SpwFlags

SPARK = " ▁▂▃▄▅▆▇█"
SPECTRUM_WIDTH = 48  # characters of the per-channel sketch of an SPW
WORST_BASELINES = 10


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def _bar(fraction: float, width: int = 20) -> str:
    filled = round(fraction * width)
    return "█" * filled + "·" * (width - filled)


def spectrum(spw: SpwFlags, width: int = SPECTRUM_WIDTH) -> str:
    """The flagged fraction across an SPW's channels, one character per channel bin."""
    edges = np.linspace(0, len(spw.flagged), min(width, len(spw.flagged)) + 1).astype(int)
    f = np.add.reduceat(spw.flagged, edges[:-1])
    t = np.add.reduceat(spw.total, edges[:-1])
    levels = np.rint(8 * f / np.maximum(t, 1)).astype(int)
    return "".join(SPARK[level] for level in levels)


def _counts_table(title: str, key: str, rows: Iterable[tuple[str, Count]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(key)
    table.add_column("flagged", justify="right")
    table.add_column("total", justify="right")
    table.add_column("%", justify="right")
    table.add_column("")
    for name, c in rows:
        table.add_row(
            str(name), f"{c.flagged:,}", f"{c.total:,}", _pct(c.fraction), _bar(c.fraction)
        )
    return table


def _spw_table(summary: FlagSummary) -> Table:
    table = Table(title="Spectral windows", title_justify="left")
    for col in ("spw", "channels", "MHz", "%", "worst channel"):
        table.add_column(col, justify="left" if col == "spw" else "right")
    table.add_column("flagged across the band")
    for s in summary.spws:
        frac = s.fraction
        worst = int(np.argmax(frac)) if len(frac) else 0
        band = f"{s.frequency[0] / 1e6:.1f}-{s.frequency[-1] / 1e6:.1f}" if len(s.frequency) else ""
        table.add_row(
            f"{s.spw} {s.name}".strip(), str(len(frac)), band, _pct(s.count.fraction),
            f"{worst} ({_pct(frac[worst])})" if len(frac) else "", spectrum(s),
        )  # fmt: skip
    return table


def summary_tables(summary: FlagSummary, *, worst_baselines: int = WORST_BASELINES) -> Group:
    """One summary: total, fields, scans, correlations, antennas, SPWs, worst baselines."""
    worst = sorted(summary.baselines.items(), key=lambda kv: -kv[1].fraction)[:worst_baselines]
    return Group(
        _counts_table("Flagged visibilities", "", [("total", summary.total)]),
        _counts_table("Fields", "field", summary.fields.items()),
        _counts_table("Scans", "scan", summary.scans.items()),
        _counts_table("Correlations", "corr", summary.correlations.items()),
        _counts_table("Antennas", "antenna", summary.antennas.items()),
        _spw_table(summary),
        _counts_table(
            f"Most flagged baselines ({len(worst)} of {len(summary.baselines)})",
            "baseline",
            [(f"{a}-{b}", c) for (a, b), c in worst],
        ),
    )


def _rows(summary: FlagSummary) -> dict[str, dict[str, Count]]:
    return {
        "total": {"": summary.total},
        "field": dict(summary.fields),
        "scan": {str(k): c for k, c in summary.scans.items()},
        "corr": dict(summary.correlations),
        "spw": {str(s.spw): s.count for s in summary.spws},
        "antenna": dict(summary.antennas),
    }


def comparison_table(before: FlagSummary, after: FlagSummary, *, title: str = "") -> Table:
    """Two summaries side by side (e.g. before and after flagging): flagged % and the change
    in percentage points; "-" where one of them has no data."""
    table = Table(title=title or "Flagged before and after", title_justify="left")
    for col in ("", "", "before", "after", "change"):
        table.add_column(col, justify="right" if col else "left")
    old, new = _rows(before), _rows(after)
    for kind in old:
        for name in dict.fromkeys([*old[kind], *new[kind]]):
            b, a = old[kind].get(name), new[kind].get(name)
            shown = [_pct(c.fraction) if c and c.total else "-" for c in (b, a)]
            change = f"{100 * (a.fraction - b.fraction):+.2f}" if b and a else "-"
            table.add_row(kind, name, *shown, change)
    return table
