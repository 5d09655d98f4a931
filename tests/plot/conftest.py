"""Fixtures for rc-plot: a small simulated observation, built once."""

from __future__ import annotations

import pytest

from radiocloud.core.cli import run_cli
from radiocloud.plot.cli import app as plot_app
from radiocloud.simulate.cli import app as simulate_app


def plot(*args) -> int:
    return run_cli(plot_app, "rc-plot", [str(a) for a in args])


@pytest.fixture(scope="session")
def small_ms(tmp_path_factory):
    """8 antennas, 16 channels, 6 integrations, XX YY, with MODEL_DATA."""
    out = tmp_path_factory.mktemp("plot") / "small.ms"
    args = ["--antennas", "8", "--channels", "16", "--integrations", "6", "--correlations", "2",
            "--model-data"]  # fmt: skip
    assert run_cli(simulate_app, "rc-simulate", [str(out), *args]) == 0
    return out


@pytest.fixture(scope="session")
def full_ms(tmp_path_factory):
    """6 antennas, 12 channels, 5 integrations, XX XY YX YY, with MODEL_DATA and some FLAG set
    (in XX only on some points, so that Stokes I and XX differ in what they drop)."""
    import numpy as np
    from casacore.tables import table

    out = tmp_path_factory.mktemp("plot") / "full.ms"
    args = ["--antennas", "6", "--channels", "12", "--integrations", "5", "--correlations", "4",
            "--model-data"]  # fmt: skip
    assert run_cli(simulate_app, "rc-simulate", [str(out), *args]) == 0
    with table(str(out), readonly=False, ack=False) as t:
        flag = t.getcol("FLAG")
        rng = np.random.default_rng(3)
        flag[..., 0] |= rng.random(flag.shape[:2]) < 0.2
        flag[t.getcol("ANTENNA1") == 4] = True  # antenna 4 flagged on its ANTENNA1 rows
        t.putcol("FLAG", flag)
    return out
