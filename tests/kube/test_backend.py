"""The kube backend's control flow, with the real ``kubernetes`` client and the real ``rc-run``
against the fake API server of conftest.py, whose kubelet runs each Job as a local process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
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
  dask-wait:
    info: says it started, then waits; asks for dask workers (--workers N) as the apps do
    command: sh -c 'echo started; sleep 60; touch waited' dask-wait
    image: example.org/tools:1
    inputs:
      workers: {dtype: int, default: 0}
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


def test_a_failing_step_reports_its_exit_code_and_its_job_is_kept(project, fake_kube):
    project.recipe("""
        f:
          cab: sh
          params: {script: "echo about to fail; exit 3"}
        after:
          cab: write
          params: {file: after.txt}
        """)
    result = project.run()
    assert result.returncode == 1
    assert "exit code 3" in result.stderr
    entry = project.record()["steps"]["main.f"]
    assert (entry["status"], entry["exit_code"]) == ("failed", 3)
    assert "main.after" not in project.record()["steps"]
    assert "about to fail" in project.log("f")
    assert f"job {entry['job']} kept" in project.log("f")
    assert fake_kube.created == [("job", entry["job"])]
    assert fake_kube.deleted == []  # kept for kubectl logs
    assert entry["job"] in fake_kube.jobs


def test_cleanup_always_deletes_a_failed_job(project, fake_kube):
    project.recipe(
        """
        f:
          cab: sh
          params: {script: "exit 5"}
        """,
        cleanup="always",
    )
    result = project.run()
    assert result.returncode == 1
    job = project.record()["steps"]["main.f"]["job"]
    assert project.record()["steps"]["main.f"]["exit_code"] == 5
    assert fake_kube.deleted == [("job", job)]


def _wait_for(predicate, what: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.05)


def test_ctrl_c_deletes_the_job_and_the_daskcluster_and_records_an_interrupted_run(
    project, fake_kube
):
    project.recipe("""
        wait:
          cab: dask-wait
          params: {workers: 2}
        """)
    process = project.start()
    log = project.work / "run" / "logs" / "main.wait.log"
    started = lambda: log.exists() and "started" in log.read_text().splitlines()  # noqa: E731
    _wait_for(started, "the step's start", process)
    (pod,) = fake_kube.pods.values()
    assert "--scheduler" in pod.spec["containers"][0]["command"]
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals rc-run's group
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    record = project.record()
    assert record["status"] == "interrupted"
    entry = record["steps"]["main.wait"]
    assert entry["status"] == "interrupted"
    assert [kind for kind, _ in fake_kube.created] == ["daskcluster", "job"]
    assert sorted(fake_kube.deleted) == sorted(fake_kube.created)
    assert not fake_kube.jobs
    assert not fake_kube.daskclusters
    assert pod.process.poll() is not None  # the pod's process was stopped
    assert not (project.work / "waited").exists()


def _problems(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "nothing was run" in result.stderr
    return [line for line in result.stderr.splitlines() if "step 'main." in line]


WRITE = """
    w:
      cab: write
      params: {file: out.txt}
    """


def test_an_unreachable_api_is_one_line_before_anything_runs(
    project, fake_kube, tmp_path, monkeypatch
):
    project.recipe(WRITE)
    nowhere = tmp_path / "nowhere.yaml"
    text = (tmp_path / "kubeconfig").read_text()
    nowhere.write_text(text.replace(fake_kube.url, "http://127.0.0.1:9"))  # nothing listens
    monkeypatch.setenv("KUBECONFIG", str(nowhere))
    (line,) = _problems(project.run())
    assert "the Kubernetes API at http://127.0.0.1:9 is unreachable" in line
    assert "Connection refused" in line
    assert not fake_kube.requests
    assert not (project.work / "out.txt").exists()


def test_no_kube_config_is_one_line(project, fake_kube, tmp_path, monkeypatch):
    project.recipe(WRITE)
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    (line,) = _problems(project.run())
    assert "no Kubernetes config: set KUBECONFIG" in line
    assert "in-cluster" in line


def test_a_missing_namespace_is_one_line(project, fake_kube):
    project.recipe(WRITE, namespace="nowhere")
    (line,) = _problems(project.run())
    assert "namespace 'nowhere' does not exist" in line
    assert "kubectl create namespace nowhere" in line
    assert not fake_kube.created


def test_each_problem_is_one_line_before_anything_runs(project, fake_kube, tmp_path):
    """A path outside the volumes, a program with no image, a misspelt setting."""
    outside = tmp_path / "elsewhere" / "out.txt"
    project.recipe(f"""
        first:
          cab: write
          params: {{file: inside.txt}}
        outside:
          cab: write
          params: {{file: {outside}}}
        s3:
          cab: write
          params: {{file: "s3://bucket/out.txt"}}
        no-image:
          cab: echo
          params: {{text: hi}}
        """)
    text = (project.work / "r.yml").read_text()
    text = text.replace("cabs:\n", "cabs:\n  echo:\n    command: echo\n    inputs:\n"
                        "      text: {dtype: str, policies: {positional: true}}\n")  # fmt: skip
    (project.work / "r.yml").write_text(text)
    problems = _problems(project.run())
    assert len(problems) == 2, problems
    assert "step 'main.outside'" in problems[0]
    assert f"{outside} is outside the volumes mounted in its pod" in problems[0]
    assert "or use an s3:// URL" in problems[0]
    assert "step 'main.no-image'" in problems[1]
    assert "cab 'echo' names no image" in problems[1]
    assert not fake_kube.created
    assert not (project.work / "inside.txt").exists()


def test_a_misspelt_setting_is_one_line_with_a_hint(project, fake_kube):
    project.recipe(WRITE, namspace="radiocloud")
    (line,) = _problems(project.run())
    assert "backend.kube: unknown setting 'namspace'; did you mean 'namespace'?" in line


def test_an_image_that_cannot_be_pulled_fails_the_step_in_one_line(project, fake_kube):
    project.recipe(WRITE)
    fake_kube.unpullable.add("example.org/tools:1")
    result = project.run()
    assert result.returncode == 1
    (line,) = [line for line in project.log("w").splitlines() if "cannot start" in line]
    assert "ImagePullBackOff: Back-off pulling image example.org/tools:1" in line
    assert "containers/build" in line
    assert "exit code 1" in result.stderr


def test_a_pod_the_cluster_refuses_fails_the_step_at_once_with_the_reason(project, fake_kube):
    project.recipe(WRITE)
    fake_kube.refuse_pods = (
        'pods "POD" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true'
    )
    result = project.run()
    assert result.returncode == 1
    (line,) = [line for line in project.log("w").splitlines() if "refuses the pod" in line]
    assert 'forbidden: violates PodSecurity "restricted:latest"' in line


def test_a_pod_over_quota_waits_saying_why(tmp_path, fake_kube):
    fake_kube.refuse_pods = 'pods "POD" is forbidden: exceeded quota: compute, requested: cpu=2'
    code, lines = _in_process(tmp_path, ["sh", "-c", "echo never"], start_timeout=1)
    assert code != 0
    waited = [line for line in lines if "no pod yet" in line]
    assert len(waited) == 1  # said once, not every poll
    assert "exceeded quota: compute" in waited[0]
    assert any("no pod running after 1 s" in line and "exceeded quota" in line for line in lines)


def _in_process(tmp_path, argv: list[str], **options) -> tuple[int, list[str]]:
    """The backend's run() in this process, for one step in image example.org/sh:1."""
    from radiocloud.run.backends import StepContext
    from radiocloud.run.backends import kube as backend

    step = StepContext(fq="r.s", cab="sh", command=argv[0], image="example.org/sh:1",
                       options={"poll": 0.05, **options})  # fmt: skip
    (tmp_path / "logs").mkdir(exist_ok=True)
    lines: list[str] = []
    code = backend.run(argv, log_path=tmp_path / "logs" / "r.s.log", echo=lines.append, step=step)
    return code, lines


def test_no_daskcluster_resource_is_one_line_and_no_job_starts(fake_kube, tmp_path):
    fake_kube.crds = False
    code, lines = _in_process(tmp_path, ["sh", "-c", "echo never", "x", "--workers", "2"])
    assert code == 1
    assert lines[0].endswith("has no DaskCluster resource; install the dask-kubernetes "
                             "operator (deploy/README.md)")  # fmt: skip
    assert not fake_kube.created


def test_a_daskcluster_no_operator_runs_times_out_and_is_deleted(fake_kube, tmp_path):
    fake_kube.operator = False
    started = time.monotonic()
    code, lines = _in_process(tmp_path, ["sh", "-c", "echo never", "x", "--workers", "2"],
                              dask={"start_timeout": 0.5})  # fmt: skip
    assert code == 1
    assert time.monotonic() - started < 10
    (name,) = [name for kind, name in fake_kube.created]
    assert f"daskcluster {name} not running after 0.5 s (phase None); is the dask-kubernetes " \
        "operator running?" in " ".join(lines)  # fmt: skip
    assert fake_kube.deleted == [("daskcluster", name)]
    gets = [path for method, path in fake_kube.requests if path.endswith(name)]
    assert len(gets) < 30  # polled every 0.05 s, not in a busy loop


def test_an_api_lost_during_a_step_is_one_line(fake_kube, tmp_path, monkeypatch):
    """The API answered while validating, not when the step runs."""
    from radiocloud.run.backends.kube import cluster

    nowhere = tmp_path / "nowhere.yaml"
    text = (tmp_path / "kubeconfig").read_text()
    nowhere.write_text(text.replace(fake_kube.url, "http://127.0.0.1:9"))
    monkeypatch.setenv("KUBECONFIG", str(nowhere))
    cluster.api_client.cache_clear()
    code, lines = _in_process(tmp_path, ["sh", "-c", "echo never"])
    assert code == 1
    (line,) = [line for line in lines if "unreachable" in line]
    assert line.startswith("the Kubernetes API at http://127.0.0.1:9 is unreachable (")
    assert "Connection refused" in line
