"""The container backend: each step runs in its app's OCI image, with podman or docker.

rc-run talks to the engine through docker-py, which speaks both docker's API and podman's
Docker-compatible one (``podman system service``). A step runs as the host user (uid:gid; with
rootless podman, ``--userns=keep-id`` so that uid is the host's), in the image the cab names or
else the app's image from containers/ (``localhost/radiocloud/rc-image:VERSION``), with:

- the directories of the paths its parameters name bind-mounted at the same absolute paths
  (so the command line needs no rewriting): the working directory read-write, a read path's
  directory read-only, a written path's directory read-write; ``s3://`` URLs are not mounted;
- ``AWS_*``, ``RADIOCLOUD_*``, ``NUMBA_*`` (not NUMBA_CACHE_DIR: the image's cache is warm),
  ``OMP_*``, ``DASK_*``... passed through, plus ``env:``;
- the host's network (a ``--scheduler`` or an S3 endpoint on localhost works as natively).

Settings (``backend: {container: {...}}``): see :data:`SETTINGS`. Peak memory: our images run
the command under a small Python wrapper that reports its ``ru_maxrss`` (as the native backend
measures it); other images report none.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radiocloud.run.backends import StepContext

GRACE = 10.0
CONTAINERS_CONF = Path(__file__).resolve().parents[5] / "containers" / "containers.conf"
REGISTRY = "localhost/radiocloud"
SETTINGS = {
    "engine": "podman or docker (default: podman if installed, else docker)",
    "url": "the engine's API socket, unix:///PATH or tcp://HOST:PORT (socket: the same)",
    "socket": "alias of url",
    "start_service": "start a private `podman system service` if no socket answers (default true)",
    "mounts": "extra host directories to mount: DIR (read-write) or DIR:ro",
    "auto_mount": "mount the directories of the step's paths wherever they are (default true)",
    "memory": "memory limit, e.g. 4g",
    "cpus": "CPU limit, e.g. 2 or 0.5",
    "env": "environment variables to set in the container",
    "network": "the container's network (default host; none isolates it)",
    "pull": "never (default), missing or always",
    "registry": f"where the default images are (default {REGISTRY})",
}
# commands whose image is named after another command's (every image has rc-data)
IMAGE_OF = {
    "rc-flag-versions": "rc-flag",
    "rc-flag-summary": "rc-flag",
    "rc-calibrate-apply": "rc-calibrate",
    "rc-data": "core",
}
PASSED = ("AWS_", "RADIOCLOUD_", "NUMBA_", "OMP_", "MKL_", "OPENBLAS_", "DASK_", "TZ")
NOT_PASSED = ("NUMBA_CACHE_DIR",)
# directories an automatic mount must not hide inside the image
PROTECTED_EXACT = ("/", "/home", "/opt", "/var", "/run", "/tmp")
PROTECTED_TREES = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/proc", "/sys",
                   "/dev", "/opt/radiocloud")  # fmt: skip
PEAK = "\x1erc-peak-rss-kib="
# run by our images' Python around the command: forwards SIGINT/SIGTERM to the command's process
# group, as a terminal's Ctrl-C reaches every process of a native step (a container's PID 1 has
# no default handlers), and reports the peak RSS as the last line of stderr
WRAPPER = f"""\
import os, signal, subprocess, sys
try:
    p = subprocess.Popen(sys.argv[1:], process_group=0)
except OSError as e:
    sys.exit(print(f"cannot start {{sys.argv[1]!r}}: {{e.strerror}}", file=sys.stderr) or 127)
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, lambda n, f: os.killpg(p.pid, n))
_, status, usage = os.wait4(p.pid, 0)
print("{PEAK}%d" % usage.ru_maxrss, file=sys.stderr, flush=True)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass(frozen=True)
class Mount:
    path: str  # absolute; the same on the host and in the container
    writable: bool


@dataclass(frozen=True)
class Plan:
    mounts: tuple[Mount, ...]
    problems: tuple[str, ...]


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _existing(directory: str) -> str:
    while not os.path.isdir(directory) and directory != "/":
        directory = os.path.dirname(directory)
    return directory


def plan(step: StepContext, cwd: str | None = None) -> Plan:
    """The bind mounts ``step`` needs, and the paths it cannot have (one line each)."""
    options = step.options
    cwd = os.path.abspath(cwd or step.cwd)
    wanted: dict[str, bool] = {cwd: True}
    problems: list[str] = []
    for entry in options.get("mounts") or []:
        directory, _, mode = str(entry).partition(":")
        directory = os.path.normpath(os.path.join(cwd, os.path.expanduser(directory)))
        if not os.path.isdir(directory):
            problems.append(f"backend.container.mounts: {entry}: no such directory on this host")
        wanted[directory] = wanted.get(directory, False) or mode != "ro"
    auto = options.get("auto_mount", True)
    for data in step.paths:
        if "://" in data.path:
            continue  # s3://... is read over the network, not mounted
        path = os.path.normpath(os.path.join(cwd, data.path))
        covering = [d for d in wanted if _under(path, d)]
        if covering and (wanted[max(covering, key=len)] or not data.written):
            continue
        if not auto:
            how = "is written but mounted read-only" if covering else "is outside the mounts"
            problems.append(
                f"{data.path} {how} ({cwd} and backend.container.mounts): add "
                f"{os.path.dirname(path)} to backend.container.mounts, or drop auto_mount: false"
            )
            continue
        directory = _existing(os.path.dirname(path))
        wanted[directory] = wanted.get(directory, False) or data.written
    mounts: list[Mount] = []
    for directory in sorted(wanted):
        writable = wanted[directory]
        if any(_under(directory, m.path) and (m.writable or not writable) for m in mounts):
            continue  # an outer mount already gives it
        if directory in PROTECTED_EXACT or any(_under(directory, t) for t in PROTECTED_TREES):
            problems.append(
                f"cannot mount {directory} (it would hide the image's own): keep the step's "
                "data and working directory elsewhere"
            )
            continue
        mounts.append(Mount(directory, writable))
    return Plan(tuple(mounts), tuple(problems))


def image_of(step: StepContext) -> str | None:
    """The image ``step`` runs in: its cab's, else our image of its command (None: no image)."""
    if step.image:
        return step.image
    name = IMAGE_OF.get(step.command, step.command)
    if not name.startswith("rc-") and name != "core":
        return None
    registry = str(step.options.get("registry", REGISTRY)).rstrip("/")
    return f"{registry}/{name}:{importlib.metadata.version('radiocloud-core')}"


def build_hint(image: str) -> str:
    """How to get ``image``: our build command for one of our images, else a pull."""
    name = image.rpartition("/")[2].partition(":")[0]
    pull = f"pull it (podman pull {image}) or set backend.container.pull: missing"
    if name.startswith("rc-") or name == "core":
        build = f"build it with: containers/build {name} (add --local-base without a registry)"
        return build if image.startswith(REGISTRY + "/") else f"{pull}; or {build}"
    return pull


# ---------------------------------------------------------------------------------- engine


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


# ---------------------------------------------------------------------------------- check, run


def check(step: StepContext) -> list[str]:
    """What would stop ``step`` from running in a container, one line each (the engine's
    problem only once per run)."""
    unknown = sorted(set(step.options) - set(SETTINGS))
    if unknown:
        return [f"backend.container: unknown setting '{unknown[0]}'; use: {', '.join(SETTINGS)}"]
    problems = list(plan(step).problems)
    found, why = engine(step.options)
    if found is None:
        with _LOCK:
            first = _key(step.options) not in _REPORTED
            _REPORTED.add(_key(step.options))
        return problems + ([why] if first else [])
    image = image_of(step)
    if image is None:
        problems.append(
            f"'{step.command}' has no radiocloud image: give its cab an image:, or run this "
            "step with backend native"
        )
    elif step.options.get("pull", "never") == "never" and found.image(image) is None:
        problems.append(f"image {image} is not in {found.name}'s storage: {build_hint(image)}")
    return problems


def _environment(options: Mapping[str, Any]) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name.startswith(PASSED) and name not in NOT_PASSED
    }
    env.update({str(k): str(v) for k, v in (options.get("env") or {}).items()})
    return env


def _limits(options: Mapping[str, Any]) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if options.get("memory"):
        limits["mem_limit"] = str(options["memory"])
    if options.get("cpus"):
        limits["nano_cpus"] = int(float(options["cpus"]) * 1e9)
    return limits


def _image(found: Engine, ref: str, pull: str) -> Any:
    if pull == "always" or (pull == "missing" and found.image(ref) is None):
        found.client.images.pull(ref)
        with found.lock:
            found.images.pop(ref, None)
    return found.image(ref)


def run(
    argv: list[str],
    *,
    log_path: Path,
    echo: Callable[[str], None],
    cwd: str = ".",
    usage: dict | None = None,
    step: StepContext | None = None,
) -> int:
    """Run ``argv`` in the step's image; its exit code. ``usage`` gets the image, its digest
    and (our images) the command's peak RSS."""
    step = step or StepContext(fq=argv[0], cab=argv[0], command=argv[0])
    workdir = os.path.abspath(cwd if cwd != "." else step.cwd)
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:

        def say(line: str) -> None:
            log.write(line + "\n")
            log.flush()
            echo(line)

        found, why = engine(step.options)
        layout = plan(step, workdir)
        ref = image_of(step)
        problem = why or next(iter(layout.problems), "")
        if not problem and ref is None:
            problem = f"'{step.command}' has no image: set its cab's image:"
        image = None if problem else _image(found, ref, step.options.get("pull", "never"))
        if image is None:
            say(problem or f"image {ref} is not in {found.name}'s storage: {build_hint(ref)}")
            return 127
        if found.notice:
            say(found.notice)
            found.notice = ""
        if usage is not None:
            digests = image.attrs.get("RepoDigests") or []
            usage.update(image=ref, image_digest=digests[0] if digests else image.id)
            usage["image_id"] = image.id
        modes = {m.path: "rw" if m.writable else "ro" for m in layout.mounts}
        log.write(f"$ {found.name} run {ref} {subprocess.list2cmdline(argv)}\n")
        log.write("# mounts: " + ", ".join(f"{p}:{mode}" for p, mode in modes.items()) + "\n")
        try:
            code, peak = _execute(found, image, argv, step, workdir, modes, say)
        except KeyboardInterrupt:
            log.write("interrupted\n")
            raise
        if usage is not None and peak is not None:
            usage["peak_rss_mib"] = round(peak / 1024, 1)
        return code


def _execute(
    found: Engine,
    image: Any,
    argv: list[str],
    step: StepContext,
    workdir: str,
    modes: Mapping[str, str],
    say: Callable[[str], None],
) -> tuple[int, int | None]:
    """Create, start and follow the container, then remove it; its exit code and peak RSS.
    It has a name of its own, so that an interrupt even during its creation finds it."""
    name = f"rc-{re.sub(r'[^A-Za-z0-9_.-]+', '-', step.fq)}-{uuid.uuid4().hex[:8]}"
    ours = "org.radiocloud.app" in (image.labels or {})
    try:
        container = found.client.containers.create(
            image.id,
            name=name,
            command=["python", "-c", WRAPPER, *argv] if ours else argv,
            working_dir=workdir,
            volumes={path: {"bind": path, "mode": mode} for path, mode in modes.items()},
            environment=_environment(step.options),
            network_mode=str(step.options.get("network", "host")),
            labels={"org.radiocloud.step": step.fq},
            **found.user(),
            **_limits(step.options),
        )
        container.start()
        peak = _stream(container, say)
        return int(container.wait().get("StatusCode", 1)), peak
    except KeyboardInterrupt:
        _stop(found, name)
        raise
    finally:
        with contextlib.suppress(Exception):  # never created, or already removed
            found.client.containers.get(name).remove(force=True)


def _stream(container: Any, say: Callable[[str], None]) -> int | None:
    """Send the container's output to ``say`` line by line; the peak RSS (KiB) it reported."""
    peak = None
    pending = b""
    for chunk in container.logs(stream=True, follow=True):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").rstrip("\r")
            if line.startswith(PEAK):
                peak = int(line[len(PEAK) :])
            else:
                say(line)
    if pending:
        say(pending.decode("utf-8", errors="replace"))
    return peak


def _stop(found: Engine, name: str) -> None:
    """SIGINT first (the app stops cleanly), then the engine's stop (TERM, then KILL)."""
    with contextlib.suppress(Exception):  # not created (nothing to stop), or already gone
        container = found.client.containers.get(name)
        try:
            container.kill(signal="SIGINT")
            container.wait(timeout=GRACE)
        except Exception:  # still running after GRACE (or not yet started): stop it
            container.stop(timeout=GRACE)
