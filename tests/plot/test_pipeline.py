"""rc-plot's grids against numpy: Stokes products, selections, iterations and colour by a
value, each checked pixel by pixel against numpy.histogram2d of the same points read with
casacore."""

from __future__ import annotations

import numpy as np
import pytest
from casacore.tables import table

from radiocloud.plot.axes import parse_axis
from radiocloud.plot.pipeline import PlotConfig, PlotSpec, aggregate_plots
from radiocloud.plot.select import Selection, parse_channels, parse_uv_range

from .conftest import plot

C = 299_792_458.0
BUDGET = 2**30


def read(ms) -> dict:
    with table(str(ms), ack=False) as t:
        cols = {c.lower(): t.getcol(c) for c in ("DATA", "FLAG", "UVW", "ANTENNA1", "ANTENNA2",
                                                 "TIME", "FLAG_ROW")}  # fmt: skip
    with table(f"{ms}::SPECTRAL_WINDOW", ack=False) as t:
        cols["freq"] = t.getcol("CHAN_FREQ")[0]
    cols["flag"] = cols["flag"] | cols.pop("flag_row")[:, None, None]
    cols["uv"] = np.hypot(cols["uvw"][:, 0], cols["uvw"][:, 1])[:, None, None]
    return cols


def grids(ms, x, y, **options):
    cfg = PlotConfig(dataset=str(ms), plots=(PlotSpec(parse_axis(x), parse_axis(y), "p.png"),),
                     pixels=(37, 23), **options)  # fmt: skip
    done = aggregate_plots(cfg, memory_budget=BUDGET, threads=2)
    return done.grids[0], done.ranges[0], done.layout


def hist(x, y, keep, ranges, weights=None):
    x, y, keep = np.broadcast_arrays(x, y, keep)
    w = None if weights is None else np.broadcast_to(weights, keep.shape)[keep]
    h, _, _ = np.histogram2d(y[keep], x[keep], bins=(23, 37), weights=w,
                             range=(ranges[2:], ranges[:2]))  # fmt: skip
    return h


def test_stokes_i_drops_points_where_either_hand_is_flagged(full_ms):
    d = read(full_ms)
    g, r, _ = grids(full_ms, "UV", "DATA:amp:I")
    stokes_i = np.abs(0 + 0.5 * d["data"][..., 0] + 0.5 * d["data"][..., 3])[..., None]
    keep = ~(d["flag"][..., 0] | d["flag"][..., 3])[..., None]
    np.testing.assert_array_equal(g[0, 0], hist(d["uv"], stokes_i, keep, r))
    yy, _, _ = grids(full_ms, "UV", "DATA:amp:YY")
    assert yy.sum() == (~d["flag"][..., 3]).sum() > g.sum()  # XX-only flags drop from I


def test_stokes_from_the_cross_hands(full_ms):
    """U = (XY + YX)/2 and V = -i(XY - YX)/2 for linear feeds."""
    d = read(full_ms)
    xy, yx = d["data"][..., 1], d["data"][..., 2]
    keep = ~(d["flag"][..., 1] | d["flag"][..., 2])[..., None]
    g, r, _ = grids(full_ms, "UV", "DATA:real:U")
    np.testing.assert_array_equal(g[0, 0], hist(d["uv"], (0 + 0.5 * xy + 0.5 * yx).real[..., None],
                                                keep, r))  # fmt: skip
    g, r, _ = grids(full_ms, "UV", "DATA:imag:V")
    v = 0 + (-0.5j) * xy + 0.5j * yx
    np.testing.assert_array_equal(g[0, 0], hist(d["uv"], v.imag[..., None], keep, r))


def test_selection_by_antenna_channel_uv_range_and_no_autocorrelations(full_ms):
    d = read(full_ms)
    sel = Selection(antennas=("1",), channels=parse_channels("2:11:3"),
                    uv_range=parse_uv_range("0.05:1.5klambda"), autocorrelations=False)  # fmt: skip
    g, r, _ = grids(full_ms, "UVWAVE", "DATA:amp", selection=sel)
    chans = slice(2, 11, 3)
    uvwave = d["uv"] * d["freq"][None, chans, None] / C
    rows = ((d["antenna1"] == 1) | (d["antenna2"] == 1)) & (d["antenna1"] != d["antenna2"])
    keep = ~d["flag"][:, chans] & rows[:, None, None] & (uvwave >= 50) & (uvwave <= 1500)
    assert keep.sum() > 50
    want = hist(uvwave, np.abs(d["data"][:, chans]), keep, r)
    np.testing.assert_array_equal(g[0, 0], want)


def test_iterating_over_antennas_and_correlations(full_ms):
    d = read(full_ms)
    g, r, layout = grids(full_ms, "UV", "DATA:amp", iterate="antenna")
    amp = np.abs(d["data"])
    assert layout.antennas == list(layout.all_antennas)
    for a in range(6):
        rows = (d["antenna1"] == a) | (d["antenna2"] == a)  # an autocorrelation counts once
        keep = ~d["flag"] & rows[:, None, None]
        np.testing.assert_array_equal(g[a, 0], hist(d["uv"], amp, keep, r))
    g, r, _ = grids(full_ms, "UV", "DATA:amp", iterate="corr", corr=("YY", "I"))
    ii = np.abs(0 + 0.5 * d["data"][..., 0] + 0.5 * d["data"][..., 3])
    both = ~(d["flag"][..., 0] | d["flag"][..., 3])
    np.testing.assert_array_equal(g[0, 0], hist(d["uv"], amp[..., 3:], ~d["flag"][..., 3:], r))
    np.testing.assert_array_equal(g[1, 0], hist(d["uv"], ii[..., None], both[..., None], r))


def test_colour_by_flag_is_the_flagged_fraction_of_each_cell(full_ms):
    """A time x channel waterfall with one pixel per integration and channel."""
    d = read(full_ms)
    cfg = PlotConfig(dataset=str(full_ms),
                     plots=(PlotSpec(parse_axis("TIME"), parse_axis("CHAN"), "w.png"),),
                     colour_by=parse_axis("FLAG", colour=True), pixels=(5, 12),
                     xlim=(-4.0, 36.0), ylim=(-0.5, 11.5))  # fmt: skip
    (g,) = aggregate_plots(cfg, memory_budget=BUDGET, threads=2).grids
    sums, counts = g[0, 0, 0], g[1, 0, 0]
    step = np.unique(np.round(d["time"] - d["time"].min()))
    assert list(step) == [0, 8, 16, 24, 32]
    t = np.round(d["time"] - d["time"].min()).astype(int) // 8
    want = np.zeros((12, 5))
    for k in range(5):
        want[:, k] = d["flag"][t == k].mean(axis=(0, 2))
    assert np.all(counts == (t == 0).sum() * 4)
    np.testing.assert_allclose(sums / counts, want)
    assert 0 < want.mean() < 1


def test_colour_by_an_axis_is_its_mean_per_pixel(full_ms):
    d = read(full_ms)
    g, r, _ = grids(full_ms, "UV", "DATA:amp", colour_by=parse_axis("FREQ"), corr=("XX",))
    keep = ~d["flag"][..., :1]
    amp = np.abs(d["data"][..., :1])
    freq = (d["freq"] / 1e9)[None, :, None]
    np.testing.assert_array_equal(g[1, 0, 0], hist(d["uv"], amp, keep, r))
    np.testing.assert_allclose(g[0, 0, 0], hist(d["uv"], amp, keep, r, weights=freq), rtol=1e-12)


def test_iterations_name_their_files_and_draw_a_flagged_antenna_empty(full_ms, tmp_path):
    """Antenna 4 is flagged on its ANTENNA1 rows only; antenna 5's rows are all unflagged:
    with --ant 4,5 and ANTENNA1 as x, one file each."""
    out = tmp_path / "{antenna}" / "amp.png"
    assert plot(full_ms, "-x", "UV", "-y", "DATA:amp", "--iter", "antenna", "--ant", "4,5",
                "--output", out) == 0  # fmt: skip
    made = sorted(p.parent.name for p in tmp_path.glob("*/amp.png"))
    with table(f"{full_ms}::ANTENNA", ack=False) as t:
        names = list(t.getcol("NAME"))
    assert made == sorted([names[4], names[5]])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--corr", "U"], "Stokes U needs XY and YX"),
        (["-y", "DATA:amp:RR"], "no such correlation"),
        (["--chan", "40:50"], "selects no channel"),
        (["--uv-range", "5:1km"], "upper bound is below"),
        (["--uv-range", "1:5parsec"], "write LO:HI"),
        (["--ant", "m999"], "--ant m999: the dataset has antennas 0 to 7"),
        (["--baseline", "3"], "write ANT-ANT"),
        (["--iter", "weather"], "--iter weather: choose one of"),
        (["--iter", "baseline", "--memory-budget", "1MB"], "over the memory budget"),
        (["--scan", "7"], "keeps no data"),
        (["--xlim", "3:1"], "HI must be above LO"),
        (["--colour-by", "DATA:size"], "--colour-by DATA:size: choose a category"),
    ],
)
def test_bad_selections_are_one_line(small_ms, tmp_path, capfd, args, words):
    base = ["-x", "UV"] + ([] if "-y" in args else ["-y", "DATA:amp"])
    assert plot(small_ms, *base, *args, "--output", tmp_path / "x.png") == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert words in err[0]
    assert not list(tmp_path.glob("*.png"))


def test_html_page_embeds_each_plot_with_its_pixel_counts(full_ms, tmp_path):
    """The page holds every PNG and, for the cursor read-out, the counts of its pixels and
    the data area's box; its script is valid JavaScript (checked with node when present)."""
    import base64
    import json
    import re
    import shutil
    import subprocess
    from html import unescape

    page = tmp_path / "page.html"
    assert plot(full_ms, "-x", "UV", "-y", "DATA:amp", "-x", "TIME", "-y", "DATA:phase",
                "--colour-by", "UVWAVE", "--pixels", "37x23", "--output", tmp_path / "p{n}.png",
                "--html", page) == 0  # fmt: skip
    text = page.read_text()
    metas = [json.loads(unescape(m)) for m in re.findall(r'data-meta="([^"]*)"', text)]
    assert len(metas) == 2
    assert "http" not in text.replace("http-equiv", "")
    cfg = PlotConfig(dataset=str(full_ms),
                     plots=(PlotSpec(parse_axis("UV"), parse_axis("DATA:amp"), "a.png"),),
                     colour_by=parse_axis("UVWAVE"), pixels=(37, 23))  # fmt: skip
    done = aggregate_plots(cfg, memory_budget=BUDGET, threads=2)
    counts = np.frombuffer(base64.b64decode(metas[0]["counts"]), "<u4").reshape(23, 37)
    np.testing.assert_array_equal(counts, done.grids[0][1, 0, 0])
    left, top, right, bottom = metas[0]["box"]
    assert 0 < left < right < 800
    assert 0 < top < bottom < 600
    np.testing.assert_allclose(metas[0]["ranges"], done.ranges[0])
    if shutil.which("node"):
        script = tmp_path / "page.js"
        script.write_text(re.search(r"<script>(.*)</script>", text, re.S).group(1))
        subprocess.run(["node", "--check", str(script)], check=True)
