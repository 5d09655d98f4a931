"""rc-data: dataset utilities: ``convert IN OUT``, and versioned datasets (delta-sets):
``branch ARCHIVE DELTA``, ``log DELTA``, ``diff DELTA``, ``cache DELTA COLUMN...``,
``consolidate DELTA OUT``."""

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
from radiocloud.core.io import deltaops

HELP = (
    "Dataset utilities: convert between Measurement Set, zarr and parquet; versioned datasets "
    "(delta-sets: branch, log, diff, cache, consolidate)."
)
app = new_app(HELP)


@app.callback()
def _root() -> None:
    """Dataset utilities: convert between Measurement Set, zarr and parquet; versioned
    datasets (delta-sets: branch, log, diff, cache, consolidate)."""


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


@app.command()
@with_runtime
def branch(
    archive: Annotated[
        str,
        typer.Argument(help="Parent: an MS, zarr, parquet or delta-set (s3:// ok); never written."),
    ],
    delta: Annotated[str, typer.Argument(help="The new delta-set (a folder or s3:// URL).")],
    *,
    runtime: RuntimeOptions,
) -> None:
    """Create DELTA on ARCHIVE: apps given DELTA read ARCHIVE through it and write to DELTA only."""
    summary = RunSummary("rc-data branch", read=archive, written=delta)
    with dask_runtime(runtime):
        manifest = deltaops.branch(archive, delta)
    summary.rows = manifest["nrow"]
    summary.details.append(
        f"{len(manifest['groups'])} groups indexed; parent fingerprint "
        f"{manifest['parent_fingerprint']['kind']} recorded"
    )
    summary.print()


@app.command()
@with_runtime
def log(
    delta: Annotated[str, typer.Argument(help="A delta-set.")],
    *,
    runtime: RuntimeOptions,
) -> None:
    """Show DELTA's chain of levels and the level each column is read from."""
    levels, sources = deltaops.log(delta)
    for i, level in enumerate(levels):
        extra = ""
        if level["kind"] == "delta":
            extra = f" created {level['created']}, generation {level['generation']}"
            extra += f", columns: {', '.join(level['columns']) or '-'}"
        print(f"level {i}: {level['url']} ({level['kind']}){extra}")
    for s in sources:
        tail = f" ({s.rows} rows there, the rest from below)" if s.falls_through else ""
        print(f"{s.column}: level {s.level}{tail}")


@app.command()
@with_runtime
def diff(
    delta: Annotated[str, typer.Argument(help="A delta-set.")],
    *,
    runtime: RuntimeOptions,
) -> None:
    """List the columns written to DELTA (cached copies excluded)."""
    for entry in deltaops.diff(delta):
        print(f"{entry['column']}: {entry['status']}, {entry['rows']} of {entry['of']} rows")


@app.command()
@with_runtime
def cache(
    delta: Annotated[str, typer.Argument(help="A delta-set.")],
    columns: Annotated[list[str], typer.Argument(help="Columns to copy from its parent.")],
    *,
    runtime: RuntimeOptions,
) -> None:
    """Copy COLUMNs (and the subtables) from DELTA's parent into DELTA, so that reading them
    no longer touches the parent."""
    summary = RunSummary("rc-data cache", read=delta, written=delta)
    with dask_runtime(runtime):
        summary.rows = deltaops.cache(
            delta, columns, memory_budget=runtime.memory_budget, threads=runtime.nthreads
        )
    summary.details.append(f"cached {', '.join(columns)}")
    summary.print()


@app.command()
@with_runtime
def consolidate(
    delta: Annotated[str, typer.Argument(help="A delta-set.")],
    output: Annotated[
        str, typer.Argument(help="Standalone dataset to write (.ms, .zarr or .parquet).")
    ],
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT if it exists.")] = False,
    *,
    runtime: RuntimeOptions,
) -> None:
    """Write DELTA's merged view (every column and subtable) as a standalone OUTPUT."""
    summary = RunSummary("rc-data consolidate", read=delta, written=output)
    with dask_runtime(runtime):
        result = convert_dataset(
            delta, output, overwrite=overwrite,
            memory_budget=runtime.memory_budget, threads=runtime.nthreads,
        )  # fmt: skip
    summary.rows = result["rows"]
    summary.visibilities = result["visibilities"]
    summary.details.append(f"merged view -> {result['to']}")
    summary.print()


def main() -> None:
    raise SystemExit(run_cli(app, "rc-data"))
