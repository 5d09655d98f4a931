"""rc-calibrate: solve a chain of gain terms against a model, store the gains, write corrected
data. rc-calibrate-apply: apply stored gains to a dataset.

Each term (--terms K,G) is solved in turn with the others fixed, as many cycles as
--iter-recipe lists; every solve is one pass over the data and Gauss-Newton iterations on
its sufficient statistics, so solution intervals of any length need no more memory than
their statistics. Only the output columns are written; DATA, FLAG and the model are read only.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from radiocloud.calibrate.options import (
    PRODUCTS,
    CalibrateConfig,
    apply_overrides,
    iter_recipe,
    load_config,
    term_specs,
)
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
apply_app = new_app("rc-calibrate-apply: apply the gains of a gain table to a dataset.")
log = logging.getLogger("radiocloud.calibrate")
TERMS = "Terms (per-term values: V for all, or K=V,G=W)"
SOLVER = "Solver"
OUTPUT = "Output"

PerTerm = Annotated[str | None, typer.Option(rich_help_panel=TERMS)]


def _list(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    items = text if isinstance(text, list | tuple) else str(text).split(",")
    return tuple(str(s).strip() for s in items if str(s).strip())


def _products(columns: tuple[str, ...], products: tuple[str, ...]) -> tuple[str, ...]:
    products = products or ("corrected",) * len(columns)
    if len(products) != len(columns):
        raise OptionError(
            f"--output-product {','.join(products)}: give one product per --output-column "
            f"({','.join(columns)})"
        )
    for p in products:
        if p not in PRODUCTS:
            raise OptionError(f"--output-product {p}: choose from {', '.join(PRODUCTS)}")
    return products


@app.command()
@with_runtime
def calibrate(
    dataset: Annotated[str, typer.Argument(help="Measurement Set, zarr or parquet dataset.")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="Overrides of --config: OPTION=VALUE or TERM.OPTION=VALUE."),
    ] = None,
    config: Annotated[
        str | None, typer.Option(help="A YAML file of these options (flags win over it).")
    ] = None,
    terms: Annotated[
        str | None,
        typer.Option(
            help="The chain's terms in order, e.g. K,G (default: G).", rich_help_panel=TERMS
        ),
    ] = None,
    type: Annotated[
        str | None,
        typer.Option(
            "--type",
            help="Term types: diag-complex, bandpass, phase, amplitude, delay, pure-delay, "
            "crosshand-phase, complex (full 2x2, alone in its chain) "
            "(default: from the name: K delay, G diag-complex, B bandpass, P phase, A amplitude, "
            "X crosshand-phase).",
            rich_help_panel=TERMS,
        ),
    ] = None,
    time_interval: Annotated[
        str | None,
        typer.Option(
            help="Solution interval in time: integrations, a duration (60s) or 0 "
            "(the whole scan) (default: the type's).",
            rich_help_panel=TERMS,
        ),
    ] = None,
    freq_interval: Annotated[
        str | None,
        typer.Option(
            help="Solution interval in frequency: channels, a bandwidth (8MHz) or 0 "
            "(the whole window) (default: the type's).",
            rich_help_panel=TERMS,
        ),
    ] = None,
    load_from: Annotated[
        str | None,
        typer.Option(
            help="Start a term from a gain table: TERM=PATH or TERM=PATH:NAME.",
            rich_help_panel=TERMS,
        ),
    ] = None,
    iter_recipe_: Annotated[
        str | None,
        typer.Option(
            "--iter-recipe",
            help="Iterations of each term solve in turn, cycling "
            "through the terms, e.g. 25,25,10,10 (default: 25 per term).",
            rich_help_panel=SOLVER,
        ),
    ] = None,
    ref_ant: Annotated[
        str | None,
        typer.Option(
            help="Reference antenna (index or name) (default: 0).", rich_help_panel=SOLVER
        ),
    ] = None,
    tol: Annotated[
        float | None,
        typer.Option(
            help="Convergence: relative gain change (default: 1e-6).", rich_help_panel=SOLVER
        ),
    ] = None,
    robust: Annotated[
        bool | None,
        typer.Option(
            "--robust/--no-robust",
            help="Student-t reweighting of residuals from "
            "the second cycle on (a one-cycle recipe gets two more cycles).",
            rich_help_panel=SOLVER,
        ),
    ] = None,
    dof: Annotated[
        float | None,
        typer.Option(help="Student-t degrees of freedom (default: 5).", rich_help_panel=SOLVER),
    ] = None,
    mad_threshold: Annotated[
        float | None,
        typer.Option(
            help="Ignore samples whose residual exceeds this many robust standard "
            "deviations, from the second cycle on; 0 = off (default: 0, 5 with "
            "--robust).",
            rich_help_panel=SOLVER,
        ),
    ] = None,
    min_baselines: Annotated[
        int | None,
        typer.Option(
            help="Flag an antenna's gain with fewer baselines of data (default: 4).",
            rich_help_panel=SOLVER,
        ),
    ] = None,
    data_column: Annotated[str | None, typer.Option(help="(default: DATA)")] = None,
    model_column: Annotated[
        str | None,
        typer.Option(
            help="Model column, or a sum of columns (MODEL_DATA+MODEL_2) (default: MODEL_DATA)."
        ),
    ] = None,
    sky_model: Annotated[
        str | None,
        typer.Option(
            help="A WSClean component list to predict as the model, on the fly "
            "(instead of --model-column)."
        ),
    ] = None,
    ddid: Annotated[int | None, typer.Option(help="DATA_DESC_ID to calibrate.")] = None,
    field: Annotated[str | None, typer.Option(help="FIELD_IDs to calibrate (0,2).")] = None,
    output_column: Annotated[
        str | None,
        typer.Option(help="Columns to write, e.g. CORRECTED_DATA.", rich_help_panel=OUTPUT),
    ] = None,
    output_product: Annotated[
        str | None,
        typer.Option(
            help="What each output column holds: corrected, residual or "
            "corrected-residual (default: corrected).",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    propagate_flags: Annotated[
        bool | None,
        typer.Option(
            "--propagate-flags/--no-propagate-flags",
            help="Flag output samples whose gains are flagged (FLAG is saved as a flag "
            "version first) (default: on).",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    gain_table: Annotated[
        str | None,
        typer.Option(help="Write the gains to this zarr table.", rich_help_panel=OUTPUT),
    ] = None,
    report: Annotated[
        str | None,
        typer.Option(
            help="Write the convergence report to this JSON file.", rich_help_panel=OUTPUT
        ),
    ] = None,
    *,
    runtime: RuntimeOptions,
) -> None:
    """Solve a chain of gain terms for DATASET against its model."""
    from radiocloud.calibrate.pipeline import run

    given = {
        "terms": terms, "type": type, "time-interval": time_interval,
        "freq-interval": freq_interval, "load-from": load_from, "iter-recipe": iter_recipe_,
        "ref-ant": ref_ant, "tol": tol, "robust": robust, "dof": dof,
        "mad-threshold": mad_threshold, "min-baselines": min_baselines,
        "data-column": data_column, "model-column": model_column, "ddid": ddid,
        "field": field, "output-column": output_column, "output-product": output_product,
        "gain-table": gain_table, "report": report, "propagate-flags": propagate_flags,
        "sky-model": sky_model,
    }  # fmt: skip
    values = apply_overrides(load_config(config), overrides or ())
    values.update({k: v for k, v in given.items() if v is not None})
    cfg = config_from(dataset, values)
    model = f"sky model {cfg.sky_model}" if cfg.sky_model else cfg.model_column
    summary = RunSummary("rc-calibrate", read=f"{cfg.data_column} of {dataset} against {model}",
                         written=_written(cfg))  # fmt: skip
    with dask_runtime(runtime):
        result = run(cfg, memory_budget=runtime.memory_budget, threads=runtime.nthreads)
    _print_report(result.report)
    if cfg.report:
        with open(cfg.report, "w") as f:
            json.dump({"dataset": dataset, "steps": result.report,
                       "plans": [r.plan.describe() for r in result.runs]}, f, indent=2)  # fmt: skip
    summary.rows = result.rows
    summary.visibilities = result.visibilities
    summary.details.append(
        f"terms {','.join(s.name for s in cfg.terms)}, {len(result.report)} passes solved"
    )
    if result.backup:
        summary.details.append(f"samples of flagged gains flagged; FLAG before: {result.backup}")
    summary.print()


KNOWN = {"terms", "type", "time-interval", "freq-interval", "load-from", "iter-recipe",
         "ref-ant", "tol", "robust", "dof", "mad-threshold", "min-baselines", "data-column",
         "model-column", "ddid", "field", "output-column", "output-product", "gain-table",
         "report", "propagate-flags", "sky-model"}  # fmt: skip


def config_from(dataset: str, values: dict) -> CalibrateConfig:
    unknown = sorted(set(values) - KNOWN)
    if unknown:
        raise OptionError(f"unknown option {unknown[0]} (in --config or an override)")
    names = _list(values.get("terms")) or ("G",)
    specs = term_specs(names, values)
    recipe = iter_recipe(values.get("iter-recipe"), len(names))
    robust = _bool(values.get("robust", False))
    if robust and len(recipe) == len(names):
        # reweighting starts with the second cycle, from the first cycle's (RFI-biased)
        # gains; a second reweighted cycle reaches the noise (1.2x -> 1.05x of it in tests)
        recipe = recipe * 3
    columns = _list(values.get("output-column"))
    fields = _list(values.get("field"))
    try:
        return CalibrateConfig(
            dataset=dataset, terms=specs, iter_recipe=recipe,
            data_column=str(values.get("data-column", "DATA")),
            model_column=str(values.get("model-column", "MODEL_DATA")),
            sky_model=values.get("sky-model"),
            output_columns=columns,
            output_products=_products(columns, _list(values.get("output-product"))),
            gain_table=values.get("gain-table"), report=values.get("report"),
            ref_ant=str(values.get("ref-ant", "0")), tol=float(values.get("tol", 1e-6)),
            robust=robust, dof=float(values.get("dof", 5.0)),
            mad_threshold=float(values.get("mad-threshold", 5.0 if robust else 0.0)),
            min_baselines=int(values.get("min-baselines", 4)),
            propagate_flags=_bool(values.get("propagate-flags", True)),
            fields=tuple(int(f) for f in fields) or None,
            ddid=None if values.get("ddid") is None else int(values["ddid"]),
        )  # fmt: skip
    except ValueError as exc:
        raise OptionError(f"bad option value: {exc}") from None


def _bool(value) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def _written(cfg: CalibrateConfig) -> str:
    parts = [f"{c} ({p})" for c, p in zip(cfg.output_columns, cfg.output_products, strict=True)]
    if cfg.gain_table:
        parts.append(f"gain table {cfg.gain_table}")
    return ", ".join(parts) or "nothing (no --output-column or --gain-table)"


def _print_report(report: list[dict]) -> None:
    from rich.table import Table

    from radiocloud.core.progress import stderr_console

    table = Table(title="convergence")
    for col in ("term", "cycle", "intervals", "iterations (max/mean)", "converged",
                "reduced χ² before → after", "flagged"):  # fmt: skip
        table.add_column(col)
    for r in report:
        table.add_row(
            f"{r['term']} ({r['type']})", str(r["cycle"]), str(r["intervals"]),
            f"{r['iterations_max']}/{r['iterations_mean']:.1f}",
            f"{r['converged_fraction']:.1%}",
            f"{r['chi2_before']:.4g} → {r['chi2_after']:.4g}"
            if r["chi2_before"] is not None else "-",
            f"{r['flagged_fraction']:.1%}",
        )  # fmt: skip
    stderr_console().print(table)


@apply_app.command()
@with_runtime
def apply(
    dataset: Annotated[str, typer.Argument(help="Measurement Set, zarr or parquet dataset.")],
    gain_table: Annotated[str, typer.Option(help="A gain table written by rc-calibrate.")],
    output_column: Annotated[str, typer.Option(help="Column to write.")] = "CORRECTED_DATA",
    output_product: Annotated[
        str, typer.Option(help="corrected, residual or corrected-residual.")
    ] = "corrected",
    terms: Annotated[
        str | None, typer.Option(help="Terms of the table to apply (default: all).")
    ] = None,
    data_column: Annotated[str, typer.Option()] = "DATA",
    model_column: Annotated[
        str, typer.Option(help="Model, for the residual products.")
    ] = "MODEL_DATA",
    ddid: Annotated[int | None, typer.Option(help="DATA_DESC_ID to correct.")] = None,
    *,
    runtime: RuntimeOptions,
) -> None:
    """Apply the gains of GAIN_TABLE to DATASET."""
    from radiocloud.calibrate.apply import ApplyConfig, run_apply

    products = _products((output_column,), (output_product,))
    cfg = ApplyConfig(dataset, gain_table, output_column, products[0], _list(terms),
                      data_column, model_column, ddid)  # fmt: skip
    summary = RunSummary("rc-calibrate-apply", read=f"{data_column} of {dataset}",
                         written=f"{output_column} ({products[0]})")  # fmt: skip
    with dask_runtime(runtime):
        rows, vis, applied = run_apply(cfg, memory_budget=runtime.memory_budget,
                                       threads=runtime.nthreads)  # fmt: skip
    summary.rows, summary.visibilities = rows, vis
    summary.details.append(f"applied {','.join(applied)} from {gain_table}")
    summary.print()


def main() -> None:
    raise SystemExit(run_cli(app, "rc-calibrate"))


def apply_main() -> None:
    raise SystemExit(run_cli(apply_app, "rc-calibrate-apply"))
