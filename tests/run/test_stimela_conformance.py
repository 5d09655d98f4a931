"""rc-run against Stimela2's own recipes: does ``rc-run --dry-run`` treat each as Stimela does?

shared/stimela2-recipes/ holds 29 recipe and cab files from Stimela2, scabha and cult-cargo, and
INDEX.md gives what Stimela itself does with each (the column used here: stimela 2.2.0rc1, dry
run, ``stimela run -d``). The files are used in place (copied to a scratch directory, as Stimela's
own tests do, with the empty ``*.ms`` directories they expect); the module is skipped when the
folder is absent. Run this file as a script for the table of verdicts.

:data:`KNOWN_MISSES` lists the cases rc-run treats differently, each with the reason; the test
fails when that list is wrong in either direction, so a fix (or a regression) must update it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# the workplace's shared folder: beside the repository, or named by RADIOCLOUD_SHARED
SHARED = Path(os.environ.get("RADIOCLOUD_SHARED", Path(__file__).resolve().parents[3] / "shared"))
SHARED = (SHARED if SHARED.exists() else Path("/work/shared")) / "stimela2-recipes"
pytestmark = pytest.mark.skipif(not SHARED.exists(), reason="shared/stimela2-recipes is absent")


@dataclass(frozen=True)
class Case:
    id: str
    file: str  # relative to shared/stimela2-recipes
    args: tuple[str, ...] = ()
    stimela_ok: bool = True  # stimela 2.2.0rc1, dry run (INDEX.md)
    doc: bool = False  # `stimela doc FILE NAME` rather than `stimela run -d`


S = "stimela/tests/"
SELFCAL = ("selfcal.image_name=bar", "msname=foo")
CASES = (
    Case("1", S + "test_recipe.yml", ("selfcal.image_name=bar",), stimela_ok=False),
    Case("1b", S + "test_recipe.yml", (*SELFCAL, "elem-xyz=t", "elemlist-xyz=[x,y]"), False),
    Case("1c", S + "test_recipe.yml", (*SELFCAL, "elem-xyz=x", "elemlist-xyz=[x,y]")),
    Case("1c'", S + "test_recipe.yml", (*SELFCAL, "elem-xyz=x", "elemlist-xyz=x")),
    Case("2", S + "test_aliasing.yml", (), stimela_ok=False),
    Case("2b", S + "test_aliasing.yml", ("a=1", "s3.a=1", "s4.a=1", "e=e", "f=f")),
    Case("3", S + "test_nesting.yml", ("demo_recipe",)),
    Case("4", S + "test_loop_recipe.yml", ("cubical_image_loop",), stimela_ok=False),
    Case("4b", S + "test_loop_recipe.yml", ("cubical_image_loop", "ms=foo")),
    Case("4b'", S + "test_loop_recipe.yml", ("same_as_cubical_image_loop", "ms=foo")),
    Case("4b''", S + "test_loop_recipe.yml", ("loop_recipe",)),
    Case("5", S + "test_scatter.yml", ("basic_loop",)),
    Case("5'", S + "test_scatter.yml", ("nested_loop",)),
    Case("6", S + "test_conditional_skips.yml"),
    Case("7", S + "test_callables.yml"),
    Case("8", S + "test_wranglers.yml", ("test_replace_suppress",)),
    Case("8'", S + "test_wranglers.yml", ("test_force_success",)),
    Case("8''", S + "test_wranglers.yml", ("test_parse",)),
    Case("8'''", S + "test_wranglers.yml", ("test_parse2",)),
    Case("8b", S + "test_wranglers.yml", ("test_force_failure",)),
    Case("9", S + "test_notify.yml"),
    Case("9b", S + "test_notify.yml", ("step4.x=42",)),
    Case("10", S + "test_output_elements.yml"),
    Case("11", S + "test_zip_loops.yml", ("main_recipe",)),
    Case("12", S + "test_subrecipes.yml"),
    Case("12'", S + "test_subrecipes.yml", ("-t", "foo")),
    Case("13", S + "test_issue527.yml", ("outer",)),
    Case("13b", S + "test_issue527.yml", ("circular",)),
    Case("14", S + "test_param_file.yml", ("test-param-file", "-pf", "param_file.yml")),
    Case("15", S + "test_backends.yml", ("test_recipe",)),
    Case("15b", S + "test_backends.yml", ("test_recipe2",), stimela_ok=False),
    Case("16", S + "test_slurm.yml", (), stimela_ok=False),
    Case("17", S + "test_kube.yml", (), stimela_ok=False),
    Case("18", "cult-cargo/tests/test-recipe.yml", (), stimela_ok=False),
    Case(
        "18b",
        "cult-cargo/tests/test-recipe.yml",
        ("image.ms=foo.ms", "image.prefix=foo", "image.size=1024", "image.scale=1asec"),
    ),
    Case("19", "cult-cargo/cultcargo/wsclean.yml", ("wsclean",), doc=True),
    Case("20", "cult-cargo/cultcargo/casa/flag.yml", ("casa.flagman",), False, doc=True),
    Case("21", "cult-cargo/cultcargo/taql.yml", ("taql.update",), doc=True),
)

# Cases rc-run treats differently from Stimela 2.2's dry run, and why.
KNOWN_MISSES = {
    "1c": "python-flavour cabs (test_callable) are refused: rc-run runs command lines only",
    "1c'": "python-flavour cabs (test_callable) are refused: rc-run runs command lines only",
    "4b''": "GLOB(*ms): an unquoted glob pattern is not a formula rc-run parses",
    "7": "python and python-code cabs are refused",
    "9": "step preamble/epilogue (LOG, ABORT) are not supported",
    "9b": "step preamble/epilogue (LOG, ABORT) are not supported",
    "10": "recipe epilogue and for_loop.output_elements are not supported",
    "13b": "rc-run finds the self-referencing formula in validation; Stimela only at run time",
    "14": "-pf parameter files are not supported (and the recipe needs a python-code cab)",
    "15b": "backend sections (Stimela 2.2 varieties) are not read: --backend chooses",
}


def _verdict(case: Case, scratch: Path) -> tuple[bool, str]:
    """(rc-run accepted it, its last line of output) for one case, in a scratch copy."""
    path = scratch / case.file
    args = ["doc", path.name, *case.args] if case.doc else [path.name, *case.args, "--dry-run"]
    env = {**os.environ, "PYTHONPATH": str(scratch / "cult-cargo")}  # `(cultcargo)` includes
    result = subprocess.run(
        [sys.executable, "-m", "radiocloud.run.cli", *args],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = (result.stderr or result.stdout).strip().splitlines()
    return result.returncode == 0, lines[-1] if lines else ""


def _scratch(root: Path) -> Path:
    shutil.copytree(SHARED, root / "s", ignore=shutil.ignore_patterns("INDEX.md"))
    for name in ("test-a.ms", "test-b.ms", "test-c.ms"):
        (root / "s" / "stimela" / "tests" / name).mkdir()
    (root / "s" / "cult-cargo" / "tests" / "foo.ms").mkdir()
    return root / "s"


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    scratch = _scratch(tmp_path_factory.mktemp("stimela2"))
    return {case.id: _verdict(case, scratch) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rc_run_treats_the_recipe_as_stimela_does(case, verdicts):
    ok, last = verdicts[case.id]
    same = ok == case.stimela_ok
    if case.id in KNOWN_MISSES:
        assert not same, f"case {case.id} now matches Stimela: remove it from KNOWN_MISSES"
        return
    assert same, (
        f"case {case.id} ({case.file} {' '.join(case.args)}): Stimela "
        f"{'accepts' if case.stimela_ok else 'rejects'} it, rc-run says: {last}"
    )


def test_scabha_configuration_loads_as_scabha_loads_it():
    """INDEX.md case 22: the values scabha's configuratt gives for testconf.yaml. Not read by
    rc-run: ``${self:basename}`` interpolation, ``_requires``, ``_contingent``, ``_flatten``."""
    from radiocloud.run.loader import load

    config = load([SHARED / "scabha" / "tests" / "testconf.yaml"])
    assert config["x"]["y2"]["z1"] == 1  # injected into x.y1, seen through x.y2's _use
    assert config["relative"]["x"]["y"] == "a"
    assert config["structured"] == config["relative"]
    assert config["scrubbed"]["foo"]["x"] == "replaced-x"
    assert list(config["scrubbed2"]["x"]) == ["a", "x", "z"]


def test_the_recursive_include_is_rejected(tmp_path):
    scratch = _scratch(tmp_path)
    case = Case("23", "scabha/tests/test_recursive_include.yml", ("x",))
    ok, last = _verdict(case, scratch)
    assert not ok
    assert "include cycle" in last


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        scratch = _scratch(Path(tmp))
        same = 0
        for case in CASES:
            ok, last = _verdict(case, scratch)
            same += ok == case.stimela_ok
            mark = "same" if ok == case.stimela_ok else "MISS"
            print(f"{case.id:6} {mark:4} rc-run {'ok ' if ok else 'err'}  {last[:110]}")
        print(f"{same}/{len(CASES)} treated as Stimela 2.2 treats them (dry run)")
