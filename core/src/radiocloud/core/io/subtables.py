"""The small subtables every app needs, as plain in-memory objects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from radiocloud.core.io.read import read_table
from radiocloud.core.io.store import DatasetURL, as_url

# casacore Stokes enumeration (CORR_TYPE values) for the correlations radio data uses
STOKES_CODES = {
    1: "I", 2: "Q", 3: "U", 4: "V",
    5: "RR", 6: "RL", 7: "LR", 8: "LL",
    9: "XX", 10: "XY", 11: "YX", 12: "YY",
}  # fmt: skip
STOKES_NAMES = {v: k for k, v in STOKES_CODES.items()}


@dataclass(frozen=True)
class Antennas:
    names: tuple[str, ...]
    stations: tuple[str, ...]
    positions: np.ndarray  # (ant, 3) ITRF metres
    diameters: np.ndarray  # (ant,) metres

    def index(self, name: str) -> int:
        return self.names.index(name)


@dataclass(frozen=True)
class SpectralWindow:
    chan_freq: np.ndarray  # (chan,) Hz
    chan_width: np.ndarray  # (chan,) Hz
    ref_frequency: float
    name: str = ""


@dataclass(frozen=True)
class Field:
    name: str
    phase_dir: np.ndarray  # (2,) RA, Dec radians (J2000)


@dataclass(frozen=True)
class Subtables:
    antennas: Antennas
    spws: tuple[SpectralWindow, ...]
    correlations: tuple[tuple[str, ...], ...]  # per POLARIZATION row, e.g. ("XX","XY","YX","YY")
    fields: tuple[Field, ...]
    ddid_spw: tuple[int, ...]  # per DATA_DESCRIPTION row
    ddid_pol: tuple[int, ...]

    def frequencies(self, ddid: int) -> np.ndarray:
        return self.spws[self.ddid_spw[ddid]].chan_freq

    def corr_names(self, ddid: int) -> tuple[str, ...]:
        return self.correlations[self.ddid_pol[ddid]]


def _strings(values) -> tuple[str, ...]:
    return tuple(str(v) for v in np.asarray(values).ravel())


def _one(url: DatasetURL, name: str) -> xr.Dataset:
    dss = read_table(url, name)
    ds = dss[0] if len(dss) == 1 else xr.concat(dss, dim="row")
    return ds.compute()


def open_subtables(url: str | DatasetURL, *, storage_options: dict | None = None) -> Subtables:
    """Read ANTENNA, SPECTRAL_WINDOW, POLARIZATION, FIELD and DATA_DESCRIPTION."""
    url = as_url(url, storage_options)
    ant, fld, ddi = (_one(url, name) for name in ("ANTENNA", "FIELD", "DATA_DESCRIPTION"))
    spw_rows = [ds.compute() for ds in read_table(url, "SPECTRAL_WINDOW")]
    pol_rows = [ds.compute() for ds in read_table(url, "POLARIZATION")]
    antennas = Antennas(
        names=_strings(ant.NAME.values),
        stations=_strings(ant.STATION.values),
        positions=np.asarray(ant.POSITION.values, dtype=np.float64),
        diameters=np.asarray(ant.DISH_DIAMETER.values, dtype=np.float64),
    )
    spws = tuple(
        SpectralWindow(
            chan_freq=np.asarray(spw.CHAN_FREQ.values[0], dtype=np.float64),
            chan_width=np.asarray(spw.CHAN_WIDTH.values[0], dtype=np.float64),
            ref_frequency=float(spw.REF_FREQUENCY.values[0]),
            name=str(spw.NAME.values[0]) if "NAME" in spw else "",
        )
        for spw in spw_rows
    )
    correlations = tuple(
        tuple(STOKES_CODES[int(c)] for c in pol.CORR_TYPE.values[0]) for pol in pol_rows
    )
    fields = tuple(
        Field(
            name=str(fld.NAME.values[i]),
            phase_dir=np.asarray(fld.PHASE_DIR.values[i], dtype=np.float64).reshape(-1, 2)[0],
        )
        for i in range(fld.sizes["row"])
    )
    return Subtables(
        antennas=antennas,
        spws=spws,
        correlations=correlations,
        fields=fields,
        ddid_spw=tuple(int(v) for v in ddi.SPECTRAL_WINDOW_ID.values),
        ddid_pol=tuple(int(v) for v in ddi.POLARIZATION_ID.values),
    )
