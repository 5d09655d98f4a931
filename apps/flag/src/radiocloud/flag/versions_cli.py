"""rc-flag-versions: save, restore, list and delete named versions of a dataset's flags.

Versions live beside the dataset (``x.ms`` -> ``x.ms.flagversions/``), bit-packed, and restore
bit for bit. In a recipe, "restore the version named by a parameter, if it is set and exists"
is ``rc-flag-versions DATASET restore {NAME} --skip-missing``: with an empty NAME, or a NAME
that has no version, it logs a line and does nothing (exit 0).
"""

from __future__ import annotations

import enum
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
from radiocloud.core.errors import OptionError

log = logging.getLogger("radiocloud.flag")
app = new_app(__doc__)


class Action(enum.StrEnum):
    SAVE = "save"
    RESTORE = "restore"
    LIST = "list"
    DELETE = "delete"


def _describe(version: io.FlagVersion) -> str:
    return (
        f"flag version '{version.name}': {version.rows:,} rows, "
        f"{version.flagged_fraction:.2%} flagged"
    )


def _print_versions(dataset: str) -> None:
    from rich.console import Console
    from rich.table import Table

    versions = io.list_versions(dataset)
    console = Console()
    if not versions:
        console.print(f"'{dataset}' has no flag versions", highlight=False, soft_wrap=True)
        return
    table = Table(title=f"Flag versions of {dataset}", title_justify="left")
    for col in ("name", "created (UTC)", "rows", "flagged", "description"):
        table.add_column(col, justify="right" if col in ("rows", "flagged") else "left")
    for v in versions:
        table.add_row(
            v.name,
            v.created.strftime("%Y-%m-%d %H:%M:%S"),
            f"{v.rows:,}",
            f"{100 * v.flagged_fraction:.2f}%",
            v.description,
        )
    console.print(table)


def _run(action: Action, dataset: str, name: str, *, description, overwrite, runtime) -> None:
    summary = RunSummary(f"rc-flag-versions {action.value}")
    budget = {"memory_budget": runtime.memory_budget, "threads": runtime.nthreads}
    with dask_runtime(runtime):
        if action is Action.SAVE:
            summary.read, summary.written = f"FLAG of {dataset}", f"flag version '{name}'"
            version = io.save_version(
                dataset, name, description=description, overwrite=overwrite, **budget
            )
        else:
            summary.read, summary.written = f"flag version '{name}'", f"FLAG of {dataset}"
            version = io.restore_version(dataset, name, **budget)
    summary.details.append(_describe(version))
    summary.print()


@app.command()
@with_runtime
def versions(
    dataset: Annotated[str, typer.Argument(help="Measurement Set, zarr or parquet dataset.")],
    action: Annotated[Action, typer.Argument(help="What to do.", case_sensitive=False)],
    name: Annotated[
        str | None,
        typer.Argument(help="Version name (letters, digits, _ . -); not for list."),
    ] = None,
    description: Annotated[str, typer.Option(help="What the saved version holds.")] = "",
    overwrite: Annotated[bool, typer.Option(help="save: replace a version of that name.")] = (
        False
    ),
    skip_missing: Annotated[
        bool,
        typer.Option(help="restore: do nothing (exit 0) if NAME is empty or has no version."),
    ] = False,
    *,
    runtime: RuntimeOptions,
) -> None:
    """Save, restore, list or delete flag versions of DATASET."""
    name = (name or "").strip()
    if action is Action.LIST:
        if name:
            raise OptionError(f"list takes no NAME (got '{name}'): rc-flag-versions DATASET list")
        _print_versions(dataset)
        return
    if action is Action.RESTORE and skip_missing:
        if not name:
            log.info("no flag version named: nothing restored (--skip-missing)")
            return
        if not io.version_exists(dataset, name):
            log.info(
                "'%s' has no flag version '%s': nothing restored (--skip-missing)", dataset, name
            )
            return
    if not name:
        raise OptionError(
            f"{action.value} needs a NAME: rc-flag-versions DATASET {action.value} NAME"
        )
    if action is Action.DELETE:
        io.delete_version(dataset, name)
        log.info("deleted flag version '%s' of '%s'", name, dataset)
        return
    _run(action, dataset, name, description=description, overwrite=overwrite, runtime=runtime)


def main() -> None:
    raise SystemExit(run_cli(app, "rc-flag-versions"))
