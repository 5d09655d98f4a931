"""Flag summaries equal a direct numpy count of FLAG; rc-flag-summary's JSON and its guard."""

from __future__ import annotations

import json

import dask
import numpy as np
import pytest
from casacore.tables import table
from rich.console import Console

from radiocloud.core import io
from radiocloud.flag.summary import FlagSummary, flag_counts, summarise
from radiocloud.flag.tables import comparison_table, summary_tables

from .conftest import summary


def reference(ms) -> dict:
    """Counts straight from the table, row by row, with numpy."""
    with table(str(ms), ack=False) as t:
        flags = [c.reshape(c.shape[-2:]) for c in t.getvarcol("FLAG").values()]  # (chan, corr)
        cols = {c: t.getcol(c) for c in ("ANTENNA1", "ANTENNA2", "FIELD_ID", "SCAN_NUMBER")}
        ddid = t.getcol("DATA_DESC_ID")
    nflag = np.array([f.sum() for f in flags])
    ncell = np.array([f.size for f in flags])
    a1, a2 = cols["ANTENNA1"], cols["ANTENNA2"]

    def count(rows):
        return int(nflag[rows].sum()), int(ncell[rows].sum())

    out = {
        "total": count(slice(None)),
        "antenna": {a: count((a1 == a) | (a2 == a)) for a in range(5)},
        "baseline": {
            (i, j): count((a1 == i) & (a2 == j)) for i, j in set(zip(a1, a2, strict=True))
        },
        "field": {f: count(cols["FIELD_ID"] == f) for f in (0, 1)},
        "scan": {s: count(cols["SCAN_NUMBER"] == s) for s in set(cols["SCAN_NUMBER"])},
        "corr": [
            (int(sum(f[:, k].sum() for f in flags)), sum(f.shape[0] for f in flags))
            for k in range(4)
        ],
        "chan": {},
    }
    for d in (0, 1):
        stacked = np.stack([f for f, dd in zip(flags, ddid, strict=True) if dd == d])
        out["chan"][d] = (stacked.sum(axis=(0, 2)), stacked.shape[0] * stacked.shape[2])
    return out


def test_summary_equals_a_numpy_count_of_flag(built):
    ref = reference(built[".ms"])
    s = summarise(str(built[".ms"]))
    assert (s.total.flagged, s.total.total) == ref["total"]
    assert 0 < s.total.fraction < 1
    names = io.open_subtables(built[".ms"]).antennas.names
    for a, c in ref["antenna"].items():
        assert (s.antennas[names[a]].flagged, s.antennas[names[a]].total) == c
    assert len(s.baselines) == 15  # 10 cross + 5 auto
    for (i, j), c in ref["baseline"].items():
        got = s.baselines[(names[i], names[j])]
        assert (got.flagged, got.total) == c
    for f, c in ref["field"].items():
        assert (s.fields[f"field{f}"].flagged, s.fields[f"field{f}"].total) == c
    for scan, c in ref["scan"].items():
        assert (s.scans[scan].flagged, s.scans[scan].total) == c
    for k, name in enumerate(("XX", "XY", "YX", "YY")):
        assert (s.correlations[name].flagged, s.correlations[name].total) == ref["corr"][k]
    for spw in s.spws:
        flagged, per_chan = ref["chan"][spw.spw]
        np.testing.assert_array_equal(spw.flagged, flagged)
        np.testing.assert_array_equal(spw.total, per_chan)
        assert len(spw.frequency) == len(flagged)
        assert spw.frequency[0] > 8e8


def test_zarr_with_keys_as_columns_gives_the_same_summary(built):
    # the builder's zarr partitions keep FIELD_ID, SCAN_NUMBER, DATA_DESC_ID as columns
    assert summarise(str(built[".zarr"])).to_dict() == summarise(str(built[".ms"])).to_dict()


def test_field_selection_and_any_chunking(built):
    ms = str(built[".ms"])
    sub = io.open_subtables(ms)
    only = summarise(ms, fields=[1])
    assert list(only.fields) == ["field1"]
    assert only.total == summarise(ms).fields["field1"]
    dss = io.open_dataset(ms, columns=["FLAG", "ANTENNA1", "ANTENNA2"], row_chunk=7)
    chunked = [ds.assign(FLAG=ds.FLAG.chunk({"row": 7, "chan": 3, "corr": 2})) for ds in dss]
    (counts,) = dask.compute(flag_counts(chunked, n_ant=5))
    assert FlagSummary.build(counts, sub).to_dict() == summarise(ms).to_dict()


def test_counts_share_the_datasets_flag_keys(built):
    """So rc-flag computes "before" and "after" in the compute of its flagging, each FLAG
    block read once."""
    dss = io.open_dataset(str(built[".ms"]), columns=["FLAG", "ANTENNA1", "ANTENNA2"])
    flagged = [ds.assign(FLAG=ds.FLAG | (ds.ANTENNA1 == 0)) for ds in dss]
    before, after = flag_counts(dss, n_ant=5), flag_counts(flagged, n_ant=5)
    keys = set(before.__dask_graph__()) | set(after.__dask_graph__())
    for ds in (*dss, *flagged):
        assert set(dask.core.flatten(ds.FLAG.data.__dask_keys__())) <= keys
    b, a = dask.compute(before, after)
    sub = io.open_subtables(str(built[".ms"]))
    sb, sa = FlagSummary.build(b, sub), FlagSummary.build(a, sub)
    assert sa.antennas["m000"].fraction == 1.0
    assert sa.antennas["m001"].flagged > sb.antennas["m001"].flagged
    console = Console(record=True, width=120)
    console.print(comparison_table(sb, sa))
    console.print(summary_tables(sa))
    text = console.export_text()
    for expected in ("before", "100.00%", "Most flagged baselines"):
        assert expected in text


def test_cli_prints_the_table_and_writes_json(ms, tmp_path, capsys):
    out = tmp_path / "flags.json"
    assert summary(ms, "--json", out, "--field", "field0,1") == 0
    assert "Antennas" in capsys.readouterr().out
    data = json.loads(out.read_text())
    expected = summarise(str(ms)).to_dict()
    assert data["dataset"] == str(ms)
    assert data["fields"] == [0, 1]
    for key in ("total", "field", "scan", "correlation", "antenna", "baseline", "spw"):
        assert data[key] == expected[key]
    assert data["total"]["flagged"] == reference(ms)["total"][0]
    assert {b["antenna1"] for b in data["baseline"]} == {f"m00{i}" for i in range(5)}
    assert len(data["spw"][1]["chan_flagged"]) == 5


@pytest.mark.parametrize(("limit", "code"), [("0.05", 1), ("0.5", 0)])
def test_max_flagged_guard(ms, capsys, limit, code):
    assert summary(ms, "--max-flagged", limit) == code
    err = capsys.readouterr().err.strip().splitlines()
    if code:
        assert err[-1].startswith("rc-flag-summary: error: ")
        assert f"more than --max-flagged {float(limit):.2%}" in err[-1]


def test_unknown_field_is_a_clear_error(ms, capsys):
    assert summary(ms, "--field", "7") == 2
    assert "--field 7: the dataset has fields 0 to 1 (field0, field1)" in capsys.readouterr().err
