"""Fixtures for rc-predict: small simulated observations, copied fresh for each test."""

from __future__ import annotations

import shutil

import pytest

from radiocloud.core.cli import run_cli
from radiocloud.predict.cli import app as predict_app
from radiocloud.simulate.cli import app as simulate_app


def predict(*args) -> int:
    return run_cli(predict_app, "rc-predict", [str(a) for a in args])


def simulate(*args) -> int:
    return run_cli(simulate_app, "rc-simulate", [str(a) for a in args])


@pytest.fixture(scope="session")
def eso137_ms(tmp_path_factory):
    """8 antennas x 48 channels x 10 integrations of the eso137 field, noise-free and
    uncorrupted, with MODEL_DATA = the simulator's own prediction of its truth sky."""
    out = tmp_path_factory.mktemp("predict") / "eso.ms"
    assert simulate(out, "--antennas", "8", "--channels", "48", "--integrations", "10",
                    "--no-gains", "--no-delays", "--no-bandpass", "--no-rfi", "--noise", "0",
                    "--model-data") == 0  # fmt: skip
    return out


@pytest.fixture
def ms_copy(eso137_ms, tmp_path):
    dst = tmp_path / "copy.ms"
    shutil.copytree(eso137_ms, dst)
    shutil.copytree(eso137_ms.with_name("eso.truth"), tmp_path / "copy.truth")
    return dst
