"""Fixtures for rc-calibrate: rc-simulate observations with known gains, built once."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from casacore.tables import table
from daskms.experimental.zarr import xds_from_zarr

from radiocloud.calibrate.cli import app as calibrate_app
from radiocloud.calibrate.cli import apply_app
from radiocloud.core.cli import run_cli
from radiocloud.simulate.cli import app as simulate_app

SMALL = ("--antennas", "12", "--channels", "32", "--integrations", "12", "--correlations", "2",
         "--model-data")  # fmt: skip


def simulate(*args) -> int:
    return run_cli(simulate_app, "rc-simulate", [str(a) for a in args])


def calibrate(*args) -> int:
    return run_cli(calibrate_app, "rc-calibrate", [str(a) for a in args])


def apply(*args) -> int:
    return run_cli(apply_app, "rc-calibrate-apply", [str(a) for a in args])


def columns(path, *names) -> dict[str, np.ndarray]:
    t = table(str(path), ack=False)
    try:
        return {n: t.getcol(n) for n in names}
    finally:
        t.close()


def truth(ms) -> dict[str, np.ndarray]:
    ds = xds_from_zarr(str(Path(ms).with_suffix(".truth")) + "/gains.zarr")[0].load()
    return {k: ds[k].values for k in ("gains", "delay", "time")} | {"freq": ds.chan.values}


def copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    truth_dir = src.with_suffix(".truth")
    shutil.copytree(truth_dir, dst.with_suffix(".truth"))
    return dst


def _sim(factory, name, *extra) -> Path:
    out = factory.mktemp("calibrate") / f"{name}.ms"
    assert simulate(out, *SMALL, *extra) == 0
    return out


@pytest.fixture(scope="session")
def g_ms(tmp_path_factory):
    """Time-variable complex gains only (no delays, no bandpass): 12 antennas, 32 channels,
    12 integrations, XX YY, MODEL_DATA the uncorrupted sky."""
    return _sim(tmp_path_factory, "g", "--no-delays", "--no-bandpass", "--no-rfi")


@pytest.fixture(scope="session")
def kg_ms(tmp_path_factory):
    """Gains and delays (2 ns rms), no bandpass."""
    return _sim(tmp_path_factory, "kg", "--no-bandpass", "--no-rfi")


@pytest.fixture(scope="session")
def b_ms(tmp_path_factory):
    """A bandpass only (per antenna, feed and channel)."""
    return _sim(tmp_path_factory, "b", "--no-gains", "--no-delays", "--no-rfi")
