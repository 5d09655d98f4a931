"""Observation geometry: integration times and UVW coordinates.

UVW are computed with casacore's measures, the same code path as casacore's own
``mscal.uvwj2000``: each antenna's ITRF offset from the array reference is converted to a
J2000 baseline at the integration's mid-time (UTC) and projected onto the phase centre;
a row's UVW is uvw(ANTENNA2) - uvw(ANTENNA1).
"""

from __future__ import annotations

import numpy as np
from casacore.measures import measures
from casacore.quanta import quantity

SECONDS_PER_DAY = 86400.0


def baselines(n_ant: int, autocorrelations: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """ANTENNA1, ANTENNA2 of every baseline in MS order (0-1, 0-2, ..., 1-2, ...)."""
    a1, a2 = np.triu_indices(n_ant, 0 if autocorrelations else 1)
    return a1.astype(np.int32), a2.astype(np.int32)


def antenna_uvw(
    itrf: np.ndarray, reference: np.ndarray, times: np.ndarray, ra: float, dec: float
) -> np.ndarray:
    """(time, ant, 3) J2000 uvw of each antenna's offset from ``reference`` at MJD-second
    ``times`` (UTC), for a phase centre at J2000 ``ra``, ``dec`` (radians)."""
    dm = measures()
    dm.do_frame(dm.position("itrf", *(quantity(x, "m") for x in reference)))
    dm.do_frame(dm.direction("J2000", quantity(ra, "rad"), quantity(dec, "rad")))
    offsets = np.asarray(itrf) - np.asarray(reference)
    bl = dm.baseline(
        "itrf",
        quantity(offsets[:, 0], "m"),
        quantity(offsets[:, 1], "m"),
        quantity(offsets[:, 2], "m"),
    )
    out = np.empty((len(times), len(offsets), 3))
    for i, t in enumerate(times):
        dm.do_frame(dm.epoch("utc", quantity(t, "s")))
        uvw = dm.to_uvw(bl)["xyz"].get_value("m")
        out[i] = np.asarray(uvw).reshape(-1, 3) if np.ndim(uvw) == 1 else np.asarray(uvw).T
    return out


def row_uvw(ant_uvw: np.ndarray, ant1: np.ndarray, ant2: np.ndarray) -> np.ndarray:
    """(time * baseline, 3) row UVW, time-major like the MS rows."""
    return (ant_uvw[:, ant2] - ant_uvw[:, ant1]).reshape(-1, 3)


def gmst_hours(mjd_seconds: float) -> float:
    """Greenwich mean sidereal time (hours), IAU 1982; good to a second, for scheduling."""
    days = mjd_seconds / SECONDS_PER_DAY - 51544.5
    return (18.697374558 + 24.06570982441908 * days) % 24.0


def transit_start(date_mjd: float, ra: float, lon: float, duration: float) -> float:
    """MJD seconds on day ``date_mjd`` at which a track of ``duration`` s is centred on the
    transit of right ascension ``ra`` at longitude ``lon`` (radians)."""
    day0 = np.floor(date_mjd) * SECONDS_PER_DAY
    lst0 = (gmst_hours(day0) + np.degrees(lon) / 15.0) % 24.0
    hours_to_transit = ((np.degrees(ra) / 15.0 - lst0) % 24.0) / 1.00273790935
    return day0 + hours_to_transit * 3600.0 - duration / 2.0
