"""Which steps run: tags, step ranges and skips, decided level by level down nested recipes.

Without options every step runs except those tagged ``never`` (and those whose ``skip`` holds).
``--tags t`` runs the steps tagged ``t`` or ``always``, with everything inside them (except
``never``), and enters a sub-recipe that holds a ``t`` step somewhere to run just those.
``--step`` names steps or ranges at any depth: ``image``, ``flag:image`` (inclusive), ``image:``,
``:image``, ``selfcal.predict`` (only ``predict`` inside ``selfcal``), ``selfcal.a:b``. Named
steps run even when tagged ``never``. ``--skip-step`` and ``--skip-tags`` take steps out last.
"""

from __future__ import annotations

from dataclasses import dataclass

from radiocloud.core.errors import BadInputError
from radiocloud.run.recipe import Recipe, Step


@dataclass(frozen=True)
class Selection:
    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    steps: tuple[str, ...] = ()
    skip_steps: tuple[str, ...] = ()
    everything: bool = False  # inside a step chosen as a whole: all but `never`
    nothing: bool = False  # inside a step that does not run: every step only evaluated

    def plan(self, recipe: Recipe, fqname: str) -> dict[str, tuple[bool, str, Selection]]:
        """For each step label: (runs?, why not, the selection inside it)."""
        if self.nothing:
            return {label: (False, "its recipe step is skipped", self) for label in recipe.steps}
        labels = list(recipe.steps)
        chosen, inner = self._ranges(labels, fqname)
        skipped = {s for s in self.skip_steps if "." not in s}
        for name in skipped - set(labels):
            raise BadInputError(_unknown(name, fqname, labels, "--skip-step"))
        plan = {}
        for label, step in recipe.steps.items():
            skip_inner = tuple(
                s.split(".", 1)[1] for s in self.skip_steps if s.startswith(f"{label}.")
            )
            base = Selection(skip_tags=self.skip_tags, skip_steps=skip_inner)
            if label in skipped:
                plan[label] = (False, "--skip-step", base)
            elif set(step.tags) & self.skip_tags:
                plan[label] = (False, "--skip-tags", base)
            elif self.steps:
                if label in chosen:
                    plan[label] = (True, "", _with(base, everything=True))
                elif label in inner:
                    plan[label] = (True, "", _with(base, steps=tuple(inner[label])))
                else:
                    plan[label] = (False, "not selected by --step", base)
            elif self.tags and not self.everything:
                if set(step.tags) & (self.tags | {"always"}):
                    plan[label] = (True, "", _with(base, everything=True))
                elif step.recipe and _holds_tag(step, self.tags):
                    plan[label] = (True, "", _with(base, tags=self.tags))
                else:
                    plan[label] = (False, "not tagged " + "/".join(sorted(self.tags)), base)
            elif "never" in step.tags:
                plan[label] = (False, "tagged never", base)
            else:
                plan[label] = (True, "", _with(base, everything=self.everything, tags=self.tags))
        return plan

    def _ranges(self, labels: list[str], fqname: str) -> tuple[set[str], dict[str, list[str]]]:
        chosen: set[str] = set()
        inner: dict[str, list[str]] = {}
        for spec in self.steps:
            first, colon, last = spec.partition(":")
            if not colon:
                last = first
            head = (first or last).split(".")[0]
            if "." in (first or last):
                if head not in labels:
                    raise BadInputError(_unknown(head, fqname, labels, "--step"))
                first_in = first.split(".", 1)[1] if first else ""
                last_in = last.split(".", 1)[1] if last.startswith(f"{head}.") else last
                inner.setdefault(head, []).append(f"{first_in}:{last_in}" if colon else first_in)
                continue
            for name in (first, last):
                if name and name not in labels:
                    raise BadInputError(_unknown(name, fqname, labels, "--step"))
            start = labels.index(first) if first else 0
            stop = labels.index(last) if last else len(labels) - 1
            if start > stop:
                raise BadInputError(f"--step {spec}: '{first}' comes after '{last}' in {fqname}")
            chosen.update(labels[start : stop + 1])
        return chosen, inner


def _with(selection: Selection, **changes: object) -> Selection:
    values = {
        "tags": selection.tags,
        "skip_tags": selection.skip_tags,
        "steps": selection.steps,
        "skip_steps": selection.skip_steps,
        "everything": selection.everything,
    }
    values.update(changes)
    return Selection(**values)  # type: ignore[arg-type]


def _holds_tag(step: Step, tags: frozenset[str]) -> bool:
    return any(
        set(inner.tags) & tags or (inner.recipe is not None and _holds_tag(inner, tags))
        for inner in step.recipe.steps.values()
    )


def _unknown(name: str, fqname: str, labels: list[str], option: str) -> str:
    return f"{option}: no step '{name}' in {fqname}; its steps are: {', '.join(labels)}"
