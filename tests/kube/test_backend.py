"""The kube backend's control flow, with the real ``kubernetes`` client and the real ``rc-run``
against the fake API server of conftest.py, whose kubelet runs each Job as a local process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

RC_RUN = [sys.executable, "-m", "radiocloud.run.cli"]

CABS = """
cabs:
  write:
    info: says what it does, writes TEXT into FILE
    command: sh -c 'echo "writing $2"; printf "%s\\n" "$1" > "$2"; echo written' write
    image: example.org/tools:1
    inputs:
      text: {dtype: str, default: hello, policies: {positional: true}}
    outputs:
      file: {dtype: File, required: true, policies: {positional: true}}
  sh:
    command: sh -c
    image: example.org/tools:1
    inputs:
      script: {dtype: str, required: true, policies: {positional: true}}
"""


class Project:
    """A scratch project: WORK (rc-run's directory, the volume's host path) and the path
    MOUNT where pods see it."""

    def __init__(self, root: Path, kube) -> None:
        self.work = root / "work"
        self.work.mkdir()
        self.mount = root / "pod" / "data"
        kube.claims["work"] = str(self.work)
        self.kube = kube

    def recipe(self, steps: str, **kube: object) -> Path:
        settings = {"volumes": [{"pvc": "work", "mount": str(self.mount),
                                 "host_path": str(self.work)}], "poll": 0.05, **kube}  # fmt: skip
        text = (
            CABS
            + textwrap.dedent(f"""
            main:
              backend:
                select: kube
                kube: {json.dumps(settings)}
              steps:
            """)
            + textwrap.indent(textwrap.dedent(steps), "    ")
        )
        path = self.work / "r.yml"
        path.write_text(text)
        return path

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run([*RC_RUN, "r.yml", "--run-dir", "run", *args], cwd=self.work,
                                capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)  # fmt: skip
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def start(self, *args: str) -> subprocess.Popen:
        """rc-run in its own process group, as a terminal runs it."""
        return subprocess.Popen([*RC_RUN, "r.yml", "--run-dir", "run", *args], cwd=self.work,
                                start_new_session=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

    def log(self, step: str) -> str:
        return (self.work / "run" / "logs" / f"main.{step}.log").read_text()

    def record(self) -> dict:
        return json.loads((self.work / "run" / "provenance.json").read_text())


@pytest.fixture
def project(tmp_path, fake_kube) -> Project:
    return Project(tmp_path, fake_kube)


def test_a_step_runs_as_a_job_its_log_streamed_and_the_job_deleted(project, fake_kube):
    project.recipe("""
        w:
          cab: write
          params: {text: hello, file: out.txt}
        """)
    result = project.run()
    assert result.returncode == 0, result.stderr
    assert (project.work / "out.txt").read_text() == "hello\n"
    log = project.log("w")
    assert f"writing {project.mount}/out.txt" in log  # the path as the pod sees it
    assert "written" in log
    entry = project.record()["steps"]["main.w"]
    assert (entry["status"], entry["backend"]) == ("ok", "kube")
    job = entry["job"]
    assert fake_kube.created == [("job", job)]
    assert fake_kube.deleted == [("job", job)]
    assert "[main.w] written" in result.stdout + result.stderr
