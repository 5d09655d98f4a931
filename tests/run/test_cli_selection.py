"""rc-run end to end: which steps run (tags, --step, --skip-step, skip), loops and scatter.

Each step appends its own name to out.txt, so the file lists the steps that ran, in order.
The cabs are in conftest.py.
"""

from __future__ import annotations

import pytest

SELECTABLE = """
main:
  steps:
    a: {cab: append, params: {text: a}}
    b: {cab: append, params: {text: b}, tags: [never, extra]}
    c: {cab: append, params: {text: c}, tags: [always]}
    d: {cab: append, params: {text: d}, tags: [extra]}
    e: {cab: append, params: {text: e}, skip: true}
    sub:
      recipe:
        steps:
          inner1: {cab: append, params: {text: sub.inner1}}
          inner2: {cab: append, params: {text: sub.inner2}, tags: [deep]}
    f: {cab: append, params: {text: f}}
"""


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ((), ["a", "c", "d", "sub.inner1", "sub.inner2", "f"]),
        (("--tags", "extra"), ["b", "c", "d"]),
        (("--tags", "deep"), ["c", "sub.inner2"]),
        (("--tags", "extra,deep"), ["b", "c", "d", "sub.inner2"]),
        (("--skip-tags", "extra"), ["a", "c", "sub.inner1", "sub.inner2", "f"]),
        (("--skip-tags", "deep"), ["a", "c", "d", "sub.inner1", "f"]),
        (("--step", "a"), ["a"]),
        (("--step", "b"), ["b"]),  # named: runs although tagged never
        (("--step", "c:d"), ["c", "d"]),
        (("--step", "a", "--step", "f"), ["a", "f"]),
        (("--step", "a,f"), ["a", "f"]),
        (("--step", "sub"), ["sub.inner1", "sub.inner2"]),
        (("--step", "sub.inner2"), ["sub.inner2"]),
        (("--step", "d:e"), ["d"]),  # skip: true holds even for a named step
        (("--skip-step", "a"), ["c", "d", "sub.inner1", "sub.inner2", "f"]),
        (("--skip-step", "sub.inner1"), ["a", "c", "d", "sub.inner2", "f"]),
        (("--step", "c:sub", "--skip-step", "d"), ["c", "sub.inner1", "sub.inner2"]),
    ],
)
def test_step_selection(cli, options: tuple[str, ...], expected: list[str]) -> None:
    cli.recipe(SELECTABLE)
    cli.ok("r.yml", *options)
    assert cli.lines() == expected


@pytest.mark.parametrize(
    ("option", "name"),
    [("--step", "nosuch"), ("--step", "a:nosuch"), ("--skip-step", "nosuch"), ("--step", "z.a")],
)
def test_unknown_step_is_refused_before_anything_runs(cli, option: str, name: str) -> None:
    cli.recipe(SELECTABLE)
    stderr = cli.fails("r.yml", option, name)
    assert "no step" in stderr
    assert name.split(":")[-1].split(".")[0] in stderr
    assert cli.lines() == []


def test_step_range_in_the_wrong_order_is_refused(cli) -> None:
    cli.recipe(SELECTABLE)
    stderr = cli.fails("r.yml", "--step", "d:a")
    assert "'d' comes after 'a'" in stderr
    assert cli.lines() == []


def test_skipped_step_is_not_validated_for_files_it_needs(cli) -> None:
    # a step skipped by `skip: true` is not checked for an input file that does not exist
    cli.recipe(
        """
        main:
          steps:
            a: {cab: append, params: {text: a}}
            old: {cab: cat, params: {file: absent.txt}, skip: true}
        """
    )
    cli.ok("r.yml")
    assert cli.lines() == ["a"]


def test_selected_step_sees_steps_of_unselected_ones(cli) -> None:
    cli.recipe(
        """
        main:
          steps:
            a: {cab: append, params: {text: from-a}}
            b: {cab: append, params: {text: b}}
            c: {cab: append, params: {text: "c {steps.a.text}"}}
        """
    )
    cli.ok("r.yml", "--step", "c")
    assert cli.lines() == ["c from-a"]


@pytest.mark.parametrize("options", [("--step", "b"), ("--tags", "x")])
def test_selected_step_sees_previous_of_an_unselected_one(cli, options) -> None:
    cli.recipe(
        """
        main:
          steps:
            a: {cab: append, params: {text: from-a}}
            b: {cab: append, params: {text: "b {previous.text}"}, tags: [x]}
        """
    )
    cli.ok("r.yml", *options)
    assert cli.lines() == ["b from-a"]


def test_selected_step_sees_the_outputs_of_an_unselected_sub_recipe(cli) -> None:
    cli.recipe(
        """
        lib:
          recipes:
            round:
              inputs:
                label: {dtype: str, required: true}
              outputs:
                note: {dtype: str, aliases: [say.text]}
              steps:
                say: {cab: append, params: {text: "note-{recipe.label}"}}
        main:
          steps:
            first: {recipe: round, params: {label: one}}
            second: {cab: append, params: {text: "got {previous.note}"}}
        """
    )
    cli.ok("r.yml", "--step", "second")
    assert cli.lines() == ["got note-one"]


def test_selected_step_needing_a_file_only_an_unselected_step_makes_is_refused(cli) -> None:
    cli.recipe(
        """
        main:
          steps:
            make: {cab: write, params: {file: made.txt}}
            show: {cab: cat, params: {file: made.txt}}
        """
    )
    stderr = cli.fails("r.yml", "--step", "show")
    assert "main.show" in stderr
    assert "'made.txt' does not exist and no earlier step produces it" in stderr
    cli.ok("r.yml", "--step", "make:show")
    assert (cli.root / "made.txt").exists()


# ---------------------------------------------------------------------------------- loops


def test_for_loop_over_an_input_list(cli) -> None:
    cli.recipe(
        """
        main:
          inputs:
            bands: {dtype: 'List[str]', default: [L]}
          for_loop: {var: band, over: bands}
          steps:
            image: {cab: append, params: {text: "image {recipe.band}"}}
            flag: {cab: append, params: {text: "flag {recipe.band} {info.fqname}"}}
        """
    )
    cli.ok("r.yml", "bands=[L, UHF, S]", "--run-dir", "D")
    assert cli.lines() == [
        "image L",
        "flag L main[0].flag",
        "image UHF",
        "flag UHF main[1].flag",
        "image S",
        "flag S main[2].flag",
    ]
    steps = cli.provenance("D")["steps"]
    assert steps["main[2].image"]["params"]["text"] == "image S"
    assert "flag S" in cli.read("D/logs/main[2].flag.log")


def test_for_loop_variable_bound_to_steps_by_an_alias(cli) -> None:
    # the common Stimela pattern: loop over measurement sets, the loop variable an input
    # aliased to every step running a cab
    cli.recipe(
        """
        main:
          inputs:
            mslist: {dtype: 'List[str]'}
            ms: {dtype: str, aliases: ['(append).text']}
          for_loop: {var: ms, over: mslist}
          steps:
            a: {cab: append}
            b: {cab: append, params: {file: b.txt}}
        """
    )
    cli.ok("r.yml", "mslist=[x.ms, y.ms]")
    assert cli.lines() == ["x.ms", "y.ms"]
    assert cli.lines("b.txt") == ["x.ms", "y.ms"]


def test_for_loop_over_a_literal_list_in_a_nested_recipe(cli) -> None:
    cli.recipe(
        """
        main:
          steps:
            first: {cab: append, params: {text: first}}
            each:
              recipe:
                for_loop: {var: x, over: [1, 2, 3]}
                steps:
                  n: {cab: count, params: {n: =recipe.x * 10}}
            last: {cab: append, params: {text: last}}
        """
    )
    cli.ok("r.yml")
    assert cli.lines() == ["first", "10", "20", "30", "last"]


def test_for_loop_over_a_formula(cli) -> None:
    cli.recipe(
        """
        main:
          inputs:
            n: {dtype: int, default: 2}
          for_loop: {var: i, over: =RANGE(recipe.n)}
          steps:
            s: {cab: append, params: {text: "i={recipe.i:02d}"}}
        """
    )
    cli.ok("r.yml", "n=3")
    assert cli.lines() == ["i=00", "i=01", "i=02"]


def test_for_loop_validates_every_iteration_first(cli) -> None:
    # the third iteration's value is a bad choice: nothing runs, not even the first iteration
    cli.recipe(
        """
        main:
          for_loop: {var: mode, over: [fast, slow, medium]}
          steps:
            s: {cab: pick, params: {mode: =recipe.mode}}
        """
    )
    stderr = cli.fails("r.yml")
    assert "'medium' is not one of fast, slow" in stderr
    assert cli.lines() == []


@pytest.mark.parametrize("scatter", [-1, 4])
def test_scatter_runs_iterations_concurrently(cli, scatter: int) -> None:
    # every iteration marks itself then waits (5 s at most) until all 4 marks exist: run one at a
    # time, the first iteration would wait in vain and fail
    cli.recipe(
        f"""
        main:
          for_loop: {{var: name, over: [w, x, y, z], scatter: {scatter}}}
          steps:
            meet: {{cab: meet, params: {{name: =recipe.name, count: 4}}}}
        """
    )
    cli.ok("r.yml", "--run-dir", "D")
    assert sorted(cli.lines()) == ["w", "x", "y", "z"]
    steps = cli.provenance("D")["steps"]
    assert sorted(steps) == [f"main[{i}].meet" for i in range(4)]
    assert all(entry["status"] == "ok" for entry in steps.values())


def test_scatter_limits_the_number_at_once(cli) -> None:
    # with scatter: 2 only two iterations run at once, so waiting for 3 marks fails
    cli.recipe(
        """
        main:
          for_loop: {var: name, over: [w, x, y], scatter: 2}
          steps:
            meet: {cab: meet, params: {name: =recipe.name, count: 3, tries: 10}}
        """
    )
    stderr = cli.fails("r.yml", code=1)
    assert "exit code 3" in stderr


def test_failing_scattered_iteration_fails_the_run(cli) -> None:
    cli.recipe(
        """
        main:
          for_loop: {var: x, over: [ok, bad, ok2], scatter: -1}
          steps:
            s:
              cab: append
              params: {text: =recipe.x}
            check:
              cab: count
              params: {n: '=IF(recipe.x == "bad", 1, 0)'}
            boom: {cab: fail, skip: '=recipe.x != "bad"'}
            after: {cab: append, params: {text: "after {recipe.x}"}}
        """
    )
    cli.fails("r.yml", "--run-dir", "D", code=1)
    assert "after bad" not in cli.lines()
    assert cli.provenance("D")["status"] == "failed"
    assert cli.provenance("D")["steps"]["main[1].boom"]["status"] == "failed"


def test_resume_in_a_loop_reruns_from_the_changed_iteration(cli) -> None:
    # one at a time: the first step that runs again ends resuming for the steps after it
    cli.write("i1", "one\n")
    cli.write("i2", "two\n")
    cli.recipe(
        """
        main:
          for_loop: {var: x, over: [i1, i2]}
          steps:
            c: {cab: copy, params: {src: =recipe.x, dst: "o-{recipe.x}.txt"}}
            old: {cab: cat, params: {file: absent.txt}, tags: [never]}
            gone:
              skip: true
              recipe:
                steps:
                  z: {cab: fail}
        """
    )
    cli.ok("r.yml", "--run-dir", "D1")
    assert cli.lines("runs.log") == ["o-i1.txt", "o-i2.txt"]
    cli.write("i2", "changed\n")
    result = cli.ok("r.yml", "--resume", "D1", "--run-dir", "D2")
    assert cli.lines("runs.log")[2:] == ["o-i2.txt"]
    assert cli.read("o-i2.txt") == "changed\n"
    assert "1 run, 1 resumed" in result.stderr


def test_resume_in_a_scattered_loop_skips_the_unchanged_iterations(cli) -> None:
    # the unchanged iteration's input is big, so hashing it (to decide on resuming) ends well
    # after the changed iteration has started to run again
    (cli.root / "big").write_bytes(b"x" * 2**25)
    cli.write("small", "one\n")
    cli.recipe(
        """
        main:
          for_loop: {var: x, over: [big, small], scatter: -1}
          steps:
            c: {cab: copy, params: {src: =recipe.x, dst: "o-{recipe.x}"}}
        """
    )
    cli.ok("r.yml", "--run-dir", "D1")
    assert sorted(cli.lines("runs.log")) == ["o-big", "o-small"]
    cli.write("small", "changed\n")
    cli.ok("r.yml", "--resume", "D1", "--run-dir", "D2")
    assert cli.lines("runs.log")[2:] == ["o-small"]
