"""rc-run end to end: recipes written here, run by the real CLI, with shell-command cabs.

Every assertion is on what the commands did (lines appended to out.txt in step order, files
created, the run directory's logs and provenance) or on rc-run's exit code and messages. The
cabs (append, show, count, pick, echo, touch, write, cat, copy, fail, ok, meet) are in
conftest.py. Step selection, loops and scatter are in test_cli_selection.py.
"""

from __future__ import annotations

import hashlib
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

# ---------------------------------------------------------------------------------- loading


@pytest.mark.parametrize("key", ["_include", "include"])
def test_include_is_relative_to_the_including_file(cli, key: str) -> None:
    cli.write("lib/more.yml", "_include: nested.yml\n")  # relative to lib/, not the cwd
    cli.write(
        "lib/nested.yml",
        """
        cabs:
          shout:
            command: sh -c 'printf "%s!\\n" "$1" >> out.txt' shout
            inputs: {text: {dtype: str, policies: {positional: true}}}
        """,
    )
    cli.write(
        "r.yml",
        f"""
        {key}: [cabs.yml, lib/more.yml]
        main:
          steps:
            s: {{cab: shout, params: {{text: hi}}}}
            a: {{cab: append, params: {{text: there}}}}
        """,
    )
    cli.ok("r.yml")
    assert cli.lines() == ["hi!", "there"]


def test_use_of_a_lib_steps_section_with_own_params_on_top(cli) -> None:
    cli.recipe(
        """
        lib:
          steps:
            say: {cab: append, params: {file: lib.txt, text: from-lib}, info: a library step}
        main:
          steps:
            plain: {_use: lib.steps.say}
            changed:
              _use: lib.steps.say
              params: {text: overridden}
            scrubbed:
              _use: lib.steps.say
              _scrub: params.f*
        """
    )
    cli.ok("r.yml")
    assert cli.lines("lib.txt") == ["from-lib", "overridden"]
    assert cli.lines() == ["from-lib"]  # file scrubbed: the cab's default, out.txt


def test_use_of_lib_params_with_a_wildcard_scrub(cli) -> None:
    # lib.params.base types `level` as an int; with '*.dtype' scrubbed the recipe's copy is
    # untyped (a str), so a word is accepted, where the unscrubbed copy refuses it.
    cli.recipe(
        """
        lib:
          params:
            base:
              level: {dtype: int, default: 1, info: a level}
              name: {dtype: str, default: x}
        typed:
          inputs:
            _use: lib.params.base
          steps:
            s: {cab: append, params: {text: "{recipe.level}"}}
        scrubbed:
          inputs:
            _use: lib.params.base
            _scrub: '*.dtype'
          steps:
            s: {cab: append, params: {text: "{recipe.level}"}}
        """
    )
    cli.ok("r.yml", "scrubbed", "level=high")
    assert cli.lines() == ["high"]
    stderr = cli.fails("r.yml", "typed", "level=high")
    assert "level" in stderr
    assert "expected int" in stderr


# ---------------------------------------------------------------------------------- nesting

SUB = """
  inputs:
    tag: {dtype: str, required: true}
  steps:
    inner: {cab: append, params: {text: "inner {recipe.tag}"}}
"""


@pytest.mark.parametrize(
    ("where", "ref"),
    [
        ("top", "sub"),
        ("lib", "sub"),
        ("lib", "lib.recipes.sub"),
        ("inline", None),
    ],
)
def test_nested_recipe_as_a_step(cli, where: str, ref: str | None) -> None:
    definition = {
        "top": f"sub:{SUB}",
        "lib": f"lib:\n  recipes:\n    sub:{textwrap.indent(SUB, '    ')}",
        "inline": "",
    }[where]
    step = f"      recipe: {ref}" if ref else "      recipe:" + textwrap.indent(SUB, "      ")
    cli.recipe(
        f"{definition}\nmain:\n  steps:\n    before: {{cab: append, params: {{text: before}}}}\n"
        f"    nested:\n{step}\n      params: {{tag: T}}\n"
        "    after: {cab: append, params: {text: after}}\n"
    )
    cli.ok("r.yml", "main", "--run-dir", "D")
    assert cli.lines() == ["before", "inner T", "after"]
    assert (cli.root / "D/logs/main.nested.inner.log").exists()


def test_nested_parameters_passed_as_a_nested_mapping(cli) -> None:
    cli.recipe(
        """
        selfcal:
          inputs:
            label: {dtype: str}
            predict:
              prefix: {dtype: str, required: true}
              nchan: {dtype: int, default: 1}
          steps:
            predict: {cab: append, params: {text: "{recipe.label}:{recipe.predict.prefix}"}}
            solve: {cab: count, params: {n: =recipe.predict.nchan}}
        main:
          inputs:
            model: {dtype: str, default: img}
          steps:
            selfcal-d1:
              recipe: selfcal
              params:
                label: "{info.suffix}"
                predict:
                  prefix: =recipe.model
                  nchan: 4
        """
    )
    cli.ok("r.yml", "main")
    assert cli.lines() == ["d1:img", "4"]


def test_seed_style_selfcal_rounds(cli) -> None:
    # the seed talk's selfcal-cc-delay shape: nested flag inputs bound to steps by aliases, a
    # default from root., a default substituting current.label, skip on IFSET of a nested input
    cli.recipe(
        """
        selfcal:
          inputs:
            label: {dtype: str}
            flags:
              restore:
                aliases: [restoreflags.text]
                default: =root.init-flags
                required: false
              save:
                aliases: [saveflags.text]
                default: 'selfcal_{current.label}'
                required: false
          steps:
            restoreflags: {cab: append, skip: =not IFSET(recipe.flags.restore)}
            image: {cab: write, params: {text: "{recipe.label}", file: "model-{recipe.label}.txt"}}
            saveflags: {cab: append}
        main:
          inputs:
            init-flags: {dtype: str}
          steps:
            selfcal-d1: {recipe: selfcal, params: {label: "{info.suffix}"}}
            selfcal-d2: {recipe: selfcal, params: {label: "{info.suffix}"}}
            after: {cab: append, params: {text: "{previous.label} {steps.selfcal-d1.label}"}}
        """
    )
    cli.ok("r.yml", "main")
    assert cli.lines() == ["selfcal_d1", "selfcal_d2", "d2 d1"]
    assert cli.read("model-d2.txt") == "d2\n"
    (cli.root / "out.txt").unlink()
    cli.ok("r.yml", "main", "init-flags=orig")
    assert cli.lines() == ["orig", "selfcal_d1", "orig", "selfcal_d2", "d2 d1"]


def test_sub_recipe_output_alias_reaches_the_next_step(cli) -> None:
    cli.recipe(
        """
        make:
          outputs:
            model: {dtype: File, aliases: [image.file]}
          steps:
            image: {cab: write, params: {text: made, file: model.txt}}
        main:
          steps:
            sub: {recipe: make}
            show: {cab: cat, params: {file: =previous.model}}
            again: {cab: cat, params: {file: =steps.sub.model}}
        """
    )
    cli.ok("r.yml", "main", "--run-dir", "D")
    assert "made" in cli.read("D/logs/main.show.log")
    assert "made" in cli.read("D/logs/main.again.log")


NEEDY = """
sub:
  inputs:
    need: {dtype: str, required: true}
  steps:
    i: {cab: append, params: {text: =recipe.need}}
main:
  steps:
    first: {cab: touch, params: {file: first.txt}}
    sub: {recipe: sub}
"""


def test_missing_required_input_of_a_nested_recipe(cli) -> None:
    cli.recipe(NEEDY)
    stderr = cli.fails("r.yml", "main")
    assert "recipe 'main.sub': missing required parameter 'need'" in stderr
    assert not (cli.root / "first.txt").exists()
    cli.ok("r.yml", "main", "sub.need=given")
    assert cli.lines() == ["given"]


def test_missing_required_input_of_a_nested_recipe_hints_its_full_name(cli) -> None:
    cli.recipe(NEEDY)
    stderr = cli.fails("r.yml", "main")
    assert "give sub.need=..." in stderr


def test_input_default_formula_assign_of_info_and_command_substitution(cli) -> None:
    cli.recipe(
        """
        cabs:
          say:
            command: sh -c 'echo "{current.word}-$1" >> out.txt' say
            inputs:
              word: {dtype: str, policies: {skip: true}}
              x: {dtype: str, policies: {positional: true}}
        main:
          inputs:
            a: {dtype: str, default: A}
            b: {dtype: str, default: =recipe.a}
          assign:
            where: "{info.fqname}"
          steps:
            s: {cab: append, params: {text: "{recipe.b} {recipe.where}"}}
            t: {cab: say, params: {word: hello, x: X}}
        """
    )
    cli.ok("r.yml")
    cli.ok("r.yml", "a=changed")
    cli.ok("r.yml", "b=B")
    assert cli.lines() == ["A main", "hello-X", "changed main", "hello-X", "B main", "hello-X"]


# ---------------------------------------------------------------------------------- aliases


def test_input_aliases_set_the_step_parameter(cli) -> None:
    cli.recipe(
        """
        main:
          inputs:
            msg: {dtype: str, aliases: [b.text]}
          steps:
            a: {cab: append, params: {text: a}}
            b: {cab: append}
        """
    )
    cli.ok("r.yml", "msg=hello")
    assert cli.lines() == ["a", "hello"]


def test_aliases_section_binds_several_steps(cli) -> None:
    cli.recipe(
        """
        main:
          aliases:
            msg: [a.text, b.text]
          steps:
            a: {cab: append}
            b: {cab: append, params: {file: b.txt}}
        """
    )
    cli.ok("r.yml", "msg=both")
    assert cli.lines() == ["both"]
    assert cli.lines("b.txt") == ["both"]


def test_alias_with_a_glob_on_step_labels(cli) -> None:
    cli.recipe(
        """
        main:
          aliases:
            msg: 's[12].text'
          steps:
            s1: {cab: append}
            s2: {cab: append}
            s3: {cab: append, params: {text: own}}
        """
    )
    cli.ok("r.yml", "msg=glob")
    assert cli.lines() == ["glob", "glob", "own"]


def test_alias_to_every_step_running_a_cab(cli) -> None:
    cli.recipe(
        """
        main:
          inputs:
            msg: {dtype: str, aliases: ['(append).text']}
          steps:
            a: {cab: append}
            e: {cab: echo, params: {text: echoed}}
            b: {cab: append, params: {file: b.txt}}
        """
    )
    cli.ok("r.yml", "msg=wild", "--run-dir", "D")
    assert cli.lines() == ["wild"]
    assert cli.lines("b.txt") == ["wild"]
    assert "echoed" in cli.read("D/logs/main.e.log")  # the echo cab's text is its own


def test_alias_without_dtype_adopts_the_step_parameters_dtype(cli) -> None:
    cli.recipe(
        """
        main:
          inputs:
            number: {info: how many, aliases: [c.n]}
          steps:
            first: {cab: append, params: {text: first}}
            c: {cab: count}
        """
    )
    stderr = cli.fails("r.yml", "number=many")
    assert "number" in stderr
    assert "expected int" in stderr
    assert cli.lines() == []
    cli.ok("r.yml", "number=7")
    assert cli.lines() == ["first", "7"]


def test_alias_to_a_step_that_sets_the_parameter_is_not_required(cli) -> None:
    cli.recipe(
        """
        main:
          aliases:
            msg: b.text
          steps:
            b: {cab: append, params: {text: own}}
        """
    )
    cli.ok("r.yml")
    cli.ok("r.yml", "msg=given")
    assert cli.lines() == ["own", "given"]


def test_required_is_propagated_through_an_alias(cli) -> None:
    cli.recipe(
        """
        main:
          aliases:
            msg: b.text
          steps:
            a: {cab: append, params: {text: a}}
            b: {cab: append}
        """
    )
    stderr = cli.fails("r.yml")
    assert "missing required parameter 'msg'" in stderr
    assert cli.lines() == []
    cli.ok("r.yml", "msg=given")
    assert cli.lines() == ["a", "given"]


# ---------------------------------------------------------------------------------- formulas


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ('=IF(recipe.flag, "yes", "no")', "yes"),
        ('=IF(recipe.n > 5, "yes", "no")', "no"),
        ("=IFSET(recipe.unset)", "False"),
        ('=IFSET(recipe.name, "set", "unset")', "set"),
        ('=IFSET(recipe.unset, "set", "unset")', "unset"),
        ('=CASES(recipe.n > 5, "big", recipe.n > 1, "mid", "small")', "mid"),
        ('=GLOB("data/*.ms")', "data/a.ms data/b.ms"),
        ('=EXISTS("data/a.ms")', "True"),
        ('=EXISTS("data/c.ms")', "False"),
        ("=LEN(recipe.bands)", "3"),
        ("=RANGE(3)", "0 1 2"),
        ("=RANGE(1, 7, 2)", "1 3 5"),
        ("=MIN(4, recipe.n, 7)", "3"),
        ("=MAX(recipe.sizes)", "9"),
        ('=LIST("a", recipe.n)', "a 3"),
        ('=STRIPEXT("dir/x.ms")', "dir/x"),
        ('=BASENAME("dir/x.ms")', "x.ms"),
        ('=DIRNAME("dir/x.ms")', "dir"),
        ('=EXTENSION("dir/x.ms")', ".ms"),
        ('=STRIP("  padded ")', "padded"),
        ("=recipe.n * 2 + 1", "7"),
        ("=not recipe.flag", "False"),
        ("=recipe.bands[1]", "UHF"),
        ("{recipe.name}-{recipe.n:02d}", "nm-03"),
        ("=={recipe.name}", "={recipe.name}"),
    ],
)
def test_formula_functions(cli, formula: str, expected: str) -> None:
    for name in ("a.ms", "b.ms"):
        cli.write(f"data/{name}", "")
    cli.recipe(
        f"""
        main:
          inputs:
            flag: {{dtype: bool, default: true}}
            n: {{dtype: int, default: 3}}
            name: {{dtype: str, default: nm}}
            unset: {{dtype: str}}
            bands: {{dtype: 'List[str]', default: [L, UHF, S]}}
            sizes: {{dtype: 'List[int]', default: [2, 9, 4]}}
          steps:
            s: {{cab: show, params: {{value: '{formula}'}}}}
        """
    )
    cli.ok("r.yml")
    assert cli.lines() == [expected]


def test_error_function_fails_validation_before_anything_runs(cli) -> None:
    cli.recipe(
        """
        main:
          inputs:
            good: {dtype: bool, default: true}
          steps:
            a: {cab: append, params: {text: a}}
            b: {cab: append, params: {text: '=IF(recipe.good, "fine", ERROR("not good enough"))'}}
        """
    )
    cli.ok("r.yml")
    assert cli.lines() == ["a", "fine"]
    stderr = cli.fails("r.yml", "good=false")
    assert "not good enough" in stderr
    assert "main.b" in stderr
    assert cli.lines() == ["a", "fine"]


def test_formula_namespaces(cli) -> None:
    cli.recipe(
        """
        main:
          inputs:
            top: {dtype: str, default: T}
          steps:
            s1: {cab: append, params: {text: one}}
            s2: {cab: append, params: {text: =previous.text}}
            s3: {cab: append, params: {text: "=steps.s1.text + '-again'"}}
            s4-sfx: {cab: append, params: {text: "{info.suffix} {info.fqname} {info.label}"}}
            s5: {cab: append, params: {file: out.txt, text: "file={current.file}"}}
            s6: {cab: append, params: {text: =recipe.top}}
            sub:
              recipe:
                inputs:
                  mine: {dtype: str}
                steps:
                  inner: {cab: append, params: {text: "{root.top}/{recipe.mine}"}}
              params: {mine: M}
        """
    )
    cli.ok("r.yml")
    assert cli.lines() == [
        "one",
        "one",
        "one-again",
        "sfx main.s4-sfx s4-sfx",
        "file=out.txt",
        "T",
        "T/M",
    ]


def test_previous_is_the_preceding_step_even_if_skipped(cli) -> None:
    # Stimela2 sets `previous` after every step of the recipe, skipped or not
    cli.recipe(
        """
        main:
          steps:
            a: {cab: append, params: {text: from-a}}
            b: {cab: append, params: {text: from-b}, skip: true}
            c: {cab: append, params: {text: =previous.text}}
        """
    )
    cli.ok("r.yml")
    assert cli.lines() == ["from-a", "from-b"]


@pytest.mark.parametrize(("n", "expected"), [(1, ["a", "small", "c"]), (9, ["a", "c"])])
def test_skip_formula(cli, n: int, expected: list[str]) -> None:
    cli.recipe(
        """
        main:
          inputs:
            n: {dtype: int}
            unset: {dtype: str}
          steps:
            a: {cab: append, params: {text: a}}
            small: {cab: append, params: {text: small}, skip: =recipe.n > 5}
            never-set: {cab: append, params: {text: unset}, skip: =not IFSET(recipe.unset)}
            c: {cab: append, params: {text: c}}
        """
    )
    cli.ok("r.yml", f"n={n}")
    assert cli.lines() == expected


@pytest.mark.parametrize(("band", "expected"), [("L", "im-L:8"), ("UHF", "im-UHF:4")])
def test_assign_and_assign_based_on_with_default(cli, band: str, expected: str) -> None:
    cli.recipe(
        """
        main:
          inputs:
            band: {dtype: str, required: true}
          assign:
            prefix: im-{recipe.band}
          assign_based_on:
            band:
              L: {nchan: 8}
              DEFAULT: {nchan: 4}
          steps:
            s: {cab: append, params: {text: "{recipe.prefix}:{recipe.nchan}"}}
        """
    )
    cli.ok("r.yml", f"band={band}")
    assert cli.lines() == [expected]


def test_step_level_assign_and_assign_based_on(cli) -> None:
    cli.recipe(
        """
        main:
          inputs:
            band: {dtype: str, default: L}
          assign:
            word: recipe-level
          steps:
            a:
              cab: append
              assign: {word: step-level}
              params: {text: "{recipe.word}"}
            b:
              cab: append
              assign_based_on:
                band:
                  L: {word: band-L}
                  DEFAULT: {word: band-other}
              params: {text: "{recipe.word}"}
            c: {cab: append, params: {text: "{recipe.word}"}}
        """
    )
    cli.ok("r.yml")
    assert cli.lines() == ["step-level", "band-L", "recipe-level"]


def test_unset_substitution_is_reported(cli) -> None:
    cli.recipe(
        """
        main:
          inputs:
            unset: {dtype: str}
          steps:
            first: {cab: touch, params: {file: first.txt}}
            a: {cab: append, params: {text: "x-{recipe.unset}"}}
        """
    )
    stderr = cli.fails("r.yml")
    assert "main.a" in stderr
    assert "'recipe.unset' is not set" in stderr
    assert not (cli.root / "first.txt").exists()


# ---------------------------------------------------------------------------------- overrides

OVERRIDES = """
main:
  inputs:
    name: {dtype: str, default: default-name}
    n: {dtype: int, default: 1}
    l: {dtype: 'List[str]', default: [x]}
  steps:
    a: {cab: append, params: {text: "name={recipe.name}"}}
    b: {cab: append, params: {text: b-default}}
    typed: {cab: show, params: {value: "=LIST(recipe.n * 10, LEN(recipe.l)) + recipe.l"}}
    sub:
      recipe:
        steps:
          inner: {cab: append, params: {text: inner-default}}
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ["name=default-name", "b-default", "10 1 x", "inner-default"]),
        (("name=given",), ["name=given", "b-default", "10 1 x", "inner-default"]),
        (("b.text=b-given",), ["name=default-name", "b-given", "10 1 x", "inner-default"]),
        (("sub.inner.text=deep",), ["name=default-name", "b-default", "10 1 x", "deep"]),
        (("n=3", "l=[p, q]"), ["name=default-name", "b-default", "30 2 p q", "inner-default"]),
    ],
)
def test_command_line_overrides(cli, args: tuple[str, ...], expected: list[str]) -> None:
    cli.recipe(OVERRIDES)
    cli.ok("r.yml", *args)
    assert cli.lines() == expected


@pytest.mark.parametrize("arg", ["nosuch=1", "b.nosuch=1", "sub.inner.nosuch=1", "zz.text=1"])
def test_unknown_override_is_refused_naming_it(cli, arg: str) -> None:
    cli.recipe(OVERRIDES)
    stderr = cli.fails("r.yml", arg)
    assert f"unknown parameter '{arg.split('=')[0]}'" in stderr
    assert cli.lines() == []


# ---------------------------------------------------------------------------------- validation


def test_dry_run_runs_nothing(cli) -> None:
    cli.recipe(
        """
        main:
          steps:
            a: {cab: append, params: {text: a}}
            t: {cab: touch, params: {file: made.txt}}
            c: {cab: cat, params: {file: made.txt}}
        """
    )
    result = cli.ok("r.yml", "--dry-run")
    assert "valid" in result.stderr
    assert sorted(p.name for p in cli.root.iterdir()) == ["cabs.yml", "r.yml"]


FIRST = "    first: {cab: touch, params: {file: first.txt}}\n"

BAD = {
    "unknown cab": ("    last: {cab: nosuch}\n", (), ["unknown cab 'nosuch'", "last"]),
    "unknown step key": (
        "    last: {cab: append, parms: {text: x}}\n",
        (),
        ["unknown step key 'parms'", "last"],
    ),
    "unknown parameter": (
        "    last: {cab: append, params: {txet: x}}\n",
        (),
        ["unknown parameter 'txet'", "last"],
    ),
    "type mismatch from the command line": (
        "    last: {cab: count, params: {n: =recipe.niter}}\n",
        ("niter=abc",),
        ["niter", "expected int"],
    ),
    "type mismatch in a step": (
        "    last: {cab: count, params: {n: lots}}\n",
        (),
        ["last", "'n'", "expected int"],
    ),
    "missing required parameter": (
        "    last: {cab: append}\n",
        (),
        ["last", "missing required parameter 'text'"],
    ),
    "bad choice": (
        "    last: {cab: pick, params: {mode: medium}}\n",
        (),
        ["last", "mode", "'medium' is not one of fast, slow"],
    ),
    "missing input file": (
        "    last: {cab: cat, params: {file: absent.txt}}\n",
        (),
        ["last", "'file'", "absent.txt", "does not exist"],
    ),
    "formula naming an unknown step": (
        "    last: {cab: append, params: {text: =steps.nosuch.text}}\n",
        (),
        ["last", "unknown step 'nosuch'"],
    ),
    "formula naming a later step": (
        "    last: {cab: append, params: {text: =steps.later.text}}\n"
        "    later: {cab: append, params: {text: later}}\n",
        (),
        ["main.last", "steps.later.text"],
    ),
    "formula naming an unknown recipe parameter": (
        "    last: {cab: append, params: {text: =recipe.nosuch}}\n",
        (),
        ["main.steps.last", "unknown recipe parameter 'nosuch'"],
    ),
    "use of an unknown section": (
        "    last: {_use: lib.steps.nosuch}\n",
        (),
        ["unknown section 'lib.steps.nosuch'"],
    ),
    "bad step in a nested recipe": (
        "    sub:\n      recipe:\n        steps:\n"
        "          ok: {cab: append, params: {text: x}}\n"
        "          deep: {cab: count, params: {n: lots}}\n",
        (),
        ["main.sub.deep", "'n'", "expected int"],
    ),
    "YAML syntax error": ("    last: {cab: append, params: {text: [x}\n", (), ["invalid YAML"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_validation_fails_before_any_step_runs(cli, case: str) -> None:
    last, args, fragments = BAD[case]
    cli.recipe("main:\n  inputs:\n    niter: {dtype: int, default: 1}\n  steps:\n" + FIRST + last)
    stderr = cli.fails("r.yml", *args)
    assert not (cli.root / "first.txt").exists()
    assert "r.yml" in stderr  # the file (and, for most, the line) at fault
    for fragment in fragments:
        assert fragment in stderr


def test_yaml_syntax_error_names_file_and_line(cli) -> None:
    cli.write("broken.yml", "main:\n  steps:\n    a: {cab: append\n    b: [\n")
    stderr = cli.fails("broken.yml")
    assert "broken.yml:4:" in stderr
    assert "invalid YAML" in stderr


def test_errors_in_included_files_name_them(cli) -> None:
    cli.write("inc/bad.yml", "cabs:\n  x: {command: [\n")
    cli.write("r.yml", "_include: [cabs.yml, inc/bad.yml]\nmain:\n  steps:\n" + FIRST)
    assert "inc/bad.yml:3" in cli.fails("r.yml")
    cli.write("r.yml", "_include: [cabs.yml, inc/missing.yml]\nmain:\n  steps:\n" + FIRST)
    stderr = cli.fails("r.yml")
    assert "r.yml" in stderr
    assert "inc/missing.yml" in stderr
    assert not (cli.root / "first.txt").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("nosuch.yml",), "nosuch.yml: no such file"),
        (("r.yml",), "the files hold 2 recipes (one, two)"),
        (("r.yml", "three"), "no recipe named 'three'"),
        (("r.yml", "one", "two"), "more than one recipe name"),
    ],
)
def test_command_line_mistakes(cli, args: tuple[str, ...], fragment: str) -> None:
    cli.recipe("one:\n  steps:\n" + FIRST + "two:\n  steps:\n" + FIRST)
    assert fragment in cli.fails(*args)
    assert not (cli.root / "first.txt").exists()


def test_include_cycle_is_refused(cli) -> None:
    cli.write("a.yml", "_include: b.yml\n")
    cli.write("b.yml", "_include: a.yml\n")
    cli.write("r.yml", "_include: [cabs.yml, a.yml]\nmain:\n  steps:\n" + FIRST)
    stderr = cli.fails("r.yml")
    assert "include cycle" in stderr
    assert "a.yml" in stderr
    assert "b.yml" in stderr
    assert not (cli.root / "first.txt").exists()


@pytest.mark.parametrize(
    ("aliases", "fragment"),
    [
        ("{m: nosuch.text}", "no step 'nosuch'"),
        ("{m: first.nosuch}", "step 'first' has no parameter 'nosuch'"),
    ],
)
def test_alias_to_an_unknown_step_or_parameter_is_refused(cli, aliases, fragment) -> None:
    cli.recipe(f"main:\n  aliases: {aliases}\n  steps:\n" + FIRST)
    stderr = cli.fails("r.yml", "m=x")
    assert "r.yml:" in stderr
    assert "main.aliases.m" in stderr
    assert fragment in stderr
    assert not (cli.root / "first.txt").exists()


def test_every_problem_is_reported_at_once(cli) -> None:
    cli.recipe(
        """
        main:
          steps:
            first: {cab: touch, params: {file: first.txt}}
            x: {cab: count, params: {n: lots}}
            y: {cab: pick, params: {mode: medium}}
            z: {cab: append}
        """
    )
    stderr = cli.fails("r.yml")
    assert "3 problem(s); nothing was run" in stderr
    assert "main.x" in stderr
    assert "main.y" in stderr
    assert "main.z" in stderr
    assert not (cli.root / "first.txt").exists()


def test_a_failed_step_is_reported_once_not_again_by_steps_that_use_it(cli) -> None:
    cli.recipe(
        """
        main:
          steps:
            a: {cab: write, params: {file: a.txt, text: "=ERROR('no text here')"}}
            b: {cab: cat, params: {file: =steps.a.file}}
            c: {cab: cat, params: {file: =steps.b.file}}
        """
    )
    stderr = cli.fails("r.yml")
    assert "main.a" in stderr
    assert "no text here" in stderr
    assert "has no 'a'" not in stderr  # b's file is unknown because a failed: said once
    assert "main.b" not in stderr
    assert "main.c" not in stderr


def test_missing_file_given_to_a_recipe_input_is_refused(cli) -> None:
    cli.recipe(
        """
        main:
          inputs:
            ref: {dtype: File}
          steps:
            first: {cab: touch, params: {file: first.txt}}
            a: {cab: append, params: {text: =recipe.ref}}
        """
    )
    cli.ok("r.yml", "ref=cabs.yml")
    assert cli.lines() == ["cabs.yml"]
    (cli.root / "first.txt").unlink()
    stderr = cli.fails("r.yml", "ref=absent.txt")
    assert "ref" in stderr
    assert "absent.txt" in stderr
    assert not (cli.root / "first.txt").exists()


def test_input_file_made_by_an_earlier_step_is_accepted(cli) -> None:
    cli.recipe(
        """
        main:
          steps:
            make: {cab: write, params: {text: made-earlier, file: made.txt}}
            show: {cab: cat, params: {file: made.txt}}
        """
    )
    cli.ok("r.yml", "--run-dir", "D")
    assert "made-earlier" in cli.read("D/logs/main.show.log")


def test_input_file_made_by_a_later_step_is_refused(cli) -> None:
    cli.recipe(
        """
        main:
          steps:
            show: {cab: cat, params: {file: made.txt}}
            make: {cab: write, params: {file: made.txt}}
        """
    )
    stderr = cli.fails("r.yml")
    assert "made.txt" in stderr
    assert "does not exist" in stderr
    assert not (cli.root / "made.txt").exists()


# ---------------------------------------------------------------------------------- running


def test_failing_step_stops_the_run(cli) -> None:
    cli.recipe(
        """
        main:
          steps:
            a: {cab: append, params: {text: a}}
            b: {cab: fail}
            c: {cab: append, params: {text: c}}
        """
    )
    stderr = cli.fails("r.yml", "--run-dir", "D", code=1)
    assert "main.b" in stderr
    assert "exit code 1" in stderr
    assert cli.lines() == ["a"]
    record = cli.provenance("D")
    assert record["status"] == "failed"
    assert record["steps"]["main.a"]["status"] == "ok"
    assert record["steps"]["main.b"]["status"] == "failed"
    assert record["steps"]["main.b"]["exit_code"] == 1
    assert "main.c" not in record["steps"]


def test_a_step_that_exits_0_without_its_declared_output_fails(cli) -> None:
    cli.recipe(
        """
        cabs:
          forgetful:
            command: "true"
            outputs:
              made: {dtype: File, default: made.txt}
        main:
          steps:
            a: {cab: forgetful}
            b: {cab: append, params: {text: b}}
        """
    )
    stderr = cli.fails("r.yml", "--run-dir", "D", code=1)
    assert "step 'main.a' exited 0 but did not produce made=made.txt" in stderr
    assert not (cli.root / "out.txt").exists()
    assert cli.provenance("D")["steps"]["main.a"]["status"] == "failed"


def test_cab_policies_render_the_command_line(cli) -> None:
    cli.recipe(
        """
        cabs:
          opts:
            command: echo
            inputs:
              size: {dtype: 'List[int]', policies: {repeat: repeat}}
              chans: {dtype: 'List[int]', policies: {repeat: ','}}
              flag: {dtype: bool}
              unset-flag: {dtype: bool}
              off: {dtype: bool, policies: {false_flag: --no-off}}
              kv: {dtype: str, policies: {key_value: true}}
              nick: {dtype: str, nom_de_guerre: alias-name}
              under_score: {dtype: str, policies: {replace: {'_': '-'}}}
              fmt: {dtype: float, policies: {format: '{value:.2f}'}}
              hidden: {dtype: str, policies: {skip: true}}
              pos: {dtype: str, policies: {positional: true}}
              head: {dtype: str, policies: {positional_head: true}}
        main:
          steps:
            o:
              cab: opts
              params: {size: [1, 2], chans: [3, 4], flag: true, off: false, kv: v, nick: n,
                       under_score: u, fmt: 1.5, hidden: h, pos: P, head: H}
        """
    )
    cli.ok("r.yml", "--run-dir", "D")
    output = cli.read("D/logs/main.o.log").splitlines()[-1]
    assert output == (
        "H --size 1 --size 2 --chans 3,4 --flag --no-off kv=v --alias-name n --under-score u "
        "--fmt 1.50 P"
    )


def test_program_that_cannot_start_fails_the_step(cli) -> None:
    cli.recipe(
        """
        cabs:
          ghost: {command: no-such-program-for-rc-run}
        main:
          steps:
            a: {cab: append, params: {text: a}}
            g: {cab: ghost}
            c: {cab: append, params: {text: c}}
        """
    )
    stderr = cli.fails("r.yml", "--run-dir", "D", code=1)
    assert "main.g" in stderr
    assert "cannot start 'no-such-program-for-rc-run'" in cli.read("D/logs/main.g.log")
    assert cli.lines() == ["a"]


def test_step_that_does_not_make_its_output_fails(cli) -> None:
    cli.recipe(
        """
        main:
          steps:
            a: {cab: append, params: {text: a}}
            b:
              cab:
                command: "true"
                outputs: {file: {dtype: File, policies: {positional: true}}}
              params: {file: never-made.txt}
            c: {cab: append, params: {text: c}}
        """
    )
    stderr = cli.fails("r.yml", code=1)
    assert "never-made.txt" in stderr
    assert cli.lines() == ["a"]


def test_output_with_mkdir_gets_its_directory_made(cli) -> None:
    cli.recipe(
        """
        cabs:
          writeto:
            command: sh -c 'echo made > "$1"' writeto
            outputs:
              file: {dtype: File, mkdir: true, policies: {positional: true}}
        main:
          steps:
            w: {cab: writeto, params: {file: deep/er/made.txt}}
        """
    )
    cli.ok("r.yml")
    assert cli.read("deep/er/made.txt") == "made\n"


def test_output_with_remove_if_exists_is_removed_before_the_step(cli) -> None:
    cli.write("made.txt", "old\n")
    cli.recipe(
        """
        cabs:
          appendto:
            command: sh -c 'echo new >> "$1"' appendto
            outputs:
              file: {dtype: File, remove_if_exists: true, policies: {positional: true}}
        main:
          steps:
            w: {cab: appendto, params: {file: made.txt}}
        """
    )
    cli.ok("r.yml")
    assert cli.read("made.txt") == "new\n"


def test_run_dir_holds_logs_and_provenance(cli) -> None:
    recipe = cli.recipe(
        """
        main:
          inputs:
            msg: {dtype: str, default: hello}
          steps:
            say: {cab: echo, params: {text: "{recipe.msg} world"}}
            make: {cab: write, params: {text: content, file: made.txt}}
            skipped: {cab: fail, skip: true}
        """
    )
    result = cli.ok("r.yml", "msg=hi", "--run-dir", "D")
    assert "hi world" in result.stdout
    assert "hi world" in cli.read("D/logs/main.say.log")
    record = cli.provenance("D")
    assert record["status"] == "succeeded"
    assert record["recipe"] == "main"
    assert "msg=hi" in record["command"]
    files = {Path(name).name: digest for name, digest in record["files"].items()}
    assert files["r.yml"] == "sha256:" + hashlib.sha256(recipe.read_bytes()).hexdigest()
    cabs = (cli.root / "cabs.yml").read_bytes()
    assert files["cabs.yml"] == "sha256:" + hashlib.sha256(cabs).hexdigest()  # included
    assert "python" in record["versions"]
    assert "radiocloud-orchestrator" in record["versions"]
    say = record["steps"]["main.say"]
    assert say["status"] == "ok"
    assert say["exit_code"] == 0
    assert say["cab"] == "echo"
    assert say["params"] == {"text": "hi world"}
    assert say["argv"] == ["echo", "hi world"]
    made = record["steps"]["main.make"]
    digest = hashlib.sha256(b"content\n").hexdigest()
    assert made["outputs"] == {"made.txt": f"sha256:{digest}"}
    assert record["steps"]["main.skipped"]["status"] == "skipped"


def test_default_run_dir_and_latest_link(cli) -> None:
    cli.recipe("main:\n  steps:\n    say: {cab: echo, params: {text: found-me}}\n")
    cli.ok("r.yml")
    latest = cli.root / "rc-runs" / "main-latest"
    assert latest.is_symlink()
    assert "found-me" in (latest / "logs" / "main.say.log").read_text()


RESUMABLE = """
main:
  steps:
    c1: {cab: copy, params: {src: in1.txt, dst: o1.txt}}
    c2: {cab: copy, params: {src: in2.txt, dst: o2.txt}}
    c3: {cab: copy, params: {src: in3.txt, dst: o3.txt}}
    c4: {cab: copy, params: {src: o1.txt, dst: o4.txt}}
"""


def test_resume_skips_unchanged_steps(cli) -> None:
    cli.recipe(RESUMABLE)
    for n in (1, 2, 3):
        cli.write(f"in{n}.txt", f"input {n}\n")
    cli.ok("r.yml", "--run-dir", "D1")
    assert cli.lines("runs.log") == ["o1.txt", "o2.txt", "o3.txt", "o4.txt"]
    result = cli.ok("r.yml", "--resume", "D1", "--run-dir", "D2")
    assert len(cli.lines("runs.log")) == 4  # no copy was made again
    assert "0 run, 4 resumed" in result.stderr
    steps = cli.provenance("D2")["steps"]
    assert {steps[f"main.c{n}"]["status"] for n in (1, 2, 3, 4)} == {"resumed"}
    # a third run resuming the second (the latest, by default) runs nothing either
    cli.ok("r.yml", "--resume")
    assert len(cli.lines("runs.log")) == 4


@pytest.mark.parametrize(
    ("change", "rerun"),
    [
        ("in2.txt changed", ["o2.txt", "o3.txt", "o4.txt"]),
        ("in1.txt changed", ["o1.txt", "o2.txt", "o3.txt", "o4.txt"]),
        ("o3.txt deleted", ["o3.txt", "o4.txt"]),
        ("o4.txt changed", ["o4.txt"]),
    ],
)
def test_resume_reruns_from_the_first_changed_step(cli, change: str, rerun: list[str]) -> None:
    # the steps before it are skipped; from the first step whose input changed or whose output
    # is gone or changed, everything runs again (a later step may depend on what it changes)
    cli.recipe(RESUMABLE)
    for n in (1, 2, 3):
        cli.write(f"in{n}.txt", f"input {n}\n")
    cli.ok("r.yml", "--run-dir", "D1")
    name, what = change.split()
    if what == "deleted":
        (cli.root / name).unlink()
    else:
        cli.write(name, "changed\n")
    cli.ok("r.yml", "--resume", "D1", "--run-dir", "D2")
    assert cli.lines("runs.log")[4:] == rerun
    expected = {"o1.txt": "input 1\n", "o2.txt": "input 2\n", "o3.txt": "input 3\n"}
    if what == "changed" and name.startswith("in"):
        expected[name.replace("in", "o")] = "changed\n"
    expected["o4.txt"] = expected["o1.txt"]
    for output, content in expected.items():
        assert cli.read(output) == content
    steps = cli.provenance("D2")["steps"]
    first = 5 - len(rerun)
    assert [steps[f"main.c{n}"]["status"] for n in (1, 2, 3, 4)] == ["resumed"] * (first - 1) + [
        "ok"
    ] * len(rerun)


def test_resume_after_a_failed_run_reruns_from_the_failure(cli) -> None:
    cli.write("in1.txt", "input 1\n")
    cli.recipe(
        """
        cabs:
          gate:
            info: fails until the file go exists
            command: sh -c 'test -f go && echo gate >> runs.log' gate
        main:
          steps:
            c1: {cab: copy, params: {src: in1.txt, dst: o1.txt}}
            g: {cab: gate}
            c2: {cab: copy, params: {src: o1.txt, dst: o2.txt}}
        """
    )
    cli.fails("r.yml", code=1)
    assert cli.lines("runs.log") == ["o1.txt"]
    cli.write("go", "")
    cli.ok("r.yml", "--resume")  # the latest run, the failed one
    assert cli.lines("runs.log") == ["o1.txt", "gate", "o2.txt"]


def test_interrupt_stops_the_step_and_is_recorded(cli) -> None:
    cli.recipe(
        """
        cabs:
          nap:
            command: sh -c 'echo napping; sleep 20; echo woke >> out.txt' nap
        main:
          steps:
            nap: {cab: nap}
            after: {cab: append, params: {text: after}}
        """
    )
    process = cli.start("r.yml", "--run-dir", "D")
    log = cli.root / "D/logs/main.nap.log"
    deadline = time.monotonic() + 10
    while not (log.exists() and "napping" in log.read_text()):
        assert process.poll() is None, "rc-run ended before the step started"
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the process group
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    record = cli.provenance("D")
    assert record["status"] == "interrupted"
    assert record["steps"]["main.nap"]["status"] == "interrupted"
    assert "main.after" not in record["steps"]
    assert cli.lines() == []


def test_each_run_gets_its_own_default_run_dir(cli) -> None:
    cli.recipe("main:\n  steps:\n    say: {cab: echo, params: {text: hi}}\n")
    runs = [cli.start("r.yml") for _ in range(3)]  # started together: within one second
    for process in runs:
        _, stderr = process.communicate(timeout=30)
        assert "Traceback" not in stderr
        assert process.returncode == 0, stderr
    dirs = [p for p in (cli.root / "rc-runs").iterdir() if not p.is_symlink()]
    assert len(dirs) == 3


# ---------------------------------------------------------------------------------- doc


def test_doc_of_a_recipe_lists_inputs_and_steps(cli) -> None:
    cli.recipe(
        """
        main:
          info: the main recipe
          inputs:
            msg: {dtype: str, required: true, info: the message}
            n: {dtype: int, default: 4}
          steps:
            say: {cab: append, params: {text: =recipe.msg}, info: say it}
            img: {cab: echo, params: {text: x}, tags: [never]}
            c: {cab: count}
            sub:
              recipe:
                steps:
                  inner: {cab: ok, info: deep inside}
          aliases:
            count: c.n
        """
    )
    out = cli.ok("doc", "r.yml", "main").stdout
    assert "the main recipe" in out
    assert "msg: str (required)  the message" in out
    assert "n: int = 4" in out
    assert "say: cab append  say it" in out
    assert "img: cab echo [never]" in out
    assert "count: int (required)" in out  # adopted from c.n
    assert "\n    inner: cab ok  deep inside" in out
    assert not (cli.root / "out.txt").exists()


def test_doc_of_a_cab_lists_its_inputs(cli) -> None:
    cli.recipe("main:\n  steps:\n    a: {cab: append, params: {text: a}}\n")
    out = cli.ok("doc", "r.yml", "copy").stdout
    assert "cab copy" in out
    assert "src: File (required)" in out
    assert "dst: File (required)" in out


def test_doc_of_a_builtin_radiocloud_cab(cli) -> None:
    cli.recipe("main:\n  steps:\n    a: {cab: append, params: {text: a}}\n")
    out = cli.ok("doc", "r.yml", "rc-image").stdout
    assert "cab rc-image" in out
    for name in ("dataset: MS (required)", "prefix: str (required)", "size: List[int]", "scale"):
        assert name in out
