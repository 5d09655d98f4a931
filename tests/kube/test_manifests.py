"""The kube backend's objects, checked offline: every Job (and its pod) against Kubernetes'
OpenAPI schema with kubernetes-validate (strict: unknown fields are errors), every DaskCluster
against the CRD schema shipped in the dask-kubernetes wheel; names, images, path translation
and the settings' one-line errors."""

from __future__ import annotations

import re

import jsonschema
import kubernetes_validate
import pytest
from dask_kubernetes.constants import MAX_CLUSTER_NAME_LEN

from radiocloud.run.backends import DataPath, StepContext
from radiocloud.run.backends.kube import manifests
from radiocloud.run.backends.kube.settings import SettingsError, parse

VOLUMES = [
    {"pvc": "data", "mount": "/data", "host_path": "/srv/obs"},
    {"pvc": "scratch", "mount": "/scratch", "host_path": "/srv/obs/tmp", "read_only": True},
]
COMBOS = {
    "defaults": {},
    "volumes": {"volumes": VOLUMES},
    "secret": {"s3_secret": "s3-credentials", "env": {"AWS_REGION": "af-south-1", "N": 3}},
    "placement": {
        "node_selector": {"pool": "compute", "kubernetes.io/arch": "amd64"},
        "tolerations": [
            {"key": "spot", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "gpu", "operator": "Equal", "value": "no", "toleration_seconds": 30},
        ],
        "service_account": "rc-step",
    },
    "resources": {"resources": {"cpu": "2", "memory": "8Gi", "limits": {"memory": "8Gi"}}},
    "everything": {
        "namespace": "radio",
        "image_registry": "ghcr.io/example",
        "image_pull_policy": "Always",
        "volumes": VOLUMES,
        "s3_secret": "s3",
        "node_selector": {"pool": "compute"},
        "tolerations": [{"key": "spot", "operator": "Exists"}],
        "resources": {"cpu": 1, "limits": {"cpu": "4", "memory": "16Gi"}},
        "ttl": None,
        "dask": {"worker_cpu": "1", "worker_memory": "4Gi", "idle_timeout": 300},
    },
}
STEP = StepContext(
    fq="eso137.steps.selfcal-1.steps.calibrate_delay",
    cab="rc-calibrate",
    command="rc-calibrate",
    paths=(DataPath("obs.ms", written=True), DataPath("/srv/obs/tmp/k.zarr", written=True)),
    cwd="/srv/obs",
)


def _job(options: dict) -> dict:
    settings = parse(options)
    argv = manifests.container_argv(
        ["rc-calibrate", "obs.ms", "--gain-table", "/srv/obs/tmp/k.zarr"], STEP, settings
    )
    image = manifests.image_for(STEP, settings)
    name = manifests.unique_name(STEP.fq)
    return manifests.manifest(manifests.job(name, argv, image, STEP, settings, "eso137-20261126"))


@pytest.mark.parametrize("combo", COMBOS)
def test_every_job_and_its_pod_are_valid_kubernetes(combo, valid_k8s):
    job = _job(COMBOS[combo])
    valid_k8s(job)
    template = job["spec"]["template"]
    valid_k8s({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **template["metadata"]},
               "spec": template["spec"]})  # fmt: skip
    assert job["spec"]["backoffLimit"] == 0
    assert template["spec"]["restartPolicy"] == "Never"
    assert template["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "rc-run"
    assert template["metadata"]["labels"]["radiocloud/job"] == job["metadata"]["name"]


def test_the_validator_refuses_what_the_api_server_would(valid_k8s):
    job = _job(COMBOS["everything"])
    job["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        valid_k8s(job)
    job = _job({})
    job["spec"]["backoffLimit"] = "none"
    with pytest.raises(kubernetes_validate.ValidationError):
        valid_k8s(job)


def test_a_job_carries_its_settings():
    job = _job(COMBOS["everything"])
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/example/radiocloud/rc-calibrate:" + manifests.VERSION
    assert container["command"] == ["rc-calibrate", "/data/obs.ms", "--gain-table",
                                    "/scratch/k.zarr"]  # fmt: skip
    assert container["workingDir"] == "/data"
    assert container["envFrom"] == [{"secretRef": {"name": "s3"}}]
    assert container["resources"] == {"requests": {"cpu": "1"},
                                      "limits": {"cpu": "4", "memory": "16Gi"}}  # fmt: skip
    assert [v["persistentVolumeClaim"] for v in pod["volumes"]] == [
        {"claimName": "data"}, {"claimName": "scratch", "readOnly": True}]  # fmt: skip
    assert pod["nodeSelector"] == {"pool": "compute"}
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert _job({})["spec"]["ttlSecondsAfterFinished"] == 86400


def _cluster(options: dict, workers: int = 3, threads: int = 1) -> dict:
    settings = parse(options)
    name = manifests.cluster_name(manifests.unique_name(STEP.fq))
    image = manifests.image_for(STEP, settings)
    return manifests.dask_cluster(name, image=image, workers=workers, threads=threads,
                                  step=STEP, settings=settings, run_id="r1")  # fmt: skip


@pytest.mark.parametrize("combo", COMBOS)
def test_every_daskcluster_is_valid_for_the_operator(combo, valid_daskcluster):
    spec = _cluster(COMBOS[combo])
    valid_daskcluster(spec)
    assert len(spec["metadata"]["name"]) <= MAX_CLUSTER_NAME_LEN
    worker = spec["spec"]["worker"]
    assert worker["replicas"] == 3
    (container,) = worker["spec"]["containers"]
    assert container["command"] == ["dask", "worker"]
    assert container["args"][-2:] == ["--nthreads", "1"]
    (scheduler,) = spec["spec"]["scheduler"]["spec"]["containers"]
    assert scheduler["command"] == ["dask", "scheduler"]


def test_daskcluster_pods_are_placed_and_mounted_like_the_job(valid_daskcluster):
    spec = _cluster(COMBOS["everything"], workers=2, threads=0)
    for role in ("scheduler", "worker"):
        pod = spec["spec"][role]["spec"]
        assert pod["nodeSelector"] == {"pool": "compute"}
        assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "data"}
        (container,) = pod["containers"]
        assert container["volumeMounts"][0] == {"mountPath": "/data", "name": "data-0"}
        assert container["envFrom"] == [{"secretRef": {"name": "s3"}}]
        assert container["resources"] == {"requests": {"cpu": "1", "memory": "4Gi"},
                                          "limits": {"memory": "4Gi"}}  # fmt: skip
    assert "--nthreads" not in spec["spec"]["worker"]["spec"]["containers"][0]["args"]
    assert spec["spec"]["idleTimeout"] == 300
    spec["spec"]["worker"]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        valid_daskcluster(spec)


def test_names_fit_kubernetes_limits():
    fq = "a-very-long-recipe-name.steps.selfcal_round_12.steps.calibrate-delay-and-phase_X"
    job = manifests.unique_name(fq)
    assert len(job) <= 63
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", job)
    assert job != manifests.unique_name(fq)
    cluster = manifests.cluster_name(job)
    assert len(cluster) <= MAX_CLUSTER_NAME_LEN
    assert len(cluster + "-scheduler") <= 63
    value = manifests.label_value("x" * 70 + ".steps.y_")
    assert len(value) <= 63
    assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value)


@pytest.mark.parametrize(
    ("command", "image"),
    [
        ("rc-flag", "localhost/radiocloud/rc-flag"),
        ("rc-flag-summary", "localhost/radiocloud/rc-flag"),
        ("rc-flag-versions", "localhost/radiocloud/rc-flag"),
        ("rc-calibrate-apply", "localhost/radiocloud/rc-calibrate"),
        ("rc-image", "localhost/radiocloud/rc-image"),
        ("rc-data", "localhost/radiocloud/core"),
        ("wsclean", None),
    ],
)
def test_default_images(command, image):
    step = StepContext(fq="s", cab=command, command=command)
    found = manifests.image_for(step, parse({}))
    assert found == (f"{image}:{manifests.VERSION}" if image else None)
    given = StepContext(fq="s", cab=command, command=command, image="quay.io/x/y:2")
    assert manifests.image_for(given, parse({})) == "quay.io/x/y:2"


def test_paths_are_translated_to_the_innermost_listed_volume_and_urls_left_alone():
    settings = parse({"volumes": VOLUMES})
    step = StepContext(fq="s", cab="c", command="c", cwd="/srv/obs/run",
                       paths=(DataPath("../obs.ms", False), DataPath("s3://b/x.zarr", False),
                              DataPath("/elsewhere/y", True)))  # fmt: skip
    argv = ["c", "../obs.ms", "s3://b/x.zarr", "/srv/obs", "/srv/obs2/z", "plain", "/elsewhere/y"]
    expected = ["c", "/data/obs.ms", "s3://b/x.zarr", "/data", "/srv/obs2/z", "plain"]
    assert manifests.container_argv(argv, step, settings) == [*expected, "/elsewhere/y"]
    (problem,) = manifests.outside_volumes(step, settings)
    assert problem.startswith("/elsewhere/y is outside the volumes")


def test_workers_become_the_scheduler_address():
    argv = ["rc-predict", "x.ms", "--workers", "4", "--threads", "2", "--model", "m.txt"]
    assert manifests.workers_of(argv) == (4, 2)
    assert manifests.workers_of(["rc-predict", "--workers=3"]) == (3, 0)
    assert manifests.workers_of(["rc-predict", "--workers", "0"]) == (0, 0)
    expected = ["rc-predict", "x.ms", "--threads", "2", "--model", "m.txt"]
    assert manifests.with_scheduler(argv, "tcp://s:8786") == [
        *expected,
        "--scheduler",
        "tcp://s:8786",
    ]
    service = {"metadata": {"name": "c-scheduler"},
               "spec": {"ports": [{"name": "http-dashboard", "port": 8787},
                                  {"name": "tcp-comm", "port": 8786}]}}  # fmt: skip
    address = manifests.scheduler_address(parse({}).dask.scheduler_address, name="c",
                                          namespace="radio", service=service)  # fmt: skip
    assert address == "tcp://c-scheduler.radio.svc.cluster.local:8786"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"namspace": "x"}, "backend.kube: unknown setting 'namspace'; did you mean 'namespace'?"),
        ({"namespace": ""}, "backend.kube.namespace: expected a non-empty string"),
        ({"cleanup": "sometimes"}, "backend.kube.cleanup: 'sometimes' is not one of on-success"),
        ({"image_pull_policy": "always"}, "'always' is not one of IfNotPresent, Always, Never"),
        ({"volumes": {"pvc": "x"}}, "backend.kube.volumes: expected a list"),
        ({"volumes": [{"pvc": "x", "mount": "data"}]}, "volumes[0].mount: expected an absolute"),
        ({"volumes": [{"pvc": "x", "mount": "/d", "host": "/x"}]},
         "volumes[0]: unknown setting 'host'; did you mean 'host_path'?"),
        ({"tolerations": [{"key": "a", "effect": "NoSchedule", "operatr": "Exists"}]},
         "tolerations[0]: unknown key 'operatr'"),
        ({"resources": {"gpu": 1}}, "backend.kube.resources: unknown resource 'gpu'"),
        ({"node_selector": {"pool": ["a"]}}, "backend.kube.node_selector.pool: expected a string"),
        ({"poll": 0}, "backend.kube.poll: expected a number of seconds > 0"),
        ({"ttl": "1d"}, "backend.kube.ttl: expected a number of seconds"),
        ({"dask": {"workers_memory": "1Gi"}}, "did you mean 'worker_memory'?"),
        ({"dask": {"scheduler_address": "tcp://{host}:1"}}, "scheduler_address: KeyError('host')"),
    ],
)  # fmt: skip
def test_bad_settings_are_one_line(options, message):
    with pytest.raises(SettingsError) as error:
        parse(options)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
