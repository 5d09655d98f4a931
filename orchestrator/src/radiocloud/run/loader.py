"""Loading rc-run configuration files, with Stimela2's ``_include``, ``_use`` and ``_scrub``.

:func:`load` reads several YAML files and merges them in order: later files override earlier
ones, mappings merge recursively, any other value (lists included) replaces. Then, in this order:

``_include: FILE`` (or a list, or ``{(package): [FILES], (.): FILE}``), in any mapping
    The files are loaded (with their own includes expanded), merged in order, and the mapping's
    own keys are merged on top. A plain path is relative to the including file, as is
    ``(.)path``; ``(package)path`` names a file shipped inside an installed Python package (a
    namespace package too), found with :func:`importlib.util.find_spec`. A path without a suffix
    that does not exist is tried with ``.yaml`` and ``.yml``. Include cycles are errors.

``_use: dotted.path`` (or a list), in any mapping
    Resolved once every file is loaded and every include expanded, against the whole merged
    configuration: a copy of each named section (itself resolved first, so chains work) is the
    base of the mapping, and the mapping's own keys override it. Unknown paths and cycles are
    errors.

``_scrub: dotted.key`` (or a list), in any mapping
    Removes keys from what the mapping inherits by ``_include`` and ``_use``, not from its own
    keys (scabha's semantics: ``{_use: base, _scrub: foo.x, foo: {x: new}}`` replaces ``foo.x``):
    the keys are dotted paths within the mapping, each segment an :mod:`fnmatch` pattern
    (``'*.dtype'`` drops ``dtype`` from every sub-mapping). Patterns matching nothing are ignored.

Errors are :class:`RecipeError`, one line naming ``file:line`` (of the mapping concerned), the key
path and the fix.
"""

from __future__ import annotations

import contextvars
import copy
import fnmatch
import importlib.util
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import yaml

from radiocloud.core.errors import BadInputError

INCLUDE, USE, SCRUB = "_include", "_use", "_scrub"

_PACKAGE_PATH = re.compile(r"^\((?P<package>[^()]*)\)(?P<path>.+)$")

KeyPath = tuple[str | int, ...]


class RecipeError(BadInputError, ValueError):
    """A configuration file cannot be loaded; the message names the file, the key and the fix."""


class _Node(dict):
    """A mapping read from YAML, remembering where it was written (``file:line``)."""

    origin = "<config>"
    files: tuple[str, ...] = ()  # on the root from load(origins=True): every file read
    own: dict | None = None  # the keys written in the mapping itself, before _include/_use


_READ: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("read", default=None)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """A safe YAML loader whose mappings are ``_Node`` objects."""

    source = "<config>"


def _construct_node(loader: _Loader, node: yaml.MappingNode) -> _Node:
    mapping = _Node(loader.construct_mapping(node, deep=True))
    mapping.origin = f"{loader.source}:{node.start_mark.line + 1}"
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_node)


def load(paths: Iterable[str | Path], *, origins: bool = False) -> dict:
    """Load and merge the configuration files in ``paths`` (later ones win), fully resolved.

    With ``origins``, mappings keep their ``origin`` attribute (``file:line``) for messages.
    """
    config = _Node()
    read: list[str] = []
    token = _READ.set(read)
    try:
        for path in paths:
            config.origin = str(path)
            _merge(config, load_file(path))
    finally:
        _READ.reset(token)
    _UseResolver(config).resolve(())
    if not origins:
        return _plain(config)
    config.files = tuple(read)
    return config


def load_file(path: str | Path, chain: tuple[Path, ...] = ()) -> _Node:
    """One file with its includes expanded, ``_use`` and ``_scrub`` left for :func:`load`.

    ``chain`` lists the files including this one, outermost first, for cycle detection.
    """
    path = Path(os.path.abspath(path))
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain[chain.index(path) :], path))
        _fail(str(chain[-1]), (INCLUDE,), f"include cycle {cycle}", "remove one of the includes")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        where = str(chain[-1]) if chain else str(path)
        _fail(where, (), f"cannot read {path} ({error.strerror})", "check the file name")
    read = _READ.get()
    if read is not None and str(path) not in read:
        read.append(str(path))
    config = _parse(text, str(path))
    if isinstance(config.get("include"), str | list) and INCLUDE not in config:
        config[INCLUDE] = config.pop("include")  # the seed talk's spelling, top level only
    return _expand_includes(config, (), path, (*chain, path))


def resolve_include(spec: str, including_file: Path) -> Path:
    """The file an ``_include`` entry names: ``path``, ``(.)path`` or ``(package)path``."""
    match = _PACKAGE_PATH.match(spec)
    if match and match["package"] not in ("", "."):
        base = _package_dir(match["package"], including_file)
        spec = match["path"]
    else:
        base = including_file.parent
        spec = match["path"] if match else spec
    path = base / spec
    if not path.exists() and not path.suffix:
        for suffix in (".yaml", ".yml"):
            if path.with_suffix(suffix).exists():
                return path.with_suffix(suffix)
    return path


def _package_dir(package: str, including_file: Path) -> Path:
    """The directory of an installed package (a namespace package's first directory)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as error:
        spec, problem = None, str(error)
    else:
        problem = "not installed"
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec is not None and spec.origin:
        return Path(spec.origin).parent
    _fail(
        str(including_file),
        (INCLUDE,),
        f"cannot include from package '{package}' ({problem})",
        "install the package or fix its name",
    )


def _parse(text: str, source: str) -> _Node:
    loader = _Loader(text)
    loader.source = source
    try:
        config = loader.get_single_data()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(error, "problem", None) or " ".join(str(error).split())
        context = getattr(error, "context", None)
        detail = f"{context}: {problem}" if context else problem
        raise RecipeError(f"{where}: invalid YAML ({detail}); fix the syntax") from None
    finally:
        loader.dispose()
    if config is None:
        return _Node()
    if not isinstance(config, _Node):
        _fail(
            source, (), f"top level is not a mapping ({type(config).__name__})", "make it a mapping"
        )
    return config


def _expand_includes(value: Any, keypath: KeyPath, file: Path, chain: tuple[Path, ...]) -> Any:
    """``value`` with every ``_include`` within it merged in."""
    if isinstance(value, list):
        return [_expand_includes(v, (*keypath, i), file, chain) for i, v in enumerate(value)]
    if not isinstance(value, _Node):
        return value
    specs = _include_specs(value.pop(INCLUDE, []), value, (*keypath, INCLUDE))
    for key, child in value.items():
        value[key] = _expand_includes(child, (*keypath, key), file, chain)
    if not specs:
        return value
    merged = _Node()
    merged.origin = value.origin
    merged.own = copy.deepcopy(value)  # for _scrub, which leaves the mapping's own keys alone
    for spec in specs:
        _merge(merged, load_file(resolve_include(spec, file), chain))
    return _merge(merged, value)


def _include_specs(spec: Any, node: _Node, keypath: KeyPath) -> list[str]:
    """An ``_include`` as a list of file specs; the structured form ``{(package): [files],
    (.): file, .: file}`` names each file's location once for several files."""
    if not isinstance(spec, dict):
        return _strings(spec, node, keypath, "file name")
    specs = []
    for where, files in spec.items():
        prefix = "" if where == "." else str(where)
        if prefix and not _PACKAGE_PATH.match(f"{prefix}x"):
            _fail(_origin(node), keypath, f"bad location {where!r}", "use (package), (.) or .")
        specs += [f"{prefix}{name}" for name in _strings(files, node, (*keypath, where), "file")]
    return specs


class _UseResolver:
    """Resolves ``_use`` (and then ``_scrub``) in place, throughout a merged configuration."""

    def __init__(self, root: _Node) -> None:
        self.root = root
        self.done: set[KeyPath] = set()
        self.active: list[KeyPath] = []

    def resolve(self, keypath: KeyPath) -> None:
        """Resolve the value at ``keypath`` and everything within it."""
        if keypath in self.done:
            return
        if keypath in self.active:
            cycle = [*self.active[self.active.index(keypath) :], keypath]
            node = self._get(cycle[-2])
            chain = " -> ".join(_dotted(k) for k in cycle)
            _fail(_origin(node), cycle[-2], f"_use cycle {chain}", "remove one of the _use")
        value = self._get(keypath)
        if not isinstance(value, dict | list):
            return
        self.active.append(keypath)
        if isinstance(value, _Node) and USE in value:
            value = self._apply_use(value, keypath)
            self._set(keypath, value)
        children = value.keys() if isinstance(value, dict) else range(len(value))
        for key in list(children):
            if isinstance(value[key], dict | list):
                self.resolve((*keypath, key))
        if isinstance(value, _Node) and SCRUB in value:
            patterns = _strings(value.pop(SCRUB), value, (*keypath, SCRUB), "dotted key")
            for pattern in patterns:
                _scrub(value, pattern.split("."))
            own = {k: v for k, v in value.own.items() if k not in (INCLUDE, USE, SCRUB)}
            _merge(value, own)  # the mapping's own keys were only to be scrubbed from below
        self.active.pop()
        self.done.add(keypath)

    def _apply_use(self, node: _Node, keypath: KeyPath) -> _Node:
        merged = _Node()
        merged.origin = node.origin
        merged.own = node.own if node.own is not None else copy.deepcopy(node)
        for target in _strings(node.pop(USE), node, (*keypath, USE), "dotted path"):
            section = self._lookup(tuple(target.split(".")), node, keypath)
            _merge(merged, copy.deepcopy(section))
        return _merge(merged, node)

    def _lookup(self, target: KeyPath, user: _Node, keypath: KeyPath) -> _Node:
        """The resolved section at ``target``, which the mapping ``user`` at ``keypath`` uses."""
        value: Any = self.root
        for depth, key in enumerate(target, start=1):
            if not isinstance(value, dict) or key not in value:
                _fail(
                    _origin(user),
                    (*keypath, USE),
                    f"unknown section '{_dotted(target)}'",
                    "name an existing dotted path of the merged configuration",
                )
            if isinstance(value[key], _Node) and USE in value[key]:
                self.resolve(target[:depth])
            value = value[key]
        self.resolve(target)
        value = self._get(target)
        if not isinstance(value, dict):
            _fail(
                _origin(user),
                (*keypath, USE),
                f"section '{_dotted(target)}' is not a mapping ({type(value).__name__})",
                "name a mapping",
            )
        return value

    def _get(self, keypath: KeyPath) -> Any:
        value: Any = self.root
        for key in keypath:
            value = value[key]
        return value

    def _set(self, keypath: KeyPath, value: _Node) -> None:
        if keypath:
            self._get(keypath[:-1])[keypath[-1]] = value
        else:
            self.root = value


def _merge(base: dict, override: dict) -> dict:
    """Merge ``override`` into ``base`` (mappings recursively, other values replace); ``base``."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _scrub(mapping: dict, patterns: list[str]) -> None:
    """Remove the keys matching the dotted ``patterns`` (one fnmatch pattern per level)."""
    first, rest = patterns[0], patterns[1:]
    for key in [k for k in mapping if fnmatch.fnmatchcase(str(k), first)]:
        if not rest:
            del mapping[key]
        elif isinstance(mapping[key], dict):
            _scrub(mapping[key], rest)


def _strings(value: Any, node: _Node, keypath: KeyPath, what: str) -> list[str]:
    """A string-or-list-of-strings directive as a list, or an error naming it."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        _fail(_origin(node), keypath, f"got {value!r}", f"give a {what} or a list of them")
    return values


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_plain(child) for child in value]
    return value


def _origin(value: Any) -> str:
    return getattr(value, "origin", _Node.origin)


def _dotted(keypath: KeyPath) -> str:
    return ".".join(str(key) for key in keypath) or "(top level)"


def _fail(where: str, keypath: KeyPath, problem: str, fix: str) -> NoReturn:
    raise RecipeError(f"{where}: {_dotted(keypath)}: {problem}; {fix}")
