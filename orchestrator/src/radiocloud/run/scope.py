"""Parameter values as formulas see them: dotted names as nested mappings, evaluated lazily.

A :class:`Scope` holds the raw values of one recipe or step (``{"flags.restore": "=root.x"}``).
Reading a name evaluates its formula once, against the namespaces the scope was given, so
parameters may refer to each other in any order (``current.label`` inside another parameter);
a formula that needs its own value is reported instead of recursing forever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from radiocloud.run.formula import FormulaError, evaluate


class Scope(Mapping):
    """Lazily evaluated parameter values, addressable by dotted name or as nested mappings."""

    def __init__(
        self,
        raw: Mapping[str, Any],
        namespace: Callable[[], Mapping[str, Any]] | None = None,
        base_dir: str = ".",
    ) -> None:
        self.raw = dict(raw)
        self.namespace = namespace or (lambda: {})
        self.base_dir = base_dir
        self.done: dict[str, Any] = {}
        self.active: list[str] = []

    def value(self, name: str) -> Any:
        """The evaluated value of the parameter ``name`` (``KeyError`` if there is none)."""
        if name in self.done:
            return self.done[name]
        raw = self.raw[name]  # KeyError for an unknown name
        if name in self.active:
            chain = " -> ".join([*self.active[self.active.index(name) :], name])
            raise FormulaError(f"self-referencing formula or substitution ({chain})")
        self.active.append(name)
        try:
            namespace = self.namespace()
            if isinstance(raw, list):
                value = [evaluate(item, namespace, base_dir=self.base_dir) for item in raw]
            else:
                value = evaluate(raw, namespace, base_dir=self.base_dir)
        finally:
            self.active.pop()
        self.done[name] = value
        return value

    def set(self, name: str, value: Any, *, evaluated: bool = True) -> None:
        self.raw[name] = value
        self.done.pop(name, None)
        if evaluated:
            self.done[name] = value

    def values(self) -> dict[str, Any]:  # type: ignore[override]
        """Every parameter, evaluated, by dotted name."""
        return {name: self.value(name) for name in self.raw}

    def view(self, prefix: str = "") -> _View:
        return _View(self, prefix)

    # Mapping protocol: the top level of the nested view
    def __getitem__(self, key: str) -> Any:
        return _View(self, "")[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_View(self, ""))

    def __len__(self) -> int:
        return len(_View(self, ""))


class _View(Mapping):
    """The parameters under ``prefix`` of a :class:`Scope`, as a mapping."""

    def __init__(self, scope: Scope, prefix: str) -> None:
        self.scope = scope
        self.prefix = prefix

    def __getitem__(self, key: str) -> Any:
        name = f"{self.prefix}{key}"
        if name in self.scope.raw:
            return self.scope.value(name)
        if any(n.startswith(f"{name}.") for n in self.scope.raw):
            return _View(self.scope, f"{name}.")
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        name = f"{self.prefix}{key}"
        return name in self.scope.raw or any(n.startswith(f"{name}.") for n in self.scope.raw)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for name in self.scope.raw:
            if name.startswith(self.prefix):
                seen[name[len(self.prefix) :].split(".")[0]] = None
        return iter(seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def nested(flat: Mapping[str, Any]) -> Scope:
    """Already-evaluated dotted values as a scope (for ``steps.<label>`` and ``previous``)."""
    scope = Scope(flat)
    scope.done.update(flat)
    return scope
