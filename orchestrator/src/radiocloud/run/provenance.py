"""The run directory: one log per step and a provenance record from which a run can be repeated.

``RUN_DIR/provenance.json`` is rewritten (atomically) after every step, so it is always
readable; its ``status`` is ``running`` until the run ends ``succeeded``, ``failed`` or
``interrupted``. It records the command line, the recipe files with their SHA-256, the package
versions, the backend, and for each step its fully resolved parameters, command line, timings,
exit code, and the digests of its file inputs and outputs. ``--resume`` reads a previous record
and skips the leading steps whose command line and program are unchanged, whose inputs are as
the step found them or as that run left them, and whose outputs still have their digests.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import platform
import re
import sys
import threading
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from radiocloud.run.backends import resolve_program

HASH_LIMIT = 256 * 2**20  # files larger than this are identified by size and mtime


def digest(path: str) -> str | None:
    """A content digest of a file, or of a directory tree (names, sizes, mtimes); None if absent.

    Files up to :data:`HASH_LIMIT` are hashed; a larger file or a directory (a Measurement Set
    holds gigabytes) is summarised by sizes and modification times, which any write changes.
    """
    try:
        info = os.stat(path)
    except OSError:
        return None
    if os.path.isfile(path):
        if info.st_size > HASH_LIMIT:
            return f"stat:{info.st_size}:{info.st_mtime_ns}"
        sha = hashlib.sha256()
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(2**20), b""):
                sha.update(block)
        return f"sha256:{sha.hexdigest()}"
    sha = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except OSError:
                continue
            sha.update(
                f"{os.path.relpath(full, path)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode()
            )
    return f"tree:{sha.hexdigest()}"


@functools.cache
def program_digest(program: str) -> str | None:
    """The version of a program, as far as files tell: its digest, and for a Python console
    script (``from radiocloud.image.cli import main``) the digest of its top-level package's
    source, so that editing the code of an app (or of radiocloud.core) changes it."""
    path = resolve_program(program)
    found = digest(path)
    if found is None:
        return None
    try:
        head = Path(path).read_bytes()[:4096].decode()
    except (OSError, UnicodeDecodeError):
        return found
    module = re.search(r"^from ([A-Za-z_][\w.]*) import", head, re.M)
    if module:
        sha = hashlib.sha256(found.encode())
        for root in _package_roots(module[1].split(".")[0]):
            for source in sorted(Path(root).rglob("*.py")):
                sha.update(f"{source.relative_to(root)}:{digest(str(source))}\n".encode())
        found = f"code:{sha.hexdigest()}"
    return found


def _package_roots(package: str) -> list[str]:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    return sorted(spec.submodule_search_locations or []) if spec else []


def step_key(argv: list[str]) -> str:
    """The identity of a step's work: what runs (the program's digest), with what arguments."""
    program = program_digest(argv[0]) if argv else None
    text = json.dumps({"argv": argv, "program": program}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        if name.startswith("radiocloud") or name in ("dask", "numpy", "numba", "pyyaml"):
            found[name] = dist.version
    return dict(sorted(found.items()))


class RunRecord:
    """The run directory of one rc-run invocation; thread-safe (scattered steps report in it)."""

    def __init__(self, run_dir: Path, *, recipe: str, files: list[str], backend: str) -> None:
        self.run_dir = run_dir
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.touched: set[str] = set()
        self.record: dict[str, Any] = {
            "status": "running",
            "command": sys.argv,
            "cwd": os.getcwd(),
            "recipe": recipe,
            "files": {f: digest(f) for f in files},
            "backend": backend,
            "host": platform.node(),
            "versions": versions(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "steps": {},
        }
        self.save()

    def log_path(self, fqname: str) -> Path:
        return self.run_dir / "logs" / f"{fqname}.log"

    def step(self, fqname: str, entry: dict[str, Any]) -> None:
        with self.lock:
            self.record["steps"][fqname] = entry
            self.save()

    def touch(self, paths: Iterable[str]) -> None:
        """Note files a step read or wrote: their digests are recorded when the run ends."""
        with self.lock:
            self.touched.update(paths)

    def finish(self, status: str, elapsed: float) -> None:
        """The run's end: its status, and the digests of every file its steps touched."""
        with self.lock:
            self.record["final"] = {path: digest(path) for path in sorted(self.touched)}
            self.record["status"] = status
            self.record["elapsed_s"] = round(elapsed, 3)
            self.save()

    def save(self) -> None:
        path = self.run_dir / "provenance.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.record, indent=1, default=str) + "\n")
        os.replace(tmp, path)


def previous_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The step entries of the provenance record in ``run_dir``, and the digests of the files
    as that run left them (both empty if there is no record)."""
    try:
        record = json.loads((run_dir / "provenance.json").read_text())
    except (OSError, ValueError):
        return {}, {}
    return record.get("steps") or {}, record.get("final") or {}
