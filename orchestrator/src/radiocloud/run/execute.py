"""Running one validated cab step: resume or dispatch, wrangle its output, record it.

The :class:`Executor` is what a real run adds to the validating walk (radiocloud.run.runner): it
decides whether ``--resume`` may skip the step, hands the command line to the backend, applies
the cab's wranglers to the output, checks that the declared outputs appeared, and writes the
step's entry (parameters, command line, timings, exit code, file digests) to the run record.
"""

from __future__ import annotations

import contextvars
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from radiocloud.core.errors import RadiocloudError
from radiocloud.run import provenance
from radiocloud.run.backends import DataPath, Dispatch, StepContext
from radiocloud.run.cab import Cab
from radiocloud.run.formula import is_unset
from radiocloud.run.schema import Parameter
from radiocloud.run.wranglers import Wrangling


class StepFailed(RadiocloudError):
    """A step's command exited with an error (or did not produce its outputs)."""


@dataclass
class _Chain:
    """Steps run one after another: --resume skips them until the first that runs again."""

    resuming: bool = True


_CHAIN: contextvars.ContextVar[_Chain] = contextvars.ContextVar("resume_chain")


@dataclass
class Executor:
    dispatch: Dispatch
    record: provenance.RunRecord
    say: Callable[[str], None]
    previous: Mapping[str, Any] = field(default_factory=dict)  # --resume: earlier step entries
    final: Mapping[str, str] = field(default_factory=dict)  # --resume: digests the run left
    chain: _Chain = field(default_factory=lambda: _Chain())  # the top of the resume chain
    counts: dict[str, int] = field(default_factory=lambda: {"run": 0, "skipped": 0, "resumed": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(
        self,
        cab: Cab,
        values: Mapping[str, Any],
        argv: list[str],
        fq: str,
        settings: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run (or resume) the step ``fq``; the output values its wranglers parsed.
        ``settings``: the ``backend:`` section that applies to the step."""
        inputs = {path: provenance.digest(path) for path in file_paths(cab.inputs, values)}
        self.record.touch(inputs)
        key = provenance.step_key(argv)
        entry: dict[str, Any] = {
            "cab": cab.name,
            "params": {k: v for k, v in values.items() if not is_unset(v)},
            "argv": argv,
            "key": key,
            "inputs": inputs,
        }
        if self._can_resume(fq, key, inputs):
            self.say(f"= {fq}: unchanged since the previous run, not run again (--resume)")
            entry.update(self.previous[fq], status="resumed")
            self.record.step(fq, entry)
            self._count("resumed")
            return dict(entry.get("parsed") or {})
        self._chain().resuming = False
        _prepare_outputs(cab, values)
        self.say(f"> {fq}: {' '.join(argv)}")
        wrangling = self._dispatch(cab, values, argv, fq, entry, settings or {})
        entry["parsed"] = wrangling.outputs
        created = file_paths(cab.params, values, creates)
        entry["outputs"] = outputs = {path: provenance.digest(path) for path in created}
        self.record.touch(outputs)
        missing = [
            f"{name}={path}"
            for name, param in cab.outputs.items()
            if param.must_exist is not False
            for path in file_paths({name: param}, values)
            if not os.path.exists(path)
        ]
        if missing:
            self._finish(fq, entry, "failed")
            raise StepFailed(f"step '{fq}' exited 0 but did not produce {', '.join(missing)}")
        self._finish(fq, entry, "ok")
        self._count("run")
        self.say(f"  {fq}: done in {entry['seconds']:.2f} s")
        return dict(wrangling.outputs)

    def in_branch(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` as an independent branch of the resume chain (a scattered loop
        iteration: its steps resume or not by themselves); a rerun in it ends the parent's."""
        parent = self._chain()
        branch = _Chain(parent.resuming)

        def run() -> Any:
            _CHAIN.set(branch)
            return function(*args)

        try:
            return contextvars.copy_context().run(run)
        finally:
            if not branch.resuming:
                parent.resuming = False

    def _chain(self) -> _Chain:
        return _CHAIN.get(None) or self.chain

    def skipped(self, fq: str, why: str) -> None:
        self._count("skipped")
        self.say(f"- {fq}: skipped ({why})")
        self.record.step(fq, {"status": "skipped", "reason": why})

    def _dispatch(
        self,
        cab: Cab,
        values: Mapping[str, Any],
        argv: list[str],
        fq: str,
        entry: dict[str, Any],
        settings: Mapping[str, Any],
    ) -> Wrangling:
        """Run the command through the step's backend; its wrangled output, or StepFailed."""
        name, backend, options = self.dispatch.choose(settings)
        context = step_context(cab, values, argv, fq, options, run_id=self.record.run_dir.name)
        log_path = self.record.log_path(fq)
        started = time.perf_counter()
        entry.update(
            status="running", backend=name, log=str(log_path), started=time.strftime("%H:%M:%S")
        )
        self.record.step(fq, entry)
        wrangling = Wrangling(cab.wranglers)

        def echo(line: str) -> None:
            for shown in wrangling.line(line):
                self.say(f"  [{fq}] {shown}")

        usage: dict[str, Any] = {}
        try:
            code = backend.run(argv, log_path=log_path, echo=echo, usage=usage, step=context)
            entry.update(usage)
        except KeyboardInterrupt:
            entry.update(usage)  # what the backend made before the interrupt (job, container)
            entry["seconds"] = round(time.perf_counter() - started, 3)
            self._finish(fq, entry, "interrupted")
            raise
        if wrangling.success:
            code = 0
        elif wrangling.errors or wrangling.failure:
            code = code or 1
        entry.update(exit_code=code, seconds=round(time.perf_counter() - started, 3))
        if code != 0:
            self._finish(fq, entry, "failed")
            told = f" ({'; '.join(wrangling.errors)})" if wrangling.errors else ""
            raise StepFailed(f"step '{fq}' failed with exit code {code}{told}; see {log_path}")
        return wrangling

    def _can_resume(self, fq: str, key: str, inputs: Mapping[str, str | None]) -> bool:
        """Whether --resume may skip this step: every step before it was skipped as unchanged,
        its command line and program are the same, each input is as the step found it or as the
        previous run left it (a dataset later steps changed in place, untouched since), and its
        outputs are as it left them. The first step that runs again ends resuming: later steps
        may depend on what it changes.
        """
        if not self._chain().resuming:
            return False
        before = self.previous.get(fq)
        if not before or before.get("status") not in ("ok", "resumed") or before.get("key") != key:
            return False
        seen = before.get("inputs") or {}
        if any(d is None or d not in (seen.get(p), self.final.get(p)) for p, d in inputs.items()):
            return False
        outputs = before.get("outputs") or {}
        return all(
            digest is not None and provenance.digest(path) == digest
            for path, digest in outputs.items()
        )

    def _finish(self, fq: str, entry: dict[str, Any], status: str) -> None:
        entry["status"] = status
        self.record.step(fq, entry)

    def _count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1


def step_context(
    cab: Cab,
    values: Mapping[str, Any],
    argv: list[str],
    fq: str,
    options: Mapping[str, Any],
    run_id: str = "",
) -> StepContext:
    """What a backend is told about a step beyond its command line."""
    return StepContext(
        run_id=run_id,
        fq=fq,
        cab=cab.name,
        command=argv[0],
        image=cab.image,
        paths=tuple(
            DataPath(path, written=creates(param) or param.writable)
            for name, param in cab.params.items()
            if param.dtype.is_path
            for path in paths(values.get(name))
        ),
        options=options,
    )


def _prepare_outputs(cab: Cab, values: Mapping[str, Any]) -> None:
    """Make the directories of outputs marked ``mkdir`` and remove those ``remove_if_exists``."""
    for name, param in cab.params.items():
        for path in file_paths({name: param}, values):
            if param.remove_if_exists and os.path.lexists(path):
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
            if param.mkdir:
                directory = path if param.dtype.name == "Directory" else os.path.dirname(path)
                os.makedirs(directory or ".", exist_ok=True)


def creates(param: Parameter) -> bool:
    """A path the step writes: an output, or an input that need not exist (``rc-simulate OUT``)."""
    return param.dtype.is_path and (param.output or param.must_exist is False)


def file_paths(
    params: Mapping[str, Parameter],
    values: Mapping[str, Any],
    keep: Callable[[Parameter], bool] = lambda param: True,
) -> list[str]:
    """The paths held in ``values`` by the file-typed ``params`` that ``keep`` accepts."""
    return [
        path
        for name, param in params.items()
        if param.dtype.is_path and keep(param)
        for path in paths(values.get(name))
    ]


def paths(value: Any) -> list[str]:
    """The path strings in a parameter value (a path or a list of them)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
