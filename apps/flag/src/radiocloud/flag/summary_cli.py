"""rc-flag-summary: how much of a dataset is flagged, per antenna, baseline, channel, scan,
field and correlation; a table on the terminal and, with --json, the numbers in a file.

With --max-flagged FRACTION it fails (exit 1) when more than that fraction of the
visibilities is flagged: a guard against over-flagging in recipes.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from radiocloud.core import io
from radiocloud.core.cli import (
    RunSummary,
    RuntimeOptions,
    dask_runtime,
    new_app,
    run_cli,
    with_runtime,
)
from radiocloud.core.errors import OptionError, OutputNotWritableError

log = logging.getLogger("radiocloud.flag")
app = new_app(__doc__)


def parse_fields(text: str | None, sub: io.Subtables) -> tuple[int, ...] | None:
    """FIELD_IDs from 'ID,ID' or 'NAME,NAME' (or a mix); None for all fields."""
    if not text:
        return None
    names = [f.name for f in sub.fields]
    ids = []
    for item in (p.strip() for p in text.split(",") if p.strip()):
        if item.isdigit() and int(item) < len(names):
            ids.append(int(item))
        elif item in names:
            ids.append(names.index(item))
        else:
            raise OptionError(
                f"--field {item}: the dataset has fields 0 to {len(names) - 1} ({', '.join(names)})"
            )
    return tuple(sorted(set(ids)))


def write_json(path: str, data: dict) -> None:
    import fsspec

    try:
        with fsspec.open(path, "w") as f:
            json.dump(data, f, indent=1)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise OutputNotWritableError(
            f"cannot write --json '{path}': {exc.strerror or exc}"
        ) from None


@app.command()
@with_runtime
def summary(
    dataset: Annotated[str, typer.Argument(help="Measurement Set, zarr or parquet dataset.")],
    json_path: Annotated[
        str | None, typer.Option("--json", help="Also write the numbers to this JSON file.")
    ] = None,
    max_flagged: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Fail (exit 1) if more than this fraction is flagged."),
    ] = None,
    field: Annotated[
        str | None, typer.Option(help="Only these fields: FIELD_IDs or names, e.g. 0,2.")
    ] = None,
    *,
    runtime: RuntimeOptions,
) -> None:
    """Summarise the flags of DATASET."""
    from rich.console import Console

    from radiocloud.flag.summary import check_max_flagged, summarise
    from radiocloud.flag.tables import summary_tables

    run = RunSummary("rc-flag-summary", read=f"FLAG of {dataset}", written=json_path or "")
    fields = parse_fields(field, io.open_subtables(dataset))
    with dask_runtime(runtime):
        result = summarise(
            dataset, fields=fields, memory_budget=runtime.memory_budget, threads=runtime.nthreads
        )
    Console().print(summary_tables(result))
    if json_path:
        write_json(json_path, {"dataset": dataset, "fields": fields, **result.to_dict()})
    run.visibilities = result.total.total
    run.details.append(f"{result.total.fraction:.2%} flagged")
    run.print()
    check_max_flagged(result, max_flagged)


def main() -> None:
    raise SystemExit(run_cli(app, "rc-flag-summary"))
