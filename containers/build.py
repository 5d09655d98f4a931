"""Build radiocloud's OCI images (containers/images.toml) from the one Containerfile.

``containers/build [--base IMAGE | --local-base] [--engine podman|docker] APP... | all``

For each image: wheels of its workspace members (``uv build``), a wheelhouse of the pinned
dependencies it adds (``uv export`` from uv.lock, ``pip download --only-binary=:all:``), then
``ENGINE build --network=none`` from that context. The core image is built first and every app
image is FROM it. An image whose ``org.radiocloud.content-hash`` label matches what would be
built (sources, pins, Containerfile, warm commands, base image) is kept, not rebuilt. Sizes go
to the output and to ``--report`` (JSON).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MANIFEST = HERE / "images.toml"
CONTAINERS_CONF = HERE / "containers.conf"
# -gomp: with libgomp1, numba's OpenMP threading layer (without it kernels compile serial)
LOCAL_BASE = "localhost/debian-py:bookworm-gomp"
DEFAULT_BASE = "docker.io/library/python:3.11-slim"
WHEELHOUSE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "radiocloud-wheels"
HASH_LABEL = "org.radiocloud.content-hash"


class BuildError(Exception):
    """A build that cannot go on; its message is the one line shown."""


@dataclass(frozen=True)
class Image:
    name: str  # core, rc-predict, ...
    packages: tuple[str, ...]  # workspace members installed on top of FROM
    scripts: tuple[str, ...]
    warm: tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    registry: str
    source: str
    core: Image
    images: dict[str, Image]

    def ref(self, name: str, version: str) -> str:
        return f"{self.registry}/{name}:{version}"

    def select(self, names: list[str]) -> list[Image]:
        """The images ``names`` asks for (``all``; ``predict`` or ``rc-predict``), core first."""
        chosen = [self.core]
        for name in names:
            if name == "all":
                chosen += list(self.images.values())
                continue
            key = name if name in self.images or name == "core" else f"rc-{name}"
            if key == "core":
                continue
            if key not in self.images:
                known = ", ".join(["core", *self.images])
                raise BuildError(f"no image '{name}' in {MANIFEST.name}; use all or: {known}")
            chosen.append(self.images[key])
        return list(dict.fromkeys(chosen))


def load_manifest(path: Path = MANIFEST) -> Manifest:
    data = tomllib.loads(path.read_text())

    def image(name: str, spec: dict) -> Image:
        return Image(
            name,
            tuple(spec["packages"]),
            tuple(spec.get("scripts", ())),
            tuple(spec.get("warm", ())),
        )

    return Manifest(
        registry=data["registry"],
        source=data["source"],
        core=image("core", data["core"]),
        images={name: image(name, spec) for name, spec in data["images"].items()},
    )


def members() -> dict[str, Path]:
    """Workspace member name -> its directory."""
    found = {}
    for pyproject in [ROOT / "core", *sorted((ROOT / "apps").iterdir()), ROOT / "orchestrator"]:
        meta = tomllib.loads((pyproject / "pyproject.toml").read_text())["project"]
        found[meta["name"]] = pyproject
    return found


def version() -> str:
    """The release version images are tagged with: radiocloud-core's."""
    return tomllib.loads((ROOT / "core" / "pyproject.toml").read_text())["project"]["version"]


def uv() -> list[str]:
    """uv: the one running us (``uv run`` sets UV), on PATH, or a Python's module."""
    if os.environ.get("UV") and os.path.isfile(os.environ["UV"]):
        return [os.environ["UV"]]
    if shutil.which("uv"):
        return ["uv"]
    for python in (sys.executable, shutil.which("python3")):
        probe = [python, "-m", "uv", "--version"] if python else ["false"]
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return [python, "-m", "uv"]
    raise BuildError("uv is not installed: pip install uv")


def pip() -> list[str]:
    """pip of this Python, else pip run by uv (a uv-made venv has no pip)."""
    probe = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    return [sys.executable, "-m", "pip"] if probe.returncode == 0 else [*uv(), "tool", "run", "pip"]


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """``argv``, failing with its last output lines."""
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BuildError(f"{shlex.join(argv[:4])}... exited {done.returncode}:\n{tail}")
    return done


def requirements(packages: tuple[str, ...]) -> list[str]:
    """The pinned third-party requirements of ``packages`` (uv.lock), one line each."""
    lines: list[str] = []
    for package in packages:
        out = run(
            [
                *uv(),
                "export",
                "--package",
                package,
                "--frozen",
                "--no-hashes",
                "--no-dev",
                "--no-emit-workspace",
                "--no-header",
                "--no-annotate",
            ],
            cwd=ROOT,
        ).stdout
        lines += [line.strip() for line in out.splitlines() if line.strip()]
    return sorted(set(lines))


def source_digest(directories: list[Path]) -> str:
    """A digest of the files git knows (tracked or not ignored) under ``directories``."""
    digest = hashlib.sha256()
    listed = run(
        ["git", "ls-files", "-co", "--exclude-standard", "--", *map(str, directories)], cwd=ROOT
    ).stdout.split("\n")
    for name in sorted(filter(None, listed)):
        path = ROOT / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def revision(directories: list[Path]) -> str:
    """git HEAD, with ``-dirty`` if ``directories`` differ from it (an uncommitted build)."""
    head = run(["git", "rev-parse", "HEAD"], cwd=ROOT).stdout.strip()
    status = ["git", "status", "--porcelain", "--", *map(str, directories)]
    return head + ("-dirty" if run(status, cwd=ROOT).stdout.strip() else "")


class Engine:
    def __init__(self, name: str) -> None:
        if shutil.which(name) is None:
            raise BuildError(f"{name} is not installed (Debian: apt-get install {name})")
        self.name = name
        self.replaced: list[str] = []  # ids of the images rebuilds untagged
        self.env = dict(os.environ)
        if name == "podman":
            self.env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))

    def __call__(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return run([self.name, *args], env=self.env, **kwargs)

    def remove_replaced(self) -> None:
        """Remove the images rebuilds untagged (apps before core), unless still in use."""
        for old in reversed(self.replaced):
            subprocess.run([self.name, "rmi", old], capture_output=True, env=self.env)

    def inspect(self, ref: str) -> dict | None:
        done = subprocess.run(
            [self.name, "image", "inspect", ref], capture_output=True, text=True, env=self.env
        )
        return json.loads(done.stdout)[0] if done.returncode == 0 else None


def local_base(engine: Engine) -> str:
    """LOCAL_BASE, made with debootstrap unless it exists (root, ~1.5 min)."""
    if engine.inspect(LOCAL_BASE):
        print(f"base: {LOCAL_BASE} exists")
        return LOCAL_BASE
    if shutil.which("debootstrap") is None:
        raise BuildError("--local-base needs debootstrap: apt-get install debootstrap")
    print(f"base: making {LOCAL_BASE} with debootstrap (about 1.5 min)", flush=True)
    with tempfile.TemporaryDirectory(prefix="rc-base-") as tmp:
        rootfs = Path(tmp, "rootfs")
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates,libgomp1",
                "bookworm",
                str(rootfs),
            ]
        )
        for cache in ("var/cache/apt", "var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / cache).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
        )
        engine("import", "--change", 'CMD ["/bin/bash"]', "-", LOCAL_BASE, stdin=tar.stdout)
        tar.wait()
    return LOCAL_BASE


def wheelhouse(lines: list[str], into: Path) -> None:
    """The wheels of the pinned ``lines`` copied into ``into`` (downloaded once to a cache)."""
    if not lines:
        return
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    pinned = Path(into, "requirements.txt")
    pinned.write_text("\n".join(lines) + "\n")
    run(
        [
            *pip(),
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--no-deps",
            "--python-version",
            "3.11",
            "-d",
            str(WHEELHOUSE),
            "-r",
            str(pinned),
        ]
    )
    files = [f.name for f in WHEELHOUSE.iterdir()]
    for line in lines:
        requirement, _, marker = line.partition(";")
        name, _, pin = requirement.strip().partition("==")
        stem = f"{re.sub(r'[-_.]+', '_', name).lower()}-{pin}-"
        found = [f for f in files if f.lower().startswith(stem) and f.endswith(".whl")]
        if not found and not marker:
            raise BuildError(f"no wheel of {requirement} downloaded to {WHEELHOUSE}")
        for file in found:
            shutil.copy2(WHEELHOUSE / file, into / file)


def build_image(engine: Engine, manifest: Manifest, image: Image, base: str, force: bool) -> dict:
    """Build ``image`` FROM ``base`` unless an image with its content hash exists; its report."""
    tag = version()
    ref = manifest.ref(image.name, tag)
    known = members()
    core_lines = set(requirements(manifest.core.packages))
    lines = requirements(image.packages)
    if image is not manifest.core:
        lines = [line for line in lines if line not in core_lines]
    base_info = engine.inspect(base)
    if base_info is None:
        engine("pull", base)
        base_info = engine.inspect(base)
    scripts = sorted({*image.scripts, *manifest.core.scripts})
    content = hashlib.sha256(
        json.dumps(
            [
                (HERE / "Containerfile").read_text(),
                (HERE / "warm.py").read_text(),
                lines,
                image.warm,
                scripts,
                base_info["Id"],
                source_digest([known[p] for p in image.packages]),
            ]
        ).encode()
    ).hexdigest()[:16]
    info = engine.inspect(ref)
    started = time.perf_counter()
    replaced = info["Id"] if info else None
    if force or info is None or info["Config"].get("Labels", {}).get(HASH_LABEL) != content:
        print(f"{image.name}: building {ref} FROM {base}", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"rc-build-{image.name}-") as tmp:
            context = Path(tmp)
            wheels = context / "wheels"
            wheels.mkdir()
            for package in image.packages:
                run(
                    [*uv(), "build", "--package", package, "--wheel", "--quiet", "-o", str(wheels)],
                    cwd=ROOT,
                )
            wheelhouse(lines, wheels)
            (context / "warm").mkdir()
            shutil.copy2(HERE / "warm.py", context / "warm" / "warm.py")
            (context / "warm" / "warm.txt").write_text("".join(f"{c}\n" for c in image.warm))
            args = {
                "BASE": base,
                "APP": image.name,
                "VERSION": tag,
                "SOURCE": manifest.source,
                "REVISION": revision([known[p] for p in image.packages]),
                "CREATED": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "CONTENT_HASH": content,
                "SCRIPTS": " ".join(scripts),
            }
            engine(
                "build",
                "--network=none",
                "-f",
                str(HERE / "Containerfile"),
                "-t",
                ref,
                *[f"--build-arg={k}={v}" for k, v in args.items()],
                str(context),
            )
        info = engine.inspect(ref)
        state = "built"
        if replaced and replaced != info["Id"]:
            engine.replaced.append(replaced)
    else:
        state = "up to date"
    size = int(info["Size"])
    adds = size - int(base_info["Size"])
    seconds = time.perf_counter() - started
    print(
        f"{image.name}: {ref} {state} ({size / 2**20:.0f} MiB, {adds / 2**20:.0f} MiB over "
        f"{base}; {seconds:.0f} s)",
        flush=True,
    )
    return {
        "image": ref,
        "id": info["Id"],
        "size_bytes": size,
        "adds_bytes": adds,
        "state": state,
        "seconds": round(seconds, 1),
        "scripts": scripts,
        "content_hash": content,
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="containers/build",
        description="Build radiocloud's OCI images (listed in containers/images.toml).",
    )
    parser.add_argument(
        "apps",
        nargs="+",
        metavar="APP",
        help="images to build: all, or names such as rc-predict (or predict); "
        "the core image is always built first",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--base", default=DEFAULT_BASE, help=f"Python 3.11 base image (default {DEFAULT_BASE})"
    )
    where.add_argument(
        "--local-base",
        action="store_true",
        help=f"build FROM {LOCAL_BASE}, made with debootstrap if missing "
        "(no registry needed; root)",
    )
    parser.add_argument("--engine", choices=("podman", "docker"), default="podman")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    report = ROOT / "build" / "containers" / "images.json"
    parser.add_argument(
        "--report", type=Path, default=report, help="JSON report of the images and their sizes"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        manifest = load_manifest()
        chosen = manifest.select(args.apps)
        engine = Engine(args.engine)
        try:
            base = local_base(engine) if args.local_base else args.base
            reports = [build_image(engine, manifest, chosen[0], base, args.force)]
            core = reports[0]["image"]
            reports += [build_image(engine, manifest, i, core, args.force) for i in chosen[1:]]
        finally:
            engine.remove_replaced()
    except BuildError as error:
        print(f"containers/build: {error}", file=sys.stderr)
        return 1
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps({"base": base, "images": reports}, indent=2) + "\n")
    print(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
