"""Parameter schemas of cabs and recipes: dtypes, defaults, requirements, and value checks.

A schema is written as a mapping of parameter names to definitions, Stimela2-style::

    inputs:
      ms:     {dtype: MS, required: true, info: the measurement set}
      size:   {dtype: List[int], default: [1024, 1024]}
      weight: 'str = "briggs 0" "the weighting"'      # shorthand: dtype [= default] [*] ["info"]
      flags:                                         # a group: its keys are parameters
        restore: {dtype: str, info: flag version to restore}

A mapping holding any definition key (``dtype``, ``info``, ``default``, ...) is a definition;
any other mapping is a group, and its parameters get dotted names (``flags.restore``); a
dotted key (``h.h1:``) is the same as the nested form. A definition without ``dtype`` is a
``str``.

dtypes: ``str int float bool File Directory MS URI Any`` and ``List[...]``, ``Tuple[...]``,
``Optional[...]``, ``Union[a, b]``, ``Dict[str, ...]`` of them. :func:`check` converts values
given on the command line as strings (``"3"`` for an ``int``) and a single value for a list,
and otherwise refuses anything of the wrong type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from radiocloud.run.formula import UNSET
from radiocloud.run.loader import RecipeError

PATH_TYPES = ("File", "Directory", "MS", "URI")
SCALAR_TYPES = ("str", "int", "float", "bool", "Any", *PATH_TYPES)
GENERIC_TYPES = ("List", "Tuple", "Optional", "Union", "Dict")

# Definition keys that matter to rc-run, then Stimela keys accepted for compatibility but unused.
FIELDS = [
    "dtype",
    "info",
    "default",
    "required",
    "choices",
    "element_choices",
    "policies",
    "implicit",
    "must_exist",
    "mkdir",
    "writable",
    "aliases",
    "nom_de_guerre",
    "remove_if_exists",
    "skip_freshness_checks",
]
IGNORED_FIELDS = [
    "abbreviation",
    "metavar",
    "category",
    "suffix",
    "access_parent_dir",
    "write_parent_dir",
    "path_policies",
    "is_input",
    "is_output",
    "tags",
]
POLICIES = [
    "prefix",
    "positional",
    "positional_head",
    "key_value",
    "repeat",
    "false_flag",
    "explicit_true",
    "explicit_false",
    "skip",
    "skip_implicits",
    "replace",
    "format",
    "format_list",
    "format_list_scalar",
    "split",
    "disable_substitutions",
    "pass_missing_as_none",
]

_SHORTHAND = re.compile(
    r"""^\s*(?P<dtype>[^=*"]+?)\s*(?:=\s*(?P<default>[^*"]*?)\s*)?(?P<required>\*)?\s*
    (?:"(?P<info>.*)")?\s*$""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class DType:
    """A parsed dtype: a scalar name, or a generic name with argument dtypes."""

    name: str
    args: tuple[DType, ...] = ()

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}[{', '.join(str(a) for a in self.args)}]"

    @property
    def is_path(self) -> bool:
        """A File, Directory or MS, possibly optional or in a list (URIs are never checked)."""
        if self.name in ("File", "Directory", "MS"):
            return True
        return self.name in ("List", "Optional", "Tuple") and any(a.is_path for a in self.args)

    @property
    def is_list(self) -> bool:
        return self.name in ("List", "Tuple") or (self.name == "Optional" and self.args[0].is_list)


def parse_dtype(text: str) -> DType:
    """``"List[Union[int, str]]"`` as a :class:`DType`; ``ValueError`` with the problem."""
    tokens = re.findall(r"[A-Za-z_]\w*|[\[\],]|\S", text)
    position = 0

    def parse() -> DType:
        nonlocal position
        if position >= len(tokens) or not re.match(r"[A-Za-z_]", tokens[position]):
            raise ValueError(f"unexpected end or symbol in dtype '{text}'")
        name = tokens[position]
        position += 1
        if name not in SCALAR_TYPES + GENERIC_TYPES:
            raise ValueError(f"unknown dtype '{name}' in '{text}'")
        if position < len(tokens) and tokens[position] == "[":
            args = [parse_next()]
            while tokens[position] == ",":
                args.append(parse_next())
            if tokens[position] != "]":
                raise ValueError(f"expected ']' in dtype '{text}'")
            position += 1
            return DType(name, tuple(args))
        if name in GENERIC_TYPES:
            raise ValueError(f"'{name}' needs arguments, e.g. {name}[str], in '{text}'")
        return DType(name)

    def parse_next() -> DType:
        nonlocal position
        position += 1
        dtype = parse()
        if position >= len(tokens):
            raise ValueError(f"expected ']' in dtype '{text}'")
        return dtype

    dtype = parse()
    if position != len(tokens):
        raise ValueError(f"unexpected '{tokens[position]}' in dtype '{text}'")
    return dtype


@dataclass
class Parameter:
    """One input or output of a cab or recipe (its ``name`` is dotted inside groups)."""

    name: str
    dtype: DType = field(default_factory=lambda: DType("str"))
    info: str = ""
    default: Any = UNSET
    required: bool = False
    choices: tuple | None = None
    element_choices: tuple | None = None
    policies: dict = field(default_factory=dict)
    implicit: Any = UNSET
    must_exist: bool | None = None
    mkdir: bool = False
    remove_if_exists: bool = False
    writable: bool = False
    aliases: tuple[str, ...] = ()
    nom_de_guerre: str | None = None
    output: bool = False
    dtype_given: bool = True

    @property
    def kind(self) -> str:
        return "output" if self.output else "input"


def parse_schema(
    spec: Any, keypath: str, origin: str, *, output: bool = False, prefix: str = ""
) -> dict[str, Parameter]:
    """The parameters of an ``inputs:`` or ``outputs:`` mapping, by dotted name, in order.

    ``keypath`` (``cabs.echo.inputs``) and ``origin`` (``file:line``) locate it for errors.
    """
    if spec is None:
        return {}
    origin = getattr(spec, "origin", origin)
    if not isinstance(spec, Mapping):
        raise RecipeError(f"{origin}: {keypath}: expected a mapping of parameters; fix it")
    params: dict[str, Parameter] = {}
    for key, value in spec.items():
        name = f"{prefix}{key}"
        here = f"{getattr(value, 'origin', origin)}: {keypath}.{key}"
        if isinstance(value, str) or value is None:
            params[name] = _shorthand(name, value or "str", here, output)
        elif isinstance(value, Mapping) and (not value or any(k in FIELDS for k in value)):
            params[name] = _definition(name, value, here, output)
        elif isinstance(value, Mapping):
            child = f"{keypath}.{key}"
            params.update(parse_schema(value, child, origin, output=output, prefix=f"{name}."))
        else:
            raise RecipeError(f"{here}: expected a definition or a group, got {value!r}; fix it")
    return params


def _shorthand(name: str, text: str, where: str, output: bool) -> Parameter:
    match = _SHORTHAND.match(text)
    if not match:
        raise RecipeError(
            f"{where}: cannot read shorthand '{text}'; write 'dtype [= default] [*] [\"info\"]'"
        )
    try:
        dtype = parse_dtype(match["dtype"])
    except ValueError as error:
        raise RecipeError(f"{where}: {error}; use one of {', '.join(SCALAR_TYPES)}") from None
    default: Any = UNSET
    if match["default"] is not None:
        default = _yaml_scalar(match["default"])
    return Parameter(
        name,
        dtype,
        info=match["info"] or "",
        default=default,
        required=bool(match["required"]),
        output=output,
    )


def _definition(name: str, spec: Mapping, where: str, output: bool) -> Parameter:
    check_keys(spec, FIELDS, where, "parameter key", tolerated=IGNORED_FIELDS)
    try:
        dtype = parse_dtype(str(spec.get("dtype", "str")))
    except ValueError as error:
        raise RecipeError(f"{where}: {error}; use one of {', '.join(SCALAR_TYPES)}") from None
    policies = dict(spec.get("policies") or {})
    check_policies(policies, where)
    aliases = spec.get("aliases") or ()
    param = Parameter(
        name,
        dtype,
        info=str(spec.get("info") or ""),
        default=spec.get("default", UNSET),
        required=bool(spec.get("required", False)),
        choices=tuple(spec["choices"]) if spec.get("choices") is not None else None,
        element_choices=tuple(spec["element_choices"]) if spec.get("element_choices") else None,
        policies=policies,
        implicit=spec.get("implicit", UNSET),
        must_exist=spec.get("must_exist"),
        mkdir=bool(spec.get("mkdir", False)),
        remove_if_exists=bool(spec.get("remove_if_exists", False)),
        writable=bool(spec.get("writable", False)),
        aliases=(aliases,) if isinstance(aliases, str) else tuple(aliases),
        nom_de_guerre=spec.get("nom_de_guerre"),
        output=output,
        dtype_given="dtype" in spec,
    )
    if param.default is None:
        param.default = UNSET
    return param


def check_keys(
    mapping: Mapping,
    allowed: Sequence[str],
    where: str,
    what: str,
    *,
    tolerated: Sequence[str] = (),
) -> None:
    """A RecipeError naming the first key of ``mapping`` that is not ``allowed`` (nor silently
    ``tolerated``), and the keys to use instead."""
    for key in mapping:
        if key not in allowed and key not in tolerated:
            raise RecipeError(f"{where}: unknown {what} '{key}'; use {', '.join(allowed)}")


def check_policies(policies: Mapping, where: str) -> None:
    check_keys(policies, POLICIES, where, "policy")


def _yaml_scalar(text: str) -> Any:
    """A default or command-line value read as YAML would read it (``3`` is an int)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_value(text: str) -> Any:
    """A ``name=value`` command-line value: YAML scalars and ``[a, b]`` lists."""
    return _yaml_scalar(text) if text.strip() else ""


# ---------------------------------------------------------------------------------- checking


class TypeMismatch(ValueError):
    """A value does not fit a dtype; the message says what was expected."""


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def check(value: Any, dtype: DType) -> Any:
    """``value`` converted to ``dtype``, or :class:`TypeMismatch`."""
    name = dtype.name
    if name == "Any":
        return value
    if name == "Optional":
        return None if value is None else check(value, dtype.args[0])
    if name == "Union":
        for option in dtype.args:
            try:
                return check(value, option)
            except TypeMismatch:
                continue
        raise TypeMismatch(f"expected {dtype}, got {_describe(value)}")
    if name in ("List", "Tuple"):
        items = list(value) if isinstance(value, list | tuple) else [value]
        if name == "Tuple" and len(dtype.args) > 1:
            if len(items) != len(dtype.args):
                raise TypeMismatch(f"expected {dtype} ({len(dtype.args)} values), got {value!r}")
            return [check(v, t) for v, t in zip(items, dtype.args, strict=True)]
        return [check(v, dtype.args[0]) for v in items]
    if name == "Dict":
        if not isinstance(value, Mapping):
            raise TypeMismatch(f"expected {dtype}, got {_describe(value)}")
        return {k: check(v, dtype.args[-1]) for k, v in value.items()}
    return _check_scalar(value, name)


def _check_scalar(value: Any, name: str) -> Any:
    if name == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
    elif name == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            return int(value)
    elif name == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(value, str):
        return value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a number where a string or path is expected, as Stimela does
    raise TypeMismatch(f"expected {name}, got {_describe(value)}")


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"
