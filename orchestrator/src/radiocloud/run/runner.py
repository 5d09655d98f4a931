"""Walking a recipe: validate every step first, then run the selected ones.

One walk serves both purposes. With ``dry=True`` nothing runs: every step (in every loop
iteration) has its parameters evaluated and checked against its cab, and the files it would
produce are noted so that later steps may use them; the problems found are collected, so one
validation reports them all, each on one line naming the file, step and parameter. The real
run repeats the walk, running each selected step through the backend as it comes.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radiocloud.core.errors import BadInputError, RadiocloudError
from radiocloud.run.backends import Dispatch
from radiocloud.run.execute import (
    Executor,
    StepFailed,
    creates,
    file_paths,
    paths,
    step_context,
)
from radiocloud.run.formula import UNSET, FormulaError, UnknownNameError, evaluate, is_unset
from radiocloud.run.loader import RecipeError
from radiocloud.run.recipe import Recipe, Step, flatten
from radiocloud.run.schema import Parameter, TypeMismatch, check
from radiocloud.run.scope import Scope, nested
from radiocloud.run.selection import Selection


class ValidationFailed(BadInputError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Done(dict):
    """The ``steps`` namespace of a recipe: the values of its steps so far, and the labels
    of those that failed validation (a formula naming one is not a problem of its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: set[str] = set()


@dataclass
class Walk:
    dry: bool
    selection: Selection
    executor: Executor | None = None  # None: validate only
    dispatch: Dispatch | None = None  # validating: ask each step's backend whether it can run
    echo: Callable[[str], None] = print
    problems: list[str] = field(default_factory=list)
    produced: set[str] = field(default_factory=set)
    silenced: int = 0  # formulas not reported: they name a step that failed validation
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------------------ recipes

    def recipe(
        self,
        recipe: Recipe,
        given: Mapping[str, Any],
        fqname: str,
        selection: Selection,
        root: Scope | None = None,
    ) -> dict[str, Any]:
        """Run (or check) ``recipe`` with the parameter values ``given``; its parameter values."""
        for key in given:
            if not recipe.knows(key):
                known = ", ".join(recipe.params) or "none"
                raise BadInputError(f"{fqname}: unknown parameter '{key}'; it takes {known}")
        raw: dict[str, Any] = {name: p.default for name, p in recipe.params.items()}
        raw.update(recipe.defaults)
        raw.update({k: v for k, v in given.items() if not is_unset(v)})
        loop = recipe.for_loop
        if loop is not None:
            raw.setdefault(loop.var, UNSET)  # set by each iteration
        namespace: dict[str, Any] = {}
        scope = Scope(raw, lambda: namespace)
        namespace.update(recipe=scope, current=scope, root=root or scope, info=_info(fqname))
        for key, value in recipe.assign.items():
            scope.set(key, value, evaluated=False)
        if loop is None:
            chosen = self._assign_based_on(
                recipe.assign_based_on, scope, f"{recipe.origin}: {fqname}"
            )
            for key, value in chosen.items():
                scope.set(key, value, evaluated=False)
        self._check_inputs(recipe, scope, fqname)
        if loop is None:
            self.steps(recipe, scope, fqname, selection, root or scope)
        else:
            self._loop(recipe, scope, fqname, selection, root)
        where = f"{recipe.origin}: recipe '{fqname}'"
        return {
            name: self._guard(lambda n=name: scope.value(n), where, name) for name in recipe.params
        }

    def _assign_based_on(
        self, cases_by_var: Mapping[str, Any], scope: Scope, where: str
    ) -> dict[str, Any]:
        """Variables chosen by the value of another (``DEFAULT`` when none matches)."""
        chosen: dict[str, Any] = {}
        for var, cases in cases_by_var.items():
            value = self._guard(lambda v=var: scope.value(v), where, var)
            if not isinstance(cases, Mapping):
                raise RecipeError(f"{where}.assign_based_on.{var}: expected a mapping of cases")
            case = cases.get(str(value), cases.get(value, cases.get("DEFAULT")))
            if case is None:
                raise RecipeError(
                    f"{where}.assign_based_on.{var}: no case for {value!r} and no DEFAULT; add one"
                )
            chosen.update(flatten(case))
        return chosen

    def _with_assignments(self, scope: Scope, step: Step, where: str) -> Scope:
        """The recipe's variables as ``step`` sees them: with its own ``assign``s on top."""
        assigned = {**step.assign, **self._assign_based_on(step.assign_based_on, scope, where)}
        if not assigned:
            return scope
        namespace: dict[str, Any] = {}
        inner = Scope({**scope.raw, **assigned}, lambda: namespace)
        namespace.update(scope.namespace(), recipe=inner, current=inner)
        return inner

    def _check_inputs(self, recipe: Recipe, scope: Scope, fqname: str) -> None:
        where = f"{recipe.origin}: recipe '{fqname}'"
        loop_var = recipe.for_loop.var if recipe.for_loop else None
        for name, param in recipe.params.items():
            value = self._guard(lambda n=name: scope.value(n), where, name)
            if value is _FAILED:
                continue
            if is_unset(value):
                if param.required and not param.output and name != loop_var:
                    path = ".".join([*_relative(fqname), name])
                    self._problem(f"{where}: missing required parameter '{name}'; give {path}=...")
                continue
            converted = self._checked(param, value, where)
            if converted is _FAILED:
                continue
            scope.set(name, converted)
            if _must_exist(param):
                self._check_exists(converted, f"{where}: parameter '{name}'")

    def _loop(
        self, recipe: Recipe, scope: Scope, fqname: str, selection: Selection, root: Scope | None
    ) -> None:
        loop = recipe.for_loop
        where = f"{recipe.origin}: {fqname}.for_loop"
        if isinstance(loop.over, str) and loop.over in scope.raw:
            items = scope.value(loop.over)
        else:
            items = evaluate(loop.over, {"recipe": scope, "root": root or scope})
        if is_unset(items):
            return  # a missing required input, already reported
        if not isinstance(items, list | tuple):
            raise RecipeError(f"{where}: 'over' gives {items!r}, not a list; fix it")
        scatter = scope.value("for_loop.scatter") if "for_loop.scatter" in scope.raw else None
        scatter = loop.scatter if is_unset(scatter) or scatter is None else int(scatter)

        def iteration(index: int, item: Any) -> None:
            raw = dict(scope.raw)
            raw[loop.var] = item
            namespace: dict[str, Any] = {}
            inner = Scope(raw, lambda: namespace)
            namespace.update(
                recipe=inner, current=inner, root=root or inner, info=_info(fqname, index)
            )
            chosen = self._assign_based_on(
                recipe.assign_based_on, inner, f"{recipe.origin}: {fqname}"
            )
            for key, value in chosen.items():
                inner.set(key, value, evaluated=False)
            self.steps(recipe, inner, f"{fqname}[{index}]", selection, root or inner)

        if scatter == 0 or self.dry or len(items) < 2:
            for index, item in enumerate(items):
                iteration(index, item)
            return
        workers = len(items) if scatter < 0 else scatter
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scatter") as pool:
            branch = self.executor.in_branch if self.executor else lambda f, *a: f(*a)
            futures = [pool.submit(branch, iteration, i, item) for i, item in enumerate(items)]
            for future in futures:
                future.result()

    # ------------------------------------------------------------------------------ steps

    def steps(
        self, recipe: Recipe, scope: Scope, fqname: str, selection: Selection, root: Scope
    ) -> None:
        plan = selection.plan(recipe, fqname)
        done = _Done()
        previous: Mapping[str, Any] = {}
        for label, step in recipe.steps.items():
            enabled, why, inner = plan[label]
            fq = f"{fqname}.{label}"
            before = len(self.problems), self.silenced
            values = self.step(recipe, scope, step, fq, enabled, why, inner, root, done, previous)
            if values is not None:
                previous = done[label] = nested(values)
            elif (len(self.problems), self.silenced) != before:
                done.failed.add(label)
        for name, pairs in recipe.bindings.items():  # recipe outputs bound to step outputs
            if name in recipe.outputs:
                for label, param in pairs:
                    value = done[label].raw.get(param) if label in done else None
                    if not is_unset(value):
                        scope.set(name, value)

    def step(
        self,
        recipe: Recipe,
        scope: Scope,
        step: Step,
        fq: str,
        enabled: bool,
        why: str,
        selection: Selection,
        root: Scope,
        done: Mapping[str, Any],
        previous: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        where = step.where(fq)
        scope = self._with_assignments(scope, step, where)
        namespace: dict[str, Any] = {}
        current = Scope(self._step_raw(recipe, scope, step, where), lambda: namespace)
        info = _info(fq)
        namespace.update(
            recipe=scope,
            root=root,
            steps=done,
            previous=previous,
            current=current,
            info=info,
            self=info,
        )
        if enabled:
            skip = self._guard(lambda: evaluate(step.skip, namespace), where, "skip")
            if skip is _FAILED:
                return None
            if skip is True or (skip and not is_unset(skip)):
                enabled, why = False, "skip"
        values = {}
        for name in current.raw:
            param = step.schema.get(name)
            derived = param is not None and param.output and not is_unset(param.implicit)
            # a name missing for a skipped step, or for an output derived from a missing input
            # (reported as such), leaves the parameter unset
            lenient = derived or not enabled
            value = self._guard(lambda n=name: current.value(n), where, name, lenient=lenient)
            if value is _FAILED:
                return None
            values[name] = value
        bound = {p for pairs in recipe.bindings.values() for lb, p in pairs if lb == step.label}
        values = _expand_groups(values, step.schema)
        values = self._check_step(step, values, fq, enabled, bound)
        if values is None:
            return None
        if enabled and step.cab is not None and _outputs_ready(step, values):
            enabled, why = False, f"outputs {step.skip_if_outputs}"
        if not enabled:
            self._skipped(fq, why)
            if step.recipe is not None:
                values.update(self._outputs_of_skipped(step.recipe, values, fq, root))
            return values
        if step.recipe is not None:
            result = self.recipe(step.recipe, values, fq, selection, root)
            return {**values, **{k: v for k, v in result.items() if v is not _FAILED}}
        values.update(self._run_cab(step, values, fq, where))
        return values

    def _outputs_of_skipped(
        self, recipe: Recipe, values: Mapping[str, Any], fq: str, root: Scope
    ) -> dict[str, Any]:
        """The outputs a skipped sub-recipe step would have (its steps evaluated, none run), so
        later steps can still name them (``--step selfcal-p1:`` uses selfcal-d1's model)."""
        quiet = Walk(dry=True, selection=Selection(nothing=True), echo=lambda line: None)
        try:
            result = quiet.recipe(recipe, values, fq, quiet.selection, root)
        except RadiocloudError:
            return {}  # reported where it matters: when the step runs
        return {
            name: value
            for name, value in result.items()
            if name in recipe.outputs and value is not _FAILED and not is_unset(value)
        }

    def _step_raw(self, recipe: Recipe, scope: Scope, step: Step, where: str) -> dict[str, Any]:
        """A step's unevaluated parameters: its own, then set from above, then cab defaults."""
        raw = dict(step.params)
        prefix = f"{step.label}."
        for name in scope.raw:
            if name.startswith(prefix):
                value = self._guard(lambda n=name: scope.value(n), where, name)
                if not is_unset(value) and value is not _FAILED:
                    raw[name[len(prefix) :]] = value
        for name, pairs in recipe.bindings.items():
            for label, param in pairs:
                if label == step.label and name in scope.raw:
                    value = self._guard(lambda n=name: scope.value(n), where, name)
                    if not is_unset(value) and value is not _FAILED:
                        raw[param] = value
        if step.cab is not None:
            for name, param in step.cab.params.items():
                if name in raw:
                    continue
                if not is_unset(param.implicit):
                    raw[name] = param.implicit
                else:
                    raw[name] = param.default  # UNSET when there is none: IFSET sees it
            for name, value in step.cab.defaults.items():
                raw.setdefault(name, value)
        return raw

    def _check_step(
        self, step: Step, values: dict[str, Any], fq: str, enabled: bool, bound: set[str]
    ) -> dict[str, Any] | None:
        """Checked and converted values, or None; ``bound`` (to recipe inputs) are not required."""
        where = step.where(fq)
        ok = True
        checked: dict[str, Any] = {}
        for name, value in values.items():
            param = step.schema.get(name)
            if param is None or is_unset(value):
                checked[name] = value  # a sub-recipe's label.param, checked when it runs
                continue
            converted = self._checked(param, value, where)
            ok &= converted is not _FAILED
            checked[name] = converted
            if enabled and ok and step.cab is not None and _must_exist(param):
                ok = self._check_exists(converted, f"{where}: parameter '{name}'")
        if enabled and step.cab is not None:
            for name, param in step.cab.inputs.items():
                if param.required and is_unset(checked.get(name, UNSET)) and name not in bound:
                    path = ".".join([*_relative(fq), name])
                    self._problem(f"{where}: missing required parameter '{name}'; give {path}=...")
                    ok = False
        return checked if ok else None

    def _check_exists(self, value: Any, where: str) -> bool:
        """Whether every path in ``value`` exists or an earlier step produces it (or a URL)."""
        ok = True
        for path in paths(value):
            if not (os.path.exists(path) or path in self.produced or "://" in path):
                self._problem(f"{where}: '{path}' does not exist and no earlier step produces it")
                ok = False
        return ok

    def _checked(self, param: Parameter, value: Any, where: str) -> Any:
        try:
            value = check(value, param.dtype)
        except TypeMismatch as error:
            return self._problem(f"{where}: parameter '{param.name}': {error}")
        if param.choices is not None and value not in param.choices:
            choices = ", ".join(map(str, param.choices))
            return self._problem(
                f"{where}: parameter '{param.name}': {value!r} is not one of {choices}"
            )
        if param.element_choices is not None:
            for item in value if isinstance(value, list) else [value]:
                if item not in param.element_choices:
                    choices = ", ".join(map(str, param.element_choices))
                    return self._problem(
                        f"{where}: parameter '{param.name}': {item!r} is not one of {choices}"
                    )
        return value

    # ------------------------------------------------------------------------------ running

    def _run_cab(self, step: Step, values: dict[str, Any], fq: str, where: str) -> dict[str, Any]:
        """Run one cab step; the outputs its wranglers parsed from its output."""
        cab = step.cab
        namespace = {"current": nested(values), "info": _info(fq)}
        # at validation, names only the run sets (parsed outputs of earlier steps) may be unset
        command = self._guard(
            lambda: evaluate(cab.command, namespace), where, "command", lenient=self.dry
        )
        if command is _FAILED or is_unset(command):
            return {}
        argv = cab.argv(values, command)
        self.produced.update(file_paths(cab.params, values, creates))
        if self.executor is None:
            if self.dispatch is not None:
                self._check_backend(step, values, argv, fq, where)
            return {}
        parsed = self.executor.run(cab, values, argv, fq, step.backend)
        return {
            name: value
            if name not in cab.outputs
            else self._checked(cab.outputs[name], value, where)
            for name, value in parsed.items()
        }

    def _check_backend(
        self, step: Step, values: dict[str, Any], argv: list[str], fq: str, where: str
    ) -> None:
        """The problems the step's backend sees in running it (engine, image, volumes...)."""
        _, backend, options = self.dispatch.choose(step.backend)
        check = getattr(backend, "check", None)
        if check is None:
            return
        for problem in check(step_context(step.cab, values, argv, fq, options)):
            line = f"{where}: {problem}"
            if line not in self.problems:
                self._problem(line)

    def _skipped(self, fq: str, why: str) -> None:
        if self.executor is not None:
            self.executor.skipped(fq, why)

    # ------------------------------------------------------------------------------ problems

    def _guard(
        self, thunk: Callable[[], Any], where: str, name: str, *, lenient: bool = False
    ) -> Any:
        """``thunk()``, or (dry run) the problem noted and ``_FAILED`` (real run: raised).

        ``lenient``: an unknown name makes the value UNSET instead of a problem.
        """
        try:
            return thunk()
        except (FormulaError, RecipeError) as error:
            if lenient and isinstance(error, UnknownNameError):
                return UNSET
            failed = getattr(error, "container", None)
            if isinstance(failed, _Done) and error.key in failed.failed:
                with self.lock:
                    self.silenced += 1
                return _FAILED  # that step's own problem is reported; not again here
            message = str(error)
            if not message.startswith(where.split(":")[0]):
                message = f"{where}: parameter '{name}': {message}"
            return self._problem(message)

    def _problem(self, message: str) -> Any:
        if not self.dry:
            raise BadInputError(message)
        with self.lock:
            if message not in self.problems:
                self.problems.append(message)
        return _FAILED

    def say(self, line: str) -> None:
        with self.lock:
            self.echo(line)


_FAILED = object()


def _info(fqname: str, index: int | None = None) -> dict[str, Any]:
    label = fqname.split(".")[-1]
    return {
        "fqname": fqname,
        "label": label,
        "suffix": label.rsplit("-", 1)[-1] if "-" in label else "",
        "index": index,
    }


def _expand_groups(values: dict[str, Any], schema: Mapping[str, Parameter]) -> dict[str, Any]:
    """A mapping given for a group of parameters (``imaging: =recipe.imaging``) as their values;
    parameters given one by one (``imaging.size``) win."""
    out = {k: v for k, v in values.items() if not (k not in schema and isinstance(v, Mapping))}
    for name, value in values.items():
        if name not in schema and isinstance(value, Mapping):
            for key, item in flatten(value, f"{name}.").items():
                out.setdefault(key, item)
    return out


def _relative(fqname: str) -> list[str]:
    """The labels leading from the top recipe to ``fqname`` (loop indices dropped)."""
    return [re.sub(r"\[\d+\]$", "", label) for label in fqname.split(".")[1:]]


def _outputs_ready(step: Step, values: Mapping[str, Any]) -> bool:
    """Whether ``skip_if_outputs`` holds: every file output exists (and is newer than inputs)."""
    if not step.skip_if_outputs:
        return False
    outputs = file_paths(step.cab.outputs, values)
    if not outputs or not all(os.path.exists(path) for path in outputs):
        return False
    if step.skip_if_outputs == "exist":
        return True
    inputs = [path for path in file_paths(step.cab.inputs, values) if os.path.exists(path)]
    oldest_output = min(os.path.getmtime(path) for path in outputs)
    return all(os.path.getmtime(path) <= oldest_output for path in inputs)


def _must_exist(param: Parameter) -> bool:
    if param.output or not param.dtype.is_path:
        return False
    return param.must_exist is not False


def run_dir_for(recipe: str, base: str | None) -> Path:
    """``--run-dir``, or a new ``rc-runs/NAME-YYYYmmdd-HHMMSS[-N]`` (made here, never shared)."""
    if base:
        return Path(base)
    stem = Path("rc-runs") / f"{recipe}-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 10_000):
        path = stem if attempt == 1 else stem.with_name(f"{stem.name}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RadiocloudError(f"cannot make a new run directory beside {stem}; give --run-dir")


__all__ = ["StepFailed", "ValidationFailed", "Walk", "run_dir_for"]
