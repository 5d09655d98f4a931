"""Backends run one step's command line; each is a small module chosen by name.

A backend module has ``run(argv, *, log_path, echo, cwd, usage) -> int``: it runs the command,
sends every output line to ``echo`` and to the log file, puts what it measured (``peak_rss_mib``)
in the ``usage`` dict, and returns the exit code. It raises
``KeyboardInterrupt`` after stopping the command when the user interrupts.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from types import ModuleType

from radiocloud.core.errors import BadInputError

AVAILABLE = ("native",)
LATER = {"container": "issue 10 (OCI images)", "kube": "issue 10 (Kubernetes)"}


def get(name: str) -> ModuleType:
    if name in AVAILABLE:
        return importlib.import_module(f"radiocloud.run.backends.{name}")
    if name in LATER:
        raise BadInputError(
            f"the '{name}' backend is not built yet ({LATER[name]}); use --backend native"
        )
    raise BadInputError(f"unknown backend '{name}'; use one of: {', '.join(AVAILABLE)}")


def resolve_program(program: str) -> str:
    """``program`` on PATH, else beside rc-run's interpreter (the apps of rc-run's environment)."""
    if os.sep in program:
        return program
    here = os.path.dirname(sys.executable)
    return shutil.which(program) or shutil.which(program, path=here) or program
