"""Everything that defines a prediction, in one frozen dataclass (filled by the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from radiocloud.core.regions import Regions

Mode = Literal["replace", "add", "subtract"]


@dataclass(frozen=True)
class Selection:
    """Which components of a component list to predict."""

    within: tuple[float, float, float] | None = None  # RA, Dec, radius (rad); RA/Dec NaN = field
    regions: Regions | None = None  # a DS9 region file's shapes
    brightest: int | None = None
    points_only: bool = False


@dataclass(frozen=True)
class PredictConfig:
    dataset: str
    model: str
    output_column: str = "MODEL_DATA"
    mode: Mode = "replace"
    selection: Selection = Selection()
    fields: tuple[int, ...] | None = None  # FIELD_IDs to predict; None = all
    epsilon: float = 1e-6  # degridding accuracy (FITS models)
    time_smearing: bool = False  # average over each row's EXPOSURE (component lists)
    frequency_smearing: bool = False  # average over each channel's CHAN_WIDTH (component lists)
