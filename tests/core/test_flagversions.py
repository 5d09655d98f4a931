"""Flag versions: bit-exact save/restore on MS, zarr, parquet and S3, safe saves, refusals."""

from __future__ import annotations

import json
import shutil

import dask
import dask.array as da
import numpy as np
import pytest
from casacore.tables import table

from radiocloud.core import io
from radiocloud.core.errors import (
    ColumnError,
    FlagVersionExistsError,
    FlagVersionMismatchError,
    FlagVersionNameError,
    FlagVersionNotFoundError,
    UnsupportedLayoutError,
)
from radiocloud.core.io import flagbits, flagversions
from radiocloud.core.testing import MSSpec, build_ms

# 16 antennas: 1,200 rows per partition, two row chunks of >= 1,000 (MIN_ROW_CHUNK) each with a
# small memory budget; 5 channels x 4 correlations = 20 flags a row, not a whole number of bytes
SPEC = MSSpec(n_ant=16, n_time=10, spw_chans=(8, 5), n_field=2, n_scan=2)
SMALL = 2**20  # memory budget making 1,000-row chunks


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("fv")
    return {suffix: build_ms(d / f"a{suffix}", SPEC) for suffix in (".ms", ".zarr")}


@pytest.fixture(params=[".ms", ".zarr"])
def dataset(request, built, tmp_path):
    dst = tmp_path / f"x{request.param}"
    shutil.copytree(built[request.param], dst)
    return str(dst)


def flags(url) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (ds.FLAG.values, ds.FLAG_ROW.values)
        for ds in io.open_dataset(url, columns=["FLAG", "FLAG_ROW"])
    ]


def scramble_writes(url, seed: int = 1) -> list:
    """The writes of new random FLAG and FLAG_ROW, as a flagging run would make them."""
    rng = np.random.default_rng(seed)
    dss = io.open_dataset(url, columns=["FLAG", "FLAG_ROW"])
    new = [
        ds.assign(
            FLAG=(ds.FLAG.dims, da.from_array(rng.random(ds.FLAG.shape) < 0.5)),
            FLAG_ROW=(ds.FLAG_ROW.dims, da.from_array(rng.random(ds.FLAG_ROW.shape) < 0.5)),
        )
        for ds in dss
    ]
    return io.write_columns(new, url, ["FLAG", "FLAG_ROW"])


def scramble(url, seed: int = 1) -> None:
    writes = scramble_writes(url, seed)
    with io.column_transaction(url, ["FLAG", "FLAG_ROW"]):
        dask.compute(writes)


def assert_same(a, b) -> None:
    assert len(a) == len(b)
    for (fa, ra), (fb, rb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(fa, fb)
        np.testing.assert_array_equal(ra, rb)


def test_save_modify_restore_is_bit_exact(dataset):
    before = flags(dataset)
    version = io.save_version(dataset, "orig", description="as observed", memory_budget=SMALL)
    assert version.rows == 8 * 1200
    expected = sum(f.sum() for f, _ in before) / sum(f.size for f, _ in before)
    assert version.flagged_fraction == pytest.approx(expected)
    scramble(dataset)
    assert not np.array_equal(flags(dataset)[0][0], before[0][0])
    io.restore_version(dataset, "orig", memory_budget=2**30)  # other chunks than the save
    assert_same(flags(dataset), before)
    assert io.partial_columns(dataset) == []


def test_ms_rows_go_back_by_rowid(tmp_path):
    ms = build_ms(tmp_path / "x.ms", MSSpec(n_ant=4, n_time=3, spw_chans=(4, 3), n_scan=2))
    with table(ms, ack=False) as t:
        before = t.getvarcol("FLAG")
    io.save_version(ms, "v")
    scramble(ms)
    io.restore_version(ms, "v")
    with table(ms, ack=False) as t:  # row by row in table order, read by casacore itself
        after = t.getvarcol("FLAG")
    for row, cell in before.items():
        np.testing.assert_array_equal(after[row], cell)


def test_parquet_restore_rewrites_the_main_table_exactly(tmp_path):
    pq = build_ms(tmp_path / "x.parquet", MSSpec(n_ant=4, n_time=3, n_field=2, n_corr=2))
    data = [ds.DATA.values for ds in io.open_dataset(pq, columns=["DATA"])]
    before = flags(pq)
    io.save_version(pq, "v")
    full = io.open_dataset(pq)
    with pytest.raises(UnsupportedLayoutError, match=r"parquet dataset .* in place"):
        io.write_columns(full, pq, ["FLAG"])  # would replace the files of all other columns
    with io.column_transaction(pq, ["FLAG"]):
        io.rewrite_parquet_main([ds.assign(FLAG=~ds.FLAG) for ds in full], pq)
    assert not np.array_equal(flags(pq)[0][0], before[0][0])
    io.restore_version(pq, "v")
    assert_same(flags(pq), before)
    for ds, d in zip(io.open_dataset(pq, columns=["DATA"]), data, strict=True):
        np.testing.assert_array_equal(ds.DATA.values, d)


def test_on_disk_layout(tmp_path):
    ms = build_ms(tmp_path / "x.ms", MSSpec(n_ant=3, n_time=2, spw_chans=(3,), n_corr=2))
    io.save_version(ms, "v", description="d")
    root = tmp_path / "x.ms.flagversions" / "v"
    attrs = json.loads((root / ".zattrs").read_text())
    assert attrs["complete"] is True
    assert attrs["bit_order"] == "little"
    assert attrs["columns"] == ["FLAG", "FLAG_ROW"]
    assert attrs["partitions"][0]["shape"] == [6, 3, 2]
    assert sorted(p.name for p in (root / "p000").iterdir()) == [
        ".zgroup", "FLAG", "FLAG_ROW", "ROWID"
    ]  # fmt: skip
    import zarr

    packed = zarr.open_group(str(root), mode="r")["p000/FLAG"][:]
    assert packed.shape == (6, 1)  # 6 flags a row in one byte
    flag = io.open_dataset(ms, columns=["FLAG"])[0].FLAG.values
    np.testing.assert_array_equal(
        packed[:, 0], (flag.reshape(6, 6) * (1 << np.arange(6))).sum(axis=1)
    )  # flag j of a row is bit j, least significant first


def test_pack_unpack_round_trip_any_width():
    rng = np.random.default_rng(0)
    for nchan, ncorr in [(1, 1), (3, 2), (5, 4), (8, 4), (13, 1)]:
        flag = rng.random((7, nchan, ncorr)) < 0.3
        packed = flagbits.pack_flags(da.from_array(flag, chunks=(3, -1, -1)))
        back = flagbits.unpack_flags(packed, nchan, ncorr).compute()
        np.testing.assert_array_equal(back, flag)


def test_list_delete_and_exists(tmp_path):
    ms = build_ms(tmp_path / "x.ms")
    assert io.list_versions(ms) == []
    io.save_version(ms, "b", description="second")
    io.save_version(ms, "a", description="first")
    versions = io.list_versions(ms)
    assert {v.name for v in versions} == {"a", "b"}
    assert {v.description for v in versions} == {"first", "second"}
    assert all(v.created.tzinfo is not None for v in versions)
    assert io.version_exists(ms, "a")
    io.delete_version(ms, "a")
    assert [v.name for v in io.list_versions(ms)] == ["b"]
    assert not io.version_exists(ms, "a")
    with pytest.raises(FlagVersionNotFoundError, match=r"no flag version 'a' .* \(it has: b\)"):
        io.delete_version(ms, "a")
    with pytest.raises(FlagVersionNotFoundError, match=r"no flag version 'zz' .*it has: b"):
        io.restore_version(ms, "zz")


def test_saving_over_a_name_needs_overwrite(tmp_path):
    ms = build_ms(tmp_path / "x.ms")
    io.save_version(ms, "v")
    with pytest.raises(FlagVersionExistsError, match="exists: choose another name or pass"):
        io.save_version(ms, "v")
    scramble(ms)
    now = flags(ms)
    io.save_version(ms, "v", overwrite=True)
    scramble(ms, seed=2)
    io.restore_version(ms, "v")
    assert_same(flags(ms), now)
    assert sorted(p.name for p in (tmp_path / "x.ms.flagversions").iterdir()) == ["v"]


@pytest.mark.parametrize("name", ["", "a b", ".hidden", "x/y", "../up", "a" * 129, "é"])
def test_bad_names_are_refused(tmp_path, name):
    ms = build_ms(tmp_path / "x.ms")
    with pytest.raises(FlagVersionNameError, match="is not allowed: use letters, digits"):
        io.save_version(ms, name)


def _explode_on_second_block(monkeypatch):
    calls = []
    real = flagbits._pack_block

    def pack(block):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("killed half-way")
        return real(block)

    monkeypatch.setattr(flagbits, "_pack_block", pack)


def test_interrupted_save_leaves_no_version_and_keeps_the_old_one(tmp_path, monkeypatch):
    ms = build_ms(tmp_path / "x.ms", MSSpec(n_field=2))
    io.save_version(ms, "v", description="old")
    old = flags(ms)
    scramble(ms)
    _explode_on_second_block(monkeypatch)
    with pytest.raises(RuntimeError, match="killed half-way"):
        io.save_version(ms, "w")
    with pytest.raises(RuntimeError, match="killed half-way"):
        io.save_version(ms, "v", overwrite=True)
    monkeypatch.undo()
    assert [(v.name, v.description) for v in io.list_versions(ms)] == [("v", "old")]
    assert sorted(p.name for p in (tmp_path / "x.ms.flagversions").iterdir()) == ["v"]
    io.restore_version(ms, "v")
    assert_same(flags(ms), old)


def test_a_version_without_its_completion_mark_does_not_count(tmp_path):
    """What a killed process leaves: a temporary folder (local) or a version whose last write,
    the attributes, never happened (object stores)."""
    ms = build_ms(tmp_path / "x.ms")
    io.save_version(ms, "v")
    root = tmp_path / "x.ms.flagversions"
    shutil.copytree(root / "v", root / ".w.partial-1234abcd")
    shutil.copytree(root / "v", root / "u")
    (root / "u" / ".zattrs").unlink()
    assert [v.name for v in io.list_versions(ms)] == ["v"]
    assert not io.version_exists(ms, "u")
    with pytest.raises(FlagVersionNotFoundError, match=r"no flag version 'u' .*it has: v"):
        io.restore_version(ms, "u")
    io.save_version(ms, "u")  # the remains are no version: saving the name needs no overwrite
    assert {v.name for v in io.list_versions(ms)} == {"u", "v"}


def test_version_of_another_dataset_is_refused_before_writing(tmp_path):
    a = build_ms(tmp_path / "a.ms", MSSpec(n_time=3))
    b = build_ms(tmp_path / "b.ms", MSSpec(n_time=4))
    io.save_version(a, "v")
    shutil.copytree(tmp_path / "a.ms.flagversions", tmp_path / "b.ms.flagversions")
    before = flags(b)
    with pytest.raises(FlagVersionMismatchError, match=r"shape \(18, 8, 4\), the dataset's"):
        io.restore_version(b, "v")
    assert_same(flags(b), before)
    assert io.partial_columns(b) == []


def test_same_shape_other_rows_are_refused_before_writing(tmp_path):
    a = build_ms(tmp_path / "a.ms", MSSpec(n_time=3))
    io.save_version(a, "v")
    shutil.copytree(a, tmp_path / "c.ms")
    shutil.copytree(tmp_path / "a.ms.flagversions", tmp_path / "c.ms.flagversions")
    c = str(tmp_path / "c.ms")
    with table(c, ack=False, readonly=False) as t:  # swap two rows' baselines
        a2 = t.getcol("ANTENNA2")
        a2[[0, 1]] = a2[[1, 0]]
        t.putcol("ANTENNA2", a2)
    scramble(c)
    before = flags(c)
    with pytest.raises(FlagVersionMismatchError, match=r"not the same ones .* Nothing was"):
        io.restore_version(c, "v")
    assert_same(flags(c), before)


def test_restore_recovers_flags_an_interrupted_run_left_half_written(tmp_path):
    ms = build_ms(tmp_path / "x.ms")
    before = flags(ms)
    io.save_version(ms, "v")
    writes = scramble_writes(ms)
    with pytest.raises(RuntimeError), io.column_transaction(ms, ["FLAG"]):  # noqa: PT012
        dask.compute(writes)
        raise RuntimeError("killed")
    with pytest.raises(ColumnError, match="half-written"):
        io.save_version(ms, "w")  # half-written flags are not saved
    io.restore_version(ms, "v")
    assert io.partial_columns(ms) == []
    assert_same(flags(ms), before)


def test_versions_on_s3(tmp_path, s3_server):
    import s3fs

    local = build_ms(tmp_path / "a.zarr", MSSpec(n_time=3, spw_chans=(8, 5), n_field=2))
    s3fs.S3FileSystem(**s3_server).put(local, "radiocloud/fv/a.zarr", recursive=True)
    remote = io.DatasetURL("s3://radiocloud/fv/a.zarr", s3_server)
    before = flags(remote)
    io.save_version(remote, "v", description="remote")
    scramble(remote)
    io.restore_version(remote, "v")
    assert_same(flags(remote), before)
    assert [v.description for v in io.list_versions(remote)] == ["remote"]
    io.save_version(remote, "v", overwrite=True)  # no rename on S3: replaced in place
    fs, root = flagversions._root(remote)
    fs.rm(f"{root}/v/.zattrs")  # as if that save had been killed before its last write
    assert io.list_versions(remote) == []
    assert not io.version_exists(remote, "v")
    io.delete_version(remote, "v")  # its remains can be deleted
    assert not fs.exists(f"{root}/v")
