"""rc-average end to end: against a slow reference, identity, conservation, geometry, layout."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import xarray as xr
from casacore.tables import table, taql

from radiocloud.core.io import open_dataset

from .conftest import average, columns, digest

KEYS = ["ANTENNA1", "ANTENNA2", "FIELD_ID", "SCAN_NUMBER", "DATA_DESC_ID"]


def _reference_row(inp, out, i, factor):
    """Independent average of output row ``i``: the input rows of its baseline, field, scan and
    DDID within its time span, channels ``factor`` at a time, by the documented rules."""
    match = np.ones(len(inp["TIME"]), bool)
    for k in KEYS:
        match &= inp[k] == out[k][i]
    half = out["INTERVAL"][i] / 2
    match &= np.abs(inp["TIME"] - out["TIME"][i]) < half
    rows = np.flatnonzero(match)
    data, flag = inp["DATA"][rows], inp["FLAG"][rows] | inp["FLAG_ROW"][rows, None, None]
    weight = inp["WEIGHT_SPECTRUM"][rows].astype(float)
    nchan_out = out["DATA"][i].shape[0]
    avg = np.zeros(out["DATA"][i].shape, complex)
    w_out = np.zeros(avg.shape)
    f_out = np.zeros(avg.shape, bool)
    for c in range(nchan_out):
        sl = slice(c * factor, (c + 1) * factor)
        d, f, w = data[:, sl], flag[:, sl], weight[:, sl]
        good = ~f & (w > 0)
        for p in range(avg.shape[1]):
            g = good[..., p]
            sel = g if g.any() else np.ones_like(g)
            f_out[c, p] = not g.any()
            avg[c, p] = np.sum(w[..., p][sel] * d[..., p][sel]) / np.sum(w[..., p][sel])
            w_out[c, p] = np.sum(w[..., p][sel])
    return rows, avg, w_out, f_out


@pytest.mark.parametrize(("ddid", "nchan"), [(0, 8), (1, 5)])
def test_matches_slow_reference(layout_ms, tmp_path, ddid, nchan):
    out_ms = tmp_path / "avg.ms"
    assert average(layout_ms, out_ms, "--time-bin", "4", "--chan-bin", "2", "--force") == 0
    names = [*KEYS, "TIME", "INTERVAL", "DATA", "FLAG", "FLAG_ROW", "WEIGHT_SPECTRUM", "UVW"]
    where = f"DATA_DESC_ID=={ddid} && ANTENNA1!=ANTENNA2"
    inp = columns(layout_ms, *names, where=f"DATA_DESC_ID=={ddid}")
    out = columns(out_ms, *names, "EXPOSURE", where=f"DATA_DESC_ID=={ddid}")
    assert np.all(out["ANTENNA1"] != out["ANTENNA2"])  # autocorrelations dropped
    # 10 baselines x 2 fields x 2 scans x bins of 4 and 2 integrations
    assert len(out["TIME"]) == 10 * 2 * 2 * 2
    assert out["DATA"].shape[1] == math.ceil(nchan / 2)
    n_in = 0
    for i in range(len(out["TIME"])):
        rows, avg, w, f = _reference_row(inp, out, i, 2)
        n_in += len(rows)
        assert len(rows) in (4, 2)
        np.testing.assert_array_equal(out["FLAG"][i], f)
        np.testing.assert_allclose(out["DATA"][i], avg, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(out["WEIGHT_SPECTRUM"][i], w, rtol=1e-5)
        assert out["INTERVAL"][i] == pytest.approx(8.0 * len(rows))
        assert out["EXPOSURE"][i] == pytest.approx(8.0 * len(rows))
        assert out["FLAG_ROW"][i] == f.all()
    # every input cross-correlation went into exactly one output row
    assert n_in == len(columns(layout_ms, "TIME", where=where)["TIME"])


def test_factor_one_is_identity(layout_ms, tmp_path):
    out_ms = tmp_path / "same.ms"
    assert average(layout_ms, out_ms, "--keep-autocorrelations") == 0
    names = ["TIME", "INTERVAL", "UVW", "ANTENNA1", "ANTENNA2", "DATA", "MODEL_DATA", "FLAG",
             "WEIGHT_SPECTRUM", "WEIGHT", "TIME_CENTROID", "EXPOSURE"]  # fmt: skip
    for ddid in (0, 1):
        # rows come out time-ordered, baselines in order: sort both the same way
        q = f"DATA_DESC_ID=={ddid} ORDERBY SCAN_NUMBER, TIME, ANTENNA1, ANTENNA2"
        a = {n: taql(f"select {n} from '{layout_ms}' where {q}").getcol(n) for n in names}
        b = {n: taql(f"select {n} from '{out_ms}' where {q}").getcol(n) for n in names}
        for n in names:
            if n == "WEIGHT":  # the mean over channels of WEIGHT_SPECTRUM, good channels only
                good = ~a["FLAG"]
                want = np.where(good, a["WEIGHT_SPECTRUM"], 0).sum(1) / np.maximum(good.sum(1), 1)
                want = np.where(good.any(1), want, a["WEIGHT_SPECTRUM"].mean(1))
                np.testing.assert_allclose(b[n], want, rtol=1e-6)
            elif n in ("DATA", "MODEL_DATA", "FLAG", "ANTENNA1", "ANTENNA2"):
                np.testing.assert_array_equal(b[n], a[n])
            else:
                np.testing.assert_allclose(b[n], a[n], rtol=1e-7, atol=1e-6)


def test_weighted_sums_are_kept(layout_ms, tmp_path):
    """Σ W·V over unflagged output samples equals Σ w·v over unflagged input samples."""
    out_ms = tmp_path / "avg.ms"
    assert average(layout_ms, out_ms, "--time-bin", "3", "--chan-bin", "3", "--force") == 0
    for ddid in (0, 1):
        where = f"DATA_DESC_ID=={ddid} && ANTENNA1!=ANTENNA2"
        a = columns(layout_ms, "MODEL_DATA", "FLAG", "WEIGHT_SPECTRUM", where=where)
        b = columns(out_ms, "MODEL_DATA", "FLAG", "WEIGHT_SPECTRUM", where=where)
        want = np.sum(np.where(a["FLAG"], 0, a["WEIGHT_SPECTRUM"] * a["MODEL_DATA"]))
        got = np.sum(np.where(b["FLAG"], 0, b["WEIGHT_SPECTRUM"] * b["MODEL_DATA"]))
        assert got == pytest.approx(want, rel=1e-5)
        assert np.sum(np.where(b["FLAG"], 0, b["WEIGHT_SPECTRUM"])) == pytest.approx(
            np.sum(np.where(a["FLAG"], 0, a["WEIGHT_SPECTRUM"])), rel=1e-6
        )


def test_spectral_window_rewritten(layout_ms, tmp_path):
    out_ms = tmp_path / "avg.ms"
    assert average(layout_ms, out_ms, "--chan-bin", "2", "--force") == 0
    names = ("CHAN_FREQ", "CHAN_WIDTH", "EFFECTIVE_BW", "RESOLUTION", "NUM_CHAN",
             "TOTAL_BANDWIDTH", "REF_FREQUENCY")  # fmt: skip
    t_in = table(f"{layout_ms}::SPECTRAL_WINDOW", ack=False)
    t_out = table(f"{out_ms}::SPECTRAL_WINDOW", ack=False)
    try:
        assert t_out.nrows() == t_in.nrows() == 2
        for row in range(2):
            a = {n: t_in.getcell(n, row) for n in names}
            b = {n: t_out.getcell(n, row) for n in names}
            n_out = math.ceil(a["NUM_CHAN"] / 2)
            assert b["NUM_CHAN"] == n_out == len(b["CHAN_FREQ"])
            np.testing.assert_allclose(b["CHAN_WIDTH"].sum(), a["CHAN_WIDTH"].sum())
            assert b["TOTAL_BANDWIDTH"] == a["TOTAL_BANDWIDTH"]
            assert b["REF_FREQUENCY"] == a["REF_FREQUENCY"]
            pairs = [a["CHAN_FREQ"][2 * k : 2 * k + 2] for k in range(n_out)]
            np.testing.assert_allclose(b["CHAN_FREQ"], [p.mean() for p in pairs])
            np.testing.assert_allclose(b["EFFECTIVE_BW"], b["CHAN_WIDTH"])
    finally:
        t_in.close()
        t_out.close()


def test_uvw_within_1cm_of_geometric_uvw(sim_ms, tmp_path):
    """UVW of rows averaged over 32 s against casacore's UVW at the output TIME."""
    out_ms = tmp_path / "avg.ms"
    assert average(sim_ms, out_ms, "--time-bin", "32s", "--force") == 0
    t = taql(f"select UVW, mscal.uvwj2000() as GEO, ANTENNA1, ANTENNA2 from '{out_ms}'")
    uvw, geo = t.getcol("UVW"), t.getcol("GEO")
    # casacore's UVW is antenna 2 - antenna 1, as MeerKAT's and rc-simulate's are
    err = np.linalg.norm(uvw - geo, axis=1)
    assert len(uvw) == 120 * 3
    assert err.max() < 0.01, f"worst UVW error {err.max():.4f} m"
    # and the averaging was not trivial: the baselines moved by metres within a bin
    inp = taql(f"select UVW from '{sim_ms}' where ANTENNA1==0 && ANTENNA2==15").getcol("UVW")
    assert np.linalg.norm(inp[3] - inp[0]) > 1.0


def test_renaming_and_chosen_columns(layout_ms, tmp_path):
    out_ms = tmp_path / "avg.ms"
    assert average(layout_ms, out_ms, "--columns", "MODEL_DATA:DATA", "--force") == 0
    t = table(str(out_ms), ack=False)
    names = t.colnames()
    t.close()
    assert "DATA" in names
    assert "MODEL_DATA" not in names
    got = columns(out_ms, "DATA", where="DATA_DESC_ID==0 ORDERBY TIME, ANTENNA1, ANTENNA2")
    want = columns(
        layout_ms, "MODEL_DATA",
        where="DATA_DESC_ID==0 && ANTENNA1!=ANTENNA2 ORDERBY TIME, ANTENNA1, ANTENNA2",
    )  # fmt: skip
    np.testing.assert_array_equal(got["DATA"], want["MODEL_DATA"])


@pytest.mark.parametrize("suffix", [".zarr", ".parquet"])
def test_other_output_formats_hold_the_same_values(layout_ms, tmp_path, suffix):
    source = layout_ms
    if suffix == ".parquet":  # parquet holds one cell shape per column: one SPW
        from radiocloud.core.testing import MSSpec, build_ms

        source = build_ms(tmp_path / "one_spw.ms", MSSpec(n_ant=5, n_time=6, n_scan=2))
    ms_out, other = tmp_path / "avg.ms", tmp_path / f"avg{suffix}"
    args = ("--time-bin", "2", "--chan-bin", "4", "--force")
    assert average(source, ms_out, *args) == 0
    assert average(source, other, *args) == 0

    def values(path):
        parts = {}
        for ds in open_dataset(path, group_cols=("DATA_DESC_ID",)):
            ds = ds.compute()
            ddid = ds.attrs.get("DATA_DESC_ID")
            if ddid is None:  # parquet: one partition, DATA_DESC_ID a column
                (ddid,) = np.unique(ds["DATA_DESC_ID"].values)
            parts.setdefault(int(ddid), []).append(ds)
        out = {}
        for key, dss in parts.items():
            ds = xr.concat(dss, dim="row")
            order = np.lexsort((ds.ANTENNA2.values, ds.ANTENNA1.values, ds.TIME.values))
            out[key] = {n: ds[n].values[order] for n in ("DATA", "FLAG", "WEIGHT_SPECTRUM")}
        return out

    a, b = values(ms_out), values(other)
    assert a.keys() == b.keys()
    for k in a:
        for n in a[k]:
            np.testing.assert_array_equal(a[k][n], b[k][n])


def test_zarr_input_gives_the_ms_result(layout_ms, tmp_path):
    from radiocloud.core.io import convert

    zarr_in = tmp_path / "in.zarr"
    convert(layout_ms, zarr_in)
    a, b = tmp_path / "from_ms.ms", tmp_path / "from_zarr.ms"
    assert average(layout_ms, a, "--time-bin", "2", "--chan-bin", "2", "--force") == 0
    assert average(zarr_in, b, "--time-bin", "2", "--chan-bin", "2", "--force") == 0
    q = "DATA_DESC_ID==1 ORDERBY TIME, ANTENNA1, ANTENNA2"
    for n in ("DATA", "FLAG", "UVW", "WEIGHT_SPECTRUM"):
        np.testing.assert_array_equal(columns(a, n, where=q)[n], columns(b, n, where=q)[n])


def test_flagged_bins_stay_flagged_with_the_plain_average(sim_ms, tmp_path):
    ms = tmp_path / "flagged.ms"
    shutil.copytree(sim_ms, ms)
    t = table(str(ms), readonly=False, ack=False)
    flag = t.getcol("FLAG")
    flag[:8] = True  # the first 8 rows, entirely
    flag[8:, 3, 0] = True  # one channel and correlation everywhere
    t.putcol("FLAG", flag)
    t.close()
    out_ms = tmp_path / "avg.ms"
    assert average(ms, out_ms, "--chan-bin", "4", "--force") == 0
    out = columns(out_ms, "FLAG", "FLAG_ROW", "DATA", "WEIGHT", "ANTENNA1", "ANTENNA2", "TIME")
    inp = columns(ms, "DATA", "ANTENNA1", "ANTENNA2", "TIME", "WEIGHT")
    bad_in = {(inp["TIME"][r], inp["ANTENNA1"][r], inp["ANTENNA2"][r]) for r in range(8)}
    bad = np.array([(t, a1, a2) in bad_in for t, a1, a2 in zip(
        out["TIME"], out["ANTENNA1"], out["ANTENNA2"], strict=True)])  # fmt: skip
    assert bad.sum() == 8 - sum(a1 == a2 for _, a1, a2 in bad_in)
    assert np.all(out["FLAG"][bad])
    assert np.all(out["FLAG_ROW"][bad])
    assert not np.any(out["FLAG"][~bad][:, 0, 0])  # 3 of 4 channels left: unflagged
    assert not np.any(out["FLAG_ROW"][~bad])
    # the flagged rows hold the plain average, with their weights
    for i in np.flatnonzero(bad):
        r = np.flatnonzero(
            (inp["TIME"] == out["TIME"][i]) & (inp["ANTENNA1"] == out["ANTENNA1"][i])
            & (inp["ANTENNA2"] == out["ANTENNA2"][i])
        )[0]  # fmt: skip
        np.testing.assert_allclose(out["DATA"][i, 0], inp["DATA"][r, :4].mean(0), rtol=1e-5)
        np.testing.assert_allclose(out["WEIGHT"][i], 4 * inp["WEIGHT"][r], rtol=1e-6)
    assert np.all(np.isfinite(out["DATA"]))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--time-bin", "7"), "longer than the longest scan"),
        (("--time-bin", "12s"), "not a whole number of the 8 s samples"),
        (("--chan-bin", "300kHz"), "not a whole number"),
        (("--columns", "DATA,NOPE"), "'NOPE' is not a visibility column"),
        (("--chan-bin", "6"), "wider than SPW 1"),
        (("--time-bin", "2", "--chan-bin", "4", "--max-smearing", "0.0001"), "--max-smearing"),
    ],
)
def test_bad_options_one_line_and_input_untouched(layout_ms, tmp_path, capsys, args, message):
    before = digest(layout_ms)
    out_ms = tmp_path / "avg.ms"
    assert average(layout_ms, out_ms, *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1, err
    assert not out_ms.exists()
    assert not list(tmp_path.glob(".avg.ms*"))
    assert digest(layout_ms) == before


def test_existing_output_and_output_equal_to_input_refused(layout_ms, tmp_path, capsys):
    out_ms = tmp_path / "avg.ms"
    out_ms.mkdir()
    (out_ms / "keep").write_text("mine")
    assert average(layout_ms, out_ms) == 2
    assert "exists" in capsys.readouterr().err
    assert (out_ms / "keep").read_text() == "mine"
    before = digest(layout_ms)
    assert average(layout_ms, layout_ms, "--overwrite") == 2
    assert "OUTPUT is INPUT" in capsys.readouterr().err
    assert digest(layout_ms) == before


def test_non_uniform_sampling_refused(tmp_path, capsys):
    from radiocloud.core.testing import MSSpec, build_ms

    ms = tmp_path / "mixed.ms"
    build_ms(ms, MSSpec(n_ant=4, n_time=6))
    t = table(str(ms), readonly=False, ack=False)
    interval = t.getcol("INTERVAL")
    interval[: len(interval) // 2] = 4.0
    t.putcol("INTERVAL", interval)
    t.close()
    assert average(ms, tmp_path / "out.ms", "--time-bin", "2") == 2
    assert "one uniform sampling" in capsys.readouterr().err


def _decorrelation(ms_in, ms_out) -> np.ndarray:
    """1 - |V| / |V_in| of the XX visibilities of ``ms_out`` (every row, channel): the input
    holds one point source, so every input sample has the same amplitude."""
    amp_in = np.abs(columns(ms_in, "DATA", where="ANTENNA1!=ANTENNA2")["DATA"][..., 0])
    assert np.ptp(amp_in) < 1e-4 * amp_in.max()  # point-sampled, no smearing in the input
    loss = []
    t = table(f"{ms_out}::DATA_DESCRIPTION", ack=False)
    n_ddid = t.nrows()
    t.close()
    for ddid in range(n_ddid):
        out = columns(ms_out, "DATA", where=f"DATA_DESC_ID=={ddid}")["DATA"][..., 0]
        loss.append(1.0 - np.abs(out).ravel() / amp_in.mean())
    return np.concatenate(loss)


def test_bda_decorrelation_within_tolerance_at_the_field_edge(edge_source_ms, tmp_path, capsys):
    tol = 0.05
    out_ms = tmp_path / "bda.ms"
    assert average(edge_source_ms, out_ms, "--bda", "--time-bin", "16", "--chan-bin", "16",
                   "--fov", "1", "--max-decorrelation", tol) == 0  # fmt: skip
    printed = capsys.readouterr().out
    loss = _decorrelation(edge_source_ms, out_ms)
    assert loss.max() <= tol, f"measured decorrelation {loss.max():.4f} above {tol}"
    assert loss.max() > tol / 5  # the long baselines were averaged right up to the limit
    # several resolutions: one SPW and DDID each, and a real compression
    t = table(f"{out_ms}::SPECTRAL_WINDOW", ack=False)
    nchan = sorted(t.getcol("NUM_CHAN"))
    widths = [t.getcell("CHAN_WIDTH", i)[0] for i in range(t.nrows())]
    t.close()
    assert len(nchan) >= 2
    assert all(64 % n == 0 for n in nchan)
    assert sorted(widths) == sorted(209e3 * 64 / n for n in nchan)
    compression = float(printed.split("rows out, ")[1].split("×")[0])
    assert compression > 4
    # the same bins for every baseline (the largest) decorrelate the long baselines far more
    uniform = tmp_path / "uniform.ms"
    assert average(edge_source_ms, uniform, "--time-bin", "16", "--chan-bin", "16",
                   "--fov", "1", "--force") == 0  # fmt: skip
    assert _decorrelation(edge_source_ms, uniform).max() > 3 * tol


def test_bda_keeps_every_sample_weight(edge_source_ms, tmp_path):
    out_ms = tmp_path / "bda.ms"
    assert average(edge_source_ms, out_ms, "--bda", "--fov", "1") == 0
    w_in = columns(edge_source_ms, "WEIGHT", where="ANTENNA1!=ANTENNA2")["WEIGHT"]
    total_in = w_in.sum() * 64  # WEIGHT per channel, 64 channels
    t = table(f"{out_ms}::DATA_DESCRIPTION", ack=False)
    n_ddid = t.nrows()
    t.close()
    total_out = 0.0
    for ddid in range(n_ddid):
        part = columns(out_ms, "WEIGHT_SPECTRUM", where=f"DATA_DESC_ID=={ddid}")
        total_out += part["WEIGHT_SPECTRUM"].sum()
    assert total_out == pytest.approx(total_in, rel=1e-6)
    # dask-ms reads every resolution back as its own partition
    parts = open_dataset(out_ms, group_cols=("DATA_DESC_ID",))
    assert len({ds.FLAG.shape[1] for ds in parts}) == len(parts) >= 2


def test_chunking_does_not_change_the_result(sim_ms, tmp_path):
    """Row chunks of a few bins each (a tiny memory budget), on two worker processes, give
    the one-chunk result bit for bit."""
    one, many = tmp_path / "one.ms", tmp_path / "many.ms"
    args = ("--time-bin", "3", "--chan-bin", "2", "--force")
    assert average(sim_ms, one, *args) == 0
    assert average(sim_ms, many, *args, "--memory-budget", "2MB", "--workers", "2",
                   "--threads", "1") == 0  # fmt: skip
    q = "ANTENNA1 >= 0 ORDERBY TIME, ANTENNA1, ANTENNA2"
    for n in ("DATA", "MODEL_DATA", "FLAG", "WEIGHT_SPECTRUM", "UVW", "TIME_CENTROID"):
        np.testing.assert_array_equal(columns(one, n, where=q)[n], columns(many, n, where=q)[n])


@pytest.mark.skipif(shutil.which("wsclean") is None, reason="WSClean is not installed")
def test_wsclean_images_averaged_and_bda_output(edge_source_ms, tmp_path):
    """WSClean reads both layouts (the BDA one with -reorder, as any multi-SPW MS) and finds the
    1 Jy source within the decorrelation allowed."""
    import subprocess

    from astropy.io import fits

    plain, bda = tmp_path / "plain.ms", tmp_path / "bda.ms"
    assert average(edge_source_ms, plain, "--time-bin", "2", "--chan-bin", "4", "--fov", "1",
                   "--force") == 0  # fmt: skip
    assert average(edge_source_ms, bda, "--bda", "--fov", "1", "--max-decorrelation", "0.05") == 0
    peaks = {}
    for ms in (edge_source_ms, plain, bda):
        name = tmp_path / ms.stem
        subprocess.run(
            ["wsclean", "-quiet", "-reorder", "-size", "512", "512", "-scale", "10asec",
             "-niter", "0", "-no-update-model-required", "-name", str(name), str(ms)],
            check=True, capture_output=True, cwd=tmp_path,
        )  # fmt: skip
        image = fits.getdata(f"{name}-image.fits")[0, 0]
        peaks[ms.stem] = (image.max(), np.unravel_index(np.argmax(image), image.shape))
    assert peaks["plain"][1] == peaks["bda"][1] == peaks["edge"][1]
    assert peaks["plain"][0] == pytest.approx(peaks["edge"][0], rel=0.01)
    assert peaks["edge"][0] * 0.95 <= peaks["bda"][0] <= peaks["edge"][0]


def test_ms_rows_in_baseline_order_give_the_same_result(tmp_path):
    """A Measurement Set stored baseline by baseline is read in time order."""
    from radiocloud.core.testing import MSSpec, build_ms

    layout_ms = build_ms(tmp_path / "by_time.ms", MSSpec(n_ant=5, n_time=6, n_scan=2))
    shuffled = tmp_path / "by_baseline.ms"
    taql(f"select * from '{layout_ms}' orderby ANTENNA2, ANTENNA1, TIME giving '{shuffled}' "
         "as plain").close()  # fmt: skip
    for sub in ("ANTENNA", "SPECTRAL_WINDOW", "POLARIZATION", "DATA_DESCRIPTION", "FIELD"):
        assert (shuffled / sub).exists()
    a, b = tmp_path / "a.ms", tmp_path / "b.ms"
    assert average(layout_ms, a, "--time-bin", "4", "--chan-bin", "2", "--force") == 0
    assert average(shuffled, b, "--time-bin", "4", "--chan-bin", "2", "--force") == 0
    q = "ANTENNA1 >= 0 ORDERBY DATA_DESC_ID, TIME, ANTENNA1, ANTENNA2"
    for n in ("DATA", "FLAG", "UVW", "WEIGHT_SPECTRUM", "TIME"):
        np.testing.assert_array_equal(columns(a, n, where=q)[n], columns(b, n, where=q)[n])


def test_bins_in_units_resolve_to_sample_counts(sim_ms, tmp_path):
    out_ms = tmp_path / "avg.ms"
    assert average(sim_ms, out_ms, "--time-bin", "0.4min", "--chan-bin", "836kHz",
                   "--force") == 0  # fmt: skip
    spw = columns(out_ms, "CHAN_WIDTH", "NUM_CHAN", sub="SPECTRAL_WINDOW")
    assert spw["NUM_CHAN"][0] == 4
    np.testing.assert_allclose(spw["CHAN_WIDTH"][0], 4 * 209e3)
    interval = columns(out_ms, "INTERVAL")["INTERVAL"]
    assert set(np.round(interval, 6)) == {24.0}  # 12 integrations of 8 s: four bins of 3
