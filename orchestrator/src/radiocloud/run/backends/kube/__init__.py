"""The kube backend: each step runs as a Kubernetes Job; a step given ``--workers N`` gets a
DaskCluster of N workers from the dask-kubernetes operator.

Settings (``backend: {kube: {...}}`` of a recipe or step, merged from the outer recipe down)::

    namespace: radiocloud          # must exist (deploy/namespace.yaml)
    context: NAME                  # kube config context (default: the current one)
    service_account: NAME          # of the step's pods (default: the namespace's default)
    image_registry: localhost      # default images: REGISTRY/radiocloud/rc-APP:VERSION
    image_pull_policy: IfNotPresent
    node_selector: {pool: compute}
    tolerations: [{key: spot, operator: Exists, effect: NoSchedule}]
    resources: {cpu: "2", memory: 8Gi, limits: {memory: 8Gi}}
    volumes:                       # PVCs mounted in every pod of the step; a step's local
      - {pvc: data, mount: /data, host_path: /mnt/data}   # paths under host_path become /data/...
    s3_secret: NAME                # a Secret whose keys (AWS_ACCESS_KEY_ID, ...) become env
    env: {NAME: value}
    ttl: 86400                     # seconds a finished Job that was kept stays (null: forever)
    cleanup: on-success            # delete the Job on success | always | never
    poll: 2                        # seconds between status polls
    start_timeout: 900             # seconds a pod may stay Pending (an autoscaler adds nodes)
    dask: {worker_cpu: "1", worker_memory: 4Gi, image: IMAGE, idle_timeout: 0,
           start_timeout: 600, scheduler_address: "tcp://{service}.{namespace}.svc.cluster.local:{port}"}

Before anything runs, :func:`check` reports, one line each: unusable settings, no kube config,
an API server that does not answer (probed once per run), a missing namespace, a step with no
image, and a local data path that no volume holds.

:func:`run`, for one step:

1. the step's paths are rewritten to where its pod sees them (``volumes``);
2. with ``--workers N`` a DaskCluster (``make_cluster_spec``) is created; once the operator
   reports it ``Running`` its scheduler Service gives the address that replaces ``--workers N``
   with ``--scheduler tcp://NAME-scheduler.NAMESPACE.svc.cluster.local:8786``;
3. the Job (backoffLimit 0) is created; rc-run waits for its pod to leave ``Pending`` (saying
   why it waits; an image that cannot be pulled ends the step), follows the pod's log into the
   step's log, polls the Job until it succeeded or failed, and takes the exit code from the
   container's terminated state;
4. the DaskCluster is deleted in any case; the Job on success (or as ``cleanup`` says), so a
   failed one stays for ``kubectl logs``. Ctrl-C deletes both and re-raises.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from radiocloud.run.backends import StepContext
from radiocloud.run.backends.kube import cluster, manifests
from radiocloud.run.backends.kube.daskcluster import DaskClusters, call
from radiocloud.run.backends.kube.pods import CannotStart, Pods
from radiocloud.run.backends.kube.settings import Settings, SettingsError, parse


def check(step: StepContext) -> list[str]:
    """The problems that would stop ``step`` from running on the cluster, one line each."""
    try:
        settings = parse(step.options)
    except SettingsError as error:
        return [str(error)]
    problems = list(cluster.problems(settings.context, settings.namespace))
    if manifests.image_for(step, settings) is None:
        problems.append(
            f"cab '{step.cab}' names no image and '{step.command}' is no radiocloud app; "
            "give the cab an image: to run it on kube"
        )
    return problems + manifests.outside_volumes(step, settings)


def run(
    argv: list[str],
    *,
    log_path: Path,
    echo: Callable[[str], None],
    cwd: str = ".",
    usage: dict | None = None,
    step: StepContext | None = None,
) -> int:
    """Run ``argv`` as a Job; its exit code. ``usage`` gets the job, pod, image, node and the
    DaskCluster's name."""
    step = step or StepContext(fq=argv[0], cab=argv[0], command=argv[0], cwd=cwd)
    usage = {} if usage is None else usage
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:

        def out(line: str) -> None:
            log.write(line + "\n")
            log.flush()
            echo(line)

        try:
            settings = parse(step.options)
            api = cluster.api_client(settings.context)
        except (SettingsError, cluster.Unavailable) as error:
            out(str(error))
            return 2
        image = manifests.image_for(step, settings)
        if image is None:
            out(f"'{step.command}' has no image: give the cab '{step.cab}' an image:")
            return 2
        run_id = step.run_id or log_path.parent.parent.name
        return _Step(api, settings, step, run_id, image, out, usage).run(argv)


class _Step:
    """One step's objects on the cluster, from creation to cleanup."""

    def __init__(
        self,
        api: client.ApiClient,
        settings: Settings,
        step: StepContext,
        run_id: str,
        image: str,
        out: Callable[[str], None],
        usage: dict[str, Any],
    ) -> None:
        self.api, self.settings, self.step, self.run_id = api, settings, step, run_id
        self.image, self.out, self.usage = image, out, usage
        self.ns = settings.namespace
        self.batch = client.BatchV1Api(api)
        self.clusters = DaskClusters(api, self.ns, settings, out)
        self.job = manifests.unique_name(step.fq)
        self.dask: str | None = None
        self.created_job = False

    def run(self, argv: list[str]) -> int:
        argv = manifests.container_argv(argv, self.step, self.settings)
        self.usage.update(job=self.job, namespace=self.ns, image=self.image)
        code = 1
        try:
            code = self._run(argv)
        except KeyboardInterrupt:
            self.out("interrupted: deleting what this step created")
            self._delete_job()
            self._delete_cluster()
            raise
        except CannotStart as error:
            self.out(str(error))
        except ApiException as error:
            self.out(cluster.api_error(self.api, error, getattr(error, "doing", "calling")))
        except cluster.UNREACHABLE as error:
            self.out(cluster.unreachable(self.api, error))
        self._delete_cluster()
        if self.settings.cleanup == "always" or (
            code == 0 and self.settings.cleanup == "on-success"
        ):
            self._delete_job()
        elif code != 0 and self.created_job:
            self.out(f"job {self.job} kept: kubectl -n {self.ns} logs job/{self.job}")
        return code

    def _run(self, argv: list[str]) -> int:
        workers, threads = manifests.workers_of(argv)
        if workers:
            argv = manifests.with_scheduler(argv, self._start_cluster(workers, threads))
        job = manifests.job(self.job, argv, self.image, self.step, self.settings, self.run_id)
        self.out(f"$ {shlex.join(argv)}")
        self.created_job = True  # before the call: Ctrl-C during it still deletes the Job
        call("creating the job", self.batch.create_namespaced_job, self.ns, job)
        self.out(f"job {self.job} created in namespace {self.ns}")
        pods = Pods(self.api, self.ns, self.job, self.settings, self.out)
        pod = pods.started()
        self.usage.update(pod=pod.metadata.name, node=pod.spec.node_name)
        pods.follow(pod.metadata.name)
        return pods.exit_code(self.batch, pod.metadata.name)

    def _start_cluster(self, workers: int, threads: int) -> str:
        """Create the step's DaskCluster; its scheduler's address once it runs."""
        self.dask = manifests.cluster_name(self.job)
        spec = manifests.dask_cluster(
            self.dask, image=self.image, workers=workers, threads=threads, step=self.step,
            settings=self.settings, run_id=self.run_id,
        )  # fmt: skip
        self.usage["dask_cluster"] = self.dask
        self.clusters.create(spec)
        return self.clusters.address(self.dask)

    def _delete_job(self) -> None:
        if self.created_job:
            self._delete("job", self.job, lambda: self.batch.delete_namespaced_job(
                self.job, self.ns, propagation_policy="Background"))  # fmt: skip

    def _delete_cluster(self) -> None:
        if self.dask:
            name, self.dask = self.dask, None
            self._delete("daskcluster", name, lambda: self.clusters.delete(name))

    def _delete(self, kind: str, name: str, delete: Callable[[], Any]) -> None:
        try:
            delete()
            self.out(f"{kind} {name} deleted")
        except ApiException as error:
            if error.status != 404:
                self.out(f"could not delete {kind} {name} ({error.status} {error.reason}): "
                         f"kubectl -n {self.ns} delete {kind} {name}")  # fmt: skip
        except cluster.UNREACHABLE as error:
            self.out(f"could not delete {kind} {name} ({cluster.reason(error)}): "
                     f"kubectl -n {self.ns} delete {kind} {name}")  # fmt: skip
