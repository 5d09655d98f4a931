"""rc-plot: draw every visibility of a dataset, aggregated into a pixel grid chunk by chunk
(memory does not grow with the number of points). Several -x/-y pairs make several plots."""

from __future__ import annotations

from typing import Annotated

import typer

from radiocloud.core.cli import (
    RunSummary,
    RuntimeOptions,
    dask_runtime,
    new_app,
    run_cli,
    with_runtime,
)
from radiocloud.core.errors import OptionError
from radiocloud.plot.axes import CATEGORIES, ITERATIONS, parse_axis, valid_axes
from radiocloud.plot.select import (
    Selection,
    parse_baselines,
    parse_channels,
    parse_ints,
    parse_uv_range,
    split,
)

app = new_app(__doc__)


def _pair(text: str, option: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OptionError(f"{option} {text}: give WIDTHxHEIGHT, e.g. 800x600") from None
    if a < 1 or b < 1:
        raise OptionError(f"{option} {text}: both numbers must be positive")
    return a, b


def _limits(text: str | None, option: str) -> tuple[float, float] | None:
    if not text:
        return None
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise OptionError(f"{option} {text}: write LO:HI, e.g. 0:2.5") from None
    if not hi > lo:
        raise OptionError(f"{option} {text}: HI must be above LO")
    return lo, hi


def _outputs(output: str, specs) -> list[str]:
    """One file per -x/-y pair: the template's {x}, {y} and {n} filled, else -0, -1, ...
    added when there are several."""
    if len(specs) == 1 and not any(k in output for k in ("{x}", "{y}", "{n}")):
        return [output]
    if any(k in output for k in ("{x}", "{y}", "{n}")):
        return [_fill(output, x=x.safe, y=y.safe, n=str(i)) for i, (x, y) in enumerate(specs)]
    stem, dot, ext = output.rpartition(".")
    return [f"{stem}-{i}.{ext}" if dot else f"{output}-{i}" for i in range(len(specs))]


def _fill(template: str, **values: str) -> str:
    """``template`` with {key} replaced for these keys only (others, e.g. {antenna}, stay
    for the iteration to fill)."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


@app.command()
@with_runtime
def plot(
    dataset: Annotated[
        str,
        typer.Argument(
            help="Measurement Set, zarr or parquet dataset; or an rc-calibrate gain table, a "
            "FITS image or an rc-flag-summary JSON file, each drawn in its own way."
        ),
    ],
    x: Annotated[
        list[str] | None, typer.Option("-x", help=f"X axis, one per plot: {valid_axes()}.")
    ] = None,
    y: Annotated[
        list[str] | None, typer.Option("-y", help="Y axis, one per plot, e.g. DATA:amp.")
    ] = None,
    output: Annotated[
        str,
        typer.Option(
            help="PNG file. With several plots, a template with {x}, {y} or {n} (else -0, -1, "
            "... are added); with --iter, {field}, {scan}, {spw}, {corr}, {antenna} or "
            "{baseline} (else -VALUE is added)."
        ),
    ] = "plot.png",
    corr: Annotated[
        str | None,
        typer.Option(help="Correlations or Stokes parameters, e.g. XX,YY or I (default: all)."),
    ] = None,
    colour_by: Annotated[
        str | None,
        typer.Option(
            help=f"Colour by a category ({', '.join(CATEGORIES)}), by the mean of any axis per "
            "pixel (e.g. DATA:phase, UVWAVE), or by the flagged fraction (FLAG, which plots "
            "flagged points too). Default: the density of points."
        ),
    ] = None,
    iterate: Annotated[
        str | None,
        typer.Option("--iter", help=f"One plot per value of: {', '.join(ITERATIONS)}."),
    ] = None,
    field: Annotated[str | None, typer.Option(help="Fields: FIELD_IDs or names.")] = None,
    scan: Annotated[str | None, typer.Option(help="Scan numbers, e.g. 1,3.")] = None,
    spw: Annotated[str | None, typer.Option(help="Spectral windows, e.g. 0.")] = None,
    ant: Annotated[
        str | None, typer.Option(help="Baselines with any of these antennas (names or indices).")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Baselines ANT-ANT, e.g. m000-m017,m000-m021.")
    ] = None,
    chan: Annotated[
        str | None, typer.Option(help="Channels START:STOP[:STEP] (STOP excluded), or one.")
    ] = None,
    uv_range: Annotated[
        str | None,
        typer.Option(help="uv distances LO:HI in m (default), km, lambda, klambda or Mlambda."),
    ] = None,
    autocorr: Annotated[
        bool, typer.Option("--autocorr/--no-autocorr", help="Include autocorrelations.")
    ] = True,
    xlim: Annotated[str | None, typer.Option(help="X range LO:HI (default: the data's).")] = None,
    ylim: Annotated[str | None, typer.Option(help="Y range LO:HI (default: the data's).")] = None,
    pixels: Annotated[str, typer.Option(help="Grid of the aggregation, NXxNY.")] = "400x300",
    html: Annotated[
        str | None,
        typer.Option(help="Also one self-contained HTML page of the plots (cursor read-out)."),
    ] = None,
    truth: Annotated[
        str | None,
        typer.Option(
            help="With a gain table: the true gains to compare it with (rc-simulate's "
            "OBS.truth/gains.zarr); draws the errors of the table's chain against frequency "
            "and time into --output."
        ),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(
            help="Image size in pixels, WIDTHxHEIGHT (default 800x600 for plots of "
            "visibilities and gains, 800x800 for images, 1000x800 for flag summaries)."
        ),
    ] = None,
    *,
    runtime: RuntimeOptions,
) -> None:
    """Plot Y against X for every visibility of DATASET (or draw a gain table, FITS image or
    flag summary)."""
    from radiocloud.plot import products

    kind = products.kind(dataset)
    if kind != "visibilities":
        if x or y:
            raise OptionError(
                f"-x/-y choose axes of visibilities; '{dataset}' is a {kind.replace('-', ' ')} "
                "file, drawn in its own way: drop -x and -y"
            )
        summary = RunSummary("rc-plot", read=dataset)
        sized = {"size": _pair(size, "--size")} if size else {}
        if truth is not None:
            if kind != "gains":
                raise OptionError(
                    f"--truth compares a gain table with true gains; '{dataset}' is a "
                    f"{kind.replace('-', ' ')} file: drop --truth or give a gain table"
                )
            written, errors = products.plot_gains_vs_truth(dataset, truth, output, **sized)
            summary.read += f" and {truth}"
            summary.details.append(errors)
        else:
            written = _plot_product(kind, dataset, output, sized.get("size"))
        summary.written = ", ".join(written)
        summary.print()
        return
    from radiocloud.plot.pipeline import PlotConfig, PlotSpec, run

    x, y = x or [], y or []
    if not x or len(x) != len(y):
        raise OptionError(f"give one -y per -x (at least one pair): {len(x)} -x and {len(y)} -y")
    if iterate is not None and iterate.lower() not in ITERATIONS:
        raise OptionError(f"--iter {iterate}: choose one of {', '.join(ITERATIONS)}")
    axes = [(parse_axis(a), parse_axis(b)) for a, b in zip(x, y, strict=True)]
    colour = _colour(colour_by)
    selection = Selection(
        fields=split(field),
        scans=parse_ints(scan, "--scan"),
        spws=parse_ints(spw, "--spw"),
        antennas=split(ant),
        baselines=parse_baselines(baseline),
        channels=parse_channels(chan),
        uv_range=parse_uv_range(uv_range),
        autocorrelations=autocorr,
    )
    outs = _outputs(output, axes)
    cfg = PlotConfig(
        dataset=dataset,
        plots=tuple(PlotSpec(a, b, o) for (a, b), o in zip(axes, outs, strict=True)),
        corr=split(corr.upper()) if corr else None,
        colour_by=colour,
        iterate=iterate.lower() if iterate else None,
        selection=selection,
        xlim=_limits(xlim, "--xlim"),
        ylim=_limits(ylim, "--ylim"),
        pixels=_pair(pixels, "--pixels"),
        size=_pair(size or "800x600", "--size"),
        html=html,
    )
    summary = RunSummary("rc-plot", read=dataset)
    with dask_runtime(runtime):
        written = run(cfg, memory_budget=runtime.memory_budget, threads=runtime.nthreads)
    summary.written = ", ".join(written) if len(written) <= 4 else f"{len(written)} plots"
    summary.print()


def _colour(text: str | None):
    if text is None:
        return None
    try:
        return parse_axis(text, colour=True)
    except OptionError:
        raise OptionError(
            f"--colour-by {text}: choose a category ({', '.join(CATEGORIES)}), FLAG, or an "
            f"axis ({valid_axes()})"
        ) from None


def _plot_product(kind: str, path: str, output: str, size) -> list[str]:
    from radiocloud.plot import products

    draw = {"gains": products.plot_gain_table, "fits": products.plot_fits_image,
            "flag-summary": products.plot_flag_summary}[kind]  # fmt: skip
    return draw(path, output, **({"size": size} if size else {}))


def main() -> None:
    raise SystemExit(run_cli(app, "rc-plot"))
