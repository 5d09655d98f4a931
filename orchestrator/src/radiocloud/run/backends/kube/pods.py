"""Following a step's Job: its pod's start, its log, its end and exit code."""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from radiocloud.core.errors import RadiocloudError
from radiocloud.run.backends.kube.manifests import JOB_LABEL
from radiocloud.run.backends.kube.settings import Settings

# waiting reasons of a container that will not start by itself
FATAL = ("ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "ErrImageNeverPull")


class CannotStart(RadiocloudError):
    """The step's pod (or its DaskCluster) cannot start."""


class Pods:
    """The pod of the Job ``job`` in ``namespace``."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        job: str,
        settings: Settings,
        out: Callable[[str], None],
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.ns, self.job, self.settings, self.out = namespace, job, settings, out

    def started(self) -> client.V1Pod:
        """The Job's pod once it left Pending; CannotStart if it never will."""
        deadline = time.monotonic() + self.settings.start_timeout
        told = None
        while True:
            pods = self.core.list_namespaced_pod(
                self.ns, label_selector=f"{JOB_LABEL}={self.job}"
            ).items
            if not pods:
                refused = self.not_created()
                if refused and "forbidden" in refused and "exceeded quota" not in refused:
                    raise CannotStart(f"the cluster refuses the pod of job {self.job}: {refused}")
                if refused and refused != told:
                    self.out(f"job {self.job}: no pod yet: {refused}")
                    told = refused
            else:
                pod = pods[-1]
                if pod.status.phase != "Pending":
                    return pod
                why = waiting(pod)
                if why and why.split(":")[0] in FATAL:
                    raise CannotStart(f"pod {pod.metadata.name} cannot start: {why}{_hint(why)}")
                if why != told:
                    self.out(f"pod {pod.metadata.name} pending{': ' + why if why else ''}")
                    told = why
            if time.monotonic() > deadline:
                raise CannotStart(
                    f"job {self.job}: no pod running after {self.settings.start_timeout:g} s "
                    f"({told or 'no pod'}); kubectl -n {self.ns} describe job {self.job}"
                )
            time.sleep(self.settings.poll)

    def not_created(self) -> str | None:
        """Why the Job controller could not create the pod (its latest FailedCreate event:
        a quota exceeded, an admission policy refusing it), or None."""
        try:
            events = self.core.list_namespaced_event(
                self.ns, field_selector=f"involvedObject.kind=Job,involvedObject.name={self.job}"
            ).items
        except ApiException:  # no right to read events: the timeout's message must do
            return None
        failed = [e for e in events if e.reason == "FailedCreate" and e.message]
        return f"FailedCreate: {failed[-1].message}" if failed else None

    def follow(self, pod: str) -> None:
        """Send the pod's log, line by line as it comes, to the step's log."""
        stream = self.core.read_namespaced_pod_log(
            pod, self.ns, container="step", follow=True, _preload_content=False
        )
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""
        try:
            for chunk in stream.stream(2**14):
                pending += decoder.decode(chunk)
                *lines, pending = pending.split("\n")
                for line in lines:
                    self.out(line)
        finally:
            stream.close()
        pending += decoder.decode(b"", final=True)
        if pending:
            self.out(pending)

    def exit_code(self, batch: client.BatchV1Api, pod: str) -> int:
        """Wait for the Job to succeed or fail; the exit code of its container."""
        while True:
            status = batch.read_namespaced_job(self.job, self.ns).status
            if status.succeeded or status.failed:
                break
            time.sleep(self.settings.poll)
        try:
            found = self.core.read_namespaced_pod(pod, self.ns)
        except ApiException as error:
            if error.status != 404:
                raise
            found = None
        terminated = _terminated(found)
        if terminated is None:
            why = "; ".join(f"{c.reason}: {c.message}" for c in status.conditions or [] if c.reason)
            self.out(f"job {self.job} {'succeeded' if status.succeeded else 'failed'}"
                     f"{' (' + why + ')' if why else ''}")  # fmt: skip
            return 0 if status.succeeded else 1
        if terminated.reason == "OOMKilled":
            self.out("the container ran out of memory (OOMKilled); raise "
                     "backend.kube.resources.limits.memory")  # fmt: skip
        return terminated.exit_code


def waiting(pod: client.V1Pod) -> str | None:
    """Why a pending pod waits ('Unschedulable: 0/3 nodes...', 'ErrImagePull: ...')."""
    for status in pod.status.container_statuses or []:
        if status.state and status.state.waiting and status.state.waiting.reason:
            state = status.state.waiting
            return f"{state.reason}: {state.message}" if state.message else state.reason
    for condition in pod.status.conditions or []:
        if condition.status == "False" and condition.reason:
            return (
                f"{condition.reason}: {condition.message}"
                if condition.message
                else condition.reason
            )
    return None


def _hint(why: str) -> str:
    if "Image" in why:
        return (
            "; build it (containers/build NAME), push it where the cluster pulls from (kind load"
            " docker-image IMAGE, or a registry and backend.kube.image_registry), or set the "
            "cab's image:"
        )
    return ""


def _terminated(pod: client.V1Pod | None) -> client.V1ContainerStateTerminated | None:
    for status in (pod.status.container_statuses or []) if pod else []:
        if status.name == "step" and status.state and status.state.terminated:
            return status.state.terminated
    return None
