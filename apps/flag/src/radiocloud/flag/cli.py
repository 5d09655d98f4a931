"""rc-flag: flag RFI in a dataset's FLAG column by a strategy of registered steps.

FLAG is saved as a flag version before it changes (restore it with rc-flag-versions), and
only grows: rc-flag adds flags, it never removes one.
"""

from __future__ import annotations

import logging
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
from radiocloud.core.errors import OptionError, OverflaggedError
from radiocloud.flag.strategy import load_strategy, presets

app = new_app(__doc__)
log = logging.getLogger("radiocloud.flag")
SELECT = "Selection"


def _ids(option: str, text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(f) for f in text.split(","))
    except ValueError:
        raise OptionError(f"{option} '{text}': give numbers, e.g. 0 or 0,2") from None


@app.command()
@with_runtime
def flag(
    dataset: Annotated[str, typer.Argument(help="Measurement Set, zarr or parquet dataset.")],
    strategy: Annotated[
        str,
        typer.Option(help=f"A preset ({', '.join(sorted(presets()))}) or a strategy YAML file."),
    ] = "meerkat-lband",
    column: Annotated[
        str | None,
        typer.Option(
            help="Column to flag on, or a difference: 'CORRECTED_DATA - MODEL_DATA' "
            "(default: the strategy's)."
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a step option: STEP.OPTION=VALUE (repeatable)."),
    ] = None,
    field: Annotated[str | None, typer.Option(help="FIELD_IDs.", rich_help_panel=SELECT)] = None,
    scan: Annotated[str | None, typer.Option(help="SCAN_NUMBERs.", rich_help_panel=SELECT)] = None,
    spw: Annotated[
        str | None, typer.Option(help="Spectral windows (SPW ids).", rich_help_panel=SELECT)
    ] = None,
    backup: Annotated[
        bool, typer.Option(help="Save FLAG as a flag version before changing it.")
    ] = True,
    max_flagged: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Fail (exit 1), and restore FLAG, if more than this fraction ends up flagged.",
        ),
    ] = None,
    summary_json: Annotated[
        str | None,
        typer.Option(help="Write the flag summaries before and after to this JSON file."),
    ] = None,
    *,
    runtime: RuntimeOptions,
) -> None:
    """Flag RFI in DATASET."""
    from radiocloud.core import io
    from radiocloud.flag.pipeline import FlagConfig, run

    chosen = load_strategy(strategy, overrides=set_ or (), column=column)
    spws = _ids("--spw", spw)
    cfg = FlagConfig(
        dataset=dataset,
        strategy=chosen,
        fields=_ids("--field", field),
        scans=_ids("--scan", scan),
        ddids=None if spws is None else _ddids(io.open_subtables(dataset), spws),
        backup=backup,
    )
    summary = RunSummary("rc-flag", read=f"{chosen.column} and FLAG of {dataset}", written="FLAG")
    with dask_runtime(runtime):
        result = run(cfg, memory_budget=runtime.memory_budget, threads=runtime.nthreads)
    before, after = result.before.total, result.after.total
    summary.rows, summary.visibilities = result.rows, after.total
    summary.details.append(
        f"strategy {chosen.name}: flagged {before.fraction:.2%} -> {after.fraction:.2%}"
    )
    if result.backup:
        summary.details.append(f"FLAG before saved as version {result.backup}")
    _report(result, summary_json, dataset)
    summary.print()
    if max_flagged is not None and after.fraction > max_flagged:
        _over_flagged(dataset, result.backup, after.fraction, max_flagged)


def _report(result, path: str | None, dataset: str) -> None:
    from rich.console import Console

    from radiocloud.flag.summary_cli import write_json
    from radiocloud.flag.tables import comparison_table

    Console(stderr=True).print(comparison_table(result.before, result.after))
    if path:
        write_json(path, {"dataset": dataset, "before": result.before.to_dict(),
                          "after": result.after.to_dict(), "backup": result.backup})  # fmt: skip


def _ddids(sub, spws: tuple[int, ...]) -> tuple[int, ...]:
    unknown = sorted(set(spws) - set(sub.ddid_spw))
    if unknown:
        raise OptionError(f"--spw {unknown[0]}: the dataset has SPWs {sorted(set(sub.ddid_spw))}")
    return tuple(d for d, s in enumerate(sub.ddid_spw) if s in spws)


def _over_flagged(dataset: str, backup: str | None, fraction: float, limit: float) -> None:
    if backup is None:
        raise OverflaggedError(
            f"{fraction:.2%} of the data is flagged, more than --max-flagged {limit:g}; there is "
            "no backup (--no-backup): check the strategy's thresholds"
        )
    from radiocloud.core.io.flagversions import restore_version

    restore_version(dataset, backup)
    raise OverflaggedError(
        f"{fraction:.2%} of the data would be flagged, more than --max-flagged {limit:g}: FLAG "
        f"was restored from version {backup}; raise the strategy's thresholds or the limit"
    )


def main() -> None:
    raise SystemExit(run_cli(app, "rc-flag"))
