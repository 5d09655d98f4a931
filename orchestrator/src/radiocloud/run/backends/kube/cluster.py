"""Reaching the cluster: an API client from the kube config (or the pod's service account when
rc-run runs inside the cluster), and one probe per run of the API and the namespace."""

from __future__ import annotations

import copy
import functools
import json
import os
import re

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from radiocloud.core.errors import RadiocloudError

PROBE_TIMEOUT = (3.0, 10.0)  # seconds to connect, to read
# what the API client raises when it cannot talk to the server at all
UNREACHABLE = (urllib3.exceptions.HTTPError, OSError)


class Unavailable(RadiocloudError):
    """No cluster to run on: no kube config, or its API server does not answer."""


@functools.cache
def api_client(context: str | None = None) -> client.ApiClient:
    """A client for the kube config's ``context`` (default: its current one); in a pod with
    no kube config, for the cluster the pod runs in."""
    files = os.environ.get("KUBECONFIG")
    default = os.path.expanduser(config.KUBE_CONFIG_DEFAULT_LOCATION)
    if files or os.path.exists(default):
        named = files.split(os.pathsep) if files else [default]
        if not any(os.path.exists(path) for path in named):
            raise Unavailable(f"no Kubernetes config: KUBECONFIG={files} names no file")
        try:
            # named explicitly: the client reads KUBECONFIG once, when it is imported
            return config.new_client_from_config(config_file=files or default, context=context)
        except (ConfigException, ValueError, OSError) as error:
            raise Unavailable(
                f"the Kubernetes config {':'.join(named)} is unusable: {error}"
            ) from None
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    raise Unavailable(
        "no Kubernetes config: set KUBECONFIG (or write ~/.kube/config: kind, microk8s config, "
        "aws eks / gcloud / az ... get-credentials), or run rc-run in the cluster (in-cluster "
        "service account)"
    )


def server(api: client.ApiClient) -> str:
    return api.configuration.host


def unreachable(api: client.ApiClient, error: BaseException) -> str:
    """One line for an API server that does not answer."""
    return (
        f"the Kubernetes API at {server(api)} is unreachable ({reason(error)}); is the cluster up?"
    )


def reason(error: BaseException) -> str:
    """The gist of a connection error ('[Errno 111] Connection refused', 'timed out'...)."""
    text = str(getattr(error, "reason", None) or error)
    found = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    return found.group(0).strip() if found else (text.rsplit(": ", 1)[-1] or type(error).__name__)


def api_error(api: client.ApiClient, error: ApiException, doing: str) -> str:
    """One line for an API call the server refused, with the server's message."""
    try:
        message = json.loads(error.body)["message"].splitlines()[0]
    except (TypeError, ValueError, KeyError, IndexError):
        message = ""
    said = f": {message}" if message else ""
    return f"Kubernetes API at {server(api)}: {doing}: {error.status} {error.reason}{said}"


_PROBED: dict[tuple[str | None, str], list[str]] = {}


def problems(context: str | None, namespace: str) -> list[str]:
    """What stops steps from running in ``namespace`` (no config, no API, no namespace); the
    API is asked once per context and namespace in a run."""
    key = (context, namespace)
    if key not in _PROBED:
        _PROBED[key] = _probe(context, namespace)
    return _PROBED[key]


def _probe(context: str | None, namespace: str) -> list[str]:
    try:
        api = api_client(context)
    except Unavailable as error:
        return [str(error)]
    once = copy.copy(api.configuration)
    once.retries = 0  # a probe that fails says so now, not after urllib3's retries
    probe = client.ApiClient(once)
    try:
        client.VersionApi(probe).get_code(_request_timeout=PROBE_TIMEOUT)
        client.CoreV1Api(probe).read_namespace(namespace, _request_timeout=PROBE_TIMEOUT)
    except ApiException as error:
        if error.status == 404:
            return [
                f"namespace '{namespace}' does not exist at {server(api)}; create it "
                f"(kubectl create namespace {namespace}, or kubectl apply -f deploy/namespace.yaml)"
            ]
        if error.status == 403:
            return []  # not allowed to read namespaces (a namespaced Role): cannot tell
        return [api_error(api, error, "probing")]
    except UNREACHABLE as error:
        return [unreachable(api, error)]
    except ValueError as error:  # the client's models refused the answer
        return [f"{server(api)} does not answer like a Kubernetes API server ({error!r:.80})"]
    finally:
        probe.close()
    return []
