"""Flagging strategies: YAML files of registered steps, checked before any data is read.

A strategy file::

    name: meerkat-lband
    description: what it is for
    column: DATA                 # or an expression: CORRECTED_DATA - MODEL_DATA
    steps:
      - nan_zero
      - step: sum_threshold
        on: stokes_i
        threshold: 6

A step is its name alone (every option at its default) or a mapping with ``step`` and
options. The shipped presets live in ``radiocloud/flag/strategies/``; ``--strategy`` takes a
preset's name or a file's path. ``--set STEP.OPTION=VALUE`` overrides an option of every
step of that name (the command line wins over the file).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from radiocloud.core.errors import OptionError
from radiocloud.flag.steps import STEPS, Step

KEYS = ("name", "description", "column", "steps")
_COLUMN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:([-+])\s*([A-Za-z_][A-Za-z0-9_]*)\s*)?$")


@dataclass(frozen=True)
class Strategy:
    name: str
    steps: tuple[Step, ...]
    column: str = "DATA"
    description: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns ``column`` reads."""
        return tuple(c for c in parse_column(self.column)[::2] if c)


def parse_column(text: str) -> tuple[str, str, str]:
    """``'DATA'`` -> ('DATA', '', ''); ``'DATA - MODEL_DATA'`` -> ('DATA', '-', 'MODEL_DATA')."""
    match = _COLUMN.match(str(text))
    if not match:
        raise OptionError(
            f"column '{text}' is not a column or a difference of two: write e.g. DATA or "
            "CORRECTED_DATA - MODEL_DATA"
        )
    first, op, second = match.groups()
    return first.upper(), op or "", (second or "").upper()


def presets() -> dict[str, Path]:
    """Shipped strategy files by name."""
    folder = resources.files("radiocloud.flag") / "strategies"
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def load_strategy(
    spec: str, *, overrides: typing.Sequence[str] = (), column: str | None = None
) -> Strategy:
    """The strategy named ``spec`` (a preset) or in the file ``spec``, with ``--set``
    overrides and ``--column`` applied."""
    shipped = presets()
    if spec in shipped:
        path = shipped[spec]
    elif Path(spec).is_file():
        path = Path(spec)
    else:
        raise OptionError(
            f"strategy '{spec}' is neither a preset ({', '.join(sorted(shipped))}) nor a file"
        )
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f":{where.line + 1}" if where else ""
        raise OptionError(f"strategy {path}{line}: not valid YAML ({exc.problem})") from None
    return parse_strategy(doc, source=str(path), overrides=overrides, column=column)


def parse_strategy(doc, *, source: str, overrides=(), column: str | None = None) -> Strategy:
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list) or not doc["steps"]:
        raise OptionError(f"strategy {source}: expected a mapping with a list of 'steps'")
    unknown = set(doc) - set(KEYS)
    if unknown:
        key = sorted(unknown)[0]
        raise OptionError(f"strategy {source}: unknown key '{key}'{_hint(key, KEYS)}")
    by_step = _overrides(overrides)
    steps, used = [], set()
    for number, item in enumerate(doc["steps"], start=1):
        options = {"step": item} if isinstance(item, str) else dict(item or {})
        name = options.pop("step", None)
        where = f"strategy {source}, step {number}"
        if name not in STEPS:
            raise OptionError(f"{where}: unknown step '{name}'{_hint(name, STEPS)}; "
                              f"the steps are {', '.join(STEPS)}")  # fmt: skip
        options.update(by_step.get(name, {}))
        used.add(name)
        steps.append(make_step(STEPS[name], options, f"{where} ({name})"))
    if set(by_step) - used:
        name = sorted(set(by_step) - used)[0]
        names = ", ".join(dict.fromkeys(s.name for s in steps))
        raise OptionError(f"--set {name}.…: the strategy has no step '{name}' (its steps: {names})")
    col = column or doc.get("column") or "DATA"
    parse_column(col)
    return Strategy(str(doc.get("name") or Path(source).stem), tuple(steps), str(col),
                    str(doc.get("description") or ""))  # fmt: skip


def make_step(cls: type[Step], options: dict, where: str) -> Step:
    """``cls(**options)`` with each value converted to its field's type; unknown options and
    values that do not fit are an OptionError naming them."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in options.items():
        if key not in fields:
            valid = ", ".join(fields) or "none"
            raise OptionError(f"{where}: unknown option '{key}'{_hint(key, fields)}; "
                              f"its options are {valid}")  # fmt: skip
        try:
            values[key] = _convert(value, hints[key])
        except (TypeError, ValueError):
            raise OptionError(
                f"{where}: option {key}={value!r} should be {_describe(hints[key])}"
            ) from None
    step = cls(**values)
    try:
        step.check()
    except ValueError as exc:
        raise OptionError(f"{where}: {exc}") from None
    return step


def _convert(value, hint):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _convert(value, next(a for a in args if a is not type(None)))
    if origin is tuple:
        items = value if isinstance(value, list | tuple) else [value]
        return tuple(_convert(v, args[0]) for v in items)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "yes", "1", "false", "no", "0"):
            return str(value).lower() in ("true", "yes", "1")
        raise ValueError(value)
    if hint is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    if hint in (int, float) and isinstance(value, bool):
        raise ValueError(value)
    return hint(value) if hint is not str else str(value)


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _describe(next(a for a in args if a is not type(None))) + " (or null)"
    if origin is tuple:
        return f"a list of {_describe(args[0])}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "text"}[hint]


def _overrides(items) -> dict[str, dict]:
    """``["sum_threshold.threshold=5", ...]`` -> {"sum_threshold": {"threshold": "5"}}; values
    are YAML, so lists and numbers read as in a strategy file."""
    out: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        step, dot, option = key.strip().partition(".")
        if not (sep and dot and step and option):
            raise OptionError(f"--set '{item}': write STEP.OPTION=VALUE, e.g. "
                              "sum_threshold.threshold=5")  # fmt: skip
        out.setdefault(step, {})[option] = yaml.safe_load(value)
    return out


def _hint(word, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
