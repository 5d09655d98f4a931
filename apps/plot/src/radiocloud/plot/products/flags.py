"""Flag summaries (``rc-flag-summary DATASET --json F.json``): the flagged fraction per
antenna, per channel against frequency (one line per spectral window), per scan and per
correlation, with the total in the title. Fractions are recomputed from the flagged and
total counts; a bin with no data has no fraction (nan) and is not drawn."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.ticker import PercentFormatter

from radiocloud.plot.products.common import new_figure, not_a, require_file, save

WHAT = "flag summary (rc-flag-summary --json)"
KEYS = ("total", "antenna", "scan", "correlation", "spw")
BAR_LABELS_MAX = 16  # bars that get their percentage written above them


@dataclass(frozen=True)
class Bars:
    labels: list[str]
    fractions: np.ndarray  # flagged / total, nan where there is no data


@dataclass(frozen=True)
class Channels:
    spw: str
    freq: np.ndarray  # GHz
    fractions: np.ndarray


@dataclass(frozen=True)
class Panels:
    flagged: int  # visibilities (FLAG cells) of the whole dataset
    visibilities: int
    antenna: Bars
    scan: Bars
    correlation: Bars
    channels: list[Channels]

    @property
    def fraction(self) -> float:
        return self.flagged / self.visibilities if self.visibilities else np.nan


def read_summary(path: str) -> dict:
    """The JSON at ``path``, if it has a flag summary's keys."""
    require_file(path, WHAT)
    try:
        summary = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise not_a(path, WHAT, f"cannot read it as JSON ({exc})") from None
    missing = [k for k in KEYS if not isinstance(summary, dict) or k not in summary]
    if missing:
        raise not_a(path, WHAT, f"it has no {', '.join(missing)}")
    return summary


def panels(summary: dict, path: str = "flag summary") -> Panels:
    """The numbers each panel draws, from a summary's to_dict layout."""
    try:
        return Panels(
            flagged=int(summary["total"]["flagged"]),
            visibilities=int(summary["total"]["total"]),
            antenna=_bars(summary["antenna"], "name"),
            scan=_bars(summary["scan"], "scan"),
            correlation=_bars(summary["correlation"], "name"),
            channels=[
                Channels(
                    str(s.get("name") or s["spw"]),
                    np.asarray(s["frequency_hz"]) / 1e9,
                    _fraction(s["chan_flagged"], s["chan_total"]),
                )
                for s in summary["spw"]
            ],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise not_a(path, WHAT, f"a record has a missing or malformed entry ({exc})") from None


def _bars(records: list[dict], key: str) -> Bars:
    flagged = [r["flagged"] for r in records]
    total = [r["total"] for r in records]
    return Bars([str(r[key]) for r in records], _fraction(flagged, total))


def _fraction(flagged, total) -> np.ndarray:
    flagged, total = np.asarray(flagged, dtype=float), np.asarray(total, dtype=float)
    if flagged.shape != total.shape:
        raise ValueError("flagged and total counts of different lengths")
    return np.divide(flagged, total, out=np.full(total.shape, np.nan), where=total > 0)


def plot_flag_summary(path: str, output: str, *, size: tuple[int, int] = (1000, 800)) -> list[str]:
    """Draw the flag summary JSON at ``path`` to ``output``."""
    summary = read_summary(path)
    name = Path(str(summary.get("dataset") or path).rstrip("/")).name
    return [save(draw_summary(panels(summary, path), name=name, size=size), output)]


def draw_summary(p: Panels, *, name: str, size: tuple[int, int]):
    """The figure: antennas and channels across, scans and correlations side by side."""
    fig = new_figure(size)
    layout = [["antenna", "antenna"], ["channel", "channel"], ["scan", "correlation"]]
    axes = fig.subplot_mosaic(layout)
    for key in ("antenna", "scan", "correlation"):
        _draw_bars(axes[key], getattr(p, key), key)
    _draw_channels(axes["channel"], p.channels)
    fig.suptitle(f"{name}: {p.fraction:.2%} flagged ({p.flagged:,} of {p.visibilities:,})")
    return fig


def _draw_bars(ax, bars: Bars, what: str) -> None:
    x = np.arange(len(bars.labels))
    drawn = ax.bar(x, np.nan_to_num(bars.fractions), color="tab:red")
    if len(x) <= BAR_LABELS_MAX:
        text = ["no data" if np.isnan(f) else f"{f:.1%}" for f in bars.fractions]
        ax.bar_label(drawn, text, fontsize="x-small")
    step = max(1, len(x) // 64)  # at most 64 tick labels
    ax.set_xticks(
        x[::step], bars.labels[::step], rotation=90 if len(x) > 8 else 0, fontsize="x-small"
    )
    ax.set_xlabel(what)
    _percent_axis(ax, bars.fractions)


def _draw_channels(ax, channels: list[Channels]) -> None:
    for c in channels:
        ax.plot(c.freq, c.fractions, marker=".", markersize=3, label=f"spw {c.spw}")
    if len(channels) > 1:
        ax.legend(fontsize="x-small")
    ax.set_xlabel("frequency (GHz)")
    _percent_axis(ax, np.concatenate([c.fractions for c in channels] or [[np.nan]]))


def _percent_axis(ax, fractions: np.ndarray) -> None:
    """Flagged % from 0 to a little above the largest fraction (at least 1 %, at most 105 %)."""
    largest = np.nanmax(fractions) if np.isfinite(fractions).any() else 0.0
    ax.set_ylim(0, min(1.05, max(0.01, 1.15 * largest)))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_ylabel("flagged")
