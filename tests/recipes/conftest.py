"""What the recipe tests share: the recipe, the workspace's programs, the dynamic range."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from astropy.io import fits

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "eso137.yml"
BIN = Path(sys.executable).parent


def dynamic_range(prefix: Path) -> float:
    """Peak of the restored image over the robust rms of the residual."""
    image = fits.getdata(f"{prefix}-image.fits").squeeze()
    residual = fits.getdata(f"{prefix}-residual.fits").squeeze()
    rms = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    return float(image.max() / rms)
