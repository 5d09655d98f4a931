"""``rc-run``: load, validate and run a recipe; ``rc-run doc``: describe one.

    rc-run RECIPE.yml [MORE.yml ...] [RECIPE-NAME] [name=value ...] [options]
    rc-run doc RECIPE.yml [MORE.yml ...] [RECIPE-OR-CAB-NAME]
    rc-run report RUN_DIR

Files are merged in order after radiocloud's own cabs (``radiocloud/run/cabs/*.yml``), so a
recipe can use ``cab: rc-image`` without including anything, and may redefine a cab. The
recipe is the one named, or the only one in the files. ``name=value`` sets a recipe input, or
any step's parameter as ``label.param`` (values are read as YAML: ``niter=1000``,
``bands=[L, UHF]``). Everything is validated before the first step runs; ``--dry-run`` stops
there. Exit codes: 0 success, 2 bad recipe or parameters, 1 a step failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from radiocloud.core.errors import EXIT_BAD_INPUT, RadiocloudError
from radiocloud.run import backends, provenance
from radiocloud.run.execute import Executor
from radiocloud.run.loader import load
from radiocloud.run.recipe import Configuration, Recipe
from radiocloud.run.report import write_report
from radiocloud.run.runner import ValidationFailed, Walk, run_dir_for
from radiocloud.run.schema import parse_value
from radiocloud.run.selection import Selection

CAB_DIR = Path(__file__).parent / "cabs"
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        if argv[:1] == ["doc"]:
            return doc(argv[1:])
        if argv[:1] == ["report"]:
            return report(argv[1:])
        return run(argv)
    except KeyboardInterrupt:
        print("rc-run: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into head & co.: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ValidationFailed as error:
        for problem in error.problems:
            print(f"rc-run: {problem}", file=sys.stderr)
        print(f"rc-run: {len(error.problems)} problem(s); nothing was run", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RadiocloudError as error:
        if debug:
            raise
        print(f"rc-run: {error}", file=sys.stderr)
        return error.exit_code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rc-run",
        description="Run a Stimela2-style YAML recipe (rc-run doc FILE [NAME] describes one).",
    )
    parser.add_argument("args", nargs="+", metavar="FILE.yml|RECIPE|name=value")
    parser.add_argument("-s", "--step", action="append", default=[], help="steps or ranges a:b")
    parser.add_argument("-k", "--skip-step", action="append", default=[], help="steps to skip")
    parser.add_argument("-t", "--tags", action="append", default=[], help="run tagged steps")
    parser.add_argument("--skip-tags", action="append", default=[], help="skip tagged steps")
    parser.add_argument("-d", "--dry-run", action="store_true", help="load and validate only")
    parser.add_argument(
        "-b",
        "--backend",
        choices=backends.NAMES,
        help="run every step with this backend (default: each step's backend.select, or native)",
    )
    parser.add_argument(
        "--run-dir", help="where logs and provenance go (default rc-runs/NAME-TIME)"
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        nargs="?",
        const="latest",
        help="skip steps unchanged since that run (default: the latest)",
    )
    parser.add_argument("--debug", action="store_true", help="tracebacks for errors")
    return parser


def _split(args: list[str]) -> tuple[list[str], str | None, dict[str, object]]:
    files, names, params = [], [], {}
    for arg in args:
        if "=" in arg and not os.path.exists(arg):
            name, _, value = arg.partition("=")
            params[name.strip()] = parse_value(value)
        elif arg.endswith((".yml", ".yaml")) or os.path.isfile(arg):
            files.append(arg)
        else:
            names.append(arg)
    if not files:
        raise ValidationFailed(["no recipe file given; rc-run RECIPE.yml [NAME] [name=value ...]"])
    if len(names) > 1:
        raise ValidationFailed([f"more than one recipe name given ({', '.join(names)}); give one"])
    return files, (names[0] if names else None), params


def _configuration(files: list[str]) -> Configuration:
    for file in files:
        if not os.path.isfile(file):
            raise ValidationFailed([f"{file}: no such file; check the recipe path"])
    builtin = sorted(str(p) for p in CAB_DIR.glob("*.yml"))
    return Configuration(load([*builtin, *files], origins=True))


def _choose(config: Configuration, name: str | None, files: list[str]) -> str:
    names = config.recipe_names()
    if name is not None:
        return name
    if len(names) == 1:
        return names[0]
    # several: the one written in the given files themselves (not in files they include)
    given = {os.path.abspath(f) for f in files}
    own = [n for n in names if config.origin_file(n) in given]
    if len(own) == 1:
        return own[0]
    listing = ", ".join(names) or "none"
    raise ValidationFailed(
        [f"the files hold {len(names)} recipes ({listing}); name the one to run"]
    )


def run(argv: list[str]) -> int:
    options = _parser().parse_intermixed_args(argv)
    files, name, params = _split(options.args)
    config = _configuration(files)
    name = _choose(config, name, files)
    recipe = config.recipe(name)
    selection = Selection(
        tags=frozenset(t for tags in options.tags for t in tags.split(",")),
        skip_tags=frozenset(t for tags in options.skip_tags for t in tags.split(",")),
        steps=tuple(s for steps in options.step for s in steps.split(",")),
        skip_steps=tuple(s for steps in options.skip_step for s in steps.split(",")),
    )
    dispatch = backends.Dispatch(options.backend)
    started = time.perf_counter()
    check = Walk(dry=True, selection=selection, dispatch=dispatch)
    check.recipe(recipe, params, name, selection)
    if check.problems:
        raise ValidationFailed(check.problems)
    steps = _count(recipe)
    print(
        f"rc-run: recipe '{name}' is valid ({steps} steps checked in "
        f"{time.perf_counter() - started:.2f} s)",
        file=sys.stderr,
    )
    if options.dry_run:
        return 0
    walk = Walk(dry=False, selection=selection, echo=_echo)
    return _execute(walk, dispatch, recipe, name, params, config.config.files, options, started)


def _echo(line: str) -> None:
    print(line, flush=True)


def _execute(
    walk: Walk,
    dispatch: backends.Dispatch,
    recipe: Recipe,
    name: str,
    params: dict,
    files: tuple[str, ...],
    options: argparse.Namespace,
    started: float,
) -> int:
    """Run ``recipe`` (already validated), recording it in its run directory."""
    run_dir = run_dir_for(name, options.run_dir)
    previous, final = {}, {}
    if options.resume:
        before = _latest(name) if options.resume == "latest" else Path(options.resume)
        previous, final = provenance.previous_run(before) if before else ({}, {})
    record = provenance.RunRecord(
        run_dir, recipe=name, files=list(files), backend=options.backend or "per step"
    )
    walk.executor = Executor(
        dispatch=dispatch, record=record, say=walk.say, previous=previous, final=final
    )
    _link_latest(name, run_dir)
    try:
        walk.recipe(recipe, params, name, walk.selection)
    except KeyboardInterrupt:
        _finish(record, "interrupted", started)
        raise
    except BaseException:
        _finish(record, "failed", started)
        raise
    _finish(record, "succeeded", started)
    counts = walk.executor.counts
    print(
        f"rc-run: '{name}' succeeded in {time.perf_counter() - started:.1f} s: "
        f"{counts['run']} run, {counts['resumed']} resumed, {counts['skipped']} skipped; "
        f"logs and provenance in {run_dir}",
        file=sys.stderr,
    )
    return 0


def _finish(record: provenance.RunRecord, status: str, started: float) -> None:
    """Close the run's record and write its report (a report that fails is only a warning)."""
    record.finish(status, time.perf_counter() - started)
    try:
        write_report(record.run_dir)
    except Exception as error:  # the run's outcome must not depend on its report
        print(f"rc-run: warning: no report.md ({error})", file=sys.stderr)


def report(argv: list[str]) -> int:
    """``rc-run report RUN_DIR``: (re)write the run's report.md from its provenance."""
    if len(argv) != 1 or not (Path(argv[0]) / "provenance.json").is_file():
        raise ValidationFailed(
            ["rc-run report RUN_DIR: give a run directory (with provenance.json)"]
        )
    print(write_report(Path(argv[0])))
    return 0


def _latest(name: str) -> Path | None:
    link = Path("rc-runs") / f"{name}-latest"
    return link.resolve() if link.exists() else None


def _link_latest(name: str, run_dir: Path) -> None:
    link = Path("rc-runs") / f"{name}-latest"
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(link.name + ".tmp")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(run_dir.resolve())
        os.replace(tmp, link)
    except OSError:
        pass  # the latest-run link is a convenience


def _count(recipe: Recipe) -> int:
    return sum(1 + (_count(s.recipe) if s.recipe else 0) for s in recipe.steps.values())


# ---------------------------------------------------------------------------------- doc


def doc(argv: list[str]) -> int:
    files, name, _ = _split(argv)
    config = _configuration(files)
    if name in config.cab_specs:
        cab = config.cab(name, "rc-run doc")
        print(f"cab {name}: {cab.info}\n  command: {cab.command}")
        _describe("inputs", cab.inputs)
        _describe("outputs", cab.outputs)
        return 0
    name = _choose(config, name, files)
    recipe = config.recipe(name)
    print(f"recipe {name}: {recipe.info}".rstrip(": "))
    _describe("inputs", recipe.inputs)
    _describe("outputs", recipe.outputs)
    print("steps:")
    _describe_steps(recipe, "  ")
    return 0


def _describe(title: str, params: dict) -> None:
    if not params:
        return
    print(f"{title}:")
    for param in params.values():
        flags = " (required)" if param.required else ""
        default = (
            ""
            if param.default is None or repr(param.default) == "UNSET"
            else f" = {param.default!r}"
        )
        print(f"  {param.name}: {param.dtype}{default}{flags}  {param.info}".rstrip())


def _describe_steps(recipe: Recipe, indent: str) -> None:
    for label, step in recipe.steps.items():
        what = f"cab {step.cab.name}" if step.cab else f"recipe {step.recipe.name}"
        tags = f" [{', '.join(step.tags)}]" if step.tags else ""
        print(f"{indent}{label}: {what}{tags}  {step.info}".rstrip())
        if step.recipe:
            _describe_steps(step.recipe, indent + "  ")


if __name__ == "__main__":
    sys.exit(main())
