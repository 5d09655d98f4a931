"""Fixtures for rc-average: small datasets built once per session, copied where a test writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from casacore.tables import table

from radiocloud.average.cli import app as average_app
from radiocloud.core.cli import run_cli
from radiocloud.core.testing import MSSpec, build_ms
from radiocloud.simulate.cli import app as simulate_app

# two fields of two scans each, two SPWs of different widths, autocorrelations, per-sample
# weights, random flags (10%) and random UVW: a layout test, not a physical observation
LAYOUT = MSSpec(
    n_ant=5, n_time=6, spw_chans=(8, 5), n_field=2, n_scan=2, autocorrelations=True,
    extra_columns=("MODEL_DATA", "WEIGHT_SPECTRUM"),
)  # fmt: skip


def average(*args) -> int:
    return run_cli(average_app, "rc-average", [str(a) for a in args])


def simulate(*args) -> int:
    return run_cli(simulate_app, "rc-simulate", [str(a) for a in args])


def columns(path, *names, sub=None, where: str = "") -> dict[str, np.ndarray]:
    """Columns read with casacore (rows matching the TaQL ``where``), independent of dask-ms."""
    t = table(f"{path}::{sub}" if sub else str(path), ack=False)
    try:
        q = t.query(where) if where else t
        out = {n: q.getcol(n) for n in names}
        if where:
            q.close()
        return out
    finally:
        t.close()


def digest(path) -> str:
    """Content digest of a dataset folder (casacore's lock file excluded)."""
    h = hashlib.sha1(usedforsecurity=False)
    for f in sorted(Path(path).rglob("*")):
        if f.is_file() and f.name != "table.lock":
            h.update(str(f.relative_to(path)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def layout_ms(tmp_path_factory):
    return Path(build_ms(tmp_path_factory.mktemp("average") / "layout.ms", LAYOUT))


@pytest.fixture(scope="session")
def sim_ms(tmp_path_factory):
    """16 MeerKAT antennas, 16 channels of 209 kHz at 1.4 GHz, 12 integrations of 8 s, with
    noise and flags from the simulator's RFI."""
    out = tmp_path_factory.mktemp("average") / "sim.ms"
    assert simulate(out, "--antennas", "16", "--channels", "16", "--freq-start", "1.4GHz",
                    "--bandwidth", "3.344MHz", "--integrations", "12", "--model-data",
                    "--no-rfi") == 0  # fmt: skip
    return out


@pytest.fixture(scope="session")
def edge_source_ms(tmp_path_factory):
    """A noise-free, uncorrupted observation of one 1 Jy point source 0.5° from the phase
    centre: 16 antennas, 64 channels of 209 kHz at 1.4 GHz, 32 integrations of 8 s."""
    from astropy.coordinates import SkyCoord
    from astropy.units import rad

    from radiocloud.simulate.sky import ESO137_DEC, ESO137_RA

    d = tmp_path_factory.mktemp("bda")
    centre = SkyCoord(ESO137_RA * rad, ESO137_DEC * rad)
    pos = centre.directional_offset_by(np.radians(60) * rad, np.radians(0.5) * rad)
    ra = pos.ra.to_string(unit="hourangle", sep=":", precision=4)
    dec = pos.dec.to_string(unit="deg", sep=".", precision=3, alwayssign=True)
    sky = d / "edge.txt"
    sky.write_text(
        "Format = Name, Type, Ra, Dec, I, SpectralIndex, LogarithmicSI, "
        "ReferenceFrequency='1400000000', MajorAxis, MinorAxis, Orientation\n"
        f"edge,POINT,{ra},{dec},1.0,[],true,1400000000,,,\n"
    )
    out = d / "edge.ms"
    assert simulate(out, "--sky", sky, "--antennas", "16", "--channels", "64", "--freq-start",
                    "1.4GHz", "--bandwidth", "13.376MHz", "--integrations", "32", "--noise", "0",
                    "--no-gains", "--no-delays", "--no-bandpass", "--no-rfi") == 0  # fmt: skip
    return out
