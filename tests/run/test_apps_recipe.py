"""radiocloud's own apps chained by rc-run through their generated cabs (no stubs).

A small observation is simulated and imaged; the image's implicit outputs (from the rc-image
cab) are what the next step reads, the provenance records their digests, and ``--resume``
skips what is unchanged and reruns what lost its outputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

RECIPE = """
    small-field:
      info: simulate a small observation, image it, and plot the image
      inputs:
        ms: {dtype: str, default: obs.ms}
        prefix: {dtype: str, default: img}
      steps:
        simulate:
          cab: rc-simulate
          params:
            output: =recipe.ms
            antennas: "7"
            channels: "4"
            integrations: 8
            rfi: false
            gains: false
            delays: false
            bandpass: false
            noise: "0"
        image:
          cab: rc-image
          params:
            dataset: =steps.simulate.output
            prefix: =recipe.prefix
            size: [128]
            scale: 4asec
            niter: 50
        plot:
          cab: rc-plot
          params:
            dataset: =steps.image.image
            output: "{recipe.prefix}.png"
"""


def _rc_run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "radiocloud.run.cli", "recipe.yml", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("apps")
    (cwd / "recipe.yml").write_text(textwrap.dedent(RECIPE))
    result = _rc_run(cwd, "--run-dir", "run1")
    assert result.returncode == 0, result.stdout + result.stderr
    return cwd


def _steps(run_dir: Path) -> dict:
    return json.loads((run_dir / "provenance.json").read_text())["steps"]


def test_the_apps_run_in_order_and_pass_their_outputs_on(first_run):
    cwd = first_run
    steps = _steps(cwd / "run1")
    assert [steps[f"small-field.{s}"]["status"] for s in ("simulate", "image", "plot")] == [
        "ok"
    ] * 3
    assert steps["small-field.plot"]["argv"][-1] == "img-image.fits"  # rc-image's implicit output
    image = fits.getdata(cwd / "img-image.fits").squeeze()
    assert image.shape == (128, 128)
    assert np.isfinite(image).all()
    assert image.max() > 0
    assert (cwd / "img.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert steps["small-field.image"]["peak_rss_mib"] > 100  # rc-image's own peak, via wait4
    outputs = steps["small-field.image"]["outputs"]
    assert outputs["img-image.fits"].startswith("sha256:")
    assert (cwd / "run1" / "logs" / "small-field.image.log").read_text().count("rc-image:") >= 1


def test_resume_skips_what_is_unchanged_and_reruns_what_lost_its_outputs(first_run):
    cwd = first_run
    ms_time = (cwd / "obs.ms").stat().st_mtime_ns
    result = _rc_run(cwd, "--run-dir", "run2", "--resume", "run1")
    assert result.returncode == 0, result.stderr
    assert {s["status"] for s in _steps(cwd / "run2").values()} == {"resumed"}
    assert (cwd / "obs.ms").stat().st_mtime_ns == ms_time

    (cwd / "img-image.fits").unlink()
    result = _rc_run(cwd, "--run-dir", "run3", "--resume", "run2")
    assert result.returncode == 0, result.stderr
    statuses = {k.split(".")[-1]: v["status"] for k, v in _steps(cwd / "run3").items()}
    # the image step lost an output: it runs again, and so does everything after it
    assert statuses == {"simulate": "resumed", "image": "ok", "plot": "ok"}
    assert (cwd / "img-image.fits").exists()
