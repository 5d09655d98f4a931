"""The syntax of rc-run formulas: errors, the AST, the tokenizer, the parser and templates.

A parameter value that is a string starting with ``=`` is a formula (``==`` at the start escapes
a literal ``=``); any other string may hold ``{name.path}`` or ``{name.path:format}``
substitutions (``{{``/``}}`` escape braces). :func:`parse` turns either into a small AST of
frozen dataclasses, by a regex tokenizer and a recursive-descent parser: nothing is ever handed
to Python's own compiler. :mod:`radiocloud.run.formula` evaluates the AST.

Grammar, loosest binding first (Python's precedence and associativity)::

    or  →  and  →  not  →  == != < <= > >= (chained)  →  + -  →  * / // %
        →  unary - +  →  ** (right-assoc.; its right operand may carry a unary sign)
        →  name path, call, literal, ( expr ), [ list ]

A name path is a name, then ``.field`` segments and ``[expr]`` subscripts. Segments after the
first dot may contain hyphens (``recipe.init-flags``), so write ``recipe.n - 1`` with spaces to
subtract. A call names one of :data:`SIGNATURES`; its name and number of arguments are checked
here, at parse time, so a recipe can be validated before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from radiocloud.core.errors import BadInputError


class FormulaError(BadInputError, ValueError):
    """A formula cannot be parsed or evaluated; the message names the formula."""


class UnknownNameError(FormulaError, LookupError):
    """A formula refers to a name that is not in its namespace (``key``, missing from
    ``container``, when a path step is what is missing)."""

    container: object = None
    key: object = None


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

# -------------------------------------------------------------------------- function signatures


@dataclass(frozen=True)
class Signature:
    """How many arguments a formula function takes; formula.FUNCTIONS implements each one."""

    min_args: int
    max_args: int | None  # None: any number
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


SIGNATURES: dict[str, Signature] = {
    "IF": Signature(3, 4),
    "IFSET": Signature(1, 3),
    "CASES": Signature(1, None, odd=True),
    "ERROR": Signature(1, 1),
    "GLOB": Signature(1, 1),
    "EXISTS": Signature(1, 1),
    "LEN": Signature(1, 1),
    "RANGE": Signature(1, 3),
    "MIN": Signature(1, None),
    "MAX": Signature(1, None),
    "LIST": Signature(0, None),
    "STRIPEXT": Signature(1, 1),
    "STRIP": Signature(1, 1),
    "BASENAME": Signature(1, 1),
    "DIRNAME": Signature(1, 1),
    "EXTENSION": Signature(1, 1),
}


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
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


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
        while self._peek().kind == "op" and self._peek().text in _COMPARISONS:
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
        signature = SIGNATURES.get(name.text)
        if signature is None:
            raise FormulaError(
                f"unknown function {name.text!r} at column {name.start + 1} in '{self.source}'; "
                f"valid functions: {', '.join(sorted(SIGNATURES))}"
            )
        self._next()
        args = self._arguments(")")
        problem = signature.arity_problem(len(args))
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
