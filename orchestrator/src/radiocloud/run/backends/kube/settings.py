"""The ``backend: {kube: {...}}`` settings, checked into one frozen :class:`Settings`.

Every problem is one line naming the key (``backend.kube.volumes[0].mount: ...``) and, for an
unknown key, the nearest known one.
"""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from radiocloud.core.errors import BadInputError

WHERE = "backend.kube"
CLEANUP = ("on-success", "always", "never")
PULL_POLICIES = ("IfNotPresent", "Always", "Never")
# where the app in the Job reaches the DaskCluster's scheduler: its Service's cluster DNS name
IN_CLUSTER_SCHEDULER = "tcp://{service}.{namespace}.svc.cluster.local:{port}"


class SettingsError(BadInputError, ValueError):
    """A ``backend.kube`` setting that cannot be used."""


@dataclass(frozen=True)
class Volume:
    pvc: str  # the PersistentVolumeClaim's name
    mount: str  # where the step's container sees it
    host_path: str | None = None  # where rc-run's machine sees the same files
    read_only: bool = False


@dataclass(frozen=True)
class Dask:
    image: str | None = None  # default: the step's image (the workers run the app's code)
    worker_cpu: str | None = None
    worker_memory: str | None = None
    idle_timeout: int = 0  # seconds; the operator removes an idle cluster (0: never)
    start_timeout: float = 600.0  # seconds to wait for the scheduler
    scheduler_address: str = IN_CLUSTER_SCHEDULER


@dataclass(frozen=True)
class Settings:
    namespace: str = "radiocloud"
    context: str | None = None  # a kubeconfig context (default: the current one)
    service_account: str | None = None
    image_registry: str = "localhost"
    image_pull_policy: str = "IfNotPresent"
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    requests: Mapping[str, str] = field(default_factory=dict)  # resources: {cpu, memory}
    limits: Mapping[str, str] = field(default_factory=dict)  # resources: {limits: {...}}
    volumes: tuple[Volume, ...] = ()
    s3_secret: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ttl: int | None = 86400  # ttlSecondsAfterFinished of a Job kept after it ended
    cleanup: str = "on-success"
    poll: float = 2.0  # seconds between status polls
    start_timeout: float = 900.0  # seconds a pod may stay Pending (an autoscaler adds a node)
    dask: Dask = field(default_factory=Dask)


def parse(options: Mapping[str, Any] | None) -> Settings:
    """``options`` (the merged ``backend.kube`` mapping) checked; SettingsError on bad input."""
    options = dict(options or {})
    _known(options, Settings, WHERE, extra=("resources",))
    values: dict[str, Any] = {}
    for key in ("namespace", "context", "service_account", "image_registry", "s3_secret"):
        if key in options:
            values[key] = _text(options[key], f"{WHERE}.{key}", optional=key != "namespace")
    if "image_pull_policy" in options:
        values["image_pull_policy"] = _choice(options["image_pull_policy"], PULL_POLICIES,
                                              f"{WHERE}.image_pull_policy")  # fmt: skip
    if "cleanup" in options:
        values["cleanup"] = _choice(options["cleanup"], CLEANUP, f"{WHERE}.cleanup")
    for key in ("node_selector", "env"):
        if key in options:
            values[key] = _strings(options[key], f"{WHERE}.{key}")
    if "tolerations" in options:
        values["tolerations"] = _tolerations(options["tolerations"])
    if "resources" in options:
        values["requests"], values["limits"] = _resources(options["resources"])
    if "volumes" in options:
        values["volumes"] = _volumes(options["volumes"])
    if "ttl" in options:
        values["ttl"] = None if options["ttl"] is None else int(_number(options["ttl"], "ttl"))
    for key in ("poll", "start_timeout"):
        if key in options:
            values[key] = _number(options[key], key, positive=True)
    if "dask" in options:
        values["dask"] = _dask(options["dask"])
    return Settings(**values)


def _known(options: Mapping[str, Any], kind: type, where: str, extra: tuple[str, ...] = ()) -> None:
    known = sorted((set(kind.__dataclass_fields__) - {"requests", "limits"}) | set(extra))
    for key in options:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean '{near[0]}'?" if near else f"known: {', '.join(known)}"
            raise SettingsError(f"{where}: unknown setting '{key}'; {hint}")


def _text(value: Any, where: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise SettingsError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return value


def _number(value: Any, key: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise SettingsError(f"{WHERE}.{key}: expected a number of seconds >= 0, got {value!r}")
    if positive and value == 0:
        raise SettingsError(f"{WHERE}.{key}: expected a number of seconds > 0, got 0")
    return float(value)


def _strings(value: Any, where: str) -> dict[str, str]:
    """A mapping of names to strings (numbers are written as strings, as YAML gives them)."""
    if not isinstance(value, Mapping):
        raise SettingsError(f"{where}: expected a mapping of names to strings")
    out = {}
    for key, item in value.items():
        if isinstance(item, Mapping | list | tuple) or item is None:
            raise SettingsError(f"{where}.{key}: expected a string, got {item!r}")
        out[str(key)] = str(item).lower() if isinstance(item, bool) else str(item)
    return out


def _tolerations(value: Any) -> tuple[dict[str, Any], ...]:
    keys = ("key", "operator", "value", "effect", "toleration_seconds")
    if not isinstance(value, list):
        raise SettingsError(f"{WHERE}.tolerations: expected a list of {{key, operator, ...}}")
    out = []
    for i, item in enumerate(value):
        where = f"{WHERE}.tolerations[{i}]"
        if not isinstance(item, Mapping):
            raise SettingsError(f"{where}: expected a mapping with keys {', '.join(keys)}")
        for key in item:
            if key not in keys:
                raise SettingsError(f"{where}: unknown key '{key}'; use {', '.join(keys)}")
        out.append(dict(item))
    return tuple(out)


def _resources(value: Any) -> tuple[dict[str, str], dict[str, str]]:
    where = f"{WHERE}.resources"
    if not isinstance(value, Mapping):
        raise SettingsError(f"{where}: expected {{cpu, memory, limits: {{cpu, memory}}}}")
    limits = _strings(value.get("limits") or {}, f"{where}.limits")
    requests = _strings({k: v for k, v in value.items() if k != "limits"}, where)
    for key in (*requests, *limits):
        if key not in ("cpu", "memory", "ephemeral-storage") and "/" not in key:
            raise SettingsError(f"{where}: unknown resource '{key}'; use cpu, memory or limits")
    return requests, limits


def _volumes(value: Any) -> tuple[Volume, ...]:
    if not isinstance(value, list):
        raise SettingsError(f"{WHERE}.volumes: expected a list of {{pvc, mount, host_path}}")
    out = []
    for i, item in enumerate(value):
        where = f"{WHERE}.volumes[{i}]"
        if not isinstance(item, Mapping):
            raise SettingsError(f"{where}: expected a mapping {{pvc, mount, host_path}}")
        _known(item, Volume, where)
        pvc, mount = (
            _text(item.get("pvc"), f"{where}.pvc"),
            _text(item.get("mount"), f"{where}.mount"),
        )
        if not posixpath.isabs(mount):
            raise SettingsError(f"{where}.mount: expected an absolute path, got {mount!r}")
        host = _text(item.get("host_path"), f"{where}.host_path", optional=True)
        out.append(Volume(pvc, posixpath.normpath(mount), host, bool(item.get("read_only"))))
    return tuple(out)


def _dask(value: Any) -> Dask:
    where = f"{WHERE}.dask"
    if not isinstance(value, Mapping):
        raise SettingsError(f"{where}: expected a mapping of settings")
    _known(value, Dask, where)
    values: dict[str, Any] = {}
    for key in ("image", "worker_cpu", "worker_memory", "scheduler_address"):
        if key in value:
            values[key] = _text(None if value[key] is None else str(value[key]), f"{where}.{key}",
                                optional=key != "scheduler_address")  # fmt: skip
    if "idle_timeout" in value:
        values["idle_timeout"] = int(_number(value["idle_timeout"], "dask.idle_timeout"))
    if "start_timeout" in value:
        values["start_timeout"] = _number(value["start_timeout"], "dask.start_timeout", True)
    if "scheduler_address" in values:
        try:
            values["scheduler_address"].format(service="s", namespace="n", name="c", port=1)
        except (KeyError, IndexError, ValueError) as error:
            raise SettingsError(
                f"{where}.scheduler_address: {error!r} in the template; it may use {{service}}, "
                "{namespace}, {name} and {port}"
            ) from None
    return Dask(**values)
