"""Evaluation of rc-run formulas, with Stimela2's semantics: names, operators and functions.

:mod:`radiocloud.run.syntax` parses a parameter string (a ``=`` formula, a ``{}`` template or a
plain literal) into an AST; :func:`evaluate` walks that AST with an evaluator over a namespace
mapping. This module also holds :data:`UNSET`, the value of a parameter never given, and
:data:`FUNCTIONS`, the implementations of the formula functions whose signatures
:data:`radiocloud.run.syntax.SIGNATURES` declares. It re-exports the syntax names callers use.

Name resolution: a name whose first segment is one of :data:`NAMESPACES` (``recipe.x``,
``steps.image-0.prefix``, ...) is looked up in that namespace of the mapping given to
:func:`evaluate`; any other bare name is looked up in ``current``, then in ``recipe``.
``[expr]`` subscripts index lists and mappings.
"""

from __future__ import annotations

import glob
import operator
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from radiocloud.run.syntax import (
    Binary,
    BoolOp,
    Call,
    Compare,
    Field,
    FormulaError,
    ListExpr,
    Literal,
    Node,
    Ref,
    Template,
    Unary,
    UnknownNameError,
    parse,
    references,
)

__all__ = [
    "FUNCTIONS",
    "NAMESPACES",
    "UNSET",
    "Call",
    "FormulaError",
    "Literal",
    "Node",
    "Template",
    "UnknownNameError",
    "evaluate",
    "is_unset",
    "parse",
    "references",
]

NAMESPACES = ("recipe", "root", "steps", "previous", "current", "info", "self")
BARE_NAME_SCOPES = ("current", "recipe")


class _Unset:
    """The value of a parameter that was never given (falsy, a singleton)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


def is_unset(value: Any) -> bool:
    return value is None or value is UNSET


# ---------------------------------------------------------------------------------- operators

_COMPARE = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_BINARY = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}
_UNARY = {"-": operator.neg, "+": operator.pos, "not": operator.not_}

# ---------------------------------------------------------------------------------- public API


def evaluate(text: Any, namespace: Mapping[str, Any], *, base_dir: str = ".") -> Any:
    """The value of a parameter: formulas evaluated, templates substituted, others as given.

    ``namespace`` maps the names of :data:`NAMESPACES` to mappings; ``base_dir`` is where
    ``GLOB`` and ``EXISTS`` resolve relative paths. A formula may return :data:`UNSET`.
    """
    if not isinstance(text, str):
        return text
    return _Evaluator(text, namespace, base_dir).value(parse(text))


# ---------------------------------------------------------------------------------- evaluator


class _Evaluator:
    def __init__(self, source: str, namespace: Mapping[str, Any], base_dir: str):
        self.source = source
        self.namespace = namespace
        self.base_dir = base_dir

    def error(self, problem: str) -> FormulaError:
        return FormulaError(f"{problem} in '{self.source}'")

    def value(self, node: Node) -> Any:
        match node:
            case Literal(value):
                return value
            case ListExpr(items):
                return [self.value(item) for item in items]
            case Ref():
                return self.lookup(node)
            case Template(parts):
                return "".join(p if isinstance(p, str) else self.substitute(p) for p in parts)
            case BoolOp("and", left, right):
                return self.value(left) and self.value(right)
            case BoolOp(_, left, right):
                return self.value(left) or self.value(right)
            case Unary(op, operand):
                return self.apply(op, _UNARY[op], self.value(operand))
            case Binary(op, left, right):
                return self.apply(op, _BINARY[op], self.value(left), self.value(right))
            case Compare(first, rest):
                return self.compare(first, rest)
            case Call(name, args):
                return self.call(name, args)
        raise TypeError(f"not a formula node: {node!r}")  # pragma: no cover

    def substitute(self, field: Field) -> str:
        value = self.lookup(field.ref)
        if is_unset(value):
            raise UnknownNameError(f"'{field.ref.text}' is not set, in '{self.source}'")
        try:
            return format(value, field.spec)
        except (TypeError, ValueError) as exc:
            raise self.error(f"cannot format {value!r} with ':{field.spec}' ({exc})") from None

    def apply(self, op: str, function: Callable[..., Any], *operands: Any) -> Any:
        try:
            return function(*operands)
        except ZeroDivisionError:
            raise self.error(f"division by zero ('{op}')") from None
        except (TypeError, OverflowError) as exc:
            kinds = " and ".join(type(value).__name__ for value in operands)
            raise self.error(f"cannot apply '{op}' to {kinds} ({exc})") from None

    def compare(self, first: Node, rest: tuple[tuple[str, Node], ...]) -> bool:
        left = self.value(first)
        for op, node in rest:
            right = self.value(node)
            if not self.apply(op, _COMPARE[op], left, right):
                return False
            left = right
        return True

    def call(self, name: str, args: tuple[Node, ...]) -> Any:
        function = FUNCTIONS[name]
        if function.lazy:
            return function.impl(self, *args)
        values = [self.value(arg) for arg in args]
        try:
            return function.impl(self, *values)
        except FormulaError:
            raise
        except (TypeError, ValueError, OSError) as exc:
            raise self.error(f"{name}: {exc}") from None

    def value_or_unset(self, node: Node) -> Any:
        """The value of ``node``, or UNSET if it is a name that does not exist."""
        try:
            return self.value(node)
        except UnknownNameError:
            if isinstance(node, Ref):
                return UNSET
            raise

    def lookup(self, ref: Ref) -> Any:
        if ref.root in NAMESPACES:
            if ref.root not in self.namespace:
                raise self._unknown(ref, f"no '{ref.root}' namespace here")
            value, where = self.namespace[ref.root], ref.root
        else:
            for scope in BARE_NAME_SCOPES:
                if ref.root in self.namespace.get(scope, {}):
                    value, where = self.namespace[scope][ref.root], f"{scope}.{ref.root}"
                    break
            else:
                raise self._unknown(ref, f"searched {' and '.join(BARE_NAME_SCOPES)}")
        for step in ref.path:
            key = step if isinstance(step, str) else self.value(step)
            in_mapping = isinstance(value, Mapping) and key in value
            in_list = _is_list(value) and _is_index(key) and -len(value) <= key < len(value)
            if not (in_mapping or in_list):
                error = self._unknown(ref, f"'{where}' has no {key!r}")
                error.container, error.key = value, key
                raise error
            value = value[key]
            where += f".{key}" if isinstance(step, str) else f"[{key!r}]"
        return value

    def _unknown(self, ref: Ref, detail: str) -> UnknownNameError:
        return UnknownNameError(f"unknown name '{ref.text}' ({detail}) in '{self.source}'")


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _is_index(key: Any) -> bool:
    return isinstance(key, int) and not isinstance(key, bool)


# ---------------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class _Function:
    """A function's implementation; the parser checks its arity against ``syntax.SIGNATURES``."""

    impl: Callable[..., Any]
    lazy: bool = False  # impl gets the evaluator and the unevaluated argument nodes


def _if(
    ev: _Evaluator, cond: Node, if_true: Node, if_false: Node, if_unset: Node | None = None
) -> Any:
    value = ev.value(cond) if if_unset is None else ev.value_or_unset(cond)
    if if_unset is not None and is_unset(value):
        return ev.value(if_unset)
    return ev.value(if_true if value else if_false)


def _ifset(ev: _Evaluator, name: Node, if_set: Node = None, if_unset: Node | None = None) -> Any:
    is_set = not is_unset(ev.value_or_unset(name))
    if if_set is None:
        return is_set
    if is_set:
        return ev.value(if_set)
    return UNSET if if_unset is None else ev.value(if_unset)


def _cases(ev: _Evaluator, *args: Node) -> Any:
    for cond, value in zip(args[:-1:2], args[1::2], strict=True):
        if ev.value(cond):
            return ev.value(value)
    return ev.value(args[-1])


def _error(ev: _Evaluator, message: Any) -> Any:
    raise FormulaError(f"{message} (ERROR in '{ev.source}')")


def _glob(ev: _Evaluator, pattern: str) -> list[str]:
    return sorted(glob.glob(pattern, root_dir=ev.base_dir))


def _exists(ev: _Evaluator, path: str) -> bool:
    return os.path.exists(os.path.join(ev.base_dir, path))


def _extreme(choose: Callable[..., Any]) -> Callable[..., Any]:
    def pick(ev: _Evaluator, *values: Any) -> Any:
        return choose(values[0] if len(values) == 1 and _is_list(values[0]) else values)

    return pick


def _plain(function: Callable[..., Any]) -> Callable[..., Any]:
    """An eager formula function from one that does not need the evaluator."""
    return lambda ev, *values: function(*values)


FUNCTIONS: dict[str, _Function] = {
    "IF": _Function(_if, lazy=True),
    "IFSET": _Function(_ifset, lazy=True),
    "CASES": _Function(_cases, lazy=True),
    "ERROR": _Function(_error),
    "GLOB": _Function(_glob),
    "EXISTS": _Function(_exists),
    "LEN": _Function(_plain(len)),
    "RANGE": _Function(_plain(lambda *args: list(range(*args)))),
    "MIN": _Function(_extreme(min)),
    "MAX": _Function(_extreme(max)),
    "LIST": _Function(_plain(lambda *values: list(values))),
    "STRIPEXT": _Function(_plain(lambda path: os.path.splitext(path)[0])),
    "STRIP": _Function(_plain(lambda text: text.strip())),
    "BASENAME": _Function(_plain(os.path.basename)),
    "DIRNAME": _Function(_plain(os.path.dirname)),
    "EXTENSION": _Function(_plain(lambda path: os.path.splitext(path)[1])),
}
