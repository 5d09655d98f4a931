"""rc-average: average visibilities in time and frequency into a new dataset.

Data are averaged with their weights over unflagged samples only; weights are summed and
sigmas propagated; a bin with no unflagged sample stays flagged. Bins never cross a scan,
field, SPW or state. With --bda every baseline gets its own bins, as large as the smearing at
the field's edge allows. The input is never modified.
"""

from __future__ import annotations

from typing import Annotated

import typer

from radiocloud.average.options import parse_bin, parse_fov
from radiocloud.core.cli import (
    RunSummary,
    RuntimeOptions,
    dask_runtime,
    new_app,
    run_cli,
    with_runtime,
)
from radiocloud.core.errors import OptionError

app = new_app(__doc__)

BDA = "Baseline-dependent averaging"
SMEARING = "Smearing"


@app.command()
@with_runtime
def average(
    input: Annotated[str, typer.Argument(help="Measurement Set, zarr or parquet dataset.")],
    output: Annotated[
        str, typer.Argument(help="New dataset; its suffix (.ms, .zarr, .parquet) sets the format.")
    ],
    time_bin: Annotated[
        str | None,
        typer.Option(
            help="Integrations per bin (4) or a duration (16s, 2min). With --bda: the largest "
            "bin (default 16 integrations)."
        ),
    ] = None,
    chan_bin: Annotated[
        str | None,
        typer.Option(
            help="Channels per bin (4) or a width (1MHz). With --bda: the largest bin "
            "(default 16 channels)."
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            help="Visibility columns to average, comma-separated; IN:OUT renames "
            "(CORRECTED_DATA:DATA). Default: every complex visibility column."
        ),
    ] = None,
    keep_autocorrelations: Annotated[
        bool, typer.Option(help="Keep autocorrelations (dropped by default).")
    ] = False,
    bda: Annotated[
        bool,
        typer.Option(
            help="Baseline-dependent averaging: per-baseline power-of-two bins, up to "
            "--time-bin and --chan-bin, within --max-decorrelation at the field edge. "
            "Writes one SPW per channel resolution.",
            rich_help_panel=BDA,
        ),
    ] = False,
    max_decorrelation: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.5,
            help="Largest amplitude loss BDA may cause at the field edge (0.02 = 2%).",
            rich_help_panel=BDA,
        ),
    ] = 0.02,
    fov: Annotated[
        str | None,
        typer.Option(
            help="Diameter of the field to keep (degrees, or 90arcmin). Default: the primary "
            "beam's FWHM at each frequency.",
            rich_help_panel=SMEARING,
        ),
    ] = None,
    max_smearing: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Refuse bins that lose more than this amplitude fraction at the field edge.",
            rich_help_panel=SMEARING,
        ),
    ] = 0.1,
    force: Annotated[
        bool, typer.Option(help="Average even beyond --max-smearing.", rich_help_panel=SMEARING)
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT if it exists.")] = False,
    *,
    runtime: RuntimeOptions,
) -> None:
    """Average INPUT in time and frequency into the new dataset OUTPUT."""
    from radiocloud.average.pipeline import AverageConfig, run

    default = "16" if bda else "1"
    cfg = AverageConfig(
        input=input,
        output=output,
        time_bin=parse_bin(time_bin or default, "--time-bin", "time"),
        chan_bin=parse_bin(chan_bin or default, "--chan-bin", "chan"),
        columns=columns,
        keep_autocorrelations=keep_autocorrelations,
        bda=bda,
        max_decorrelation=max_decorrelation,
        fov=parse_fov(fov),
        max_smearing=max_smearing,
        force=force,
        overwrite=overwrite,
    )
    if bda and max_decorrelation <= 0:
        raise OptionError("--max-decorrelation must be positive with --bda")
    summary = RunSummary("rc-average", read=input, written=output)
    with dask_runtime(runtime):
        result = run(cfg, memory_budget=runtime.memory_budget, threads=runtime.nthreads)
    summary.rows, summary.visibilities = result.rows_in, result.visibilities_in
    renamed = [f"{i}→{o}" if i != o else o for o, i in result.columns.items()]
    summary.details.append(
        f"{result.rows_out:,} rows out, {result.compression:.2f}× fewer visibilities; "
        f"columns {', '.join(renamed)}"
    )
    summary.details.append(f"time factor {result.time_factor}, channel factor {result.chan_factor}")
    if result.bda_factors:
        mix = ", ".join(f"{k}: {n}" for k, n in sorted(result.bda_factors.items()))
        summary.details.append(f"baselines per time×channel factor: {mix}")
        summary.details.append(
            f"worst predicted decorrelation {100 * result.smearing.both:.2f}% "
            f"at the field edge ({result.smearing.edge_text})"
        )
    elif result.smearing is not None:
        summary.details += result.smearing.lines()
    if result.dropped:
        summary.details.append(f"not carried over: {', '.join(result.dropped)}")
    summary.print()


def main() -> None:
    raise SystemExit(run_cli(app, "rc-average"))
