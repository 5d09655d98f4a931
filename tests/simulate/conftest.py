"""Fixtures for rc-simulate tests: small observations written once per session."""

from __future__ import annotations

import pytest

from radiocloud.core.cli import run_cli
from radiocloud.simulate.cli import app


def simulate(*args: str) -> int:
    return run_cli(app, "rc-simulate", [str(a) for a in args])


@pytest.fixture(scope="session")
def noise_free_obs(tmp_path_factory):
    """8 antennas, 32 channels, 12 integrations of the eso137 sky with gains, delays and
    bandpass, no noise and no RFI, MODEL_DATA written: DATA = J MODEL J^H exactly."""
    out = tmp_path_factory.mktemp("sim") / "clean.ms"
    code = simulate(out, "--antennas", "8", "--channels", "32", "--integrations", "12",
                    "--noise", "0", "--no-rfi", "--model-data", "--seed", "3")  # fmt: skip
    assert code == 0
    return out
