"""rc-data: dataset utilities (``rc-data convert IN OUT``)."""

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
from radiocloud.core.io import convert as convert_dataset

app = new_app("Dataset utilities: convert between Measurement Set, zarr and parquet.")


@app.callback()
def _root() -> None:
    """Dataset utilities: convert between Measurement Set, zarr and parquet."""


@app.command()
@with_runtime
def convert(
    source: Annotated[str, typer.Argument(help="Dataset to read (MS, zarr or parquet; s3:// ok).")],
    output: Annotated[
        str,
        typer.Argument(help="Dataset to write; its suffix (.ms, .zarr, .parquet) sets the format."),
    ],
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT if it exists.")] = False,
    *,
    runtime: RuntimeOptions,
) -> None:
    """Copy every column and subtable of SOURCE into OUTPUT, in OUTPUT's format."""
    summary = RunSummary("rc-data convert", read=source, written=output)
    with dask_runtime(runtime):
        result = convert_dataset(
            source,
            output,
            overwrite=overwrite,
            memory_budget=runtime.memory_budget,
            threads=runtime.nthreads,
        )
    summary.rows = result["rows"]
    summary.visibilities = result["visibilities"]
    summary.details.append(
        f"{result['from']} -> {result['to']} with subtables {', '.join(result['subtables'])}"
    )
    summary.print()


def main() -> None:
    raise SystemExit(run_cli(app, "rc-data"))
