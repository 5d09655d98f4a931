"""Backends run one step's command line; each is a small module chosen by name.

A backend module has

- ``run(argv, *, log_path, echo, cwd, usage, step) -> int``: it runs the command, sends every
  output line to ``echo`` and to the log file, puts what it measured or used in the ``usage``
  dict (``peak_rss_mib``; a container's ``image`` and ``image_digest``...), and returns the exit
  code. It raises ``KeyboardInterrupt`` after stopping the command when the user interrupts.
- optionally ``check(step) -> list[str]``: the problems that would stop ``step`` from running
  there (engine missing, image missing, a path outside the mounted volumes, no cluster
  reachable), one line each. rc-run calls it for every selected step while validating, so they
  are reported before anything starts.

``step`` is a :class:`StepContext`: what a backend needs to know about the step beyond its
command line. Which backend runs a step, and its settings, come from the ``backend:`` sections
of the recipes above the step and of the step itself (inner ones override outer ones)::

    backend:
      select: kube                      # native | container | kube
      container: {engine: podman}
      kube: {namespace: radio, node_selector: {pool: compute}}

``rc-run --backend NAME`` overrides every ``select``.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from radiocloud.core.errors import BadInputError
from radiocloud.run.loader import RecipeError

NAMES = ("native", "container", "kube")


@dataclass(frozen=True)
class DataPath:
    """A file or directory a step's parameters name; ``written`` if the step creates or
    changes it (outputs, in-place datasets), else it only reads it."""

    path: str
    written: bool


@dataclass(frozen=True)
class StepContext:
    fq: str  # the step's full name, e.g. eso137.steps.selfcal.steps.image
    cab: str  # the cab's name, e.g. rc-image
    command: str  # the program, argv[0] (rc-image, wsclean, ...)
    image: str | None = None  # the cab's `image:` (None: the backend's default for the command)
    paths: tuple[DataPath, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)  # the backend's settings
    cwd: str = "."
    run_id: str = ""  # the run directory's name (NAME-TIME): labels what a backend creates


def get(name: str) -> ModuleType:
    """The backend module ``name`` (radiocloud.run.backends.NAME)."""
    if name not in NAMES:
        raise BadInputError(f"unknown backend '{name}'; use one of: {', '.join(NAMES)}")
    return importlib.import_module(f"radiocloud.run.backends.{name}")


def merge(outer: Mapping[str, Any] | None, inner: Mapping[str, Any] | None) -> dict[str, Any]:
    """``backend:`` settings of a nested recipe or step over those of its parents (mappings
    merge key by key, anything else replaces)."""
    merged = dict(outer or {})
    for key, value in (inner or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# Stimela 2 keys of a backend section that rc-run reads past: varieties (named presets in
# Stimela's opts), and settings of backends that cannot run here.
STIMELA_ONLY = ("variety", "singularity", "slurm", "rlimits", "verbose", "default_registry",
                "override_registries")  # fmt: skip


def check_settings(settings: Any, where: str) -> dict[str, Any]:
    """A ``backend:`` section, checked: ``select`` and per-backend mappings. ``select`` may be
    a list, as in Stimela: the first name rc-run has is taken."""
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise RecipeError(f"{where}.backend: expected a mapping (select: NAME, NAME: {{...}})")
    checked: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "select":
            choices = value if isinstance(value, list) else [value]
            known = [name for name in choices if name in NAMES]
            if not known:
                raise RecipeError(
                    f"{where}.backend.select: {value!r} names no backend rc-run has; "
                    f"use one of: {', '.join(NAMES)}"
                )
            checked[key] = known[0]
        elif key in STIMELA_ONLY:
            continue
        elif key not in NAMES:
            raise RecipeError(
                f"{where}.backend: unknown key '{key}'; use select or one of: {', '.join(NAMES)}"
            )
        elif not isinstance(value, Mapping):
            raise RecipeError(f"{where}.backend.{key}: expected a mapping of settings")
        else:
            checked[key] = dict(value)
    return checked


class Dispatch:
    """Chooses each step's backend (``--backend`` first, then the ``backend.select`` that
    applies to the step, else native) and hands it the step."""

    def __init__(self, forced: str | None = None) -> None:
        self.forced = forced
        if forced is not None:
            get(forced)  # an unknown name fails before anything is loaded

    def choose(self, settings: Mapping[str, Any]) -> tuple[str, ModuleType, Mapping[str, Any]]:
        name = self.forced or settings.get("select") or "native"
        return name, get(name), settings.get(name) or {}


def resolve_program(program: str) -> str:
    """``program`` on PATH, else beside rc-run's interpreter (the apps of rc-run's environment)."""
    if os.sep in program:
        return program
    here = os.path.dirname(sys.executable)
    return shutil.which(program) or shutil.which(program, path=here) or program
