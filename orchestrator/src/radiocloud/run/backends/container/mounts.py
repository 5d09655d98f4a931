"""Where a step's data goes in its container: the bind mounts of its paths' directories (at
the same absolute paths), and the image it runs in."""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass

from radiocloud.run.backends import StepContext

REGISTRY = "localhost/radiocloud"
# commands whose image is named after another command's (every image has rc-data)
IMAGE_OF = {
    "rc-flag-versions": "rc-flag",
    "rc-flag-summary": "rc-flag",
    "rc-calibrate-apply": "rc-calibrate",
    "rc-data": "core",
}
# directories an automatic mount must not hide inside the image
PROTECTED_EXACT = ("/", "/home", "/opt", "/var", "/run", "/tmp")
PROTECTED_TREES = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/proc", "/sys",
                   "/dev", "/opt/radiocloud")  # fmt: skip


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
