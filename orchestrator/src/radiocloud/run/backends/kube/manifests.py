"""The Kubernetes objects of one step: its names and labels, its image, its command line with
paths as the container sees them, its Job and, when it asks for workers, its DaskCluster.

Objects are built with the ``kubernetes`` client's models and turned into plain manifests with
``ApiClient().sanitize_for_serialization``; the DaskCluster starts from dask-kubernetes'
``make_cluster_spec`` and gains the Job's volumes, secret, node selector and tolerations.
"""

from __future__ import annotations

import os
import posixpath
import re
import secrets
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

from kubernetes import client

from radiocloud.run.backends import StepContext
from radiocloud.run.backends.container import IMAGE_OF  # the images containers/build makes
from radiocloud.run.backends.kube.settings import Settings, Volume

MANAGED_BY = {"app.kubernetes.io/managed-by": "rc-run"}
JOB_LABEL = "radiocloud/job"  # on the Job's pod: how rc-run finds it
# images are tagged with radiocloud-core's version, as containers/build tags them
VERSION = metadata.version("radiocloud-core")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def manifest(model: Any) -> dict[str, Any]:
    """A client model (V1Job...) as the JSON the API server takes."""
    return client.ApiClient().sanitize_for_serialization(model)


# -- names --------------------------------------------------------------------------------------


def dns_label(text: str, limit: int = 63) -> str:
    """``text`` as an RFC 1123 label: lowercase alphanumerics and '-', at most ``limit``."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].rstrip("-")
    return name or "step"


def label_value(text: str) -> str:
    """``text`` as a label value (63 characters of alphanumerics, '-', '_', '.')."""
    value = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def unique_name(fq: str, limit: int = 63) -> str:
    """A fresh object name for step ``fq``: rc-<the step's last parts>-<4 random hex>."""
    token = secrets.token_hex(2)
    return f"rc-{dns_label(fq, limit - len(token) - 4)}-{token}"


def cluster_name(job: str) -> str:
    """The DaskCluster of the Job ``job`` (as short as the operator wants it)."""
    from dask_kubernetes.constants import MAX_CLUSTER_NAME_LEN

    head, token = job.rsplit("-", 1)
    return f"{head[: MAX_CLUSTER_NAME_LEN - len(token) - 4].rstrip('-')}-dc-{token}"


def labels(step: StepContext, run_id: str) -> dict[str, str]:
    return {
        **MANAGED_BY,
        "radiocloud/step": label_value(step.fq),
        "radiocloud/run": label_value(run_id),
    }


# -- image and paths ------------------------------------------------------------------------


def image_for(step: StepContext, settings: Settings) -> str | None:
    """The cab's image, else the radiocloud image of the command (None for other programs):
    REGISTRY/radiocloud/NAME:VERSION, NAME as in containers/images.toml (rc-data: core)."""
    if step.image:
        return step.image
    name = IMAGE_OF.get(step.command, step.command)
    if not name.startswith("rc-") and name != "core":
        return None
    return f"{settings.image_registry.rstrip('/')}/radiocloud/{name}:{VERSION}"


def is_url(path: str) -> bool:
    return bool(_URL.match(path))


def volume_of(path: str, volumes: Sequence[Volume], cwd: str = ".") -> tuple[Volume, str] | None:
    """The volume that holds the host's ``path`` (the innermost, when host paths nest), and
    where the container sees the path; None when no volume holds it."""
    full = os.path.normpath(os.path.join(os.path.abspath(cwd), path))
    found = None
    for volume in volumes:
        if volume.host_path is None:
            continue
        host = os.path.normpath(os.path.abspath(volume.host_path))
        if (full == host or full.startswith(host.rstrip(os.sep) + os.sep)) and (
            found is None or len(host) > len(found[1])
        ):
            found = (volume, host)
    if found is None:
        return None
    volume, host = found
    rest = os.path.relpath(full, host)
    inside = volume.mount if rest == "." else posixpath.join(volume.mount, *rest.split(os.sep))
    return volume, inside


def in_container(path: str, volumes: Sequence[Volume], cwd: str = ".") -> str | None:
    """Where the container sees the host's ``path`` (None: no volume holds it)."""
    found = volume_of(path, volumes, cwd)
    return found[1] if found else None


def outside_volumes(step: StepContext, settings: Settings) -> list[str]:
    """One line per local data path of the step that no volume holds (or that the step
    writes to a read-only volume)."""
    problems = []
    for data in step.paths:
        if is_url(data.path):
            continue
        full = os.path.abspath(os.path.join(step.cwd, data.path))
        found = volume_of(data.path, settings.volumes, step.cwd)
        if found is None:
            problems.append(
                f"{full} is outside the volumes mounted in its pod; add one that holds it "
                f"(backend.kube.volumes: [{{pvc: NAME, mount: /data, host_path: DIR}}]) "
                "or use an s3:// URL"
            )
        elif data.written and found[0].read_only:
            problems.append(f"{full} is written by the step but volume '{found[0].pvc}' is "
                            "mounted read_only")  # fmt: skip
    return problems


def container_argv(argv: Sequence[str], step: StepContext, settings: Settings) -> list[str]:
    """``argv`` with the step's data paths (and any absolute path under a volume's host_path)
    rewritten to the container's mount paths."""
    declared = {data.path for data in step.paths}
    out = [argv[0]]
    for token in argv[1:]:
        if (token in declared or os.path.isabs(token)) and not is_url(token):
            token = in_container(token, settings.volumes, step.cwd) or token
        out.append(token)
    return out


def workers_of(argv: Sequence[str]) -> tuple[int, int]:
    """The ``--workers N`` and ``--threads T`` the command line asks for (0 if absent)."""
    found = {"--workers": 0, "--threads": 0}
    for i, token in enumerate(argv):
        option, _, value = token.partition("=")
        if option in found:
            value = value or (argv[i + 1] if i + 1 < len(argv) else "")
            found[option] = int(value) if value.isdigit() else 0
    return found["--workers"], found["--threads"]


def with_scheduler(argv: Sequence[str], address: str) -> list[str]:
    """``argv`` with ``--workers N`` replaced by ``--scheduler ADDRESS``."""
    out: list[str] = []
    skip = False
    for i, token in enumerate(argv):
        if skip:
            skip = False
        elif token == "--workers":
            skip = i + 1 < len(argv)
        elif not token.startswith("--workers="):
            out.append(token)
    return [*out, "--scheduler", address]


# -- the Job -------------------------------------------------------------------------------


def job(
    name: str,
    argv: Sequence[str],
    image: str,
    step: StepContext,
    settings: Settings,
    run_id: str,
) -> client.V1Job:
    """The Job running ``argv`` (already in the container's paths) once, never retried."""
    tags = labels(step, run_id)
    container = client.V1Container(
        name="step",
        image=image,
        image_pull_policy=settings.image_pull_policy,
        command=list(argv),
        working_dir=in_container(step.cwd, settings.volumes),
        env=_env(settings),
        env_from=_secret(settings),
        resources=client.V1ResourceRequirements(
            requests=dict(settings.requests) or None, limits=dict(settings.limits) or None
        )
        if settings.requests or settings.limits
        else None,
        volume_mounts=_mounts(settings) or None,
    )
    pod = client.V1PodSpec(
        containers=[container],
        restart_policy="Never",
        **_placement(settings),
    )
    return client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(name=name, labels=tags),
        spec=client.V1JobSpec(
            backoff_limit=0,
            ttl_seconds_after_finished=settings.ttl,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={**tags, JOB_LABEL: name}),
                spec=pod,
            ),
        ),
    )


def _env(settings: Settings) -> list[client.V1EnvVar]:
    values = {"PYTHONUNBUFFERED": "1", **settings.env}  # lines reach the log as they are written
    return [client.V1EnvVar(name=key, value=value) for key, value in values.items()]


def _secret(settings: Settings) -> list[client.V1EnvFromSource] | None:
    """The S3 secret's keys (AWS_ACCESS_KEY_ID, ...) as environment variables."""
    if not settings.s3_secret:
        return None
    return [client.V1EnvFromSource(secret_ref=client.V1SecretEnvSource(name=settings.s3_secret))]


def _mounts(settings: Settings) -> list[client.V1VolumeMount]:
    return [
        client.V1VolumeMount(name=f"data-{i}", mount_path=v.mount, read_only=v.read_only or None)
        for i, v in enumerate(settings.volumes)
    ]


def _placement(settings: Settings) -> dict[str, Any]:
    """Pod spec fields shared by the Job and the DaskCluster's pods."""
    claims = [
        client.V1Volume(
            name=f"data-{i}",
            persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                claim_name=v.pvc, read_only=v.read_only or None
            ),
        )
        for i, v in enumerate(settings.volumes)
    ]
    return {
        "service_account_name": settings.service_account,
        "node_selector": dict(settings.node_selector) or None,
        "tolerations": [client.V1Toleration(**t) for t in settings.tolerations] or None,
        "volumes": claims or None,
    }


# -- the DaskCluster -----------------------------------------------------------------------


def dask_cluster(
    name: str,
    *,
    image: str,
    workers: int,
    threads: int,
    step: StepContext,
    settings: Settings,
    run_id: str,
) -> dict[str, Any]:
    """The DaskCluster (kubernetes.dask.org/v1) of ``workers`` workers of ``threads`` threads
    each (0: dask's default, the pod's cores), its pods placed and mounted like the Job's."""
    from dask_kubernetes.operator import make_cluster_spec  # 2 s to import: only when used

    dask = settings.dask
    requests = {k: v for k, v in (("cpu", dask.worker_cpu), ("memory", dask.worker_memory)) if v}
    limits = {"memory": dask.worker_memory} if dask.worker_memory else {}
    spec = make_cluster_spec(
        name=name,
        image=dask.image or image,
        n_workers=workers,
        resources={"requests": requests, "limits": limits} if requests else None,
        env={"PYTHONUNBUFFERED": "1", **settings.env},
        worker_command="dask worker",
        idle_timeout=dask.idle_timeout,
    )
    spec["metadata"]["labels"] = labels(step, run_id)
    placement = manifest(client.V1PodSpec(containers=[], **_placement(settings)))
    placement.pop("containers")
    shared = {
        "volumeMounts": manifest(_mounts(settings)) or None,
        "envFrom": manifest(_secret(settings)),
    }
    for role in ("scheduler", "worker"):
        pod = spec["spec"][role]["spec"]
        pod.update(placement)
        (container,) = pod["containers"]
        container.update({k: v for k, v in shared.items() if v})
        _dask_cli(container, role)
        if role == "worker" and threads:
            container["args"] += ["--nthreads", str(threads)]
    return _without_nulls(spec)


def _without_nulls(value: Any) -> Any:
    """``value`` without null fields: make_cluster_spec writes ``resources: null`` when given
    none, which the DaskCluster schema (an object) refuses."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _dask_cli(container: dict[str, Any], role: str) -> None:
    """``dask scheduler ...``/``dask worker ...`` as the container's command: distributed
    dropped the ``dask-scheduler`` script that make_cluster_spec still names, and the app
    images' entrypoint is not dask's."""
    args = container["args"]
    rest = args[2:] if args[0] == "dask" else args[1:]
    container["command"], container["args"] = ["dask", role], rest


def scheduler_address(template: str, *, name: str, namespace: str, service: Mapping) -> str:
    """The scheduler's address, from the DaskCluster's Service (its ``tcp-comm`` port)."""
    ports = (service.get("spec") or {}).get("ports") or []
    port = next((p["port"] for p in ports if p.get("name") == "tcp-comm"), 8786)
    service_name = (service.get("metadata") or {}).get("name", f"{name}-scheduler")
    return template.format(service=service_name, namespace=namespace, name=name, port=port)
