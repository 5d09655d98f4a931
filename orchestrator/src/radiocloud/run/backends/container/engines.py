"""The container engine: a docker-py client of podman's or docker's API, probed once per run;
without a socket that answers, a private ``podman system service`` for the run."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

GRACE = 10.0
CONTAINERS_CONF = Path(__file__).resolve().parents[6] / "containers" / "containers.conf"


class Engine:
    """A docker-py client of podman's or docker's API (with the podman service rc-run started,
    if it had to)."""

    def __init__(self, client: Any, name: str, url: str, notice: str = "") -> None:
        self.client = client
        self.name = name
        self.url = url
        self.notice = notice  # said in the first step's log
        info = client.info()
        self.rootless = any("rootless" in str(o) for o in info.get("SecurityOptions") or [])
        self.images: dict[str, Any] = {}
        self.lock = threading.Lock()

    def image(self, ref: str) -> Any | None:
        import docker.errors

        with self.lock:
            if ref not in self.images:
                try:
                    self.images[ref] = self.client.images.get(ref)
                except docker.errors.ImageNotFound:
                    return None
            return self.images[ref]

    def user(self) -> dict[str, Any]:
        """Run as the host user: uid:gid; rootless podman maps it with keep-id; rootless docker
        maps the container's root to the host user."""
        uid, gid = os.getuid(), os.getgid()
        if self.rootless and self.name == "docker":
            return {"user": "0:0"}
        if self.rootless:
            return {"user": f"{uid}:{gid}", "userns_mode": "keep-id"}
        return {"user": f"{uid}:{gid}"}


_ENGINES: dict[tuple, tuple[Engine | None, str]] = {}
_REPORTED: set[tuple] = set()
_LOCK = threading.Lock()


def _key(options: Mapping[str, Any]) -> tuple:
    return (options.get("engine"), options.get("url") or options.get("socket"))


def engine(options: Mapping[str, Any]) -> tuple[Engine | None, str]:
    """The engine ``options`` ask for, probed once per run; (None, why) if none answers."""
    key = _key(options)
    with _LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = _connect(options)
        return _ENGINES[key]


def _connect(options: Mapping[str, Any]) -> tuple[Engine | None, str]:
    import docker

    name = options.get("engine") or ("podman" if shutil.which("podman") else "docker")
    if name not in ("podman", "docker"):
        return None, f"backend.container.engine: '{name}' is not podman or docker"
    if name == "podman" and "CONTAINERS_CONF" not in os.environ and CONTAINERS_CONF.exists():
        os.environ["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    given = options.get("url") or options.get("socket")
    if given:
        candidates = [given if "://" in str(given) else f"unix://{given}"]
    else:
        candidates = [os.environ[v] for v in ("CONTAINER_HOST", "DOCKER_HOST") if v in os.environ]
        runtime = os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")
        candidates += (
            ["unix:///run/podman/podman.sock", f"unix://{runtime}/podman/podman.sock"]
            if name == "podman"
            else ["unix:///var/run/docker.sock"]
        )
    for url in candidates:
        client = _ping(docker, url)
        if client is not None:
            return Engine(client, name, url), ""
    tried = ", ".join(candidates)
    if name == "podman" and not given and options.get("start_service", True):
        if shutil.which("podman") is None:
            return None, (
                f"podman is not installed and no engine answers at {tried}: install it "
                "(apt-get install podman) or select another backend"
            )
        return _start_podman(docker, tried)
    hint = (
        "start one: podman system service --time=0 unix:///tmp/podman.sock, and set "
        "backend.container.url: unix:///tmp/podman.sock"
        if name == "podman"
        else "start docker, or set backend.container.url to its socket"
    )
    return None, f"no {name} engine answers at {tried}: {hint}"


def _ping(docker: Any, url: str) -> Any | None:
    try:
        client = docker.DockerClient(base_url=url, timeout=120)
        client.ping()
        return client
    except Exception:  # any failure to connect means "not this one"
        return None


def _start_podman(docker: Any, tried: str) -> tuple[Engine | None, str]:
    """``podman system service`` on a private socket for this run, stopped at exit."""
    directory = tempfile.mkdtemp(prefix="rc-podman-")
    url = f"unix://{directory}/podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C of rc-run must not stop it before the containers
    )

    def stop() -> None:
        service.terminate()
        try:
            service.wait(timeout=GRACE)
        except subprocess.TimeoutExpired:
            service.kill()
        shutil.rmtree(directory, ignore_errors=True)

    atexit.register(stop)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and service.poll() is None:
        client = _ping(docker, url) if os.path.exists(url[7:]) else None
        if client is not None:
            notice = f"started podman system service at {url} for this run (stopped at exit)"
            return Engine(client, "podman", url, notice), ""
        time.sleep(0.2)
    return None, (
        f"no podman engine answers at {tried}, and `podman system service` did not start: run "
        "podman info to see why"
    )
