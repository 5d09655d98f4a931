"""A gain table against the true gains of a simulated observation (rc-simulate writes them to
OBS.truth/gains.zarr: ``gains`` (time, chan, ant, corr), the diagonal Jones terms that
corrupted the data).

The table's chain (the product of its terms) is evaluated at every integration and channel of
the truth and divided by it; the reference antenna's phase is taken out and the result scaled
by its median amplitude (see :func:`radiocloud.core.io.gaintable.compare_gains`). Four panels
show each antenna's amplitude error (%) and phase error (degrees) against frequency (median
over time) and against time (median over frequency); the title gives the rms errors.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from radiocloud.core.io.gaintable import chain_gains, compare_gains
from radiocloud.plot.products.common import new_figure, not_a, require_file, save
from radiocloud.plot.products.gains import (
    CORR_STYLES,
    _legends,
    _utc,
    antenna_colours,
    read_table_and_attrs,
)


def read_truth(path: str):
    """The true gains at ``path`` as an xarray dataset, or one clear error."""
    from daskms.experimental.zarr import xds_from_zarr

    require_file(path, "truth")
    try:
        truth = xds_from_zarr(path)[0]
    except (OSError, KeyError, ValueError, IndexError) as exc:
        raise not_a(path, "zarr dataset of true gains", f"{type(exc).__name__}: {exc}") from None
    if "gains" not in truth or truth.gains.dims != ("time", "chan", "ant", "corr"):
        raise not_a(path, "dataset of true gains", "it has no gains (time, chan, ant, corr)")
    return truth


def plot_gains_vs_truth(
    path: str, truth_path: str, output: str, *, size: tuple[int, int] = (1000, 700)
) -> tuple[list[str], str]:
    """Draw the gain table at ``path`` against the true gains at ``truth_path`` into
    ``output``; return the files written and a one-line summary of the errors."""
    table, attrs = read_table_and_attrs(path)
    truth = read_truth(truth_path)
    antennas = [str(a) for a in truth.ant.values]
    for name, term in table.items():
        if [str(a) for a in term.ant.values] != antennas:
            raise not_a(path, f"table of the antennas in {truth_path}", f"term {name} has "
                        f"{', '.join(map(str, term.ant.values))}")  # fmt: skip
    ref = _reference(path, str(attrs.get("ref_ant", "0")), antennas)
    times, freq = truth.time.values, truth.chan.values
    try:
        net, flags = chain_gains(table, times, freq)
        errors = compare_gains(net, flags, truth.gains.values.astype(np.complex128), ref)
    except ValueError as exc:
        raise not_a(path, f"table to compare with {truth_path}", str(exc)) from None
    amp = np.where(errors.valid, 100 * (np.abs(errors.ratio) - 1), np.nan)
    phase = np.where(errors.valid, np.angle(errors.ratio, deg=True), np.nan)
    fig = new_figure(size)
    axes = fig.subplots(2, 2, sharex="col", sharey="row")
    colours = antenna_colours(len(antennas))
    corrs = [str(c) for c in truth.corr.values]
    x = {0: freq / 1e9, 1: times - times.min()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: flagged channels and times
        for row, values in enumerate((amp, phase)):
            for col, over in enumerate((0, 1)):  # median over time, over frequency
                curve = np.nanmedian(values, axis=over)  # (x, ant, feed)
                ax = axes[row, col]
                for a in range(len(antennas)):
                    for f in range(len(corrs)):
                        line, marker = CORR_STYLES[f % len(CORR_STYLES)]
                        ax.plot(x[col], curve[:, a, f], linestyle=line, marker=marker,
                                markersize=2, linewidth=0.7, color=colours[a])  # fmt: skip
                ax.axhline(0, color="k", linewidth=0.5)
    axes[0, 0].set_ylabel("amplitude error (%)")
    axes[1, 0].set_ylabel("phase error (deg)")
    axes[1, 0].set_xlabel("frequency (GHz)")
    axes[1, 1].set_xlabel(f"time since {_utc(times.min())} UTC (s)")
    fig.suptitle(
        f"{Path(path).name} / truth, referenced to {antennas[ref]}\n"
        + errors.summary().replace("; ", "\n", 1),
        fontsize="medium",
    )
    _legends(fig, list(axes.ravel()), antennas, colours, corrs)
    return [save(fig, output)], f"gains against the truth: {errors.summary()}"


def _reference(path: str, ref: str, antennas: list[str]) -> int:
    """The table's reference antenna ``ref`` (an index or a name), as an index."""
    if ref in antennas:
        return antennas.index(ref)
    if ref.isdigit() and int(ref) < len(antennas):
        return int(ref)
    raise not_a(path, "table with a known reference antenna", f"ref_ant {ref}")
