"""Configuration loading of rc-run: merging, ``_include``, ``_use``, ``_scrub`` and errors."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from radiocloud.core.errors import BadInputError
from radiocloud.run.loader import RecipeError, load, resolve_include

SEED = Path("/work/shared/seed-recipe.md")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def assert_one_line_error(error: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


# ---- merging files in order


def test_later_files_override_earlier_and_mappings_merge(tmp_path: Path) -> None:
    first = write(tmp_path / "a.yml", "x: {a: 1, b: [1, 2], c: {d: 1}}\ny: 1\n")
    second = write(tmp_path / "b.yml", "x: {b: [3], c: {e: 2}}\ny: {z: 2}\n")
    assert load([first, second]) == {"x": {"a": 1, "b": [3], "c": {"d": 1, "e": 2}}, "y": {"z": 2}}
    assert load([second, first])["y"] == 1


def test_empty_file_and_no_files_load_as_empty(tmp_path: Path) -> None:
    assert load([write(tmp_path / "empty.yml", "")]) == {}
    assert load([]) == {}


def test_result_is_plain_dicts(tmp_path: Path) -> None:
    config = load([write(tmp_path / "a.yml", "x: {y: [{z: 1}]}\n")])
    assert type(config) is dict
    assert type(config["x"]["y"][0]) is dict


# ---- _include


def test_include_relative_to_including_file_in_nested_dirs(tmp_path: Path) -> None:
    write(tmp_path / "lib" / "deep" / "base.yml", "steps: {s: {cab: wsclean, n: 1}}\n")
    write(tmp_path / "lib" / "lib.yml", "_include: deep/base.yml\nlib: {from: lib}\n")
    top = write(tmp_path / "top.yml", "_include: [lib/lib.yml]\nsteps: {s: {n: 2}}\n")
    assert load([top]) == {"steps": {"s": {"cab": "wsclean", "n": 2}}, "lib": {"from": "lib"}}


def test_include_inside_a_mapping_merges_there_and_own_keys_win(tmp_path: Path) -> None:
    write(tmp_path / "params.yml", "size: 1024\nscale: 1asec\n")
    top = write(
        tmp_path / "top.yml",
        """\
        image:
          _include: (.)params.yml
          size: 2048
        """,
    )
    assert load([top]) == {"image": {"size": 2048, "scale": "1asec"}}


def test_several_includes_merge_in_order(tmp_path: Path) -> None:
    write(tmp_path / "one.yml", "a: 1\nb: 1\n")
    write(tmp_path / "two.yml", "b: 2\n")
    top = write(tmp_path / "top.yml", "x: {_include: [one.yml, two.yml]}\n")
    assert load([top]) == {"x": {"a": 1, "b": 2}}


def test_include_without_suffix_finds_yaml_file(tmp_path: Path) -> None:
    write(tmp_path / "lib.yaml", "a: 1\n")
    assert load([write(tmp_path / "top.yml", "_include: lib\n")]) == {"a": 1}


def test_include_from_installed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site" / "fakecargo"
    write(package / "__init__.py", "")
    write(package / "cabs" / "common.yml", "common: {image: wsclean}\n")
    write(package / "cabs" / "wsclean.yml", "_include: common.yml\ncabs: {wsclean: {n: 1}}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    top = write(tmp_path / "top.yml", "_include: (fakecargo)cabs/wsclean.yml\n")
    assert load([top]) == {"common": {"image": "wsclean"}, "cabs": {"wsclean": {"n": 1}}}
    assert resolve_include("(fakecargo)cabs/wsclean.yml", top) == package / "cabs" / "wsclean.yml"


def test_include_from_unknown_package_is_an_error(tmp_path: Path) -> None:
    top = write(tmp_path / "top.yml", "_include: (no_such_package_xyz)a.yml\n")
    with pytest.raises(RecipeError) as error:
        load([top])
    assert_one_line_error(error, str(top), "_include", "no_such_package_xyz", "install")


def test_include_cycle_names_the_chain(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yml", "_include: sub/b.yml\n")
    write(tmp_path / "sub" / "b.yml", "x: {_include: ../a.yml}\n")
    with pytest.raises(RecipeError) as error:
        load([a])
    assert_one_line_error(error, "include cycle", f"{a} -> {tmp_path / 'sub' / 'b.yml'} -> {a}")


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="include cycle"):
        load([write(tmp_path / "a.yml", "_include: a.yml\n")])


def test_same_file_included_twice_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path / "p.yml", "n: 1\n")
    top = write(tmp_path / "top.yml", "x: {_include: p.yml}\ny: {_include: p.yml}\n")
    assert load([top]) == {"x": {"n": 1}, "y": {"n": 1}}


def test_missing_include_names_including_file(tmp_path: Path) -> None:
    top = write(tmp_path / "top.yml", "_include: nope.yml\n")
    with pytest.raises(RecipeError) as error:
        load([top])
    assert_one_line_error(error, str(top), "nope.yml", "check the file name")


# ---- _use


def test_use_copies_section_and_own_keys_override(tmp_path: Path) -> None:
    top = write(
        tmp_path / "top.yml",
        """\
        lib:
          steps:
            wsclean:
              image: {cab: wsclean, params: {size: 1024, niter: 100}}
        steps:
          image-0:
            _use: lib.steps.wsclean.image
            params: {niter: 0}
        """,
    )
    config = load([top])
    assert config["steps"]["image-0"] == {"cab": "wsclean", "params": {"size": 1024, "niter": 0}}
    assert config["lib"]["steps"]["wsclean"]["image"]["params"]["niter"] == 100


def test_use_is_resolved_after_all_files_and_includes(tmp_path: Path) -> None:
    write(tmp_path / "lib.yml", "lib: {base: {a: 1}}\n")
    recipe = write(tmp_path / "recipe.yml", "_include: lib.yml\nstep: {_use: lib.base}\n")
    late = write(tmp_path / "late.yml", "lib: {base: {b: 2}}\n")
    assert load([recipe, late])["step"] == {"a": 1, "b": 2}


def test_use_chains_and_lists(tmp_path: Path) -> None:
    top = write(
        tmp_path / "top.yml",
        """\
        c: {_use: b, c: 3}
        b: {_use: a, b: 2}
        a: {a: 1, b: 0}
        x: {x: 1, a: 9}
        both: {_use: [a, x]}
        """,
    )
    config = load([top])
    assert config["c"] == {"a": 1, "b": 2, "c": 3}
    assert config["both"] == {"a": 9, "b": 0, "x": 1}


def test_use_through_a_section_that_itself_uses(tmp_path: Path) -> None:
    top = write(tmp_path / "top.yml", "a: {inner: {n: 1}}\nb: {_use: a}\nc: {_use: b.inner}\n")
    assert load([top])["c"] == {"n": 1}


def test_use_unknown_path_names_file_line_and_key(tmp_path: Path) -> None:
    top = write(tmp_path / "top.yml", "steps:\n  s1:\n    _use: lib.steps.nope\n")
    with pytest.raises(RecipeError) as error:
        load([top])
    assert_one_line_error(error, f"{top}:3", "steps.s1._use", "'lib.steps.nope'")


def test_use_of_a_scalar_is_an_error(tmp_path: Path) -> None:
    top = write(tmp_path / "top.yml", "a: 1\nb: {_use: a}\n")
    with pytest.raises(RecipeError, match=r"section 'a' is not a mapping \(int\); name a mapping"):
        load([top])


@pytest.mark.parametrize(
    "text",
    ["a: {_use: b}\nb: {_use: a}\n", "a: {_use: a}\n", "a: {b: {_use: a}}\n"],
    ids=["mutual", "self", "ancestor"],
)
def test_use_cycles_are_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(RecipeError) as error:
        load([write(tmp_path / "top.yml", text)])
    assert_one_line_error(error, str(tmp_path / "top.yml"), "_use cycle")


def test_use_cycle_message_names_chain(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"_use cycle a -> b -> a"):
        load([write(tmp_path / "top.yml", "a: {_use: b}\nb: {_use: a}\n")])


def test_use_must_be_a_string_or_list_of_strings(tmp_path: Path) -> None:
    top = write(tmp_path / "top.yml", "a: {_use: 3}\n")
    with pytest.raises(RecipeError) as error:
        load([top])
    assert_one_line_error(error, f"{top}:1", "a._use", "give a dotted path")


# ---- _scrub


def test_scrub_with_wildcards_after_use(tmp_path: Path) -> None:
    top = write(
        tmp_path / "top.yml",
        """\
        lib:
          params:
            base:
              size: {dtype: int, default: 1024}
              scale: {dtype: str, default: 1asec}
              weight: {dtype: str}
        predict:
          _use: lib.params.base
          _scrub: ['*.dtype', weight]
        """,
    )
    config = load([top])
    assert config["predict"] == {"size": {"default": 1024}, "scale": {"default": "1asec"}}
    assert config["lib"]["params"]["base"]["size"]["dtype"] == "int"


def test_scrub_dotted_keys_after_include_and_nothing_matched_is_fine(tmp_path: Path) -> None:
    write(tmp_path / "inc.yml", "x: {a: {b: 1, c: 2}, y: 1, z: 1}\n")
    top = write(tmp_path / "top.yml", "s: {_include: inc.yml, _scrub: [x.a.*, x.y, nope.*]}\n")
    assert load([top]) == {"s": {"x": {"a": {}, "z": 1}}}


def test_scrub_removes_inherited_keys_not_the_mappings_own(tmp_path: Path) -> None:
    top = write(
        tmp_path / "top.yml",
        """\
        base: {foo: {x: 1, y: 2}, bar: 3}
        scrubbed:
          _use: base
          _scrub: [foo.x, bar]
          foo: {x: replaced-x}
        """,
    )
    assert load([top])["scrubbed"] == {"foo": {"x": "replaced-x", "y": 2}}


def test_structured_include_names_each_location_once(tmp_path: Path) -> None:
    write(tmp_path / "a.yml", "x: {a: 1}\n")
    write(tmp_path / "b.yml", "x: {b: 2}\n")
    top = write(tmp_path / "top.yml", "s: {_include: {(.): a.yml, .: [b.yml]}}\n")
    assert load([top]) == {"s": {"x": {"a": 1, "b": 2}}}


# ---- bad input


def test_bad_yaml_is_one_line_naming_file(tmp_path: Path) -> None:
    top = write(tmp_path / "top.yml", "a: [1, 2\nb: 3\n")
    with pytest.raises(RecipeError) as error:
        load([top])
    assert_one_line_error(error, str(top), "invalid YAML", "fix the syntax")
    assert isinstance(error.value, BadInputError)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(
        RecipeError, match=r"top level is not a mapping \(list\); make it a mapping"
    ):
        load([write(tmp_path / "top.yml", "- a\n")])


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="cannot read"):
        load([tmp_path / "nope.yml"])


# ---- real recipes


def test_seed_recipe_loads(tmp_path: Path) -> None:
    if not SEED.exists():
        pytest.skip(f"{SEED} is absent")
    blocks = re.findall(r"```yaml\n(.*?)```", SEED.read_text(), flags=re.DOTALL)
    if len(blocks) < 2:
        pytest.skip(f"{SEED} has no recipe and library YAML blocks")
    recipe, library = blocks[:2]
    # The fragments use sections from a standard library the talk does not show: stub them. The
    # slide's `include:` has no underscore, so it is plain data here; `_include` does the work.
    write(
        tmp_path / "stdlib.yml",
        """\
        lib:
          steps: {wsclean: {image: {cab: wsclean, params: {niter: 1000}}}}
          params: {imaging: {base: {prefix: {dtype: str}, size: {dtype: int, default: 1}}}}
        """,
    )
    write(tmp_path / "lib-137.yaml", library)
    top = write(tmp_path / "recipe.yml", "_include: [stdlib.yml, lib-137.yaml]\n" + recipe)
    config = load([top])
    image = config["steps"]["image-0"]
    assert image["cab"] == "wsclean"
    assert image["params"]["niter"] == 1000
    assert image["params"]["column"] == "DATA"
    predict = config["selfcal-cc-delay"]["inputs"]["predict"]
    assert predict == {"prefix": {}, "size": {"default": 1}}
