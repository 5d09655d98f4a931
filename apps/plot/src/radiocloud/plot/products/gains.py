"""Gain tables of rc-calibrate: per term, amplitude and phase of each antenna's solutions
against time (a term solved in several intervals), frequency (a bandpass, or a delay term's
per-channel gains) or antenna (one solution each), and a delay term's delays in ns.

Each antenna has a colour (named in a legend up to 20 antennas, a colour bar beyond), each
correlation a line style and marker; flagged solutions are left out, and each spectral window
of a table of several is a line of its own. Against time, a term with several frequency bins
is drawn at the bin nearest the centre of each interval's band. Only the first direction of a
direction-dependent term is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from radiocloud.core.errors import OptionError
from radiocloud.core.io import is_gain_table, read_gain_table
from radiocloud.plot.products.common import new_figure, not_a, require_file, save

if TYPE_CHECKING:
    import xarray as xr

LEGEND_MAX = 20  # antennas named in a legend; more get a colour bar of antenna indices
CORR_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "v"))  # line style, marker
TIME, FREQUENCY, ANTENNA = "time", "frequency", "antenna"


@dataclass(frozen=True)
class Series:
    """The unflagged solutions of one antenna, correlation and band (DATA_DESC_ID), in
    increasing x."""

    antenna: int
    corr: str
    band: int
    x: np.ndarray
    values: np.ndarray  # complex gains, or real parameters


@dataclass(frozen=True)
class Curves:
    """What one panel draws: the series of every antenna, correlation and band along one x
    axis."""

    axis: str  # TIME (s since the first solution), FREQUENCY (GHz) or ANTENNA (index)
    series: list[Series]


def curves(values: np.ndarray, flags: np.ndarray, term: xr.Dataset, freq_dim: str) -> Curves:
    """The series of ``values`` and ``flags`` (time, freq, ant, corr) of ``term``, whose
    frequency axis is ``freq_dim`` (gain_freq for gains, param_freq for parameters)."""
    times, freqs = term.gain_time.values, term[freq_dim].values
    ntime, nfreq, nant, _ = values.shape
    if len(np.unique(times)) > 1:
        rows = np.arange(ntime)
        bins = np.abs(freqs[None, :] - _band_centre(term)[:, None]).argmin(axis=1)
        values, flags = values[rows, bins][:, None], flags[rows, bins][:, None]
        axis, x = TIME, (times - times.min())[:, None, None]
    elif nfreq > 1:
        axis, x = FREQUENCY, freqs[None, :, None] / 1e9
    else:
        axis, x = ANTENNA, np.arange(nant, dtype=float)[None, None, :]
    x = np.broadcast_to(x, values.shape[:3])
    bands = term.ddid.values if "ddid" in term.coords else np.zeros(ntime, int)
    series = []
    for a in range(nant):
        for c, corr in enumerate(term.corr.values):
            for band in np.unique(bands):
                keep = ~flags[:, :, a, c] & (bands == band)[:, None]
                xs, vs = x[:, :, a][keep], values[:, :, a, c][keep]
                order = np.argsort(xs, kind="stable")
                series.append(Series(a, str(corr), int(band), xs[order], vs[order]))
    return Curves(axis, series)


def _band_centre(term: xr.Dataset) -> np.ndarray:
    """(time,) Hz: the centre of each interval's band (tables of several spectral windows
    label each interval with its band), else of the table's bins."""
    if "band_lo" in term.coords:
        return (term.band_lo.values + term.band_hi.values) / 2
    return np.full(len(term.gain_time), np.median(term.gain_freq.values))


def gain_curves(term: xr.Dataset) -> Curves:
    """The term's gains (first direction), flagged solutions left out."""
    return curves(
        term.gains.values[:, :, :, 0], term.gain_flags.values[:, :, :, 0], term, "gain_freq"
    )


def delay_curves(term: xr.Dataset) -> Curves | None:
    """The term's delays (ns; first direction), or None if it solves no delay."""
    if "params" not in term or "delay" not in term.param.values:
        return None
    delay = term.params.sel(param="delay").values[:, :, :, 0]
    return curves(delay, term.param_flags.values[:, :, :, 0], term, "param_freq")


def plot_gain_table(
    path: str, output: str, *, size: tuple[int, int] = (800, 600), terms: list[str] | None = None
) -> list[str]:
    """Draw each term (or those in ``terms``) of the gain table at ``path``: one file per term,
    named by formatting ``{term}`` in ``output`` or else adding -TERM before its suffix.
    Returns the files written, in the table's term order (or that of ``terms``)."""
    table = read_table(path)
    names = list(table) if terms is None else terms
    unknown = [n for n in names if n not in table]
    if unknown:
        raise OptionError(
            f"'{path}' has terms {', '.join(table)}, not {', '.join(unknown)}: choose from those"
        )
    return [
        save(
            draw_term(table[name], title=f"{Path(path).name}: {name}", size=size),
            term_output(output, name),
        )
        for name in names
    ]


def read_table(path: str) -> dict[str, xr.Dataset]:
    """The terms of the gain table at ``path``, or one clear error."""
    return read_table_and_attrs(path)[0]


def read_table_and_attrs(path: str) -> tuple[dict[str, xr.Dataset], dict]:
    """The terms of the gain table at ``path`` and its attributes, or one clear error."""
    require_file(path, "gain table")
    if not is_gain_table(path):
        raise not_a(path, "radiocloud gain table", "it has no rc-calibrate --gain-table marker")
    try:
        table, attrs = read_gain_table(path)
    except (OSError, KeyError, ValueError) as exc:
        raise not_a(path, "readable gain table", f"{type(exc).__name__}: {exc}") from None
    for name, term in table.items():
        missing = {"gains", "gain_flags"} - set(term.data_vars)
        if missing:
            raise not_a(path, "readable gain table", f"term {name} has no {', '.join(missing)}")
    return table, attrs


def term_output(output: str, term: str) -> str:
    """``output`` with ``{term}`` formatted, else with -TERM before its suffix (.png if none)."""
    if "{term}" in output:
        return output.replace("{term}", term)
    out = Path(output)
    return str(out.with_name(f"{out.stem}-{term}{out.suffix or '.png'}"))


def draw_term(term: xr.Dataset, *, title: str, size: tuple[int, int]):
    """A figure: amplitude and phase panels sharing x, and a delay panel for delay terms."""
    gains, delays = gain_curves(term), delay_curves(term)
    fig = new_figure(size)
    rows = 2 if delays is None else 3
    amp = fig.add_subplot(rows, 1, 1)
    phase = fig.add_subplot(rows, 1, 2, sharex=amp)
    panels = [
        (amp, gains, np.abs, "amplitude"),
        (phase, gains, lambda g: np.angle(g, deg=True), "phase (deg)"),
    ]
    if delays is not None:
        panels.append((fig.add_subplot(rows, 1, 3), delays, np.asarray, "delay (ns)"))
    antennas = [str(a) for a in term.ant.values]
    colours = antenna_colours(len(antennas))
    for ax, cur, f, label in panels:
        _draw(ax, cur, f, colours)
        ax.set_ylabel(label)
        _label_x(ax, cur, term, antennas)
    amp.set_xlabel("")  # the phase panel's x axis is the amplitude panel's too
    amp.tick_params(labelbottom=False)
    kind = term.attrs.get("type", "")
    fig.suptitle(f"{title}" + (f" ({kind})" if kind else ""), fontsize="medium")
    _legends(fig, [ax for ax, *_ in panels], antennas, colours, [str(c) for c in term.corr.values])
    return fig


def antenna_colours(n: int) -> np.ndarray:
    """(n, 3) RGB: tab10 or tab20 while they suffice, else spread along turbo."""
    from matplotlib import colormaps

    if n > LEGEND_MAX:
        return colormaps["turbo"](np.linspace(0, 1, n))[:, :3]
    table = colormaps["tab10" if n <= 10 else "tab20"].colors
    return np.array([table[i][:3] for i in range(n)])


def _draw(ax, cur: Curves, f, colours: np.ndarray) -> None:
    """Each series with data: ``f`` of its values, in its antenna's colour and its
    correlation's style; a note instead if every solution is flagged."""
    corrs = list(dict.fromkeys(s.corr for s in cur.series))
    drawn = [s for s in cur.series if len(s.x)]
    for s in drawn:
        line, marker = CORR_STYLES[corrs.index(s.corr) % len(CORR_STYLES)]
        ax.plot(s.x, f(s.values), linestyle=line, marker=marker, markersize=3, linewidth=0.8,
                color=colours[s.antenna])  # fmt: skip
    if not drawn:
        ax.text(0.5, 0.5, "every solution is flagged", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip


def _label_x(ax, cur: Curves, term: xr.Dataset, antennas: list[str]) -> None:
    if cur.axis == TIME:
        ax.set_xlabel(f"time since {_utc(term.gain_time.values.min())} UTC (s)")
    elif cur.axis == FREQUENCY:
        ax.set_xlabel("frequency (GHz)")
    else:
        ax.set_xlabel("antenna")
        if len(antennas) <= 32:
            ax.set_xticks(range(len(antennas)), antennas, rotation=90, fontsize="x-small")


def _utc(mjd_seconds: float) -> str:
    from astropy.time import Time

    return Time(mjd_seconds / 86400, format="mjd", scale="utc").iso[:19]


def _legends(fig, axes, antennas: list[str], colours: np.ndarray, corrs: list[str]) -> None:
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.lines import Line2D

    styles = [
        Line2D([], [], color="k", linestyle=line, marker=marker, markersize=3, label=c)
        for c, (line, marker) in zip(corrs, CORR_STYLES, strict=False)
    ]
    fig.legend(handles=styles, loc="outside right lower", fontsize="x-small", title="corr")
    if len(antennas) <= LEGEND_MAX:
        handles = [Line2D([], [], color=colours[i], label=a) for i, a in enumerate(antennas)]
        fig.legend(handles=handles, loc="outside right upper", fontsize="x-small", title="antenna")
        return
    from matplotlib.cm import ScalarMappable

    n = len(antennas)
    mappable = ScalarMappable(BoundaryNorm(np.arange(n + 1) - 0.5, n), ListedColormap(colours))
    ticks = range(0, n, max(1, n // 8))
    fig.colorbar(mappable, ax=axes, ticks=ticks, label="antenna (index)", fraction=0.04)
