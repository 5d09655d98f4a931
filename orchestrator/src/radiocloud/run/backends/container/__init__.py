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

import contextlib
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from radiocloud.run.backends import StepContext
from radiocloud.run.backends.container.engines import (
    _LOCK,
    _REPORTED,
    GRACE,
    Engine,
    _key,
    engine,
)
from radiocloud.run.backends.container.mounts import (
    IMAGE_OF,
    REGISTRY,
    Mount,
    Plan,
    build_hint,
    image_of,
    plan,
)

__all__ = ["IMAGE_OF", "REGISTRY", "Engine", "Mount", "Plan", "build_hint", "check",
           "engine", "image_of", "plan", "run"]  # fmt: skip

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
PASSED = ("AWS_", "RADIOCLOUD_", "NUMBA_", "OMP_", "MKL_", "OPENBLAS_", "DASK_", "TZ")
NOT_PASSED = ("NUMBA_CACHE_DIR",)
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
