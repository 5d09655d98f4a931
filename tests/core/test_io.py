"""radiocloud.core.io: round trips, chunking, safe writes and clear errors."""

from __future__ import annotations

import importlib

import dask
import numpy as np
import pytest
import zarr
from casacore.tables import table
from hypothesis import HealthCheck, given, settings

from radiocloud.core import io
from radiocloud.core.errors import (
    ColumnError,
    DatasetNotFoundError,
    NotADatasetError,
    OptionError,
    OutputExistsError,
    UnsupportedLayoutError,
)
from radiocloud.core.testing import MSSpec, build_ms
from radiocloud.core.testing.strategies import ms_specs

SUBTABLES = ("ANTENNA", "DATA_DESCRIPTION", "FEED", "FIELD", "OBSERVATION", "POLARIZATION",
             "SPECTRAL_WINDOW")  # fmt: skip


def read_all(path: str) -> dict[str, dict[str, list[np.ndarray]]]:
    """Every cell of the filled subtables, and of the main table per DATA_DESC_ID (convert
    keeps row order within an SPW; SPWs follow one another), read with casacore directly."""
    out = {}
    for name in SUBTABLES:
        out[name] = _cells(table(f"{path}::{name}", ack=False))
    main = _cells(table(path, ack=False))
    ddids = np.array([int(np.ravel(d)[0]) for d in main["DATA_DESC_ID"]])
    for ddid in sorted(set(ddids)):
        rows = np.flatnonzero(ddids == ddid)
        out[f"MAIN/{ddid}"] = {col: [cells[r] for r in rows] for col, cells in main.items()}
    return out


def _cells(t) -> dict[str, list[np.ndarray]]:
    try:
        return {
            col: [np.asarray(v) for v in t.getvarcol(col).values()]
            for col in t.colnames()
            if t.nrows() and t.iscelldefined(col, 0)
        }
    finally:
        t.close()


def assert_same_tables(a: str, b: str) -> None:
    ta, tb = read_all(a), read_all(b)
    assert set(ta) == set(tb)
    for name, cols in ta.items():
        assert set(cols) == set(tb[name]), name
        for col, cells in cols.items():
            other = tb[name][col]
            assert len(cells) == len(other), (name, col)
            for x, y in zip(cells, other, strict=True):
                assert x.dtype == y.dtype, (name, col)
                np.testing.assert_array_equal(x, y, err_msg=f"{name}.{col}")


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=ms_specs())
def test_ms_zarr_parquet_ms_round_trip_is_exact(tmp_path_factory, spec):
    d = tmp_path_factory.mktemp("rt")
    src = build_ms(d / "a.ms", spec)
    io.convert(src, d / "b.zarr")
    if len(set(spec.spw_chans)) == 1:
        io.convert(d / "b.zarr", d / "c.parquet")
        io.convert(d / "c.parquet", d / "d.ms")
    else:  # parquet keeps one cell shape per column
        with pytest.raises(UnsupportedLayoutError, match=r"write \.zarr or \.ms instead"):
            io.convert(d / "b.zarr", d / "c.parquet")
        io.convert(d / "b.zarr", d / "d.ms")
    assert_same_tables(src, str(d / "d.ms"))


def test_converted_datasets_keep_the_partitions_the_apps_read(tmp_path):
    """Every app takes a partition's field from its FIELD_ID attribute: a zarr or parquet copy
    of an MS has the MS's partitions (field, DDID, scan), with the same rows in each."""
    ms = build_ms(tmp_path / "a.ms", MSSpec(n_field=2, n_scan=2, n_time=6))

    def groups(url):
        return {
            (ds.attrs["FIELD_ID"], ds.attrs["DATA_DESC_ID"], ds.attrs["SCAN_NUMBER"]): ds
            for ds in io.open_dataset(url, columns=["TIME", "ANTENNA1", "DATA"])
        }

    want = groups(ms)
    assert len(want) == 4
    for name in ("b.zarr", "c.parquet"):
        io.convert(ms, tmp_path / name)
        got = groups(str(tmp_path / name))
        assert set(got) == set(want), name
        for key, ds in want.items():
            for col in ("TIME", "ANTENNA1", "DATA"):
                np.testing.assert_array_equal(got[key][col].values, ds[col].values)


def test_converted_zarr_is_stored_in_chunks_of_about_the_chosen_size(tmp_path, monkeypatch):
    """rc-data convert stores about STORED_CHUNK_BYTES of the widest column per chunk (so many
    workers read a column in parallel), and the copy reads back equal."""
    convert_module = importlib.import_module("radiocloud.core.io.convert")

    ms = build_ms(tmp_path / "a.ms", MSSpec(n_ant=8, n_time=40, spw_chans=(16,)))  # 1120 rows
    widest = 16 * 4 * 8  # DATA: 16 channels x 4 correlations of complex64
    monkeypatch.setattr(convert_module, "MIN_ROW_CHUNK", 1)
    monkeypatch.setattr(convert_module, "STORED_CHUNK_BYTES", 300 * widest)
    io.convert(ms, tmp_path / "b.zarr")
    (ds,) = io.open_dataset(str(tmp_path / "b.zarr"), columns=["DATA"], row_chunk=10**6)
    stored = zarr.open(str(tmp_path / "b.zarr/MAIN/MAIN_0/DATA"), mode="r")
    assert stored.chunks[0] == 300
    assert stored.shape[0] == 1120
    np.testing.assert_array_equal(ds.DATA.values, io.open_dataset(ms, columns=["DATA"])[0].DATA)


def test_open_dataset_groups_and_columns(tmp_path):
    ms = build_ms(tmp_path / "x.ms", MSSpec(n_field=2, spw_chans=(8, 4), n_scan=2))
    dss = io.open_dataset(ms, columns=["DATA", "FLAG"])
    assert len(dss) == 2 * 2 * 2
    assert {(d.FIELD_ID, d.DATA_DESC_ID) for d in dss} == {(f, s) for f in (0, 1) for s in (0, 1)}
    assert {d.DATA.shape[1] for d in dss} == {8, 4}
    assert set(dss[0].data_vars) == {"DATA", "FLAG"}
    sub = io.open_subtables(ms)
    assert sub.corr_names(0) == ("XX", "XY", "YX", "YY")
    assert [len(sub.frequencies(d)) for d in (0, 1)] == [8, 4]
    assert [f.name for f in sub.fields] == ["field0", "field1"]


def test_row_chunks_follow_the_memory_budget(tmp_path):
    ms = build_ms(tmp_path / "x.ms", MSSpec(n_ant=8, n_time=40, spw_chans=(64,)))
    # DATA: 64 x 4 x 8 bytes = 2 KiB per row; 1120 rows in all
    small = io.open_dataset(ms, columns=["DATA"], memory_budget=4 * 2**20, threads=2)
    assert max(small[0].chunks["row"]) == io.rows_per_chunk(
        2048, memory_budget=4 * 2**20, threads=2
    )
    big = io.open_dataset(ms, columns=["DATA"], memory_budget=2**30)
    assert big[0].chunks["row"] == (1120,)
    assert io.rows_per_chunk(2048, memory_budget=2**30, threads=4) == 2**30 // (4 * 4 * 2048)


def test_sorted_reads_and_exact_row_chunks(tmp_path):
    """sort_by orders an MS's rows within each group; row_chunks gives each group exactly
    the chunks asked for; other formats refuse row_chunks."""
    path = build_ms(tmp_path / "obs.ms", MSSpec(n_ant=4, n_time=5, n_scan=2))
    by_baseline = tmp_path / "by_baseline.ms"
    from casacore.tables import taql

    taql(f"select * from '{path}' orderby ANTENNA2, ANTENNA1, TIME giving '{by_baseline}' "
         "as plain").close()  # fmt: skip
    stored = io.open_dataset(by_baseline)
    assert not any(np.all(np.diff(ds.TIME.values) >= 0) for ds in stored)  # stored order
    groups = io.open_dataset(by_baseline, sort_by=("TIME",))
    assert len(groups) == 2
    for ds in groups:
        assert np.all(np.diff(ds.TIME.values) >= 0)
    chunks = [(7, 5, 18), (10, 20)]
    exact = io.open_dataset(by_baseline, sort_by=("TIME",), row_chunks=chunks)
    assert [ds.chunks["row"] for ds in exact] == chunks
    for a, b in zip(groups, exact, strict=True):
        np.testing.assert_array_equal(a.DATA.values, b.DATA.values)
    zarr = build_ms(tmp_path / "obs.zarr", MSSpec(n_ant=4, n_time=5))
    with pytest.raises(ValueError, match="Measurement Sets only"):
        io.open_dataset(zarr, row_chunks=[(30,)])


def test_write_columns_creates_tiled_model_data(tmp_path):
    ms = build_ms(tmp_path / "x.ms", MSSpec(n_time=5))
    dss = io.open_dataset(ms, columns=["DATA"])
    model = [d.assign(MODEL_DATA=(d.DATA.dims, d.DATA.data * 2)) for d in dss]
    with io.column_transaction(ms, ["MODEL_DATA"]):
        dask.compute(io.write_columns(model, ms, ["MODEL_DATA"]))
    t = table(ms, ack=False)
    np.testing.assert_array_equal(t.getcol("MODEL_DATA"), 2 * t.getcol("DATA"))
    dm = {c: v["TYPE"] for v in t.getdminfo().values() for c in v["COLUMNS"]}
    assert dm["MODEL_DATA"] == "TiledColumnStMan"
    t.close()
    assert io.partial_columns(ms) == []


def test_writing_a_column_of_the_wrong_shape_or_dtype_is_refused(tmp_path):
    ms = build_ms(tmp_path / "x.ms", MSSpec(spw_chans=(8,)))
    before = table(ms, ack=False).getcol("DATA")
    dss = io.open_dataset(ms, columns=["DATA", "FLAG"])
    wrong_shape = [d.drop_vars("FLAG").isel(chan=slice(0, 4)) for d in dss]
    with pytest.raises(ColumnError, match=r"holds complex64 cells of shape \(8, 4\)"):
        io.write_columns(wrong_shape, ms, ["DATA"])
    wrong_dtype = [d.assign(DATA=d.FLAG) for d in dss]
    with pytest.raises(ColumnError, match="new values are bool"):
        io.write_columns(wrong_dtype, ms, ["DATA"])
    np.testing.assert_array_equal(table(ms, ack=False).getcol("DATA"), before)


def test_interrupted_column_write_is_refused_on_read(tmp_path):
    ms = build_ms(tmp_path / "x.ms")
    dss = io.open_dataset(ms, columns=["DATA"])
    with pytest.raises(RuntimeError), io.column_transaction(ms, ["CORRECTED_DATA"]):  # noqa: PT012
        io.write_columns([d.rename(DATA="CORRECTED_DATA") for d in dss], ms, ["CORRECTED_DATA"])
        raise RuntimeError("killed half-way")
    with pytest.raises(ColumnError, match=r"CORRECTED_DATA .* half-written by an interrupted run"):
        io.open_dataset(ms, columns=["CORRECTED_DATA"])
    assert io.open_dataset(ms, columns=["DATA"])  # other columns still read


def test_new_dataset_is_all_or_nothing(tmp_path):
    src = build_ms(tmp_path / "a.ms")
    with pytest.raises(RuntimeError), io.new_dataset(tmp_path / "b.ms") as (tmp, _fmt):  # noqa: PT012
        dask.compute(io.write_tables(*_as_tables(src), tmp, "ms"))
        raise RuntimeError("killed before the end")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ms"]  # no b.ms, no temp folder
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        io.convert(src, tmp_path / "a.ms")


def _as_tables(src):
    main = io.open_dataset(src)
    return main, {n: io.read_table(src, n) for n in io.list_subtables(src)}


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda p: p / "missing.ms", DatasetNotFoundError, "does not exist"),
        (lambda p: p, NotADatasetError, "not a Measurement Set, zarr store or parquet"),
        (lambda p: _file(p), NotADatasetError, "is a file"),
        (lambda p: _ms(p) + "/ANTENNA", NotADatasetError, "give the MS directory itself"),
    ],
)
def test_bad_dataset_paths(tmp_path, make, error, message):
    with pytest.raises(error, match=message):
        io.open_dataset(make(tmp_path))


def test_unknown_column_is_named(tmp_path):
    ms = build_ms(tmp_path / "x.ms")
    with pytest.raises(ColumnError, match="no column CORRECTED_DATA"):
        io.open_dataset(ms, columns=["DATA", "CORRECTED_DATA"])


def test_output_format_from_suffix():
    assert io.format_from_suffix("s3://bucket/obs.zarr/") == "zarr"
    assert io.format_from_suffix("x.MS") == "ms"
    with pytest.raises(OptionError, match=r"end it in \.ms, \.zarr or \.parquet"):
        io.format_from_suffix("x.fits")


def _file(p):
    f = p / "notes.txt"
    f.write_text("hello")
    return f


def _ms(p):
    return build_ms(p / "y.ms")


def test_parquet_reads_from_many_threads_at_once(tmp_path):
    """dask-ms shares one pyarrow ParquetFile between the threads reading a fragment; without
    io.read's lock, concurrent reads crashed the process or failed in pyarrow's ReadRangeCache."""
    path = build_ms(tmp_path / "a.parquet", MSSpec(n_ant=6, n_time=20, n_field=2, n_scan=2))
    expected = [{v: ds[v].values for v in ds.data_vars} for ds in io.open_dataset(path)]
    for _ in range(3):
        dss = io.open_dataset(path, row_chunk=20)
        with dask.config.set(scheduler="threads", num_workers=8):
            (got,) = dask.compute([{v: ds[v].data for v in ds.data_vars} for ds in dss])
        for want, have in zip(expected, got, strict=True):
            for name, values in want.items():
                np.testing.assert_array_equal(have[name], values)
