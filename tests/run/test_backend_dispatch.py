"""How rc-run chooses a step's backend and what it tells it: ``backend:`` sections merged from
the outer recipe down to the step, ``--backend`` over all of them, the step's paths (read or
written) and image, and backend problems reported while validating, before anything runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from radiocloud.run import backends
from radiocloud.run.backends import DataPath, Dispatch
from radiocloud.run.loader import RecipeError, load
from radiocloud.run.recipe import Configuration
from radiocloud.run.runner import Walk
from radiocloud.run.selection import Selection

RECIPE = """
cabs:
  copy:
    command: cp
    image: example.org/tools:1.2
    inputs:
      src: {dtype: File, required: true, policies: {positional: true}}
    outputs:
      dst: {dtype: File, required: true, policies: {positional: true}}
  inner-copy:
    command: cp
    image: {name: example.org/other, version: "3"}
    inputs:
      src: {dtype: File, required: true, policies: {positional: true}}
    outputs:
      dst: {dtype: File, required: true, policies: {positional: true}}

sub:
  backend:
    kube: {namespace: inner}
  inputs:
    src: {dtype: File}
  steps:
    c:
      cab: inner-copy
      params: {src: =recipe.src, dst: c.txt}
      backend:
        kube: {service_account: runner}

main:
  backend:
    select: kube
    kube: {namespace: outer, node_selector: {pool: compute}}
  steps:
    a:
      cab: copy
      params: {src: in.txt, dst: a.txt}
      backend: {select: native}
    b:
      recipe: sub
      params: {src: a.txt}
"""


class _Recorder:
    """A backend module stand-in: notes each step it is asked about, and finds a problem
    with every step whose command is ``cp`` when ``refuse`` is set."""

    def __init__(self, refuse: bool = False) -> None:
        self.seen: list = []
        self.refuse = refuse

    def check(self, step) -> list[str]:
        self.seen.append(step)
        return ["no engine here; install one"] if self.refuse else []


@pytest.fixture
def config(tmp_path: Path) -> Configuration:
    (tmp_path / "in.txt").write_text("x\n")
    path = tmp_path / "r.yml"
    path.write_text(textwrap.dedent(RECIPE).replace("in.txt", str(tmp_path / "in.txt")))
    return Configuration(load([str(path)]))


def _validate(config: Configuration, dispatch: Dispatch) -> Walk:
    walk = Walk(dry=True, selection=Selection(), dispatch=dispatch)
    walk.recipe(config.recipe("main"), {}, "main", walk.selection)
    return walk


def test_settings_merge_from_the_outer_recipe_to_the_step(config: Configuration) -> None:
    recipe = config.recipe("main")
    a, b = recipe.steps["a"], recipe.steps["b"]
    assert a.backend == {
        "select": "native",
        "kube": {"namespace": "outer", "node_selector": {"pool": "compute"}},
    }
    c = b.recipe.steps["c"]
    assert c.backend == {
        "select": "kube",
        "kube": {"namespace": "inner", "node_selector": {"pool": "compute"},
                 "service_account": "runner"},
    }  # fmt: skip


def test_each_step_goes_to_its_backend_with_its_paths_and_image(
    config: Configuration, monkeypatch
) -> None:
    modules = {"native": _Recorder(), "kube": _Recorder()}
    monkeypatch.setattr(backends, "get", lambda name: modules[name])
    walk = _validate(config, Dispatch())
    assert not walk.problems
    (a,), (c,) = modules["native"].seen, modules["kube"].seen
    assert (a.fq, a.cab, a.command, a.image) == ("main.a", "copy", "cp", "example.org/tools:1.2")
    assert a.paths[1:] == (DataPath("a.txt", written=True),)
    assert not a.paths[0].written
    assert a.paths[0].path.endswith("in.txt")
    assert (c.fq, c.image) == ("main.b.c", "example.org/other:3")
    assert c.paths == (DataPath("a.txt", written=False), DataPath("c.txt", written=True))
    assert c.options["service_account"] == "runner"


def test_the_command_line_backend_overrides_every_select(
    config: Configuration, monkeypatch
) -> None:
    modules = {"native": _Recorder(), "kube": _Recorder()}
    monkeypatch.setattr(backends, "get", lambda name: modules[name])
    _validate(config, Dispatch("native"))
    assert [s.fq for s in modules["native"].seen] == ["main.a", "main.b.c"]
    assert not modules["kube"].seen


def test_backend_problems_are_found_while_validating(config: Configuration, monkeypatch) -> None:
    refusing = _Recorder(refuse=True)
    monkeypatch.setattr(backends, "get", lambda name: refusing)
    walk = _validate(config, Dispatch())
    assert len(walk.problems) == 2
    assert all(p.endswith("no engine here; install one") for p in walk.problems)
    assert "step 'main.a'" in walk.problems[0]
    assert "step 'main.b.c'" in walk.problems[1]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("backend: podman", "expected a mapping"),
        ("backend: {select: singularity}", "names no backend rc-run has"),
        ("backend: {select: native, kubernetes: {}}", "unknown key 'kubernetes'"),
        ("backend: {kube: 3}", "backend.kube: expected a mapping"),
    ],
)
def test_bad_backend_sections_are_one_line(tmp_path: Path, section: str, message: str) -> None:
    path = tmp_path / "r.yml"
    path.write_text(f"main:\n  {section}\n  steps:\n    a: {{cab: {{command: 'true'}}}}\n")
    with pytest.raises(RecipeError, match=message) as caught:
        Configuration(load([str(path)])).recipe("main")
    assert "\n" not in str(caught.value)


def test_stimela_select_lists_take_the_first_backend_rc_run_has(tmp_path: Path) -> None:
    path = tmp_path / "r.yml"
    path.write_text(
        "main:\n  backend: {select: [singularity, kube, native], variety: big}\n"
        "  steps:\n    a: {cab: {command: 'true'}}\n"
    )
    assert Configuration(load([str(path)])).recipe("main").steps["a"].backend == {"select": "kube"}


def test_an_unknown_backend_on_the_command_line_stops_rc_run(cli) -> None:
    cli.recipe("main:\n  steps:\n    a: {cab: ok}\n")
    assert "invalid choice: 'docker'" in cli.fails("r.yml", "--backend", "docker")
