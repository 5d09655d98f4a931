"""rc-predict: model visibilities from a sky model, written to MODEL_DATA (or another column)."""

from __future__ import annotations

import enum
import math
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
from radiocloud.core.regions import Regions, read_regions
from radiocloud.core.units import parse_angle
from radiocloud.predict.config import PredictConfig, Selection

app = new_app(__doc__)


class Smearing(enum.StrEnum):
    NONE = "none"
    TIME = "time"
    FREQUENCY = "frequency"
    BOTH = "both"


SELECT = "Selection"


def _within(text: str | None) -> tuple[float, float, float] | Regions | None:
    """'RADIUS' (about each field's phase centre), 'RA,DEC,RADIUS' (J2000) or a DS9 region
    file (``.reg``)."""
    if not text:
        return None
    if text.lower().endswith(".reg"):
        return read_regions(text)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 1:
        return math.nan, math.nan, parse_angle(parts[0])
    if len(parts) != 3:
        raise OptionError(f"--within '{text}': give RADIUS or RA,DEC,RADIUS, e.g. 1.5deg")
    from astropy.coordinates import SkyCoord

    try:
        c = SkyCoord(parts[0], parts[1], frame="fk5")
    except ValueError:
        raise OptionError(
            f"--within '{text}': cannot read the position; write e.g. 16h15m03.8s,-60d54m26s,1deg"
        ) from None
    return float(c.ra.rad), float(c.dec.rad), parse_angle(parts[2])


def _fields(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(f) for f in text.split(","))
    except ValueError:
        raise OptionError(f"--field '{text}': give FIELD_IDs, e.g. 0 or 0,2") from None


@app.command()
@with_runtime
def predict(
    dataset: Annotated[str, typer.Argument(help="Measurement Set, zarr or parquet dataset.")],
    model: Annotated[
        str, typer.Option(help="WSClean component list, or a FITS model image (Jy/pixel).")
    ],
    output_column: Annotated[str, typer.Option(help="Column to write (created if missing).")] = (
        "MODEL_DATA"
    ),
    mode: Annotated[
        str,
        typer.Option(help="replace the column, or add to / subtract from it."),
    ] = "replace",
    within: Annotated[
        str | None,
        typer.Option(
            help="Only components within RADIUS of the phase centre, within 'RA,DEC,RADIUS', "
            "or inside the shapes of a DS9 region file (FILE.reg, fk5; '-' shapes exclude).",
            rich_help_panel=SELECT,
        ),
    ] = None,
    brightest: Annotated[
        int | None,
        typer.Option(
            min=1, help="Only the N brightest components (Stokes I).", rich_help_panel=SELECT
        ),
    ] = None,
    points_only: Annotated[
        bool, typer.Option(help="Skip Gaussian components.", rich_help_panel=SELECT)
    ] = False,
    field: Annotated[
        str | None,
        typer.Option(help="FIELD_IDs to predict (default: all).", rich_help_panel=SELECT),
    ] = None,
    epsilon: Annotated[
        float, typer.Option(min=1e-12, max=1e-1, help="Degridding accuracy (FITS models).")
    ] = 1e-6,
    smearing: Annotated[
        Smearing,
        typer.Option(
            help="Average each component over the channel width (frequency), the integration "
            "(time, about twice the cost) or both, as the correlator did (component lists)."
        ),
    ] = Smearing.NONE,
    *,
    runtime: RuntimeOptions,
) -> None:
    """Predict model visibilities of a sky model into DATASET."""
    if mode not in ("replace", "add", "subtract"):
        raise OptionError(f"--mode {mode}: choose replace, add or subtract")
    where = _within(within)
    cfg = PredictConfig(
        dataset=dataset,
        model=model,
        output_column=output_column,
        mode=mode,
        selection=Selection(
            within=None if isinstance(where, Regions) else where,
            regions=where if isinstance(where, Regions) else None,
            brightest=brightest,
            points_only=points_only,
        ),
        fields=_fields(field),
        epsilon=epsilon,
        time_smearing=smearing in (Smearing.TIME, Smearing.BOTH),
        frequency_smearing=smearing in (Smearing.FREQUENCY, Smearing.BOTH),
    )
    from radiocloud.predict.pipeline import run

    summary = RunSummary("rc-predict", read=f"{model} and {dataset}", written=output_column)
    with dask_runtime(runtime):
        result = run(cfg, memory_budget=runtime.memory_budget, threads=runtime.nthreads)
    summary.rows, summary.visibilities = result.rows, result.visibilities
    kind = "pixels" if model.lower().endswith((".fits", ".fit", ".fts")) else "components"
    summary.details.append(f"{result.components:,} {kind} ({cfg.mode})")
    summary.print()


def main() -> None:
    raise SystemExit(run_cli(app, "rc-predict"))
