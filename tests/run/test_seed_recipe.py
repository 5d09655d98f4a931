"""The seed talk's recipe (shared/seed-recipe.md) loads and validates with cabs of its names.

The fragments are read from the shared file at test time (skipped when it is absent), not copied.
The top-level fragment is the body of a recipe, so it is placed under a recipe name with the
inputs it uses declared; the library fragment is used as written. The talk's cabs (flagman,
flagssummary, wsclean, cubical, quartical) are stubs that echo their command lines.

As written, the fragments name three things they do not show (a ``saveflags`` step, and steps
``upsample-0`` and ``image0-0``): rc-run must report each clearly, and once they are supplied the
recipe validates and runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# the workplace's shared folder: beside the repository, or named by RADIOCLOUD_SHARED
SHARED = Path(os.environ.get("RADIOCLOUD_SHARED", Path(__file__).resolve().parents[3] / "shared"))
SEED = (SHARED if SHARED.exists() else Path("/work/shared")) / "seed-recipe.md"
pytestmark = pytest.mark.skipif(not SEED.exists(), reason="shared/seed-recipe.md is absent")

STUBS = """
cabs:
  flagman:
    command: echo flagman
    inputs:
      ms: {dtype: MS, required: true}
      mode: {dtype: str, choices: [save, restore, list]}
      name: {dtype: str}
  flagssummary:
    command: echo flagssummary
    inputs:
      ms: {dtype: MS, required: true}
      spw: {dtype: str}
  wsclean:
    command: echo wsclean
    inputs:
      ms: {dtype: MS, required: true}
      prefix: {dtype: str, required: true}
      column: {dtype: str, default: DATA}
      auto-threshold: {dtype: float}
      auto-mask: {dtype: float}
      size: {dtype: int}
      scale: {dtype: str}
      nchan: {dtype: int}
  cubical:
    command: echo cubical
    inputs:
      data: {ms: {dtype: MS, required: true}}
  quartical:
    command: echo quartical
    inputs:
      input_ms: {path: {dtype: MS, required: true}}
lib:
  params:
    imaging:
      base:
        prefix: {dtype: str, info: image name prefix}
        nchan: {dtype: int, info: output channels}
        size: {dtype: int, info: image size in pixels}
        scale: {dtype: str, info: pixel scale}
  steps:
    wsclean:
      image:
        info: image with wsclean
        cab: wsclean
        params: {size: 1024, scale: 1asec}
"""

# What the fragments refer to but do not show (merged into lib-137's recipe).
MISSING = """
selfcal-cc-delay:
  outputs:
    output-model-prefix: {dtype: str, default: 'model-{recipe.label}'}
  steps:
    saveflags:
      info: save the flags after calibration
      cab: flagman
      params: {mode: save}
      skip: =not IFSET(recipe.flags.save)
"""

INPUTS = """
  inputs:
    ms: {dtype: MS, aliases: ['(flagman).ms', '(flagssummary).ms', '(wsclean).ms', 'selfcal-*.ms']}
    init-flags: {dtype: str}
    casa-spw: {dtype: str, default: '0'}
    image-prefix: {dtype: str, default: im}
    init-model:
      enable: {dtype: bool, default: false}
      prefix: {dtype: str}
      nchan: {dtype: int}
      size: {dtype: int}
      scale: {dtype: str}
"""


def _fragments() -> tuple[str, str]:
    blocks = re.findall(r"```yaml\n(.*?)```", SEED.read_text(), re.S)
    return blocks[0], blocks[1]


def _write(tmp_path: Path, *, complete: bool, fix_references: bool) -> Path:
    top, lib = _fragments()
    include = re.search(r"^include:\n(?:  - .*\n)+", top, re.M)
    body = top.replace(include.group(), "")
    if fix_references:
        body = body.replace("steps.upsample-0.", "steps.image-0.").replace(
            "steps.image0-0.", "steps.image-0."
        )
    (tmp_path / "lib-137.yaml").write_text(lib)
    (tmp_path / "stubs.yml").write_text(STUBS)
    (tmp_path / "missing.yml").write_text(MISSING if complete else "")
    recipe = tmp_path / "eso137.yml"
    recipe.write_text(
        f"{include.group()}  - stubs.yml\n  - missing.yml\n\neso137:\n"
        + INPUTS
        + textwrap.indent(body, "  ")
    )
    (tmp_path / "test.ms").mkdir()
    return recipe


def _rc_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "radiocloud.run.cli", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_fragments_as_written_name_a_step_they_do_not_show(tmp_path):
    _write(tmp_path, complete=False, fix_references=False)
    result = _rc_run(tmp_path, "eso137.yml", "ms=test.ms", "--dry-run")
    assert result.returncode == 2
    assert "lib-137.yaml:" in result.stderr
    assert "'saveflags.name': no step 'saveflags'" in result.stderr


def test_unknown_step_references_are_reported_with_their_place(tmp_path):
    _write(tmp_path, complete=True, fix_references=False)
    result = _rc_run(tmp_path, "eso137.yml", "ms=test.ms", "--dry-run")
    assert result.returncode == 2
    assert "eso137.yml:" in result.stderr
    assert "selfcal-d1.params.predict.nchan: refers to unknown step 'upsample-0'" in result.stderr


def test_the_seed_recipe_validates_and_runs(tmp_path):
    _write(tmp_path, complete=True, fix_references=True)
    assert _rc_run(tmp_path, "eso137.yml", "ms=test.ms", "--dry-run").returncode == 0
    result = _rc_run(tmp_path, "eso137.yml", "ms=test.ms", "init-flags=orig", "--run-dir", "run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # restoreflags runs because init-flags is set; image-0 is tagged never
    assert "flagman --ms test.ms --mode restore --name orig" in out
    assert "flagssummary --ms test.ms --spw 0" in out
    assert "eso137.image-0: skipped (tagged never)" in out
    # the sub-recipe: label from info.suffix, flag versions from its defaults
    assert "[eso137.selfcal-d1.saveflags] flagman --ms test.ms --mode save --name selfcal_d1" in out
    assert "[eso137.selfcal-d2.restoreflags] flagman --ms test.ms --mode restore --name orig" in out


def test_tags_select_the_initial_model_step(tmp_path):
    _write(tmp_path, complete=True, fix_references=True)
    result = _rc_run(tmp_path, "eso137.yml", "ms=test.ms", "--tags", "init_model", "--run-dir", "r")
    assert result.returncode == 0, result.stderr
    assert "wsclean --ms test.ms --prefix im --column DATA --auto-threshold 3.0" in result.stdout
    assert "--size 1024 --scale 1asec" in result.stdout
    assert "selfcal-d1: skipped (not tagged init_model)" in result.stdout


def test_a_bad_override_is_refused_before_anything_runs(tmp_path):
    _write(tmp_path, complete=True, fix_references=True)
    result = _rc_run(tmp_path, "eso137.yml", "ms=test.ms", "init-model.enable=maybe")
    assert result.returncode == 2
    assert "parameter 'init-model.enable': expected bool, got str 'maybe'" in result.stderr
    assert not (tmp_path / "rc-runs").exists()
