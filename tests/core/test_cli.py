"""The CLI conventions every app shares: options, the error boundary, units, rc-data."""

from __future__ import annotations

import numpy as np
import pytest
import typer

from radiocloud.core.cli import RunSummary, RuntimeOptions, new_app, run_cli
from radiocloud.core.cli_data import app as data_app
from radiocloud.core.errors import EXIT_BAD_INPUT, ColumnError, OptionError
from radiocloud.core.testing import MSSpec, build_ms
from radiocloud.core.units import parse_angle, parse_duration, parse_frequency, parse_size


def _app(exc: Exception) -> typer.Typer:
    app = new_app("test app")

    @app.command()
    def go(debug: bool = False) -> None:
        raise exc

    return app


def test_known_error_is_one_line_and_exit_2(capsys):
    code = run_cli(_app(ColumnError("dataset 'x.ms' has no column FOO")), "rc-test", [])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err == "rc-test: error: dataset 'x.ms' has no column FOO\n"


def test_interrupt_and_exit_codes_reach_the_shell(capsys):
    """typer returns, rather than raises, Ctrl-C and typer.Exit without standalone mode."""
    assert run_cli(_app(KeyboardInterrupt()), "rc-test", []) == 130
    assert capsys.readouterr().err == "rc-test: interrupted; no output was put in place\n"
    assert run_cli(_app(typer.Exit(3)), "rc-test", []) == 3


def test_debug_shows_the_traceback(capsys):
    code = run_cli(_app(OptionError("bad value")), "rc-test", ["--debug"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "Traceback" in err
    assert err.endswith("rc-test: error: bad value\n")


def test_unexpected_error_says_internal_and_how_to_see_more(capsys):
    code = run_cli(_app(ZeroDivisionError("oops")), "rc-test", [])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1
    assert "internal error: ZeroDivisionError: oops" in err[0]
    assert "--debug" in err[0]


def test_usage_error_exit_2(capsys):
    assert run_cli(_app(OptionError("x")), "rc-test", ["--no-such-option"]) == 2
    assert "No such option" in capsys.readouterr().err


def test_runtime_options_from_cli():
    opts = RuntimeOptions.from_cli(
        workers=0, threads=3, scheduler=None, memory_budget="1.5GiB", log_level="debug",
        debug=False,
    )  # fmt: skip
    assert opts.memory_budget == int(1.5 * 2**30)
    assert opts.nthreads == 3
    assert opts.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (parse_size, "4GB", 4_000_000_000),
        (parse_size, "512MiB", 512 * 2**20),
        (parse_size, "1e6", 1_000_000),
        (parse_duration, "8s", 8.0),
        (parse_duration, "2min", 120.0),
        (parse_duration, "1.5h", 5400.0),
        (parse_frequency, "856MHz", 856e6),
        (parse_frequency, "1.4GHz", 1.4e9),
        (parse_angle, "1.5asec", np.radians(1.5 / 3600)),
        (parse_angle, "2deg", np.radians(2)),
    ],
)
def test_units(parse, text, value):
    assert parse(text) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("text", ["4 parsecs", "", "GB", "-1GB"])
def test_bad_sizes(text):
    with pytest.raises(OptionError, match="size"):
        parse_size(text)


def test_summary_paragraph():
    s = RunSummary("rc-x", read="a.ms", written="b.zarr", rows=10, visibilities=640)
    text = s.text()
    assert text.startswith("rc-x: read a.ms; wrote b.zarr; 10 rows, 640 visibilities;")
    assert "peak memory" in text


def test_rc_data_convert_through_the_cli(tmp_path, capsys):
    src = build_ms(tmp_path / "a.ms", MSSpec(n_time=2))
    assert run_cli(data_app, "rc-data", ["convert", src, str(tmp_path / "a.zarr")]) == 0
    assert "ms -> zarr" in capsys.readouterr().out
    # an existing output is refused and left alone; a missing input is named
    assert run_cli(data_app, "rc-data", ["convert", src, str(tmp_path / "a.zarr")]) == 2
    assert "exists" in capsys.readouterr().err
    assert run_cli(data_app, "rc-data", ["convert", str(tmp_path / "no.ms"), "x.zarr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "does not exist" in err


def test_workers_run_the_graph_and_are_gone_after_the_run():
    """--workers N starts a local cluster of N processes for the block, and closes it, with
    its processes, when the block ends (an app run in-process leaves none behind)."""
    import multiprocessing

    import dask
    import dask.array as da

    from radiocloud.core.cli import dask_runtime

    before = set(multiprocessing.active_children())
    with dask_runtime(RuntimeOptions(workers=1, threads=1, log_level="ERROR")):
        total = dask.compute(da.ones(1000, chunks=100).sum())[0]
        workers = set(multiprocessing.active_children()) - before
        assert workers  # the graph ran in another process
    assert total == 1000
    for process in workers:
        process.join(timeout=10)
    assert not set(multiprocessing.active_children()) - before
