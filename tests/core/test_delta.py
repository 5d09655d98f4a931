"""Versioned datasets (delta-sets): rc-data branch/log/diff/cache/consolidate, and the apps
(rc-predict, rc-calibrate) run on a delta-set as on a plain dataset, the archive untouched."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
from pathlib import Path

import dask
import numpy as np
import pytest
from casacore.tables import table

from radiocloud.calibrate.cli import app as calibrate_app
from radiocloud.core import io
from radiocloud.core.cli import run_cli
from radiocloud.core.cli_data import app as data_app
from radiocloud.core.errors import DeltaParentMissingError
from radiocloud.core.io import deltaops
from radiocloud.core.skymodel import SkyModel, write_skymodel
from radiocloud.core.testing import MSSpec, build_ms
from radiocloud.core.testing.s3 import moto_server
from radiocloud.predict.cli import app as predict_app
from radiocloud.simulate.cli import app as simulate_app


def rc_data(*args) -> int:
    return run_cli(data_app, "rc-data", [str(a) for a in args])


def predict(*args) -> int:
    return run_cli(predict_app, "rc-predict", [str(a) for a in args])


def calibrate(*args) -> int:
    return run_cli(calibrate_app, "rc-calibrate", [str(a) for a in args])


def tree_hashes(root) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (its byte-for-byte state)."""
    root = Path(root)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """6 antennas, 8 channels, 4 integrations, XX YY, with gains to solve for; and a one-
    component sky model at its phase centre."""
    out = tmp_path_factory.mktemp("delta") / "archive.ms"
    args = ["--antennas", "6", "--channels", "8", "--integrations", "4", "--correlations", "2",
            "--no-rfi", "--noise", "0", "--no-delays", "--no-bandpass"]  # fmt: skip
    assert run_cli(simulate_app, "rc-simulate", [str(out), *args]) == 0
    with table(f"{out}::FIELD", ack=False) as t:
        ra, dec = t.getcol("PHASE_DIR")[0, 0]
    sky = out.with_name("sky.txt")
    write_skymodel(
        SkyModel(
            names=("c",), is_gaussian=[False], ra=[ra], dec=[dec], stokes=[[3.0, 0, 0, 0]],
            spectral_coeffs=[[-0.7]], log_si=True, ref_freq=[1.284e9], shape=[(0, 0, 0)],
        ),
        sky,
    )  # fmt: skip
    return out


@pytest.fixture
def arch(archive, tmp_path):
    """A fresh copy of the archive for tests that move or change it."""
    dst = tmp_path / "arch.ms"
    shutil.copytree(archive, dst)
    return dst


@pytest.fixture
def multi(tmp_path):
    """Two SPWs of different widths, two fields, two scans: several partitions and groups."""
    spec = MSSpec(n_ant=5, n_time=4, spw_chans=(8, 4), n_field=2, n_scan=2)
    return Path(build_ms(tmp_path / "multi.ms", spec))


def columns_of(url, columns, **kwargs) -> list[dict[str, np.ndarray]]:
    dss = io.open_dataset(url, columns=columns, **kwargs)
    return [{c: ds[c].values for c in columns} for ds in dss]


def assert_same(a, b, columns, **kwargs) -> None:
    for x, y in zip(
        columns_of(a, columns, **kwargs), columns_of(b, columns, **kwargs), strict=True
    ):
        for c in columns:
            np.testing.assert_array_equal(x[c], y[c], err_msg=c)


def rows_by_key(url, columns) -> dict[int, dict[str, np.ndarray]]:
    """``columns`` of every row, per DATA_DESC_ID, ordered by (TIME, ANTENNA1, ANTENNA2)."""
    keys = ["TIME", "ANTENNA1", "ANTENNA2"]
    parts: dict[int, list] = {}
    for ds in io.open_dataset(url, columns=list(dict.fromkeys([*keys, *columns]))):
        ddid = int(ds.attrs["DATA_DESC_ID"])
        parts.setdefault(ddid, []).append({c: ds[c].values for c in {*keys, *columns}})
    out = {}
    for ddid, chunks in parts.items():
        rows = {c: np.concatenate([p[c] for p in chunks]) for c in chunks[0]}
        order = np.lexsort([rows[k] for k in reversed(keys)])
        out[ddid] = {c: v[order] for c, v in rows.items()}
    return out


def write(url, column: str, make, *, rows=None, start=None) -> None:
    """Write ``column`` = make(ds) into ``url`` (for rows ``start:rows`` of each partition)."""
    dss = io.open_dataset(url, columns=["DATA"])
    dss = [ds.isel(row=slice(start, rows)) for ds in dss]
    out = [ds.assign({column: (ds.DATA.dims, make(ds))}) for ds in dss]
    with io.column_transaction(url, [column]):
        dask.compute(io.write_columns(out, url, [column]), scheduler="sync")


# -- the apps on a delta-set ----------------------------------------------------------------


def test_predict_and_calibrate_on_a_delta_match_a_plain_copy_archive_untouched(archive, tmp_path):
    sky = archive.with_name("sky.txt")
    plain = tmp_path / "plain.ms"
    shutil.copytree(archive, plain)
    before = tree_hashes(archive)
    delta = tmp_path / "work.delta"
    assert rc_data("branch", archive, delta) == 0
    for target in (delta, plain):
        assert predict(target, "--model", sky, "--threads", "1") == 0
        assert calibrate(target, "--terms", "G", "--time-interval", "G=1", "--output-column",
                         "CORRECTED_DATA", "--threads", "1") == 0  # fmt: skip
    assert tree_hashes(archive) == before
    assert_same(delta, plain, ["DATA", "MODEL_DATA", "CORRECTED_DATA", "FLAG"])
    assert_same(delta, plain, ["MODEL_DATA", "CORRECTED_DATA"], sort_by=("TIME",))
    changed = {d["column"] for d in deltaops.diff(delta)}
    flag_changed = not np.array_equal(
        *(np.concatenate([p["FLAG"] for p in columns_of(u, ["FLAG"])]) for u in (archive, plain))
    )
    assert changed == {"MODEL_DATA", "CORRECTED_DATA"} | ({"FLAG"} if flag_changed else set())
    assert not list(archive.parent.glob("archive.ms.flagversions"))


def test_rc_flag_on_a_delta_keeps_flag_versions_beside_the_delta(arch, tmp_path):
    from radiocloud.flag.cli import app as flag_app

    before = tree_hashes(arch)
    delta = tmp_path / "f.delta"
    assert rc_data("branch", arch, delta) == 0
    assert run_cli(flag_app, "rc-flag", [str(delta)]) == 0
    assert tree_hashes(arch) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "arch.ms",
        "f.delta",
        "f.delta.flagversions",
    ]
    assert {d["column"] for d in deltaops.diff(delta)} >= {"FLAG"}
    (version,) = io.list_versions(delta)
    flagged = np.concatenate([p["FLAG"] for p in columns_of(delta, ["FLAG"])])
    original = np.concatenate([p["FLAG"] for p in columns_of(arch, ["FLAG"])])
    assert flagged.sum() > original.sum()
    io.restore_version(delta, version.name)
    restored = np.concatenate([p["FLAG"] for p in columns_of(delta, ["FLAG"])])
    np.testing.assert_array_equal(restored, original)
    assert tree_hashes(arch) == before


def test_predict_on_a_delta_with_two_worker_processes(archive, tmp_path):
    delta, plain = tmp_path / "w.delta", tmp_path / "plain.ms"
    shutil.copytree(archive, plain)
    assert rc_data("branch", archive, delta) == 0
    sky = archive.with_name("sky.txt")
    assert predict(delta, "--model", sky, "--workers", "2", "--threads", "1") == 0
    assert predict(plain, "--model", sky, "--threads", "1") == 0
    assert_same(delta, plain, ["MODEL_DATA"])


# -- chains, log, diff ----------------------------------------------------------------------


def test_a_chain_of_three_levels_reads_each_column_from_its_nearest_level(arch, tmp_path, capsys):
    d1, d2, d3 = (tmp_path / f"d{i}" for i in (1, 2, 3))
    assert rc_data("branch", arch, d1) == 0
    write(d1, "MODEL_DATA", lambda ds: ds.DATA.data * 2)
    assert rc_data("branch", d1, d2) == 0
    write(d2, "CORRECTED_DATA", lambda ds: ds.DATA.data - 1)
    write(d2, "FLAG", lambda ds: ds.DATA.data.real > 0, rows=10)
    assert rc_data("branch", d2, d3) == 0
    write(d3, "MODEL_DATA", lambda ds: ds.DATA.data * 3)
    capsys.readouterr()
    assert rc_data("log", d3) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"level 0: {d3} (delta)")
    assert lines[3] == f"level 3: {arch} (ms)"
    by_col = dict(line.split(": ", 1) for line in lines[4:])
    assert by_col["MODEL_DATA"] == "level 0"
    assert by_col["CORRECTED_DATA"] == "level 1"
    assert by_col["FLAG"].startswith("level 1 (")
    assert "the rest from below" in by_col["FLAG"]
    assert by_col["DATA"] == "level 3"
    # the values: nearest level first, unwritten FLAG rows from the archive
    root = columns_of(arch, ["DATA", "FLAG"])
    got = columns_of(d3, ["MODEL_DATA", "CORRECTED_DATA", "FLAG"])
    for r, g in zip(root, got, strict=True):
        np.testing.assert_array_equal(g["MODEL_DATA"], r["DATA"] * 3)
        np.testing.assert_array_equal(g["CORRECTED_DATA"], r["DATA"] - 1)
        np.testing.assert_array_equal(g["FLAG"][:10], r["DATA"][:10].real > 0)
        np.testing.assert_array_equal(g["FLAG"][10:], r["FLAG"][10:])
    assert [d["column"] for d in deltaops.diff(d3)] == ["MODEL_DATA"]
    assert rc_data("diff", d2) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"CORRECTED_DATA: new, {sum(len(r['DATA']) for r in root)} of "
        f"{sum(len(r['DATA']) for r in root)} rows",
        f"FLAG: changed, {10 * len(root)} of {sum(len(r['DATA']) for r in root)} rows",
    ]


def test_cache_reads_without_the_parent_uncached_columns_name_it(multi, tmp_path, capsys):
    arch = multi
    delta = tmp_path / "fast.delta"
    assert rc_data("branch", arch, delta) == 0
    want = columns_of(arch, ["DATA", "UVW"], sort_by=("TIME",))
    assert rc_data("cache", delta, "DATA") == 0
    assert deltaops.diff(delta) == []  # cached, not changed
    arch.rename(tmp_path / "elsewhere.ms")
    got = columns_of(delta, ["DATA"], sort_by=("TIME",))
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(g["DATA"], w["DATA"])
    assert io.open_subtables(delta).antennas.names  # subtables were cached with it
    with pytest.raises(DeltaParentMissingError, match="is missing"):
        io.open_dataset(delta, columns=["UVW"])
    capsys.readouterr()
    assert rc_data("consolidate", delta, tmp_path / "out.zarr") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"parent '{arch}' of delta-set" in err[0]
    assert "put it back" in err[0]


def test_cached_columns_are_read_from_the_delta_not_the_parent(multi, tmp_path):
    """Spoil the DATA chunks of a zarr archive after caching DATA (its fingerprint does not
    cover them): reads through the delta still give the original values."""
    arch = tmp_path / "arch.zarr"
    io.convert(multi, arch)
    delta = tmp_path / "z.delta"
    assert rc_data("branch", arch, delta) == 0
    want = columns_of(arch, ["DATA"])
    assert rc_data("cache", delta, "DATA") == 0
    chunks = [p for p in arch.rglob("*") if p.parent.name == "DATA" and not p.name.startswith(".")]
    assert chunks
    for p in chunks:
        p.write_bytes(b"spoilt")
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the codec says of "spoilt"
        columns_of(arch, ["DATA"])
    for w, g in zip(want, columns_of(delta, ["DATA"]), strict=True):
        np.testing.assert_array_equal(g["DATA"], w["DATA"])


def test_a_parquet_archive_takes_new_columns_through_a_delta(archive, tmp_path):
    """Parquet cannot be written in place (a one-line error); a delta-set on it can."""
    arch = tmp_path / "arch.parquet"
    io.convert(archive, arch)
    before = tree_hashes(arch)
    delta = tmp_path / "p.delta"
    assert rc_data("branch", arch, delta) == 0
    write(delta, "MODEL_DATA", lambda ds: ds.DATA.data * 2)
    for ds in io.open_dataset(delta, columns=["DATA", "MODEL_DATA"]):
        np.testing.assert_array_equal(ds.MODEL_DATA.values, ds.DATA.values * 2)
    assert tree_hashes(arch) == before


def test_a_column_keeps_its_parents_dtype_and_shape(arch, tmp_path):
    delta = tmp_path / "x.delta"
    assert rc_data("branch", arch, delta) == 0
    dss = io.open_dataset(delta, columns=["DATA", "FLAG"])
    real = [ds.assign(DATA=(ds.DATA.dims, ds.DATA.data.real)) for ds in dss]
    with pytest.raises(KeyError, match=r"cannot write DATA .* complex64 cells"):
        io.write_columns(real, delta, ["DATA"])
    narrow = [ds.isel(chan=slice(0, 1)) for ds in dss]
    with pytest.raises(KeyError, match=r"cannot write FLAG .* of shape \(8, 2\)"):
        io.write_columns(narrow, delta, ["FLAG"])
    assert not (delta / "MAIN").exists()  # refused before anything was written


@pytest.mark.parametrize("suffix", [".ms", ".zarr"])
def test_consolidate_equals_the_merged_view(multi, tmp_path, suffix):
    arch = multi
    delta = tmp_path / "c.delta"
    assert rc_data("branch", arch, delta) == 0
    write(delta, "MODEL_DATA", lambda ds: ds.DATA.data * (1 + 2j))
    write(delta, "FLAG", lambda ds: ds.DATA.data.real < 0, rows=7)
    out = tmp_path / f"c{suffix}"
    assert rc_data("consolidate", delta, out) == 0
    assert io.detect_format(out) == suffix[1:]
    names = sorted(io.open_dataset(delta)[0].data_vars)
    assert "MODEL_DATA" in names
    # zarr keeps the partitioning it was written with: compare rows by key, per DATA_DESC_ID
    got, want = rows_by_key(out, names), rows_by_key(delta, names)
    assert got.keys() == want.keys()
    for ddid in want:
        for c in names:
            np.testing.assert_array_equal(got[ddid][c], want[ddid][c], err_msg=c)
    got, want = io.open_subtables(out), io.open_subtables(arch)
    assert got.antennas.names == want.antennas.names
    np.testing.assert_array_equal(got.antennas.positions, want.antennas.positions)
    assert [len(s.chan_freq) for s in got.spws] == [len(s.chan_freq) for s in want.spws]


# -- bad input: one line, non-zero exit, the parent untouched ---------------------------------


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_parent_changed_since_branching_is_refused(archive, arch, tmp_path, capsys):
    delta = tmp_path / "x.delta"
    assert rc_data("branch", arch, delta) == 0
    with table(str(arch), readonly=False, ack=False) as t:
        t.putcell("TIME", 0, t.getcell("TIME", 0) + 1.0)
    before = tree_hashes(arch)
    capsys.readouterr()
    assert predict(delta, "--model", archive.with_name("sky.txt")) == 2
    line = one_error_line(capsys)
    assert "changed since it was branched (the content of sampled rows)" in line
    assert "branch again" in line
    assert tree_hashes(arch) == before


def test_parent_missing_is_refused_by_an_app(arch, tmp_path, capsys):
    delta = tmp_path / "x.delta"
    assert rc_data("branch", arch, delta) == 0
    shutil.rmtree(arch)
    capsys.readouterr()
    assert calibrate(delta, "--terms", "G") == 2
    line = one_error_line(capsys)
    assert f"parent '{arch}' of delta-set '{delta}' is missing" in line


def test_a_missing_middle_level_is_named(arch, tmp_path, capsys):
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    assert rc_data("branch", arch, d1) == 0
    assert rc_data("branch", d1, d2) == 0
    write(d2, "MODEL_DATA", lambda ds: ds.DATA.data)
    shutil.rmtree(d1)
    assert columns_of(d2, ["MODEL_DATA"])  # held by d2 itself: still readable
    with pytest.raises(DeltaParentMissingError, match=f"parent '{d1}' of delta-set '{d2}'"):
        io.open_dataset(d2, columns=["DATA"])
    capsys.readouterr()
    assert rc_data("log", d2) == 0
    assert capsys.readouterr().out.splitlines()[1] == f"level 1: {d1} (missing)"


def test_unwritable_delta_location_is_refused(arch, tmp_path, capsys):
    before = tree_hashes(arch)
    capsys.readouterr()
    assert rc_data("branch", arch, tmp_path / "no" / "such" / "d") == 2
    assert "does not exist; create it or choose another location" in one_error_line(capsys)
    (tmp_path / "file").write_text("")
    assert rc_data("branch", arch, tmp_path / "file" / "d") == 2
    one_error_line(capsys)
    assert rc_data("branch", arch, arch) == 2  # the archive itself: exists
    assert "exists" in one_error_line(capsys)
    assert tree_hashes(arch) == before
    assert sorted(os.listdir(tmp_path)) == ["arch.ms", "file"]


def test_chain_cycle_is_refused(arch, tmp_path, capsys):
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    assert rc_data("branch", arch, d1) == 0
    assert rc_data("branch", d1, d2) == 0
    manifest = d1 / "radiocloud-delta.json"
    m = json.loads(manifest.read_text())
    m["parent"] = str(d2)
    manifest.write_text(json.dumps(m))
    before = tree_hashes(arch)
    capsys.readouterr()
    assert rc_data("log", d2) == 2
    line = one_error_line(capsys)
    assert "has a cycle" in line
    assert "branch again from the archive" in line
    assert tree_hashes(arch) == before


def test_delta_of_an_unknown_column_names_it(arch, tmp_path):
    delta = tmp_path / "x.delta"
    assert rc_data("branch", arch, delta) == 0
    with pytest.raises(KeyError, match="has no column NOPE"):
        io.open_dataset(delta, columns=["NOPE"])


def test_interrupted_write_to_a_delta_is_refused_then_redone_clean(arch, tmp_path, monkeypatch):
    from radiocloud.core.io import delta as delta_module

    delta = tmp_path / "x.delta"
    assert rc_data("branch", arch, delta) == 0
    dss = io.open_dataset(delta, columns=["DATA"])
    out = [ds.isel(row=slice(0, 10)) for ds in dss]
    out = [ds.assign(MODEL_DATA=(ds.DATA.dims, ds.DATA.data * 5)) for ds in out]
    io.column_transaction(delta, ["MODEL_DATA"]).__enter__()  # the run dies inside it
    dask.compute(io.write_columns(out, delta, ["MODEL_DATA"]), scheduler="sync")
    with pytest.raises(KeyError, match="half-written"):
        io.open_dataset(delta, columns=["MODEL_DATA"])
    # a new run (another process) writes the other rows: the dead run's rows are not kept
    monkeypatch.setattr(delta_module, "_MADE", set())
    write(delta, "MODEL_DATA", lambda ds: ds.DATA.data * 2, start=10)
    for ds in io.open_dataset(delta, columns=["DATA", "MODEL_DATA"]):
        np.testing.assert_array_equal(ds.MODEL_DATA.values[:10], 0)
        np.testing.assert_array_equal(ds.MODEL_DATA.values[10:], ds.DATA.values[10:] * 2)


# -- an archive on S3, the delta local --------------------------------------------------------


def s3_hashes(fs, root: str) -> dict[str, str]:
    return {p: hashlib.sha256(fs.cat_file(p)).hexdigest() for p in sorted(fs.find(root))}


@pytest.fixture(scope="module")
def s3_archive(archive, s3_server):
    """The archive as a zarr store on S3 (rc-data convert's copy)."""
    remote = io.DatasetURL("s3://radiocloud/archive/a.zarr", s3_server)
    io.convert(archive, remote)
    return remote


def test_s3_archive_local_delta_predict_matches_plain(
    archive, s3_archive, tmp_path, s3_server, monkeypatch, capsys
):
    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server["secret"])
    remote = s3_archive
    fs = s3fs.S3FileSystem(**s3_server)
    before = s3_hashes(fs, "radiocloud/archive")
    delta = tmp_path / "s3.delta"
    deltaops.branch(remote, delta)
    assert "secret" not in (delta / "radiocloud-delta.json").read_text()
    plain = tmp_path / "plain.ms"
    shutil.copytree(archive, plain)
    sky = archive.with_name("sky.txt")
    for target in (delta, plain):
        assert predict(target, "--model", sky, "--threads", "1") == 0
    fs.invalidate_cache()
    assert s3_hashes(fs, "radiocloud/archive") == before
    assert_same(delta, plain, ["DATA", "MODEL_DATA"])
    # the parent's credentials are not kept in the delta: without them, one clear line
    s3fs.S3FileSystem.clear_instance_cache()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    capsys.readouterr()
    assert predict(delta, "--model", sky) == 2
    assert "no credentials" in one_error_line(capsys)


def test_apps_on_a_dask_cluster_read_an_s3_archive_from_its_workers(
    archive, s3_archive, tmp_path, s3_server, monkeypatch
):
    """rc-predict and rc-calibrate given --scheduler of a cluster of two worker processes, on
    a delta-set of the S3 archive: the workers read the archive (credentials from their
    environment) and the results equal the same runs with threads in the app's process."""
    import s3fs
    from distributed import LocalCluster

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server["secret"])
    s3fs.S3FileSystem.clear_instance_cache()  # none cached from a test without credentials
    fs = s3fs.S3FileSystem(**s3_server)
    before = s3_hashes(fs, "radiocloud/archive")
    local, spread = tmp_path / "threads.delta", tmp_path / "cluster.delta"
    for delta in (local, spread):
        deltaops.branch(s3_archive, delta)
    sky = archive.with_name("sky.txt")
    solve = ["--terms", "G", "--output-column", "CORRECTED_DATA"]
    assert predict(local, "--model", sky, "--threads", "1") == 0
    assert calibrate(local, *solve, "--gain-table", tmp_path / "threads.zarr") == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:  # fmt: skip
        at = ["--scheduler", cluster.scheduler_address]
        assert predict(spread, "--model", sky, *at) == 0
        assert calibrate(spread, *solve, "--gain-table", tmp_path / "cluster.zarr", *at) == 0
    fs.invalidate_cache()
    assert s3_hashes(fs, "radiocloud/archive") == before
    for a, b in zip(columns_of(local, ["MODEL_DATA", "CORRECTED_DATA"]),
                    columns_of(spread, ["MODEL_DATA", "CORRECTED_DATA"]), strict=True):  # fmt: skip
        np.testing.assert_array_equal(a["MODEL_DATA"], b["MODEL_DATA"])
        np.testing.assert_allclose(a["CORRECTED_DATA"], b["CORRECTED_DATA"], rtol=1e-5)


def test_a_chain_of_deltas_on_s3(s3_archive, s3_server):
    import s3fs

    fs = s3fs.S3FileSystem(**s3_server)
    before = s3_hashes(fs, "radiocloud/archive")
    d1 = io.DatasetURL("s3://radiocloud/work/d1", s3_server)
    d2 = io.DatasetURL("s3://radiocloud/work/d2", s3_server)
    deltaops.branch(s3_archive, d1)
    write(d1, "MODEL_DATA", lambda ds: ds.DATA.data * 2)
    deltaops.branch(d1, d2)
    write(d2, "CORRECTED_DATA", lambda ds: ds.DATA.data + 1)
    assert io.partial_columns(d1) == io.partial_columns(d2) == []
    _, sources = deltaops.log(d2)
    levels = {s.column: s.level for s in sources}
    assert (levels["CORRECTED_DATA"], levels["MODEL_DATA"], levels["DATA"]) == (0, 1, 2)
    for ds in io.open_dataset(d2, columns=["DATA", "MODEL_DATA", "CORRECTED_DATA"]):
        np.testing.assert_array_equal(ds.MODEL_DATA.values, ds.DATA.values * 2)
        np.testing.assert_array_equal(ds.CORRECTED_DATA.values, ds.DATA.values + 1)
    fs.invalidate_cache()
    assert s3_hashes(fs, "radiocloud/archive") == before


def _write_scrambled(url, scheduler, **compute) -> list[dict[str, np.ndarray]]:
    """MODEL_DATA = DATA * 3 written from a read in another order (by ANTENNA2, TIME) and
    finer partitions (per ANTENNA1) in chunks of 7 rows; the values read."""
    groups = ("FIELD_ID", "DATA_DESC_ID", "SCAN_NUMBER", "ANTENNA1")
    dss = io.open_dataset(url, columns=["DATA"], group_cols=groups, sort_by=("ANTENNA2", "TIME"),
                          row_chunk=7)  # fmt: skip
    assert len(dss) > 1
    out = [ds.assign(MODEL_DATA=(ds.DATA.dims, ds.DATA.data * 3)) for ds in dss]
    with io.column_transaction(url, ["MODEL_DATA"]):
        dask.compute(io.write_columns(out, url, ["MODEL_DATA"]), scheduler=scheduler, **compute)
    return columns_of(url, ["DATA", "MODEL_DATA"])


def test_each_stored_chunk_of_a_delta_is_written_by_one_task(arch, tmp_path, monkeypatch):
    """Writers need no lock, in threads or on a cluster, on S3 too: whatever the order and
    partitioning of the rows written, no two tasks write one zarr chunk of the delta."""
    deltastore = importlib.import_module("radiocloud.core.io.deltastore")
    monkeypatch.setattr(deltastore, "CHUNK_BYTES", 4 * 8 * 2 * 8)  # 4 rows of 8 chan x 2 corr
    touched: list[set[int]] = []
    write_block = deltastore._write_block

    def noting(pos, values, target):
        touched.append(set((np.asarray(pos) // 4).tolist()))
        return write_block(pos, values, target)

    monkeypatch.setattr(deltastore, "_write_block", noting)
    delta = tmp_path / "d.delta"
    deltaops.branch(arch, delta)
    for ds in _write_scrambled(str(delta), "threads", num_workers=4):
        np.testing.assert_array_equal(ds["MODEL_DATA"], ds["DATA"] * 3)
    chunks = [c for t in touched for c in t]
    assert len(touched) > 3
    assert len(chunks) == len(set(chunks))  # each stored chunk in one task's write only


def test_worker_processes_write_a_delta_on_s3(archive, s3_server, monkeypatch):
    """Two worker processes write one delta-set on S3 (no locks there) from scrambled reads."""
    import s3fs
    from distributed import Client, LocalCluster

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server["secret"])
    s3fs.S3FileSystem.clear_instance_cache()
    deltastore = importlib.import_module("radiocloud.core.io.deltastore")
    monkeypatch.setattr(deltastore, "CHUNK_BYTES", 4 * 8 * 2 * 8)  # columns are made here
    delta = io.DatasetURL("s3://radiocloud/work/scrambled", s3_server)
    deltaops.branch(archive, delta)
    with (LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                       dashboard_address=None) as cluster, Client(cluster) as client):  # fmt: skip
        read = _write_scrambled(delta, client)
    for ds in read:
        np.testing.assert_array_equal(ds["MODEL_DATA"], ds["DATA"] * 3)


def test_s3_bad_credentials_are_one_line(tmp_path, monkeypatch, capsys):
    """moto with authentication on (INITIAL_NO_AUTH_ACTION_COUNT=0) refuses unknown keys."""
    import fsspec
    import s3fs

    try:
        with moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as endpoint:
            s3fs.S3FileSystem.clear_instance_cache()
            client = {"endpoint_url": endpoint, "region_name": "af-south-1"}
            monkeypatch.setitem(fsspec.config.conf, "s3", {"client_kwargs": client})
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "wrong")
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
            capsys.readouterr()
            assert rc_data("branch", "s3://radiocloud/archive.zarr", tmp_path / "d") == 2
            line = one_error_line(capsys)
            assert "access denied" in line
            assert "check the credentials" in line
            assert not (tmp_path / "d").exists()
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
