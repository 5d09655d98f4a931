"""Ctrl-C during a step: the step stops, nothing after it runs, the run is recorded as
interrupted (never as succeeded), and rc-run exits 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

RECIPE = """
    cabs:
      sh:
        command: sh -c
        inputs:
          script: {dtype: str, required: true, policies: {positional: true}}
    slow:
      steps:
        wait:
          cab: sh
          params: {script: "echo started; sleep 30; touch waited"}
        after:
          cab: sh
          params: {script: "touch after"}
"""


def test_ctrl_c_stops_the_step_and_records_an_interrupted_run(tmp_path):
    (tmp_path / "recipe.yml").write_text(textwrap.dedent(RECIPE))
    process = subprocess.Popen(
        [sys.executable, "-m", "radiocloud.run.cli", "recipe.yml", "--run-dir", "run"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    log = tmp_path / "run" / "logs" / "slow.wait.log"
    deadline = time.monotonic() + 60
    while not (log.exists() and "started" in log.read_text()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole group gets SIGINT
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert time.monotonic() - started < 10  # the 30 s sleep was stopped, not waited for
    assert "interrupted" in stderr
    record = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert record["status"] == "interrupted"
    assert record["steps"]["slow.wait"]["status"] == "interrupted"
    assert "slow.after" not in record["steps"]
    assert not (tmp_path / "waited").exists()
    assert not (tmp_path / "after").exists()
