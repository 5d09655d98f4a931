"""Fixtures of the container tests: podman (or a skip saying why it cannot be had), the images
built once per session by containers/build (kept in podman's storage and reused across runs by
their content hash), and podman's Docker-compatible API socket.

The container tests run last, and their images are built in the background from the end of
collection on: a build from nothing (debootstrap of the base, three images) takes minutes of
mostly waiting on downloads and storage, which the rest of the suite fills.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "containers" / "build.py"
CONF = ROOT / "containers" / "containers.conf"
IMAGES = ("rc-simulate", "rc-predict")  # the two images of the two-step recipe


def load_build():
    """containers/build.py as a module (it is a script, not part of a package)."""
    spec = importlib.util.spec_from_file_location("rc_containers_build", BUILD)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONF))
    return env


def _why_no_podman() -> str | None:
    if shutil.which("podman") is None:
        return (
            "podman is not installed (make test installs it on Debian as root via "
            "containers/ensure-podman; elsewhere: install podman)"
        )
    done = subprocess.run(["podman", "info"], capture_output=True, text=True, env=podman_env())
    if done.returncode != 0:
        return f"podman cannot run here: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        probe = ["podman", "image", "exists", load_build().LOCAL_BASE]
        if subprocess.run(probe, env=podman_env()).returncode != 0:
            return "the local base image needs debootstrap and root (containers/build --local-base)"
    return None


@pytest.fixture(scope="session")
def build():
    """containers/build.py, imported."""
    return load_build()


@pytest.fixture(scope="session")
def podman() -> None:
    why = _why_no_podman()
    if why:
        pytest.skip(why)


_BUILD: dict[str, object] = {}  # the background build: process, report, log, started


def _start_build(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    log = open(folder / "build.log", "w+")  # noqa: SIM115 (read back by the images fixture)
    command = [sys.executable, str(BUILD), "--local-base", *IMAGES,
               "--report", str(folder / "images.json")]  # fmt: skip
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=podman_env())
    _BUILD.update(report=folder / "images.json", log=log, started=time.perf_counter(),
                  process=process)  # fmt: skip


def pytest_collection_modifyitems(session, config, items) -> None:
    """The container tests last; their images start building now if podman is here."""
    ours = [item for item in items if Path(item.path).is_relative_to(Path(__file__).parent)]
    if not ours:
        return
    mine = set(map(id, ours))
    items[:] = [item for item in items if id(item) not in mine] + ours
    needs = any("images" in getattr(item, "fixturenames", ()) for item in ours)
    if needs and not _BUILD and not config.option.collectonly and _why_no_podman() is None:
        import tempfile

        _start_build(Path(tempfile.mkdtemp(prefix="rc-images-")))


def pytest_sessionfinish(session, exitstatus) -> None:
    process = _BUILD.get("process")
    if process is not None and process.poll() is None:  # the session ended before needing it
        process.terminate()
        process.wait()


@pytest.fixture(scope="session")
def images(podman, tmp_path_factory) -> dict:
    """The local base, core, rc-simulate and rc-predict images (built or found up to date)."""
    if not _BUILD:
        _start_build(tmp_path_factory.mktemp("images"))
    try:
        code = _BUILD["process"].wait(timeout=900)
    except subprocess.TimeoutExpired:
        _BUILD["process"].kill()
        pytest.fail("containers/build took over 15 minutes")
    _BUILD["log"].seek(0)
    output = _BUILD["log"].read()
    if code != 0:
        pytest.fail(f"containers/build failed:\n{output}")
    built = json.loads(_BUILD["report"].read_text())
    built["seconds"] = time.perf_counter() - _BUILD["started"]
    built["output"] = output
    return built


@pytest.fixture(scope="session")
def podman_socket(podman, tmp_path_factory):
    """``podman system service`` on a socket of the test session; its URL."""
    sock = tmp_path_factory.mktemp("podman") / "podman.sock"
    url = f"unix://{sock}"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", url],
        env=podman_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not sock.exists() and time.monotonic() < deadline and service.poll() is None:
        time.sleep(0.1)
    if not sock.exists():
        service.kill()
        pytest.fail("podman system service did not create its socket")
    yield url
    service.terminate()
    try:
        service.wait(timeout=10)
    except subprocess.TimeoutExpired:
        service.kill()
        service.wait()
