"""Fixtures of the container tests: podman (or a skip saying why it cannot be had), the images
built once per session by containers/build (kept in podman's storage and reused across runs by
their content hash), and podman's Docker-compatible API socket."""

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


@pytest.fixture(scope="session")
def images(podman, tmp_path_factory) -> dict:
    """The local base, core, rc-simulate and rc-predict images (built or found up to date)."""
    report = tmp_path_factory.mktemp("images") / "images.json"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(BUILD), "--local-base", *IMAGES, "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=900,
        env=podman_env(),
    )
    if done.returncode != 0:
        pytest.fail(f"containers/build failed:\n{done.stdout}\n{done.stderr}")
    built = json.loads(report.read_text())
    built["seconds"] = time.perf_counter() - started
    built["output"] = done.stdout
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
