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
