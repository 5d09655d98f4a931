"""CLI conventions shared by every rc-* app.

An app declares its options once, in a typed typer signature, using the shared option types
below for the runtime options of shared/DESIGN.md, collects them into frozen dataclasses and
hands them to its pipeline. ``run_cli`` is the error boundary: a known error becomes one line
on stderr and a non-zero exit (2 for bad input), the traceback only with ``--debug``.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import inspect
import logging
import os
import resource
import sys
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, get_type_hints

import dask
import numba
import typer

from radiocloud.core.errors import EXIT_BAD_INPUT, EXIT_FAILURE, RadiocloudError
from radiocloud.core.progress import stderr_console
from radiocloud.core.units import format_size, parse_size

log = logging.getLogger("radiocloud")

# -- the shared options, declared once ------------------------------------------------------

RUNTIME = "Runtime"
Workers = Annotated[
    int,
    typer.Option(
        "--workers",
        min=0,
        help="Local dask worker processes; 0 runs threads in this process.",
        rich_help_panel=RUNTIME,
    ),
]
Threads = Annotated[
    int,
    typer.Option(
        "--threads",
        min=0,
        help="Threads (per worker with --workers); 0 uses every core.",
        rich_help_panel=RUNTIME,
    ),
]
Scheduler = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Address of a running dask distributed scheduler (tcp://host:8786).",
        rich_help_panel=RUNTIME,
    ),
]
MemoryBudget = Annotated[
    str,
    typer.Option(
        "--memory-budget",
        help="Memory for data in flight (e.g. 4GB); chunk sizes follow from it.",
        rich_help_panel=RUNTIME,
    ),
]


class Level(enum.StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


LogLevel = Annotated[
    Level,
    typer.Option("--log-level", case_sensitive=False, help="Log level.", rich_help_panel=RUNTIME),
]
Debug = Annotated[
    bool,
    typer.Option("--debug", help="Show tracebacks of errors.", rich_help_panel=RUNTIME),
]


@dataclass(frozen=True)
class RuntimeOptions:
    """How an app computes: where the dask graph runs and how much memory it may use."""

    workers: int = 0
    threads: int = 0
    scheduler: str | None = None
    memory_budget: int = 2 * 2**30
    log_level: str = "INFO"
    debug: bool = False

    @classmethod
    def from_cli(
        cls,
        *,
        workers: int,
        threads: int,
        scheduler: str | None,
        memory_budget: str,
        log_level: str | Level,
        debug: bool,
    ) -> RuntimeOptions:
        return cls(
            workers=workers,
            threads=threads,
            scheduler=scheduler,
            memory_budget=parse_size(memory_budget),
            log_level=Level(str(getattr(log_level, "value", log_level)).upper()).value,
            debug=debug,
        )

    @classmethod
    def start(cls, **options) -> RuntimeOptions:
        """:meth:`from_cli` and logging set up: the first line of every app's command."""
        runtime = cls.from_cli(**options)
        setup_logging(runtime.log_level)
        return runtime

    @property
    def nthreads(self) -> int:
        """Threads computing at once in this process (or per worker)."""
        return self.threads or os.cpu_count() or 1


# The runtime options every command takes, in the order --help lists them: (name, type, default)
RUNTIME_OPTIONS = (
    ("workers", Workers, 0),
    ("threads", Threads, 0),
    ("scheduler", Scheduler, None),
    ("memory_budget", MemoryBudget, "2GiB"),
    ("log_level", LogLevel, Level.INFO),
    ("debug", Debug, False),
)


def with_runtime(command):
    """Give a typer command the shared runtime options (--workers ... --debug).

    ``command`` declares its own options and a keyword-only ``runtime``; the decorated
    function's signature has the runtime options in its place, and calls ``command`` with
    ``runtime`` = :meth:`RuntimeOptions.start` of them (logging set up). Put it below
    ``@app.command()``.
    """
    hints = get_type_hints(command, include_extras=True)
    params = inspect.signature(command).parameters.values()
    own = [p.replace(annotation=hints.get(p.name, p.annotation))
           for p in params if p.name != "runtime"]  # fmt: skip
    shared = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                          annotation=annotation)
        for name, annotation, default in RUNTIME_OPTIONS
    ]  # fmt: skip

    @functools.wraps(command)
    def wrapper(**kwargs):
        options = {name: kwargs.pop(name) for name, _, _ in RUNTIME_OPTIONS}
        return command(**kwargs, runtime=RuntimeOptions.start(**options))

    del wrapper.__wrapped__  # typer must read the signature below, not the command's
    wrapper.__signature__ = inspect.Signature([*own, *shared], return_annotation=None)
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *shared]}
    return wrapper


# -- dask runtime ---------------------------------------------------------------------------


@contextlib.contextmanager
def dask_runtime(opts: RuntimeOptions) -> Iterator[None]:
    """Run the block with the scheduler the options ask for."""
    if opts.scheduler or opts.workers:
        from distributed import Client, LocalCluster

        # distributed keeps the last 1000 messages for debugging, and with them the graphs
        # that hold dask-ms's table proxies: tables written would stay open after the run
        dask.config.set({"distributed.admin.low-level-log-length": 0})

        with contextlib.ExitStack() as stack:
            if opts.scheduler:
                stack.enter_context(Client(opts.scheduler))
            else:  # the cluster is closed with the client: no worker outlives the run
                cluster = stack.enter_context(LocalCluster(
                    n_workers=opts.workers,
                    threads_per_worker=opts.nthreads,
                    processes=True,
                    dashboard_address="127.0.0.1:0",
                    silence_logs=max(logging.WARNING, logging.getLevelName(opts.log_level)),
                ))  # fmt: skip
                stack.enter_context(Client(cluster))
            yield
        return
    # dask supplies the parallelism: each of its threads runs numba kernels on one thread,
    # so parallel kernels do not start threads x threads workers on the machine's cores
    with (
        ThreadPoolExecutor(opts.nthreads, initializer=numba.set_num_threads, initargs=(1,)) as pool,
        dask.config.set(scheduler="threads", pool=pool),
    ):
        yield


# -- logging and the end-of-run summary -------------------------------------------------------


QUIET = ("distributed", "daskms")


def setup_logging(level: str) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=stderr_console(), show_path=False, markup=False)
    if level.upper() != "DEBUG":  # distributed's own INFO chatter (set per child logger)
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or not r.name.startswith(QUIET))
    logging.basicConfig(level=level.upper(), format="%(message)s", handlers=[handler], force=True)
    for noisy in ("distributed", "numba", "fsspec", "botocore", "aiobotocore", "s3fs", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # dask-ms warns for every empty optional column it skips (FLAG_CATEGORY, HISTORY.LOG...)
    logging.getLogger("daskms").setLevel(max(logging.ERROR, logging.getLevelName(level)))


def peak_rss_bytes() -> int:
    """Peak resident memory of this process and its finished children (Linux: kB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * 1024


@dataclass
class RunSummary:
    """What a run read and wrote; printed as one paragraph when the run ends."""

    app: str
    read: str = ""
    written: str = ""
    rows: int = 0
    visibilities: int = 0
    details: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def text(self) -> str:
        wall = time.perf_counter() - self.started
        parts = [f"{self.app}:"]
        if self.read:
            parts.append(f"read {self.read};")
        if self.written:
            parts.append(f"wrote {self.written};")
        if self.rows:
            parts.append(f"{self.rows:,} rows, {self.visibilities:,} visibilities;")
        parts += [f"{d};" for d in self.details]
        rate = f" ({self.visibilities / wall:,.0f} visibilities/s)" if self.visibilities else ""
        parts.append(f"{wall:.1f} s wall{rate}, peak memory {format_size(peak_rss_bytes())}.")
        return " ".join(parts)

    def print(self) -> None:
        print(self.text(), flush=True)


# -- the error boundary ----------------------------------------------------------------------


def run_cli(app: typer.Typer, prog: str, argv: list[str] | None = None) -> int:
    """Run a typer app; turn errors into one line on stderr and an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    interrupted = f"{prog}: interrupted; no output was put in place"
    try:
        # Without standalone mode, typer returns the code of a typer.Exit, and turns Ctrl-C
        # (KeyboardInterrupt) into 130, instead of raising them.
        code = app(args=argv, prog_name=prog, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print(interrupted, file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # usage errors: unknown option, bad value, ...
        exc.show()
        return EXIT_BAD_INPUT
    except RadiocloudError as exc:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        if debug:
            traceback.print_exc()
            return EXIT_FAILURE
        print(
            f"{prog}: internal error: {type(exc).__name__}: {exc} "
            "(re-run with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    if isinstance(code, int) and code:
        if code == 130:
            print(interrupted, file=sys.stderr)
        return code
    return 0


def new_app(help: str) -> typer.Typer:
    """A typer app with radiocloud's settings (no rich tracebacks: run_cli owns errors)."""
    return typer.Typer(
        help=help,
        add_completion=False,
        pretty_exceptions_enable=False,
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
