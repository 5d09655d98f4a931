"""Recipes and steps, built from a loaded configuration.

The configuration's top level holds ``cabs``, ``lib`` (``lib.recipes``, ``lib.steps``,
``lib.params``, anything else), ``opts`` and ``vars`` (accepted, unused); every other key is a
recipe. A recipe::

    name-of-recipe:
      info: what it does
      inputs:  {...}                 # radiocloud.run.schema
      outputs: {...}
      aliases: {ms: [image.ms, '(rc-flag).ms', 's[12].column']}
      defaults: {size: 1024, image.niter: 1000}     # recipe inputs or step parameters
      assign: {prefix: 'im-{recipe.band}'}          # recipe variables, set on every run
      assign_based_on: {band: {L: {...}, DEFAULT: {...}}}
      for_loop: {var: band, over: bands, scatter: 2}
      steps:
        image:
          cab: rc-image                 # or recipe: NAME | lib.recipes.NAME | {inline recipe}
          params: {...}
          skip: =recipe.band == "UHF"   # bool or formula
          skip_if_outputs: fresh        # or exist: skip when its outputs are there (and newer)
          tags: [never, imaging]
          info: ...

An input's ``aliases`` (or the ``aliases:`` section) bind it to step parameters: ``step.param``,
``pattern.param`` (fnmatch on step labels) or ``(cab).param`` (every step running that cab).
An alias without a dtype takes the dtype of the parameter it binds. Every parameter of every step
can also be set from above as ``label.param`` (``selfcal.image.niter=10`` reaches two levels down).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from radiocloud.run import backends
from radiocloud.run.cab import Cab, parse_cab
from radiocloud.run.formula import UNSET, FormulaError, is_unset, references
from radiocloud.run.loader import RecipeError
from radiocloud.run.schema import DType, Parameter, check_keys, parse_schema

NON_RECIPE_KEYS = ("cabs", "lib", "opts", "vars", "config")
RECIPE_KEYS = [
    "name",
    "info",
    "inputs",
    "outputs",
    "aliases",
    "defaults",
    "assign",
    "assign_based_on",
    "for_loop",
    "steps",
    "backend",
    "policies",
]
STEP_KEYS = [
    "cab",
    "recipe",
    "params",
    "skip",
    "tags",
    "info",
    "assign",
    "assign_based_on",
    "backend",
    "name",
    "skip_if_outputs",
]
FOR_LOOP_KEYS = ("var", "over", "scatter", "display_status")


@dataclass
class ForLoop:
    var: str
    over: Any  # an input's name, a list, or a formula
    scatter: int = 0  # 0: one at a time, -1: all at once, N: at most N at once


@dataclass
class Step:
    label: str
    origin: str
    cab: Cab | None = None
    recipe: Recipe | None = None
    params: dict[str, Any] = field(default_factory=dict)
    skip: Any = False
    skip_if_outputs: str | None = None  # "exist": skip when they do; "fresh": and are newer
    tags: tuple[str, ...] = ()
    info: str = ""
    assign: dict[str, Any] = field(default_factory=dict)  # recipe variables for this step only
    assign_based_on: dict[str, Any] = field(default_factory=dict)
    backend: dict[str, Any] = field(default_factory=dict)  # merged with the recipes' above

    @property
    def schema(self) -> dict[str, Parameter]:
        return self.cab.params if self.cab else self.recipe.params

    def where(self, fqname: str) -> str:
        return f"{self.origin}: step '{fqname}'"

    def knows(self, name: str) -> bool:
        """Whether ``name`` is a parameter of this step (or of a step nested in it), or a group
        of its parameters (given a mapping: ``imaging: =recipe.imaging``)."""
        if name in self.schema or any(n.startswith(f"{name}.") for n in self.schema):
            return True
        return self.recipe is not None and self.recipe.knows(name)


@dataclass
class Recipe:
    name: str
    origin: str
    info: str = ""
    inputs: dict[str, Parameter] = field(default_factory=dict)
    outputs: dict[str, Parameter] = field(default_factory=dict)
    steps: dict[str, Step] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    assign: dict[str, Any] = field(default_factory=dict)
    assign_based_on: dict[str, Any] = field(default_factory=dict)
    for_loop: ForLoop | None = None
    backend: dict[str, Any] = field(default_factory=dict)  # merged with the recipes' above
    # recipe parameter -> the (step label, step parameter) pairs it is bound to
    bindings: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, Parameter]:
        return {**self.inputs, **self.outputs}

    def knows(self, name: str) -> bool:
        """Whether ``name`` can be set on this recipe: an input, or ``label.param`` of a step."""
        if name in self.params:
            return True
        label, _, rest = name.partition(".")
        return bool(rest) and label in self.steps and self.steps[label].knows(rest)

    def variables(self) -> set[str]:
        """First segments of the names formulas may use under ``recipe.``."""
        names = {n.split(".")[0] for n in self.params}
        names |= _assigned(self.assign, self.assign_based_on)
        for step in self.steps.values():
            names |= _assigned(step.assign, step.assign_based_on)
        if self.for_loop:
            names.add(self.for_loop.var)
        return names | {"for_loop"}


class Configuration:
    """The cabs, library and recipes of a loaded configuration; recipes are built on demand."""

    def __init__(self, config: Mapping) -> None:
        self.config = config
        self.origin = getattr(config, "origin", "<config>")
        cabs = config.get("cabs") or {}
        if not isinstance(cabs, Mapping):
            raise RecipeError(f"{self.origin}: cabs: expected a mapping of cabs; fix it")
        self.cab_specs = cabs
        self.cabs: dict[str, Cab] = {}
        self.lib = config.get("lib") or {}

    def recipe_names(self) -> list[str]:
        return [k for k in self.config if k not in NON_RECIPE_KEYS and not k.startswith("_")]

    def origin_file(self, name: str) -> str:
        """The file in which the top-level section ``name`` was written."""
        return getattr(self.config[name], "origin", "").rsplit(":", 1)[0]

    def cab(self, name: str, where: str) -> Cab:
        if name not in self.cabs:
            if name not in self.cab_specs:
                known = ", ".join(sorted(self.cab_specs)) or "none"
                raise RecipeError(f"{where}: unknown cab '{name}'; define it under cabs: ({known})")
            self.cabs[name] = parse_cab(name, self.cab_specs[name], self.origin)
        return self.cabs[name]

    def recipe(self, name: str) -> Recipe:
        """The top-level recipe ``name``, built and checked."""
        if name not in self.recipe_names():
            known = ", ".join(self.recipe_names()) or "none"
            raise RecipeError(f"{self.origin}: no recipe named '{name}'; choose one of: {known}")
        return self.build(self.config[name], name, ())

    def build(
        self, spec: Any, name: str, chain: tuple[str, ...], backend: Mapping | None = None
    ) -> Recipe:
        """The recipe ``spec``; ``backend`` holds the backend settings of the recipes above."""
        origin = getattr(spec, "origin", self.origin)
        if not isinstance(spec, Mapping):
            raise RecipeError(f"{origin}: {name}: a recipe must be a mapping with steps; fix it")
        check_keys(spec, RECIPE_KEYS, f"{origin}: {name}", "recipe key")
        recipe = Recipe(
            name=str(spec.get("name") or name),
            origin=origin,
            info=str(spec.get("info") or ""),
            inputs=parse_schema(spec.get("inputs"), f"{name}.inputs", origin),
            outputs=parse_schema(spec.get("outputs"), f"{name}.outputs", origin, output=True),
            defaults=flatten(spec.get("defaults") or {}),
            assign=flatten(spec.get("assign") or {}),
            assign_based_on=dict(spec.get("assign_based_on") or {}),
            backend=backends.merge(
                backend, backends.check_settings(spec.get("backend"), f"{origin}: {name}")
            ),
        )
        steps = spec.get("steps") or {}
        if not isinstance(steps, Mapping) or not steps:
            raise RecipeError(f"{origin}: {name}: a recipe needs steps; add a steps: mapping")
        for label, step_spec in steps.items():
            recipe.steps[str(label)] = self._step(
                str(label), step_spec, name, (*chain, name), recipe.backend
            )
        recipe.for_loop = _for_loop(spec.get("for_loop"), origin, name)
        _bind_aliases(recipe, spec.get("aliases") or {}, origin, name)
        _check_references(recipe, name)
        return recipe

    def _step(
        self, label: str, spec: Any, recipe_name: str, chain: tuple[str, ...], backend: Mapping
    ) -> Step:
        fq = f"{recipe_name}.steps.{label}"
        origin = getattr(spec, "origin", self.origin)
        where = f"{origin}: {fq}"
        if not isinstance(spec, Mapping):
            raise RecipeError(f"{where}: a step must be a mapping with a cab or recipe; fix it")
        check_keys(spec, STEP_KEYS, where, "step key")
        if spec.get("skip_if_outputs") not in (None, "exist", "fresh"):
            raise RecipeError(f"{where}: skip_if_outputs must be 'exist' or 'fresh'")
        if ("cab" in spec) == ("recipe" in spec):
            raise RecipeError(f"{where}: give exactly one of 'cab' and 'recipe'")
        tags = spec.get("tags") or ()
        step = Step(
            label=label,
            origin=origin,
            params=flatten(spec.get("params") or {}),
            skip=spec.get("skip", False),
            skip_if_outputs=spec.get("skip_if_outputs"),
            assign=flatten(spec.get("assign") or {}),
            assign_based_on=dict(spec.get("assign_based_on") or {}),
            tags=(tags,) if isinstance(tags, str) else tuple(tags),
            info=str(spec.get("info") or ""),
            backend=backends.merge(backend, backends.check_settings(spec.get("backend"), where)),
        )
        if "cab" in spec:
            cab = spec["cab"]
            step.cab = (
                parse_cab(label, cab, origin)
                if isinstance(cab, Mapping)
                else self.cab(str(cab), where)
            )
        else:
            step.recipe = self._sub_recipe(spec["recipe"], where, fq, chain, step.backend)
        step.params = _regroup(step.params, step)
        for key in step.params:
            if not step.knows(key):
                known = ", ".join(step.schema) or "none"
                raise RecipeError(f"{where}: unknown parameter '{key}'; it takes {known}")
        return step

    def _sub_recipe(
        self, ref: Any, where: str, fq: str, chain: tuple[str, ...], backend: Mapping
    ) -> Recipe:
        if isinstance(ref, Mapping):
            return self.build(ref, fq, chain, backend)
        name = str(ref)
        path = name.split(".")
        if name in self.config and name not in NON_RECIPE_KEYS:
            spec = self.config[name]
        elif name in (self.lib.get("recipes") or {}):
            spec = self.lib["recipes"][name]
        elif path[0] == "lib" and _lookup(self.config, path) is not None:
            spec = _lookup(self.config, path)
        else:
            raise RecipeError(
                f"{where}: unknown recipe '{name}'; name a top-level recipe or one in lib.recipes"
            )
        if name in chain:
            raise RecipeError(f"{where}: recipe '{name}' includes itself; break the cycle")
        return self.build(spec, name, (*chain, name), backend)


def _for_loop(spec: Any, origin: str, name: str) -> ForLoop | None:
    if spec is None:
        return None
    where = f"{origin}: {name}.for_loop"
    if not isinstance(spec, Mapping) or "var" not in spec or "over" not in spec:
        raise RecipeError(f"{where}: needs 'var' and 'over'; e.g. {{var: band, over: bands}}")
    check_keys(spec, FOR_LOOP_KEYS, where, "key")
    scatter = spec.get("scatter", 0)
    if isinstance(scatter, bool) or not isinstance(scatter, int):
        raise RecipeError(f"{where}.scatter: expected an int (-1: all at once), got {scatter!r}")
    return ForLoop(var=str(spec["var"]), over=spec["over"], scatter=scatter)


# ---------------------------------------------------------------------------------- aliases


def _bind_aliases(recipe: Recipe, section: Mapping, origin: str, name: str) -> None:
    """Bind recipe parameters to step parameters, from inputs' ``aliases`` and ``aliases:``."""
    if not isinstance(section, Mapping):
        raise RecipeError(f"{origin}: {name}.aliases: expected a mapping; fix it")
    wanted: dict[str, list[str]] = {}
    for param in recipe.params.values():
        wanted.setdefault(param.name, []).extend(param.aliases)
    for key, targets in flatten(section).items():
        wanted.setdefault(key, []).extend([targets] if isinstance(targets, str) else targets)
    for param_name, targets in wanted.items():
        for target in targets:
            where = f"{origin}: {name}.aliases.{param_name}: '{target}'"
            bound = _targets(recipe, str(target), where)
            recipe.bindings.setdefault(param_name, []).extend(bound)
        _adopt(recipe, param_name, f"{origin}: {name}.aliases.{param_name}")


def _targets(recipe: Recipe, target: str, where: str) -> list[tuple[str, str]]:
    """The (step label, parameter) pairs an alias target names."""
    if target.startswith("("):
        cab_name, _, param = target[1:].partition(")")
        param = param.lstrip(".")
        labels = [
            label for label, step in recipe.steps.items() if step.cab and step.cab.name == cab_name
        ]
        exact = False
    else:
        pattern, _, param = target.partition(".")
        labels = fnmatch.filter(list(recipe.steps), pattern)
        exact = not any(c in pattern for c in "*?[")
        if exact and not labels:
            raise RecipeError(f"{where}: no step '{pattern}'; name a step of this recipe")
    if not param:
        raise RecipeError(f"{where}: expected step.param or (cab).param")
    pairs = [(label, param) for label in labels if recipe.steps[label].knows(param)]
    if exact and not pairs:
        step = recipe.steps[labels[0]]
        known = ", ".join(step.schema) or "none"
        raise RecipeError(f"{where}: step '{labels[0]}' has no parameter '{param}' ({known})")
    return pairs


def _adopt(recipe: Recipe, name: str, where: str) -> None:
    """Give an aliased recipe parameter the dtype (and kind) of the step parameter it binds."""
    pairs = recipe.bindings.get(name) or []
    if not pairs:
        return
    label, param_name = pairs[0]
    target = _param(recipe.steps[label], param_name)
    param = recipe.params.get(name)
    if param is None:
        param = Parameter(name, target.dtype, info=target.info, output=target.output)
        param.policies = {}
        (recipe.outputs if target.output else recipe.inputs)[name] = param
    elif not param.dtype_given:
        param.dtype = target.dtype
    if not param.info:
        param.info = target.info
    if param.must_exist is None:
        param.must_exist = target.must_exist
    unset_everywhere = all(
        is_unset(_param(recipe.steps[lb], pn).default) and pn not in recipe.steps[lb].params
        for lb, pn in pairs
    )
    if target.required and unset_everywhere and is_unset(param.default):
        param.required = True
    if target.output and not param.output:
        raise RecipeError(f"{where}: input '{name}' is bound to output {label}.{param_name}")


def _param(step: Step, name: str) -> Parameter:
    if name in step.schema:
        return step.schema[name]
    label, _, rest = name.partition(".")
    return _param(step.recipe.steps[label], rest)


# ---------------------------------------------------------------------------------- checks


def _check_references(recipe: Recipe, name: str) -> None:
    """Formulas may only name steps of this recipe and its own variables (both IF branches)."""
    variables = recipe.variables()
    labels = list(recipe.steps)
    for label, step in recipe.steps.items():
        values = [("skip", step.skip), *((f"params.{k}", v) for k, v in step.params.items())]
        for key, value in values:
            for ref in _references(value, f"{step.origin}: {name}.steps.{label}.{key}"):
                root, _, rest = ref.partition(".")
                first = rest.split(".")[0]
                where = f"{step.origin}: {name}.steps.{label}.{key}"
                if root == "steps" and first not in labels:
                    raise RecipeError(
                        f"{where}: refers to unknown step '{first}' ({ref}); "
                        f"steps are: {', '.join(labels)}"
                    )
                if root == "recipe" and first not in variables:
                    raise RecipeError(
                        f"{where}: refers to unknown recipe parameter '{first}' ({ref}); "
                        "declare it under inputs or assign"
                    )


def _references(value: Any, where: str) -> list[str]:
    if isinstance(value, Mapping):
        return [r for v in value.values() for r in _references(v, where)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v, where)]
    if not isinstance(value, str):
        return []
    try:
        return references(value)
    except FormulaError as error:
        raise RecipeError(f"{where}: {error}; fix the formula") from None


# ---------------------------------------------------------------------------------- helpers


def _assigned(assign: Mapping, assign_based_on: Mapping) -> set[str]:
    """The first segments of the variables ``assign`` and ``assign_based_on`` set."""
    names = {n.split(".")[0] for n in assign}
    for cases in assign_based_on.values():
        for assignments in (cases or {}).values():
            names |= {n.split(".")[0] for n in flatten(assignments or {})}
    return names


def flatten(mapping: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (``{a: {b: 1}}`` -> ``{"a.b": 1}``); not a mapping: {}."""
    if not isinstance(mapping, Mapping):
        return {}
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _regroup(params: dict[str, Any], step: Step) -> dict[str, Any]:
    """Undo :func:`flatten` where a parameter itself takes a mapping (a Dict or Any)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        parts = key.split(".")
        for cut in range(1, len(parts)):
            head = ".".join(parts[:cut])
            param = step.schema.get(head)
            if param is not None and param.dtype.name in ("Dict", "Any"):
                out.setdefault(head, {})
                _set_nested(out[head], parts[cut:], value)
                break
        else:
            out[key] = value
    return out


def _set_nested(mapping: dict, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        mapping = mapping.setdefault(key, {})
    mapping[keys[-1]] = value


def _lookup(config: Mapping, path: list[str]) -> Any:
    value: Any = config
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


__all__ = ["UNSET", "Configuration", "DType", "ForLoop", "Recipe", "Step", "is_unset"]
