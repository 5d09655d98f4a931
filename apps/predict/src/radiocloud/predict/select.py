"""Pick the components to predict: within a radius of a position, the N brightest, points only."""

from __future__ import annotations

import numpy as np

from radiocloud.core.errors import SkyModelError
from radiocloud.core.skymodel import SkyModel
from radiocloud.predict.config import Selection


def angular_distance(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle distance (radians), haversine form (accurate at small separations)."""
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return 2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def select(model: SkyModel, sel: Selection, centre: tuple[float, float]) -> SkyModel:
    """The sub-model ``sel`` asks for; ``centre`` (RA, Dec) stands in for a --within position
    that was not given (the field's phase centre)."""
    keep = np.ones(len(model), bool)
    if sel.points_only:
        keep &= ~model.is_gaussian
    if sel.within is not None:
        ra, dec, radius = sel.within
        if np.isnan(ra):
            ra, dec = centre
        keep &= angular_distance(ra, dec, model.ra, model.dec) <= radius
    if sel.regions is not None:
        keep &= sel.regions.contains(model.ra, model.dec)
    index = np.flatnonzero(keep)
    if sel.brightest is not None and len(index) > sel.brightest:
        flux = np.abs(model.stokes[index, 0])
        index = np.sort(index[np.argsort(-flux, kind="stable")[: sel.brightest]])
    if not len(index):
        raise SkyModelError(
            "no component of the sky model is left after --within/--brightest/--points-only: "
            "widen the selection"
        )
    return model.select(index)


def check_visible(model: SkyModel, centre: tuple[float, float]) -> None:
    """Components more than 90 degrees from the phase centre cannot be predicted (n < 0)."""
    far = angular_distance(centre[0], centre[1], model.ra, model.dec) >= np.pi / 2
    if far.all():
        raise SkyModelError(
            "every component lies 90 degrees or more from the phase centre: the model belongs "
            "to another field (check the model or --field)"
        )
    if far.any():
        names = ", ".join(np.asarray(model.names)[far][:3])
        raise SkyModelError(
            f"{int(far.sum())} components lie 90 degrees or more from the phase centre "
            f"({names}...): drop them with --within"
        )
