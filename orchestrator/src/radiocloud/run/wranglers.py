"""Output wranglers: regular expressions on a step's output lines, and what to do on a match.

Many tools report failure only in their output (CASA tasks exit 0 on errors) or print results a
later step needs. A cab lists wranglers under ``management``, Stimela2-style::

    management:
      wranglers:
        'Error in TaQL command:': ERROR
        'brown (fox|cow)': [REPLACE:Michael J. Fox, WARNING:roads?]
        'clean reached (?P<rms>[\\d.]+) Jy': PARSE_OUTPUT:rms:float

Actions: ``SUPPRESS`` (hide the line, still logged), ``REPLACE:text`` (regex substitution on the
shown line), ``WARNING[:message]``, ``SEVERITY:level`` and ``HIGHLIGHT:style`` (shown with the
step's output), ``ERROR[:message]`` (the step fails even if it exits 0), ``DECLARE_SUCCESS`` (the
step succeeds even if it exits non-zero), ``PARSE_OUTPUT:name[:group]:type`` (an output from a
named group; type ``str int float bool json``), ``PARSE_JSON_OUTPUT_DICT`` (group 1 is a JSON
object of outputs) and ``PARSE_JSON_OUTPUTS`` (every named group is a JSON-encoded output).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from radiocloud.run.loader import RecipeError

ACTIONS = [
    "SUPPRESS",
    "REPLACE",
    "WARNING",
    "SEVERITY",
    "HIGHLIGHT",
    "ERROR",
    "DECLARE_SUCCESS",
    "DECLARE_FAILURE",
    "PARSE_OUTPUT",
    "PARSE_JSON_OUTPUT_DICT",
    "PARSE_JSON_OUTPUTS",
]
_CONVERT = {"str": str, "int": int, "float": float, "bool": lambda t: t.lower() in ("true", "1")}


@dataclass(frozen=True)
class Wrangler:
    pattern: re.Pattern
    actions: tuple[tuple[str, tuple[str, ...]], ...]  # (ACTION, its arguments)


def parse_wranglers(spec: Any, where: str) -> tuple[Wrangler, ...]:
    if not spec:
        return ()
    if not isinstance(spec, Mapping):
        raise RecipeError(f"{where}: wranglers must map regular expressions to actions; fix it")
    wranglers = []
    for regex, actions in spec.items():
        try:
            pattern = re.compile(str(regex))
        except re.error as error:
            raise RecipeError(f"{where}: bad regular expression {regex!r} ({error})") from None
        parsed = []
        for action in [actions] if isinstance(actions, str) else list(actions or ()):
            name, *args = str(action).split(":")
            if name not in ACTIONS:
                raise RecipeError(
                    f"{where}: unknown wrangler action '{name}' for {regex!r}; "
                    f"use one of {', '.join(ACTIONS)}"
                )
            if name == "REPLACE":  # the replacement may itself hold colons
                args = [str(action).split(":", 1)[1]] if ":" in str(action) else [""]
            if name == "PARSE_OUTPUT" and len(args) not in (2, 3):
                raise RecipeError(f"{where}: write PARSE_OUTPUT:name[:group]:type for {regex!r}")
            parsed.append((name, tuple(args)))
        wranglers.append(Wrangler(pattern, tuple(parsed)))
    return tuple(wranglers)


@dataclass
class Wrangling:
    """The state of one step's run: what its output lines have told."""

    wranglers: tuple[Wrangler, ...]
    outputs: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    success: bool = False
    failure: bool = False

    def line(self, text: str) -> list[str]:
        """The lines to show for one output line (none if suppressed, more with warnings)."""
        shown: str | None = text
        extra: list[str] = []
        for wrangler in self.wranglers:
            match = wrangler.pattern.search(text)
            if not match:
                continue
            for name, args in wrangler.actions:
                if name == "SUPPRESS":
                    shown = None
                elif name == "REPLACE" and shown is not None:
                    shown = wrangler.pattern.sub(args[0], shown)
                elif name == "WARNING" and args:
                    extra.append(f"warning: {':'.join(args)}")
                elif name == "ERROR":
                    self.errors.append(":".join(args) or text.strip())
                elif name == "DECLARE_SUCCESS":
                    self.success = True
                elif name == "DECLARE_FAILURE":
                    self.failure = True
                elif name.startswith("PARSE"):
                    self._parse(name, args, match)
        return ([] if shown is None else [shown]) + extra

    def _parse(self, name: str, args: tuple[str, ...], match: re.Match) -> None:
        try:
            if name == "PARSE_OUTPUT":
                output, group, kind = (args[0], args[0], args[1]) if len(args) == 2 else args
                text = match.group(group)
                self.outputs[output] = json.loads(text) if kind == "json" else _CONVERT[kind](text)
            elif name == "PARSE_JSON_OUTPUT_DICT":
                self.outputs.update(json.loads(match.group(1)))
            else:
                for key, text in match.groupdict().items():
                    self.outputs[key] = json.loads(text)
        except (IndexError, KeyError, ValueError) as error:
            self.errors.append(f"cannot parse an output from {match.group()!r} ({error})")
