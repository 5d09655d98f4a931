"""A small Kubernetes API server on 127.0.0.1 for the kube backend's tests, and its fixtures.

:class:`FakeKube` answers the calls the backend makes (version, namespaces, Jobs, pods and their
logs, DaskClusters, Services) in the JSON the real API server sends, so the real ``kubernetes``
client talks to it through a generated kubeconfig. Its "kubelet" runs each Job's command as a
local process: a volume's mount path is a symlink to the PersistentVolumeClaim's directory, a
Secret's keys become environment variables, and the pod's log is the process's output, streamed
(chunked) while it runs. A DaskCluster is a ``distributed.LocalCluster`` whose scheduler port its
Service names. Every Job and DaskCluster posted is validated as the tests validate manifests
(kubernetes-validate; jsonschema against the operator's CRD), and refused with 422 if invalid.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

K8S_VERSION = "1.33"
CRDS = "deployment/helm/dask-kubernetes-operator/crds"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "kube: needs a real Kubernetes cluster (runs only when a kube config exists)"
    )


# -- offline validation, shared by the tests and the fake server ---------------------------------


def validate_k8s(manifest: dict) -> None:
    """Validate a core-kind manifest against Kubernetes' OpenAPI schema (strict: no unknown
    fields); kubernetes_validate.ValidationError if invalid."""
    import kubernetes_validate

    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


@functools.cache
def crd_schema(kind: str) -> dict:
    """The openAPIV3Schema of a dask-kubernetes CRD as its wheel ships it (the helm chart's
    resolved CRDs), made strict: objects that list properties accept no others."""
    from importlib.resources import files

    text = (files("dask_kubernetes.operator") / CRDS / f"{kind.lower()}.yaml").read_text()
    crd = yaml.safe_load(text)
    schema = _strict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    # the fields every object has, which a CRD's schema leaves to the API server
    schema["properties"].update(apiVersion={"type": "string"}, kind={"type": "string"},
                                metadata={"type": "object"})  # fmt: skip
    return schema


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(v) for v in schema]
    return schema


def validate_daskcluster(spec: dict) -> None:
    import jsonschema

    jsonschema.validate(spec, crd_schema("DaskCluster"))


# -- the fake API server -----------------------------------------------------------------------


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Pod:
    """A Job's pod, run by the fake kubelet as a local process."""

    def __init__(self, kube: FakeKube, namespace: str, job: dict) -> None:
        self.kube, self.namespace, self.job = kube, namespace, job
        template = job["spec"]["template"]
        self.name = f"{job['metadata']['name']}-{secrets.token_hex(3)[:5]}"
        labels = {**template["metadata"].get("labels", {}), "job-name": job["metadata"]["name"]}
        self.spec = template["spec"]
        self.object = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.name, "namespace": namespace, "labels": labels,
                         "creationTimestamp": _now()},
            "spec": {**self.spec, "nodeName": "fake-node"},
            "status": {"phase": "Pending"},
        }  # fmt: skip
        self.log = b""
        self.done = False
        self.changed = threading.Condition()
        self.process: subprocess.Popen | None = None
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        (container,) = self.spec["containers"]
        time.sleep(self.kube.pending_seconds)
        if container["image"] in self.kube.unpullable:
            message = f"Back-off pulling image {container['image']}"
            self._status("Pending", waiting={"reason": "ImagePullBackOff", "message": message})
            return
        self._mount(container)
        argv = list(container["command"]) + list(container.get("args", []))
        here = os.pathsep.join([os.environ.get("PATH", ""), str(Path(sys.executable).parent)])
        argv[0] = shutil.which(argv[0], path=here) or argv[0]
        self.process = subprocess.Popen(
            argv,
            cwd=container.get("workingDir") or self.kube.root,
            env=self._env(container),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._status("Running", running={"startedAt": _now()})
        for line in iter(self.process.stdout.readline, b""):
            with self.changed:
                self.log += line
                self.changed.notify_all()
        code = self.process.wait()
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
        self._status("Succeeded" if code == 0 else "Failed", terminated=terminated)
        self.kube.finished(self, code)

    def _mount(self, container: dict) -> None:
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                  for v in self.spec.get("volumes", [])}  # fmt: skip
        for mount in container.get("volumeMounts", []):
            target = Path(mount["mountPath"])
            if not target.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(self.kube.claims[claims[mount["name"]]])

    def _env(self, container: dict) -> dict[str, str]:
        env = dict(os.environ)
        for source in container.get("envFrom", []):
            env.update(self.kube.secrets[source["secretRef"]["name"]])
        env.update({e["name"]: e["value"] for e in container.get("env", [])})
        return env

    def _status(self, phase: str, **state: Any) -> None:
        with self.changed:
            self.object["status"] = {
                "phase": phase,
                "containerStatuses": [{"name": "step", "ready": phase == "Running",
                                       "restartCount": 0, "image": "x", "imageID": "",
                                       "state": state}],
            }  # fmt: skip
            self.done = phase in ("Succeeded", "Failed")
            self.changed.notify_all()

    def stop(self) -> None:
        """What deleting the pod does: its process ends (SIGTERM, then SIGKILL)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        with self.changed:
            self.done = True
            self.changed.notify_all()


class FakeKube:
    """The API server's state and its kubelet; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.namespaces = {"radiocloud", "default"}
        self.jobs: dict[str, dict] = {}
        self.pods: dict[str, Pod] = {}
        self.daskclusters: dict[str, dict] = {}
        self.services: dict[str, dict] = {}
        self.clusters: dict[str, Any] = {}  # DaskCluster name -> LocalCluster
        self.computed: dict[str, list[str]] = {}  # DaskCluster name -> its task prefixes
        self.claims: dict[str, str] = {}  # PVC name -> directory
        self.secrets: dict[str, dict[str, str]] = {}
        self.unpullable: set[str] = set()
        self.refuse_pods: str | None = None  # the Job controller cannot create pods: why
        self.events: list[dict] = []
        self.pending_seconds = 0.2
        self.crds = True  # the DaskCluster resource exists (the operator's CRDs are installed)
        self.operator = True  # an operator acts on DaskClusters
        self.requests: list[tuple[str, str]] = []
        self.created: list[tuple[str, str]] = []
        self.deleted: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    # the kubelet and the controllers
    def create_job(self, namespace: str, job: dict) -> dict:
        name = job["metadata"]["name"]
        meta = {**job["metadata"], "namespace": namespace, "creationTimestamp": _now()}
        job = {**job, "metadata": meta, "status": {"active": 1}}
        self.jobs[name] = job
        self.created.append(("job", name))
        if self.refuse_pods:  # as the Job controller reports it: an event, no pod
            self.events.append({
                "apiVersion": "v1", "kind": "Event", "reason": "FailedCreate", "type": "Warning",
                "message": self.refuse_pods.replace("POD", f"{name}-x1y2z"),
                "metadata": {"name": f"{name}.{secrets.token_hex(4)}", "namespace": namespace},
                "involvedObject": {"kind": "Job", "name": name, "namespace": namespace},
            })  # fmt: skip
            return job
        pod = Pod(self, namespace, job)
        self.pods[pod.name] = pod
        return job

    def finished(self, pod: Pod, code: int) -> None:
        job = self.jobs.get(pod.job["metadata"]["name"])
        if job is not None:
            kind = "Complete" if code == 0 else "Failed"
            condition = {"type": kind, "status": "True"}
            if code:
                condition["reason"] = "BackoffLimitExceeded"
            job["status"] = {"succeeded" if code == 0 else "failed": 1, "conditions": [condition]}

    def delete_job(self, name: str) -> None:
        self.jobs.pop(name)
        self.deleted.append(("job", name))
        for pod_name, pod in list(self.pods.items()):
            if pod.job["metadata"]["name"] == name:
                pod.stop()
                del self.pods[pod_name]

    def create_daskcluster(self, namespace: str, spec: dict) -> dict:
        name = spec["metadata"]["name"]
        spec = {**spec, "metadata": {**spec["metadata"], "namespace": namespace}, "status": {}}
        self.daskclusters[name] = spec
        self.created.append(("daskcluster", name))
        if self.operator:
            threading.Thread(target=self._operator, args=(namespace, spec), daemon=True).start()
        return spec

    def _operator(self, namespace: str, spec: dict) -> None:
        """What the dask-kubernetes operator does, with a LocalCluster for the pods."""
        from distributed import LocalCluster

        name = spec["metadata"]["name"]
        spec["status"] = {"phase": "Created"}
        cluster = LocalCluster(n_workers=spec["spec"]["worker"]["replicas"], threads_per_worker=1,
                               processes=True, dashboard_address=None)  # fmt: skip
        with self.lock:
            if name not in self.daskclusters:  # deleted while starting
                cluster.close()
                return
            self.clusters[name] = cluster
        port = int(cluster.scheduler_address.rsplit(":", 1)[1])
        self.services[f"{name}-scheduler"] = {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"{name}-scheduler", "namespace": namespace},
            "spec": {"type": "ClusterIP", "ports": [
                {"name": "tcp-comm", "port": port, "protocol": "TCP"},
                {"name": "http-dashboard", "port": 8787, "protocol": "TCP"}]},
        }  # fmt: skip
        spec["status"] = {"phase": "Running"}

    def delete_daskcluster(self, name: str) -> None:
        with self.lock:
            self.daskclusters.pop(name)
            cluster = self.clusters.pop(name, None)
        self.services.pop(f"{name}-scheduler", None)
        self.deleted.append(("daskcluster", name))
        if cluster is not None:
            self.computed[name] = sorted(cluster.scheduler.task_prefixes)  # what ran on it
            cluster.close()

    def close(self) -> None:
        for pod in list(self.pods.values()):
            pod.stop()
        for cluster in list(self.clusters.values()):
            cluster.close()


ROUTES = [
    ("GET", r"/version/?", "version"),
    ("GET", r"/api/v1/namespaces/(?P<name>[^/]+)", "namespace"),
    ("POST", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs", "create_job"),
    ("GET", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs", "list_jobs"),
    ("GET", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs/(?P<name>[^/]+)", "job"),
    ("DELETE", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs/(?P<name>[^/]+)", "delete_job"),
    ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods", "list_pods"),
    ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)", "pod"),
    ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log", "log"),
    ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/services/(?P<name>[^/]+)", "service"),
    ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/events", "list_events"),
    ("POST", r"/apis/kubernetes.dask.org/v1/namespaces/(?P<ns>[^/]+)/daskclusters", "create_dc"),
    ("GET", r"/apis/kubernetes.dask.org/v1/namespaces/(?P<ns>[^/]+)/daskclusters/(?P<name>[^/]+)",
     "daskcluster"),
    ("DELETE",
     r"/apis/kubernetes.dask.org/v1/namespaces/(?P<ns>[^/]+)/daskclusters/(?P<name>[^/]+)",
     "delete_dc"),
]  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    kube: FakeKube

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _route(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        self.query = dict(urllib.parse.parse_qsl(url.query))
        length = int(self.headers.get("Content-Length") or 0)
        self.body = json.loads(self.rfile.read(length)) if length else None
        self.kube.requests.append((method, url.path))
        for verb, pattern, action in ROUTES:
            if not self.kube.crds and "/daskclusters" in pattern:
                continue  # an API server that does not know the kind: 404
            found = re.fullmatch(pattern, url.path)
            if verb == method and found:
                return getattr(self, action)(**found.groupdict())
        self._status(404, f"no route {method} {url.path}")

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, message: str) -> None:
        reason = {404: "NotFound", 422: "Invalid", 409: "AlreadyExists"}.get(code, "Error")
        self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                          "message": message, "reason": reason, "code": code})  # fmt: skip

    def _namespace(self, ns: str) -> bool:
        if ns not in self.kube.namespaces:
            self._status(404, f'namespaces "{ns}" not found')
            return False
        return True

    def version(self) -> None:
        self._send(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake",
                         "gitCommit": "0" * 40, "gitTreeState": "clean",
                         "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
                         "compiler": "gc", "platform": "linux/amd64"})  # fmt: skip

    def namespace(self, name: str) -> None:
        if self._namespace(name):
            self._send(200, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def create_job(self, ns: str) -> None:
        if not self._namespace(ns):
            return
        try:
            validate_k8s(self.body)
        except Exception as error:  # kubernetes_validate's errors: what the API server refuses
            return self._status(422, f"Job is invalid: {error}")
        self._send(201, self.kube.create_job(ns, self.body))

    def list_jobs(self, ns: str) -> None:
        items = [j for j in self.kube.jobs.values() if j["metadata"]["namespace"] == ns]
        self._send(200, {"apiVersion": "batch/v1", "kind": "JobList", "metadata": {},
                         "items": items})  # fmt: skip

    def job(self, ns: str, name: str) -> None:
        if name not in self.kube.jobs:
            return self._status(404, f'jobs.batch "{name}" not found')
        self._send(200, self.kube.jobs[name])

    def delete_job(self, ns: str, name: str) -> None:
        if name not in self.kube.jobs:
            return self._status(404, f'jobs.batch "{name}" not found')
        policy = self.query.get("propagationPolicy") or (self.body or {}).get("propagationPolicy")
        if policy != "Background":  # the default (Orphan, for Jobs) would leave the pod running
            return self._status(400, f"expected propagationPolicy Background, got {policy}")
        self.kube.delete_job(name)
        self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

    def list_pods(self, ns: str) -> None:
        wanted = dict(p.split("=", 1) for p in self.query.get("labelSelector", "").split(",") if p)
        items = [
            pod.object
            for pod in list(self.kube.pods.values())
            if wanted.items() <= pod.object["metadata"]["labels"].items()
        ]
        self._send(200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})

    def list_events(self, ns: str) -> None:
        wanted = dict(f.split("=", 1) for f in self.query.get("fieldSelector", "").split(",") if f)
        items = [
            event
            for event in self.kube.events
            if all(event["involvedObject"].get(k.split(".")[1]) == v for k, v in wanted.items())
        ]
        self._send(200, {"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": items})

    def pod(self, ns: str, name: str) -> None:
        if name not in self.kube.pods:
            return self._status(404, f'pods "{name}" not found')
        self._send(200, self.kube.pods[name].object)

    def log(self, ns: str, name: str) -> None:
        pod = self.kube.pods.get(name)
        if pod is None:
            return self._status(404, f'pods "{name}" not found')
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        while True:
            with pod.changed:
                while len(pod.log) == sent and not pod.done:
                    pod.changed.wait(1)
                chunk, done = pod.log[sent:], pod.done
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                sent += len(chunk)
            if done or self.query.get("follow") != "true":
                break
        self.wfile.write(b"0\r\n\r\n")

    def service(self, ns: str, name: str) -> None:
        if name not in self.kube.services:
            return self._status(404, f'services "{name}" not found')
        self._send(200, self.kube.services[name])

    def create_dc(self, ns: str) -> None:
        if not self._namespace(ns):
            return
        try:
            validate_daskcluster(self.body)
        except Exception as error:  # jsonschema's: what the API server refuses
            return self._status(422, f"DaskCluster is invalid: {error}")
        self._send(201, self.kube.create_daskcluster(ns, self.body))

    def daskcluster(self, ns: str, name: str) -> None:
        if name not in self.kube.daskclusters:
            return self._status(404, f'daskclusters "{name}" not found')
        self._send(200, self.kube.daskclusters[name])

    def delete_dc(self, ns: str, name: str) -> None:
        if name not in self.kube.daskclusters:
            return self._status(404, f'daskclusters "{name}" not found')
        self.kube.delete_daskcluster(name)
        self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})


def kubeconfig(path: Path, server: str, namespace: str = "radiocloud") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "fake", "user": {"token": "fake-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake",
                                                  "namespace": namespace}}],
    }))  # fmt: skip
    return path


@pytest.fixture
def fake_kube(tmp_path, monkeypatch):
    """A running FakeKube; KUBECONFIG points at it (for rc-run subprocesses too)."""
    from radiocloud.run.backends.kube import cluster

    kube = FakeKube(tmp_path)
    handler = type("BoundHandler", (Handler,), {"kube": kube})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kube.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig", kube.url)))
    cluster.api_client.cache_clear()
    cluster._PROBED.clear()
    yield kube
    server.shutdown()
    kube.close()
    cluster.api_client.cache_clear()
    cluster._PROBED.clear()


@pytest.fixture
def valid_k8s():
    """validate_k8s: a manifest checked against Kubernetes' OpenAPI schema, offline."""
    return validate_k8s


@pytest.fixture
def valid_daskcluster():
    """validate_daskcluster: a DaskCluster checked against the operator's CRD, offline."""
    return validate_daskcluster
