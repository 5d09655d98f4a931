"""The kube backend on a real cluster: run only when a kube config is present (KUBECONFIG or
~/.kube/config), with ``pytest -m kube tests/kube``; skipped otherwise.

RC_KUBE_NAMESPACE (default radiocloud, deploy/namespace.yaml) is where the Jobs run;
RC_KUBE_IMAGE (default busybox) runs the shell steps, RC_KUBE_DASK_IMAGE (default dask's own
image) the DaskCluster step, which also needs the dask-kubernetes operator."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from radiocloud.run.backends import StepContext
from radiocloud.run.backends import kube as backend

KUBECONFIG = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
pytestmark = [
    pytest.mark.kube,
    pytest.mark.skipif(
        not all(os.path.exists(p) for p in KUBECONFIG.split(os.pathsep)),
        reason="no kube config (KUBECONFIG or ~/.kube/config): needs a real cluster",
    ),
]
NAMESPACE = os.environ.get("RC_KUBE_NAMESPACE", "radiocloud")


def _run(tmp_path: Path, argv: list[str], image: str, **options) -> tuple[int, list[str], dict]:
    step = StepContext(fq="kube-test.step", cab="sh", command=argv[0], image=image,
                       options={"namespace": NAMESPACE, "poll": 1, **options})  # fmt: skip
    assert backend.check(step) == []
    (tmp_path / "logs").mkdir(exist_ok=True)
    lines: list[str] = []
    usage: dict = {}
    code = backend.run(argv, log_path=tmp_path / "logs" / "step.log", echo=lines.append,
                       usage=usage, step=step)  # fmt: skip
    return code, lines, usage


def test_a_step_succeeds_and_a_failing_one_reports_its_exit_code(tmp_path):
    image = os.environ.get("RC_KUBE_IMAGE", "docker.io/library/busybox:1.36")
    code, lines, usage = _run(tmp_path, ["sh", "-c", "echo hello from kube"], image)
    assert code == 0, lines
    assert "hello from kube" in lines
    assert f"job {usage['job']} deleted" in lines
    code, lines, _ = _run(tmp_path, ["sh", "-c", "exit 3"], image, cleanup="always")
    assert code == 3, lines


def test_a_step_with_workers_computes_on_its_daskcluster(tmp_path):
    from kubernetes import client

    from radiocloud.run.backends.kube import cluster

    crds = client.ApiextensionsV1Api(cluster.api_client()).list_custom_resource_definition()
    if "daskclusters.kubernetes.dask.org" not in {c.metadata.name for c in crds.items}:
        pytest.skip("the dask-kubernetes operator is not installed (deploy/README.md)")
    image = os.environ.get("RC_KUBE_DASK_IMAGE", "ghcr.io/dask/dask:latest")
    script = "import sys; from distributed import Client; print(Client(sys.argv[2]).submit(sum, [1, 2]).result())"  # noqa: E501
    code, lines, usage = _run(tmp_path, ["python", "-c", script, "--workers", "1"], image)
    assert code == 0, lines
    assert "3" in lines
    assert f"daskcluster {usage['dask_cluster']} deleted" in lines
