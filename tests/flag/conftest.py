"""Fixtures for rc-flag's versions and summaries: tiny datasets, copied fresh per test."""

from __future__ import annotations

import shutil

import pytest

from radiocloud.core.cli import run_cli
from radiocloud.core.testing import MSSpec, build_ms
from radiocloud.flag.summary_cli import app as summary_app
from radiocloud.flag.versions_cli import app as versions_app

# autocorrelations, two fields of two scans each, two SPWs of different widths
SPEC = MSSpec(n_ant=5, n_time=4, spw_chans=(8, 5), n_field=2, n_scan=2, autocorrelations=True)


def versions(*args) -> int:
    return run_cli(versions_app, "rc-flag-versions", [str(a) for a in args])


def summary(*args) -> int:
    return run_cli(summary_app, "rc-flag-summary", [str(a) for a in args])


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("flag")
    return {suffix: build_ms(d / f"obs{suffix}", SPEC) for suffix in (".ms", ".zarr")}


@pytest.fixture
def ms(built, tmp_path):
    dst = tmp_path / "obs.ms"
    shutil.copytree(built[".ms"], dst)
    return dst
