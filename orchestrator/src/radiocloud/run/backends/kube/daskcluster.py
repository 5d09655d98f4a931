"""A step's DaskCluster on the cluster: created, waited for, its scheduler's address found.

The dask-kubernetes operator moves a new DaskCluster's ``status.phase`` through ``Created`` and
``Pending`` to ``Running`` once its scheduler Service exists (``Error`` if it refuses the
cluster); the Service ``NAME-scheduler`` names the scheduler's ``tcp-comm`` port.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from radiocloud.run.backends.kube import cluster, manifests
from radiocloud.run.backends.kube.pods import CannotStart
from radiocloud.run.backends.kube.settings import Settings

GROUP, VERSION, PLURAL = "kubernetes.dask.org", "v1", "daskclusters"


def call(doing: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args)``, an ApiException it raises noting what rc-run was ``doing``."""
    try:
        return function(*args, **kwargs)
    except ApiException as error:
        error.doing = doing
        raise


class DaskClusters:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        settings: Settings,
        out: Callable[[str], None],
    ) -> None:
        self.api, self.ns, self.settings, self.out = api, namespace, settings, out
        self.custom = client.CustomObjectsApi(api)

    def create(self, spec: dict[str, Any]) -> None:
        try:
            call("creating the daskcluster", self.custom.create_namespaced_custom_object,
                 GROUP, VERSION, self.ns, PLURAL, spec)  # fmt: skip
        except ApiException as error:
            if error.status == 404:
                raise CannotStart(
                    f"the cluster at {cluster.server(self.api)} has no DaskCluster resource; "
                    "install the dask-kubernetes operator (deploy/README.md)"
                ) from None
            raise
        workers = spec["spec"]["worker"]["replicas"]
        self.out(f"daskcluster {spec['metadata']['name']} created ({workers} workers)")

    def address(self, name: str) -> str:
        """The scheduler's address once the operator reports the cluster running."""
        timeout = self.settings.dask.start_timeout
        deadline = time.monotonic() + timeout
        told = None
        while True:
            found = call("reading the daskcluster", self.custom.get_namespaced_custom_object,
                         GROUP, VERSION, self.ns, PLURAL, name)  # fmt: skip
            phase = (found.get("status") or {}).get("phase")
            if phase == "Running":
                break
            if phase == "Error":
                raise CannotStart(f"the dask operator refused daskcluster {name} (phase Error)")
            if phase != told and phase is not None:
                self.out(f"daskcluster {name}: {phase}")
                told = phase
            if time.monotonic() > deadline:
                raise CannotStart(
                    f"daskcluster {name} not running after {timeout:g} s (phase {phase}); is "
                    "the dask-kubernetes operator running? (kubectl get pods -A -l "
                    "app.kubernetes.io/name=dask-kubernetes-operator)"
                )
            time.sleep(self.settings.poll)
        core = client.CoreV1Api(self.api)
        service = call("reading the scheduler service", core.read_namespaced_service,
                       f"{name}-scheduler", self.ns)  # fmt: skip
        address = manifests.scheduler_address(
            self.settings.dask.scheduler_address, name=name, namespace=self.ns,
            service=self.api.sanitize_for_serialization(service),
        )  # fmt: skip
        self.out(f"daskcluster {name} running; scheduler {address}")
        return address

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)
