"""The native backend: each step is a subprocess of rc-run, its output streamed line by line.

Ctrl-C reaches the step's process (it shares rc-run's process group, so the terminal delivers
the SIGINT to both); rc-run then waits up to :data:`GRACE` seconds for it to stop cleanly,
terminates it, and re-raises the interrupt so the run is recorded as interrupted.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from radiocloud.run.backends import StepContext, resolve_program

GRACE = 10.0


def run(
    argv: list[str],
    *,
    log_path: Path,
    echo: Callable[[str], None],
    cwd: str = ".",
    usage: dict | None = None,
    step: StepContext | None = None,
) -> int:
    """Run ``argv``; its exit code. ``usage`` gets the process's ``peak_rss_mib``. The native
    backend needs nothing from ``step``: the paths are the host's."""
    argv = [resolve_program(argv[0]), *argv[1:]]
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        log.write(f"$ {subprocess.list2cmdline(argv)}\n")
        log.flush()
        try:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
                bufsize=1,
            )
        except OSError as error:
            message = f"cannot start '{argv[0]}': {error.strerror}"
            log.write(message + "\n")
            echo(message)
            return 127
        try:
            for line in process.stdout:
                log.write(line)
                echo(line.rstrip("\n"))
            return _reap(process, usage)
        except KeyboardInterrupt:
            _stop(process)
            log.write("interrupted\n")
            raise


def _reap(process: subprocess.Popen, usage: dict | None) -> int:
    """Wait for the process, noting its peak memory (Linux reports ru_maxrss in KiB)."""
    _, status, rusage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if usage is not None:
        usage["peak_rss_mib"] = round(rusage.ru_maxrss / 1024, 1)
    return process.returncode


def _stop(process: subprocess.Popen) -> None:
    try:
        process.wait(timeout=GRACE)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
