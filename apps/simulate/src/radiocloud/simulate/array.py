"""The MeerKAT array: 64 antenna positions (public facts; see data/meerkat_antennas.csv),
subsets by count or by name, and conversion of local East-North-Up offsets to ITRF."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation

from radiocloud.core.errors import OptionError

# The katpoint reference position that the ENU offsets are measured from (WGS84)
REFERENCE_LAT_DEG = -(30 + 42 / 60 + 39.8 / 3600)
REFERENCE_LON_DEG = 21 + 26 / 60 + 38.0 / 3600
REFERENCE_HEIGHT_M = 1035.0
DISH_DIAMETER_M = 13.5
N_MEERKAT = 64


@dataclass(frozen=True)
class Array:
    names: tuple[str, ...]
    enu: np.ndarray  # (ant, 3) metres from the reference
    itrf: np.ndarray  # (ant, 3) metres
    reference_itrf: np.ndarray  # (3,) metres
    diameter: float = DISH_DIAMETER_M

    def __len__(self) -> int:
        return len(self.names)


def _load_enu() -> tuple[tuple[str, ...], np.ndarray]:
    text = resources.files("radiocloud.simulate").joinpath("data/meerkat_antennas.csv").read_text()
    rows = list(
        csv.DictReader(
            io.StringIO("".join(ln for ln in text.splitlines(True) if not ln.startswith("#")))
        )
    )
    names = tuple(r["name"] for r in rows)
    enu = np.array([[float(r["east"]), float(r["north"]), float(r["up"])] for r in rows])
    return names, enu


def reference_itrf() -> np.ndarray:
    loc = EarthLocation.from_geodetic(
        REFERENCE_LON_DEG * u.deg, REFERENCE_LAT_DEG * u.deg, REFERENCE_HEIGHT_M * u.m
    )
    return np.array([loc.x.to_value(u.m), loc.y.to_value(u.m), loc.z.to_value(u.m)])


def enu_to_itrf(enu: np.ndarray, lat: float, lon: float, origin: np.ndarray) -> np.ndarray:
    """ITRF positions of East-North-Up offsets (m) about ``origin`` at geodetic lat/lon (rad)."""
    sl, cl, so, co = np.sin(lat), np.cos(lat), np.sin(lon), np.cos(lon)
    # columns: the ITRF directions of local East, North and Up
    rot = np.array(
        [
            [-so, -sl * co, cl * co],
            [co, -sl * so, cl * so],
            [0.0, cl, sl],
        ]
    )
    return origin + np.asarray(enu) @ rot.T


def select(antennas: int | str | None = None) -> Array:
    """MeerKAT antennas: all 64, the first ``N`` spread over core and arms, or names "m000,m017"."""
    names, enu = _load_enu()
    if antennas is None or antennas == "" or antennas == N_MEERKAT:
        index = np.arange(len(names))
    elif isinstance(antennas, int) or str(antennas).isdigit():
        n = int(antennas)
        if not 2 <= n <= N_MEERKAT:
            raise OptionError(f"--antennas {n}: MeerKAT has {N_MEERKAT} antennas; ask for 2 to 64")
        # evenly spaced ranks in distance from the array centre: a mix of core and arm dishes
        by_radius = np.argsort(np.hypot(enu[:, 0], enu[:, 1]), kind="stable")
        index = np.sort(by_radius[np.round(np.linspace(0, len(names) - 1, n)).astype(int)])
    else:
        wanted = [w.strip() for w in str(antennas).split(",") if w.strip()]
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise OptionError(
                f"unknown antenna {', '.join(unknown)}: MeerKAT antennas are m000 to m063"
            )
        if len(set(wanted)) < 2:
            raise OptionError("--antennas: name at least two different antennas")
        index = np.array(sorted({names.index(w) for w in wanted}))
    origin = reference_itrf()
    itrf = enu_to_itrf(
        enu[index], np.radians(REFERENCE_LAT_DEG), np.radians(REFERENCE_LON_DEG), origin
    )
    return Array(tuple(names[i] for i in index), enu[index], itrf, origin)
