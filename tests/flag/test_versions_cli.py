"""rc-flag-versions through its real CLI: save, list, restore, delete, and its one-line errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from casacore.tables import table

from radiocloud.core import io
from radiocloud.core.testing import MSSpec, build_ms

from .conftest import versions


def flag_column(ms) -> np.ndarray:
    with table(str(ms), ack=False) as t:
        return np.concatenate([c.ravel() for c in t.getvarcol("FLAG").values()])


def set_all_flags(ms, value: bool) -> None:
    with table(str(ms), ack=False, readonly=False) as t:
        for ddid in (0, 1):
            sub = t.query(f"DATA_DESC_ID=={ddid}")
            sub.putcol("FLAG", np.full(sub.getcol("FLAG").shape, value))
            sub.putcol("FLAG_ROW", np.full(sub.nrows(), value))
            sub.close()


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rc-flag-versions: error: ")
    assert not any("Traceback" in line for line in err)
    return err[-1]


def test_save_list_restore_delete(ms, capsys):
    before = flag_column(ms)
    assert versions(ms, "save", "orig", "--description", "as observed") == 0
    assert "flag version 'orig'" in capsys.readouterr().out
    set_all_flags(ms, True)
    assert versions(ms, "save", "all-flagged") == 0
    assert versions(ms, "list") == 0
    out = capsys.readouterr().out
    for text in ("orig", "as observed", "all-flagged", "100.00%", "created (UTC)"):
        assert text in out
    assert versions(ms, "restore", "orig") == 0
    np.testing.assert_array_equal(flag_column(ms), before)
    assert versions(ms, "delete", "orig") == 0
    assert [v.name for v in io.list_versions(ms)] == ["all-flagged"]


def test_list_without_versions(ms, capsys):
    assert versions(ms, "list") == 0
    assert "has no flag versions" in capsys.readouterr().out


def test_skip_missing_restores_nothing_and_succeeds(ms, capsys):
    set_all_flags(ms, False)
    for name in ("", "never-saved"):
        assert versions(ms, "restore", name, "--skip-missing") == 0
        assert "nothing restored (--skip-missing)" in " ".join(capsys.readouterr().err.split())
    assert not flag_column(ms).any()
    assert not (ms.parent / "obs.ms.flagversions").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("restore", "never-saved"), "no flag version 'never-saved' of"),
        (("delete", "never-saved"), "(it has no flag versions)"),
        (("save", "bad name"), "flag version name 'bad name' is not allowed"),
        (("save",), "save needs a NAME: rc-flag-versions DATASET save NAME"),
        (("restore",), "restore needs a NAME"),
        (("list", "x"), "list takes no NAME"),
    ],
)
def test_errors_are_one_line_and_exit_2(ms, capsys, args, message):
    assert versions(ms, *args) == 2
    assert message in one_error_line(capsys)


def test_missing_version_names_the_existing_ones(ms, capsys):
    assert versions(ms, "save", "a") == 0
    assert versions(ms, "save", "b") == 0
    assert versions(ms, "restore", "c") == 2
    assert "(it has: a, b)" in one_error_line(capsys)


def test_save_over_a_name_needs_overwrite(ms, capsys):
    assert versions(ms, "save", "v") == 0
    assert versions(ms, "save", "v") == 2
    assert "exists: choose another name or pass --overwrite" in one_error_line(capsys)
    set_all_flags(ms, True)
    assert versions(ms, "save", "v", "--overwrite") == 0
    set_all_flags(ms, False)
    assert versions(ms, "restore", "v") == 0
    assert flag_column(ms).all()


def test_restore_into_another_dataset_fails_and_writes_nothing(ms, tmp_path, capsys):
    other = build_ms(tmp_path / "other.ms", MSSpec(n_ant=5, n_time=3))
    assert versions(ms, "save", "v") == 0
    shutil.copytree(f"{ms}.flagversions", f"{other}.flagversions")
    before = flag_column(other)
    assert versions(other, "restore", "v") == 2
    assert "does not fit" in one_error_line(capsys)
    np.testing.assert_array_equal(flag_column(other), before)
    assert io.partial_columns(other) == []
