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
from radiocloud.plot.axes import CATEGORIES, parse_axis, valid_axes

app = new_app(__doc__)


def _pair(text: str, option: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OptionError(f"{option} {text}: give WIDTHxHEIGHT, e.g. 800x600") from None
    if a < 1 or b < 1:
        raise OptionError(f"{option} {text}: both numbers must be positive")
    return a, b


def _safe(axis) -> str:
    return axis.name.replace(":", "-").replace("/", "_")


def _outputs(output: str, n: int, specs) -> list[str]:
    if n == 1:
        return [output]
    if "{x}" in output or "{y}" in output or "{n}" in output:
        safe = lambda a: a.name.replace(":", "-").replace("/", "_")  # noqa: E731
        return [output.format(x=safe(x), y=safe(y), n=i) for i, (x, y) in enumerate(specs)]
    stem, dot, ext = output.rpartition(".")
    return [f"{stem}-{i}.{ext}" if dot else f"{output}-{i}" for i in range(n)]


@app.command()
@with_runtime
def plot(
    dataset: Annotated[str, typer.Argument(help="Measurement Set, zarr or parquet dataset.")],
    x: Annotated[list[str], typer.Option("-x", help=f"X axis, one per plot: {valid_axes()}.")],
    y: Annotated[list[str], typer.Option("-y", help="Y axis, one per plot, e.g. DATA:amp.")],
    output: Annotated[
        str,
        typer.Option(
            help="PNG file; with several plots a template with {x}, {y} or {n}, "
            "else -0, -1, ... are added."
        ),
    ] = "plot.png",
    corr: Annotated[str | None, typer.Option(help="Correlations, e.g. XX or XX,YY.")] = None,
    colour_by: Annotated[
        str | None,
        typer.Option(help=f"Colour by a category: {', '.join(CATEGORIES)} (default: density)."),
    ] = None,
    pixels: Annotated[str, typer.Option(help="Grid of the aggregation, NXxNY.")] = "400x300",
    size: Annotated[str, typer.Option(help="Image size in pixels, WIDTHxHEIGHT.")] = "800x600",
    *,
    runtime: RuntimeOptions,
) -> None:
    """Plot Y against X for every visibility of DATASET."""
    from radiocloud.plot.pipeline import PlotConfig, PlotSpec, run

    if len(x) != len(y):
        raise OptionError(f"give one -y per -x: {len(x)} -x and {len(y)} -y")
    axes = [(parse_axis(a), parse_axis(b)) for a, b in zip(x, y, strict=True)]
    if colour_by is not None and colour_by.upper() not in CATEGORIES:
        raise OptionError(f"--colour-by {colour_by}: choose one of {', '.join(CATEGORIES)}")
    outs = _outputs(output, len(axes), axes)
    cfg = PlotConfig(
        dataset=dataset,
        plots=tuple(PlotSpec(a, b, o) for (a, b), o in zip(axes, outs, strict=True)),
        corr=tuple(c.strip().upper() for c in corr.split(",")) if corr else None,
        colour_by=colour_by.upper() if colour_by else None,
        pixels=_pair(pixels, "--pixels"),
        size=_pair(size, "--size"),
    )
    summary = RunSummary("rc-plot", read=dataset, written=", ".join(outs))
    with dask_runtime(runtime):
        run(cfg, memory_budget=runtime.memory_budget, threads=runtime.nthreads)
    summary.print()


def main() -> None:
    raise SystemExit(run_cli(app, "rc-plot"))
