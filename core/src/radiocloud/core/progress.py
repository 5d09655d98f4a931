"""Progress of long computations, on stderr."""

from __future__ import annotations

import logging
import sys
import time

import dask
from dask.callbacks import Callback

log = logging.getLogger("radiocloud")


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


class ProgressBar(Callback):
    """Progress of a local dask compute, on stderr (a rich bar on a terminal, lines otherwise)."""

    def __init__(self, description: str):
        super().__init__()
        self.description = description
        self._done = 0
        self._total = 1
        self._last_pct = -10
        self._progress = None
        self._task = None

    def _start_state(self, dsk, state):
        self._total = max(sum(len(state[k]) for k in ("ready", "waiting", "running")), 1)
        self._started = time.perf_counter()
        if sys.stderr.isatty():
            from rich.progress import Progress

            self._progress = Progress(transient=True, console=stderr_console())
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self._total)

    def _posttask(self, key, result, dsk, state, worker_id):
        self._done += 1
        if self._progress is not None:
            self._progress.update(self._task, completed=self._done)
            return
        pct = int(100 * self._done / self._total)
        if pct >= self._last_pct + 10 and time.perf_counter() - self._started > 5.0:
            self._last_pct = pct - pct % 10
            log.info("%s: %d%%", self.description, self._last_pct)

    def _finish(self, dsk, state, errored):
        if self._progress is not None:
            self._progress.stop()


def compute(*graphs, description: str = "computing"):
    """``dask.compute`` with progress shown (local schedulers)."""
    with ProgressBar(description):
        return dask.compute(*graphs)
