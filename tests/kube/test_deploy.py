"""deploy/, checked offline: every manifest against Kubernetes' OpenAPI schema (kinds that
kubernetes-validate has no schema for are listed, and skipped only if expected), the CRDs that
deploy/crds prints from the dask-kubernetes wheel, the Role against every API call the backend
makes, and the rc-run settings overlays against the ESO 137 recipe."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from radiocloud.core.cli import run_cli
from radiocloud.run.backends import StepContext
from radiocloud.run.backends import kube as backend
from radiocloud.run.backends.kube.settings import parse
from radiocloud.run.loader import load
from radiocloud.simulate.cli import app as simulate_app

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# kinds of other tools' configuration, which no Kubernetes schema describes
NOT_KUBERNETES = {("kind.x-k8s.io/v1alpha4", "Cluster")}


def _documents() -> list[tuple[str, dict]]:
    return [
        (str(path.relative_to(ROOT)), doc)
        for path in sorted(DEPLOY.rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def test_every_deploy_manifest_is_valid_kubernetes(valid_k8s):
    skipped = set()
    checked = []
    for where, doc in _documents():
        try:
            valid_k8s(doc)
        except kubernetes_validate.SchemaNotFoundError:
            skipped.add((doc["apiVersion"], doc["kind"]))
            continue
        checked.append((where, doc["kind"]))
    assert skipped == NOT_KUBERNETES  # kind's cluster config: not validated, on purpose
    kinds = {kind for _, kind in checked}
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "Secret", "StorageClass",
            "PersistentVolume", "PersistentVolumeClaim", "Job"} <= kinds  # fmt: skip


def test_the_crds_script_prints_the_operators_crds_from_the_wheel(valid_k8s):
    script = [sys.executable, str(DEPLOY / "crds")]
    out = subprocess.run(script, capture_output=True, text=True, check=True).stdout
    crds = [doc for doc in yaml.safe_load_all(out) if doc]
    for crd in crds:
        valid_k8s(crd)
    names = {crd["metadata"]["name"] for crd in crds}
    assert names == {f"dask{k}s.kubernetes.dask.org" for k in
                     ("cluster", "workergroup", "job", "autoscaler")}  # fmt: skip
    one = subprocess.run([*script, "daskcluster"], capture_output=True, text=True, check=True)
    (crd,) = [doc for doc in yaml.safe_load_all(one.stdout) if doc]
    assert crd["spec"]["names"]["kind"] == "DaskCluster"
    version = subprocess.run([*script, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == metadata.version("dask-kubernetes")
    bad = subprocess.run([*script, "daskclusters"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "crds: no CRD daskclusters; there are daskautoscaler, daskcluster, daskjob, daskworkergroup"
    )


NAMESPACED = (
    r"/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/[^/]+/"
    r"(?P<resource>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?"
)


def _permission(method: str, path: str) -> tuple[str, str, str] | None:
    """The (API group, resource, verb) RBAC checks for a request (None: /version...)."""
    if re.fullmatch(r"/api/v1/namespaces/[^/]+", path):
        return "", "namespaces", "get" if method == "GET" else method.lower()
    found = re.fullmatch(NAMESPACED, path)
    if found is None:
        return None
    resource = found["resource"] + (f"/{found['sub']}" if found["sub"] else "")
    verb = {"POST": "create", "DELETE": "delete", "GET": "get" if found["name"] else "list"}
    return found["group"] or "", resource, verb[method]


def _allowed(role: dict, group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
        for rule in role["rules"]
    )


def test_the_role_allows_every_call_the_backend_makes(fake_kube, tmp_path):
    """One step with workers, and one whose pod the cluster refuses, run through the backend in
    this process: every namespaced call they made is allowed by deploy/rbac.yaml's Role
    (reading the Namespace, cluster-scoped, is not, and the backend's probe takes the 403 as
    'cannot tell')."""
    role = next(d for _, d in _documents() if d["kind"] == "Role")
    options = {"dask": {"scheduler_address": "tcp://127.0.0.1:{port}"}, "poll": 0.05}
    step = StepContext(fq="r.s", cab="sh", command="sh", image="example.org/sh:1",
                       options=options)  # fmt: skip
    assert backend.check(step) == []
    (tmp_path / "logs").mkdir()
    lines: list[str] = []
    usage: dict = {}
    argv = ["sh", "-c", "echo hello from $0", "pod", "--workers", "1"]
    code = backend.run(argv, log_path=tmp_path / "logs" / "r.s.log", echo=lines.append,
                       usage=usage, step=step)  # fmt: skip
    assert code == 0, lines
    assert "hello from pod" in lines
    assert set(usage) >= {"job", "pod", "image", "dask_cluster", "namespace"}
    fake_kube.refuse_pods = 'pods "POD" is forbidden: violates PodSecurity "restricted:latest"'
    refused_step = ["sh", "-c", "echo never"]  # its Job's events say why no pod came
    assert backend.run(refused_step, log_path=tmp_path / "logs" / "r.s.log", echo=lines.append,
                       step=step) != 0  # fmt: skip
    calls = {_permission(method, path) for method, path in fake_kube.requests} - {None}
    assert calls >= {("batch", "jobs", "create"), ("", "pods/log", "get"),
                     ("kubernetes.dask.org", "daskclusters", "create"), ("", "services", "get"),
                     ("", "namespaces", "get"), ("", "events", "list")}  # fmt: skip
    refused = {call for call in calls if not _allowed(role, *call)}
    assert refused == {("", "namespaces", "get")}


def _recipe_layout(into: Path) -> Path:
    """The files of the eso137-recipes ConfigMap, where deploy/rc-run-job.yaml mounts them."""
    job = next(d for _, d in _documents() if d["kind"] == "Job")
    (volume,) = [v for v in job["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
    sources = {"eso137.yml": ROOT / "recipes/eso137.yml", "kube.yml": DEPLOY / "cloud/eso137.yml",
               "imaging.yml": ROOT / "recipes/lib/imaging.yml",
               "selfcal.yml": ROOT / "recipes/lib/selfcal.yml"}  # fmt: skip
    readme = (DEPLOY / "README.md").read_text()
    for item in volume["configMap"]["items"]:
        target = into / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sources[item["key"]], target)
        source = sources[item["key"]].relative_to(ROOT)
        flag = f"--from-file={item['key']}={source}" if item["key"] == "kube.yml" else str(source)
        assert flag in readme  # the guide's kubectl create configmap makes this key
    return into


def test_the_in_cluster_job_mounts_a_recipe_that_loads(tmp_path):
    layout = _recipe_layout(tmp_path / "recipes")
    config = load([str(layout / "eso137.yml"), str(layout / "kube.yml")])
    settings = parse(config["eso137"]["backend"]["kube"])
    assert config["eso137"]["backend"]["select"] == "kube"
    assert settings.volumes[0].host_path == settings.volumes[0].mount == "/data"
    assert settings.s3_secret == "s3-credentials"


def test_the_local_cluster_overlay_validates_the_eso137_recipe(fake_kube, tmp_path):
    """rc-run --dry-run of the recipe with deploy/kind/eso137.yml, from the directory the
    kind node mounts: every step's paths are on the volume and the API answers."""
    fake_kube.claims["radiocloud-data"] = str(tmp_path)
    tiny = ["--antennas", "4", "--channels", "4", "--integrations", "2", "--noise", "0"]
    assert run_cli(simulate_app, "rc-simulate", [str(tmp_path / "obs.ms"), *tiny]) == 0
    rc_run = [sys.executable, "-m", "radiocloud.run.cli", "--dry-run",
              str(ROOT / "recipes/eso137.yml"), str(DEPLOY / "kind/eso137.yml"),
              "ms=obs.ms", "prefix=out/eso137"]  # fmt: skip
    result = subprocess.run(rc_run, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout + result.stderr
    assert ("GET", "/api/v1/namespaces/radiocloud") in fake_kube.requests
    assert not fake_kube.created


@pytest.mark.parametrize("overlay", ["kind/eso137.yml", "cloud/eso137.yml"])
def test_overlays_hold_valid_settings(overlay):
    config = load([str(ROOT / "recipes/eso137.yml"), str(DEPLOY / overlay)])
    parse(config["eso137"]["backend"]["kube"])
