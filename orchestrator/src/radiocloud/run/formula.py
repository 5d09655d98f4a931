"""Safe formulas of rc-run recipes, with Stimela2's semantics.

A parameter value that is a string starting with ``=`` is a formula (``==`` at the start escapes
a literal ``=``); any other string may hold ``{name.path}`` substitutions (``{{``/``}}`` escape
braces). Formulas are tokenized and parsed by recursive descent into a small AST, then walked by
an evaluator: nothing is ever handed to Python's own compiler.

Grammar, loosest binding first (Python's precedence and associativity)::

    or  →  and  →  not  →  == != < <= > >= (chained)  →  + -  →  * / // %
        →  unary - +  →  ** (right-assoc.; its right operand may carry a unary sign)
        →  name path, call, literal, ( expr ), [ list ]

Name resolution: a name whose first segment is one of :data:`NAMESPACES` (``recipe.x``,
``steps.image-0.prefix``, ...) is looked up in that namespace of the mapping given to
:func:`evaluate`; any other bare name is looked up in ``current``, then in ``recipe``.
Path segments after the first dot may contain hyphens (``recipe.init-flags``), so write
``recipe.n - 1`` with spaces to subtract. ``[expr]`` subscripts index lists and mappings.
"""

from __future__ import annotations

import glob
import operator
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from radiocloud.core.errors import BadInputError

NAMESPACES = ("recipe", "root", "steps", "previous", "current", "info", "self")
BARE_NAME_SCOPES = ("current", "recipe")


class FormulaError(BadInputError, ValueError):
    """A formula cannot be parsed or evaluated; the message names the formula."""


class UnknownNameError(FormulaError, LookupError):
    """A formula refers to a name that is not in its namespace."""


class _Unset:
    """The value of a parameter that was never given (falsy, a singleton)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


def is_unset(value: Any) -> bool:
    return value is None or value is UNSET


# ---------------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class ListExpr:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Ref:
    """A name path: ``root`` then field names (str) and subscripts (Node); ``text`` as written."""

    root: str
    path: tuple[str | Node, ...]
    text: str

    @property
    def name(self) -> str:
        """The dotted name up to the first subscript, e.g. ``recipe.init-model.prefix``."""
        fields = [self.root]
        for step in self.path:
            if not isinstance(step, str):
                break
            fields.append(step)
        return ".".join(fields)


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class BoolOp:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare:
    first: Node
    rest: tuple[tuple[str, Node], ...]


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Template:
    """A string with ``{name}`` or ``{name:format}`` substitutions: literal text and Fields."""

    parts: tuple[str | Field, ...]


@dataclass(frozen=True)
class Field:
    """One substitution: a name and a Python format spec (``02d``, or empty)."""

    ref: Ref
    spec: str = ""


Node = Literal | ListExpr | Ref | Unary | Binary | BoolOp | Compare | Call | Template | Field

# ---------------------------------------------------------------------------------- tokenizer

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
   |(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
   |(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
   |(?P<name>[A-Za-z_]\w*(?:\.\w+(?:-\w+)*)*)
   |(?P<field>\.\w+(?:-\w+)*)
   |(?P<op>\*\*|//|==|!=|<=|>=|[-+*/%<>()\[\],])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t"}
_KEYWORDS = {"and", "or", "not"}
_CONSTANTS = {"True": True, "False": False, "None": None}
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


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, name, field, op, end
    text: str
    start: int  # offset in the whole source
    end: int


def _tokenize(source: str, start: int, end: int) -> list[_Token]:
    tokens = []
    pos = start
    while pos < end:
        match = _TOKEN.match(source, pos, end)
        if match is None:
            problem = (
                "unterminated string" if source[pos] in "'\"" else f"unexpected {source[pos]!r}"
            )
            raise FormulaError(f"{problem} at column {pos + 1} in '{source}'")
        if match.lastgroup != "space":
            tokens.append(_Token(match.lastgroup, match.group(), pos, match.end()))
        pos = match.end()
    tokens.append(_Token("end", "", end, end))
    return tokens


# ------------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, source: str, start: int, end: int):
        self.source = source
        self.tokens = _tokenize(source, start, end)
        self.pos = 0

    def parse(self) -> Node:
        if self.tokens[0].kind == "end":
            raise FormulaError(f"empty formula '{self.source}'")
        node = self._or()
        self._expect("")
        return node

    # -- helpers
    def _peek(self) -> _Token:
        return self.tokens[self.pos]

    def _at(self, *texts: str) -> bool:
        token = self._peek()
        return token.kind in ("op", "name") and token.text in texts

    def _next(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _expect(self, text: str) -> _Token:
        token = self._peek()
        if token.text != text or (text == "" and token.kind != "end"):
            raise self._unexpected(token)
        return self._next()

    def _unexpected(self, token: _Token) -> FormulaError:
        what = "end of formula" if token.kind == "end" else repr(token.text)
        return FormulaError(f"unexpected {what} at column {token.start + 1} in '{self.source}'")

    # -- precedence levels, loosest first
    def _or(self) -> Node:
        node = self._and()
        while self._at("or"):
            self._next()
            node = BoolOp("or", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._not()
        while self._at("and"):
            self._next()
            node = BoolOp("and", node, self._not())
        return node

    def _not(self) -> Node:
        if self._at("not"):
            self._next()
            return Unary("not", self._not())
        return self._comparison()

    def _comparison(self) -> Node:
        first = self._sum()
        rest = []
        while self._peek().kind == "op" and self._peek().text in _COMPARE:
            rest.append((self._next().text, self._sum()))
        return Compare(first, tuple(rest)) if rest else first

    def _sum(self) -> Node:
        node = self._term()
        while self._peek().kind == "op" and self._peek().text in ("+", "-"):
            node = Binary(self._next().text, node, self._term())
        return node

    def _term(self) -> Node:
        node = self._unary()
        while self._peek().kind == "op" and self._peek().text in ("*", "/", "//", "%"):
            node = Binary(self._next().text, node, self._unary())
        return node

    def _unary(self) -> Node:
        if self._peek().kind == "op" and self._peek().text in ("-", "+"):
            return Unary(self._next().text, self._unary())
        return self._power()

    def _power(self) -> Node:
        base = self._primary()
        if self._peek().kind == "op" and self._peek().text == "**":
            self._next()
            return Binary("**", base, self._unary())
        return base

    def _primary(self) -> Node:
        token = self._next()
        if token.kind == "number":
            is_float = any(c in token.text for c in ".eE")
            return Literal(float(token.text) if is_float else int(token.text))
        if token.kind == "string":
            body = token.text[1:-1]
            return Literal(re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[1]), body))
        if token.kind == "name" and token.text not in _KEYWORDS:
            if token.text in _CONSTANTS:
                return Literal(_CONSTANTS[token.text])
            if self._at("("):
                return self._call(token)
            return self._reference(token)
        if token.text == "(":
            node = self._or()
            self._expect(")")
            return node
        if token.text == "[":
            return ListExpr(self._arguments("]"))
        raise self._unexpected(token)

    def _arguments(self, closing: str) -> tuple[Node, ...]:
        args = []
        while not self._at(closing):
            args.append(self._or())
            if not self._at(closing):
                self._expect(",")
        self._next()
        return tuple(args)

    def _call(self, name: _Token) -> Call:
        function = FUNCTIONS.get(name.text)
        if function is None:
            raise FormulaError(
                f"unknown function {name.text!r} at column {name.start + 1} in '{self.source}'; "
                f"valid functions: {', '.join(sorted(FUNCTIONS))}"
            )
        self._next()
        args = self._arguments(")")
        problem = function.arity_problem(len(args))
        if problem:
            raise FormulaError(
                f"{name.text} {problem}, got {len(args)} at column {name.start + 1} "
                f"in '{self.source}'"
            )
        return Call(name.text, args)

    def _reference(self, token: _Token) -> Ref:
        root, *fields = token.text.split(".")
        path: list[str | Node] = list(fields)
        end = token.end
        while self._peek().kind == "field" or self._at("["):
            step = self._next()
            if step.kind == "field":
                path.append(step.text[1:])
                end = step.end
            else:
                path.append(self._or())
                end = self._expect("]").end
        return Ref(root, tuple(path), self.source[token.start : end])


# ---------------------------------------------------------------------------------- templates

_BRACES = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def _parse_template(text: str) -> Node:
    parts: list[str | Field] = []
    literal = []
    pos = 0
    for match in _BRACES.finditer(text):
        literal.append(text[pos : match.start()])
        pos = match.end()
        if match.group() in ("{{", "}}"):
            literal.append(match.group()[0])
        elif match.group(1) is None:
            raise FormulaError(
                f"unmatched {match.group()!r} at column {match.start() + 1} in '{text}' "
                "(write '{{' or '}}' for a literal brace)"
            )
        else:
            inner = match.group(1)
            colon = inner.find(":")
            end = match.end(1) if colon < 0 else match.start(1) + colon
            node = _Parser(text, match.start(1), end).parse()
            if not isinstance(node, Ref):
                raise FormulaError(
                    f"only names can be substituted, not {match.group()!r} in '{text}'"
                )
            parts.extend(["".join(literal), Field(node, "" if colon < 0 else inner[colon + 1 :])])
            literal = []
    literal.append(text[pos:])
    parts.append("".join(literal))
    if len(parts) == 1:
        return Literal(parts[0])
    return Template(tuple(part for part in parts if part != ""))


# ---------------------------------------------------------------------------------- public API


def parse(text: str) -> Node:
    """Parse a parameter string: a ``=`` formula, a ``{}`` template, or a plain literal.

    Raises :class:`FormulaError` on a syntax error, an unknown function or a wrong number of
    arguments, so a recipe can be validated before anything runs.
    """
    if text.startswith("=="):
        return Literal(text[1:])
    if text.startswith("="):
        return _Parser(text, 1, len(text)).parse()
    return _parse_template(text)


def references(text: str) -> list[str]:
    """The dotted names a parameter string refers to, in order of first appearance."""
    names: dict[str, None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, Ref):
            names[node.name] = None
        if isinstance(node, tuple | list):
            for item in node:
                walk(item)
        elif isinstance(node, Node):
            for value in vars(node).values():
                walk(value)

    walk(parse(text))
    return list(names)


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
                raise self._unknown(ref, f"'{where}' has no {key!r}")
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
    impl: Callable[..., Any]
    min_args: int
    max_args: int | None  # None: any number
    lazy: bool = False  # impl gets the evaluator and the unevaluated argument nodes
    odd: bool = False  # the number of arguments must be odd

    def arity_problem(self, count: int) -> str | None:
        if self.odd and count % 2 == 0:
            return "takes an odd number of arguments (condition, value pairs, then a default)"
        if count < self.min_args or (self.max_args is not None and count > self.max_args):
            if self.max_args is None:
                return f"takes at least {self.min_args} argument(s)"
            if self.min_args == self.max_args:
                return f"takes {self.min_args} argument(s)"
            return f"takes {self.min_args} to {self.max_args} arguments"
        return None


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
    "IF": _Function(_if, 3, 4, lazy=True),
    "IFSET": _Function(_ifset, 1, 3, lazy=True),
    "CASES": _Function(_cases, 1, None, lazy=True, odd=True),
    "ERROR": _Function(_error, 1, 1),
    "GLOB": _Function(_glob, 1, 1),
    "EXISTS": _Function(_exists, 1, 1),
    "LEN": _Function(_plain(len), 1, 1),
    "RANGE": _Function(_plain(lambda *args: list(range(*args))), 1, 3),
    "MIN": _Function(_extreme(min), 1, None),
    "MAX": _Function(_extreme(max), 1, None),
    "LIST": _Function(_plain(lambda *values: list(values)), 0, None),
    "STRIPEXT": _Function(_plain(lambda path: os.path.splitext(path)[0]), 1, 1),
    "STRIP": _Function(_plain(lambda text: text.strip()), 1, 1),
    "BASENAME": _Function(_plain(os.path.basename), 1, 1),
    "DIRNAME": _Function(_plain(os.path.dirname), 1, 1),
    "EXTENSION": _Function(_plain(lambda path: os.path.splitext(path)[1]), 1, 1),
}
