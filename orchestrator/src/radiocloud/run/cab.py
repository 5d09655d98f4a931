"""Cabs: how a step's parameters become one command line.

A cab is a command with a schema (Stimela2's format, the subset real tools need)::

    cabs:
      rc-image:
        command: rc-image             # split like a shell would; may hold {current.x}
        policies: {prefix: "--"}      # defaults for every parameter's policies
        inputs:  {...}                # see radiocloud.run.schema
        outputs: {...}                # outputs with ``implicit:`` are derived, never passed

Rendering policies (cab-wide, overridden per parameter):

``prefix`` (``--``)            option = prefix + (``nom_de_guerre`` or name, after ``replace``)
``positional``                 the value alone, in declaration order, after the options
``positional_head``            the same, before the options
``key_value``                  ``name=value`` instead of ``--name value``
``repeat``                     lists: ``list`` (``--x a b``, the default), ``repeat``
                               (``--x a --x b``), ``[]`` (``--x [a,b]``), or a separator (``,``)
``false_flag``                 a bool that is false passes this string (``--no-predict``);
                               true passes ``--name``, false passes nothing by default
``explicit_true/_false``       a bool passes ``--name VALUE`` with this value
``skip``                       never passed (used only in formulas or ``command``)
``replace``                    ``{"_": "-"}``: characters replaced in the option name
``format``                     a format string for the value (``{0}`` or ``{value}``)
``format_list``                list values formatted into new words (``["{0}", "{1}"]``)
``format_list_scalar``         a single value made into words (``["{0}", "{0}"]``: 1024 1024)
``split``                      a string value split into list items at this separator

Outputs are passed like inputs unless they are implicit. ``management.wranglers`` act on the
output (see radiocloud.run.wranglers). Stimela's Python flavours are not supported: they are
refused with a message, never ignored. A
``dynamic_schema`` (a Python function adding outputs at run time) is not called: the outputs it
would add are unknown to rc-run, which matters only to steps that refer to them.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from radiocloud.run.formula import UNSET, is_unset
from radiocloud.run.loader import RecipeError
from radiocloud.run.schema import Parameter, check_keys, check_policies, parse_schema
from radiocloud.run.wranglers import Wrangler, parse_wranglers

CAB_KEYS = [
    "name",
    "info",
    "command",
    "flavour",
    "policies",
    "inputs",
    "outputs",
    "image",
    "backend",
    "management",
    "extra_info",
    "defaults",
    "dynamic_schema",
]


@dataclass
class Cab:
    name: str
    command: str
    inputs: dict[str, Parameter]
    outputs: dict[str, Parameter]
    policies: dict = field(default_factory=dict)
    info: str = ""
    origin: str = "<config>"
    defaults: dict = field(default_factory=dict)
    wranglers: tuple[Wrangler, ...] = ()
    image: str | None = None  # the container image (None: the backend's default for command)

    @property
    def params(self) -> dict[str, Parameter]:
        return {**self.inputs, **self.outputs}

    def argv(self, values: Mapping[str, Any], command: str | None = None) -> list[str]:
        """The command line for the (checked, evaluated) parameter ``values``."""
        head, options, tail = [], [], []
        for name, param in self.params.items():
            value = values.get(name, UNSET)
            policies = {**self.policies, **param.policies}
            if (
                is_unset(value)
                or policies.get("skip")
                or (param.output and not is_unset(param.implicit))
            ):
                continue
            words = _render(param, value, policies)
            if policies.get("positional_head"):
                head += words
            elif policies.get("positional"):
                tail += words
            else:
                options += words
        return [*shlex.split(command or self.command), *head, *options, *tail]


def _render(param: Parameter, value: Any, policies: Mapping) -> list[str]:
    option = param.nom_de_guerre or param.name
    for old, new in (policies.get("replace") or {}).items():
        option = option.replace(old, new)
    if policies.get("key_value"):
        positional, option = False, f"{option}="
    else:
        option = f"{policies.get('prefix', '--')}{option}"
        positional = policies.get("positional") or policies.get("positional_head")
    if isinstance(value, bool):
        if "explicit_true" in policies or "explicit_false" in policies:
            word = policies.get("explicit_true" if value else "explicit_false")
            return [] if word is None else _named(option, [str(word)], policies, positional)
        if positional:
            return [str(value)]
        if value:
            return [option]
        return [policies["false_flag"]] if policies.get("false_flag") else []
    fmt = policies.get("format")
    if policies.get("split") and isinstance(value, str):
        value = value.split(policies["split"])
    if policies.get("format_list_scalar") and not isinstance(value, list | tuple):
        value = [f.format(value) for f in policies["format_list_scalar"]]
    elif policies.get("format_list") and isinstance(value, list | tuple):
        value = [f.format(*value) for f in policies["format_list"]]
    if isinstance(value, list | tuple):
        items = [_text(v, fmt) for v in value]
        repeat = policies.get("repeat", "list")
        if repeat == "repeat" and not positional:
            return [word for item in items for word in _named(option, [item], policies, False)]
        if repeat == "[]":
            items = [f"[{','.join(items)}]"]
        elif repeat not in ("list", "repeat"):
            items = [str(repeat).join(items)]
        return _named(option, items, policies, positional)
    return _named(option, [_text(value, fmt)], policies, positional)


def _named(option: str, items: list[str], policies: Mapping, positional: bool) -> list[str]:
    if positional:
        return items
    if option.endswith("="):  # key_value
        return [f"{option}{' '.join(items)}"]
    return [option, *items]


def _text(value: Any, fmt: str | None) -> str:
    return fmt.format(value, value=value) if fmt else str(value)


def parse_cab(name: str, spec: Any, origin: str = "<config>") -> Cab:
    """The :class:`Cab` defined by ``cabs.<name>`` (a mapping from the loaded configuration)."""
    origin = getattr(spec, "origin", origin)
    where = f"{origin}: cabs.{name}"
    if not isinstance(spec, Mapping):
        raise RecipeError(f"{where}: a cab must be a mapping with a command; fix it")
    check_keys(spec, CAB_KEYS, where, "cab key")
    flavour = spec.get("flavour")
    kind = flavour.get("kind") if isinstance(flavour, Mapping) else flavour
    if kind not in (None, "binary"):
        raise RecipeError(
            f"{where}: flavour '{kind}' is not supported by rc-run; "
            "make it a binary cab (a command line)"
        )
    management = spec.get("management") or {}
    if not isinstance(management, Mapping):
        raise RecipeError(f"{where}.management: expected a mapping (wranglers:); fix it")
    wranglers = parse_wranglers(management.get("wranglers"), f"{where}.management.wranglers")
    if not isinstance(spec.get("command"), str) or not spec["command"].strip():
        raise RecipeError(f"{where}: missing 'command'; give the program to run")
    policies = dict(spec.get("policies") or {})
    check_policies(policies, where)
    inputs = parse_schema(spec.get("inputs"), f"cabs.{name}.inputs", origin)
    outputs = parse_schema(spec.get("outputs"), f"cabs.{name}.outputs", origin, output=True)
    for both in inputs.keys() & outputs.keys():
        raise RecipeError(f"{where}: '{both}' is both an input and an output; rename one")
    return Cab(
        name=name,
        command=spec["command"].strip(),
        inputs=inputs,
        outputs=outputs,
        policies=policies,
        info=str(spec.get("info") or ""),
        origin=origin,
        defaults=dict(spec.get("defaults") or {}),
        wranglers=wranglers,
        image=_image(spec.get("image"), where),
    )


def _image(spec: Any, where: str) -> str | None:
    """A cab's ``image:``: a reference (``name:tag``), or Stimela's ``{name, version}``."""
    if spec is None or isinstance(spec, str):
        return spec or None
    if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        version = spec.get("version")
        return f"{spec['name']}:{version}" if version else spec["name"]
    raise RecipeError(f"{where}.image: expected an image reference (name:tag); fix it")
