"""rc-plot's products: gain tables of a real rc-calibrate solve, FITS images with a known beam,
rc-flag-summary JSON of a dataset with known flags, and bad input of each kind."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS
from casacore.tables import table
from matplotlib.image import imread

from radiocloud.calibrate.cli import app as calibrate_app
from radiocloud.core.cli import run_cli
from radiocloud.core.errors import DatasetNotFoundError, NotADatasetError, OptionError
from radiocloud.core.io import read_gain_table, write_gain_table
from radiocloud.flag.summary_cli import app as summary_app
from radiocloud.plot.products import kind, plot_fits_image, plot_flag_summary, plot_gain_table
from radiocloud.plot.products.flags import draw_summary, panels, read_summary
from radiocloud.plot.products.gains import (
    ANTENNA,
    FREQUENCY,
    TIME,
    delay_curves,
    draw_term,
    gain_curves,
)
from radiocloud.plot.products.image import beam_pixels, draw_image, image_stats, read_image

FLAGGED_ANT = 3  # fully flagged before the solve: its solutions are flagged
ARCSEC = 1 / 3600


def png_size(path) -> tuple[int, int]:
    image = imread(str(path))
    return image.shape[1], image.shape[0]


def texts(fig) -> str:
    """Every text drawn in a figure: titles, panel texts, labels."""
    found = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    return "\n".join(found)


def flag_antenna(ms, ant: int, channels=()) -> None:
    with table(str(ms), readonly=False, ack=False) as t:
        flag = t.getcol("FLAG")
        flag[(t.getcol("ANTENNA1") == ant) | (t.getcol("ANTENNA2") == ant)] = True
        flag[:, list(channels)] = True
        t.putcol("FLAG", flag)


# --- gain tables --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gains(small_ms, tmp_path_factory):
    """K (one delay per antenna), G (per integration) and B (per channel) solved by
    rc-calibrate on the small observation with antenna 3 flagged."""
    tmp = tmp_path_factory.mktemp("products")
    ms = tmp / "g.ms"
    shutil.copytree(small_ms, ms)
    flag_antenna(ms, FLAGGED_ANT)
    out = tmp / "kgb.zarr"
    args = [str(ms), "--terms", "K,G,B", "--time-interval", "K=0,G=1,B=0", "--gain-table",
            str(out)]  # fmt: skip
    assert run_cli(calibrate_app, "rc-calibrate", args) == 0
    return out


def test_one_png_per_term_of_the_asked_size(gains, tmp_path):
    paths = plot_gain_table(str(gains), str(tmp_path / "gains.png"), size=(640, 480))
    assert paths == [str(tmp_path / f"gains-{t}.png") for t in ("K", "G", "B")]
    for p in paths:
        assert png_size(p) == (640, 480)


def test_term_template_and_a_chosen_term(gains, tmp_path):
    paths = plot_gain_table(str(gains), str(tmp_path / "{term}_solutions.png"), terms=["G"])
    assert paths == [str(tmp_path / "G_solutions.png")]
    assert png_size(paths[0]) == (800, 600)
    with pytest.raises(OptionError, match=r"has terms K, G, B, not Q"):
        plot_gain_table(str(gains), str(tmp_path / "x.png"), terms=["Q"])


def expected(values, flags, x, ant, corr):
    """The unflagged (x, value) of one antenna and correlation, in increasing x."""
    keep = ~flags[:, ant, corr]
    order = np.argsort(x[keep], kind="stable")
    return x[keep][order], values[:, ant, corr][keep][order]


def test_gains_against_time_are_the_tables_unflagged_solutions(gains):
    g = read_gain_table(str(gains))[0]["G"]
    cur = gain_curves(g)
    assert cur.axis == TIME
    t = g.gain_time.values
    values, flags = g.gains.values[:, 0, :, 0], g.gain_flags.values[:, 0, :, 0]
    ncorr = len(g.corr)
    assert len(cur.series) == len(g.ant) * ncorr
    for s in cur.series:
        x, v = expected(values, flags, t - t.min(), s.antenna, list(g.corr.values).index(s.corr))
        np.testing.assert_array_equal(s.x, x)
        np.testing.assert_array_equal(s.values, v)
    drawn = {s.antenna for s in cur.series if len(s.x)}
    assert drawn == set(range(len(g.ant))) - {FLAGGED_ANT}  # flagged antenna: no points
    assert len(cur.series[0].x) == len(t) == 6  # one solution per integration


def test_bandpass_against_frequency_and_delays_against_antenna(gains):
    terms = read_gain_table(str(gains))[0]
    b = terms["B"]
    cur = gain_curves(b)
    assert cur.axis == FREQUENCY
    ghz = b.gain_freq.values / 1e9
    for s in cur.series:
        c = list(b.corr.values).index(s.corr)
        x, v = expected(b.gains.values[0, :, :, 0], b.gain_flags.values[0, :, :, 0], ghz,
                        s.antenna, c)  # fmt: skip
        np.testing.assert_array_equal(s.x, x)
        np.testing.assert_array_equal(s.values, v)
    assert not any(len(s.x) for s in cur.series if s.antenna == FLAGGED_ANT)

    k = terms["K"]
    delays = delay_curves(k)
    assert delays.axis == ANTENNA  # one solution interval, one frequency interval
    tau = k.params.sel(param="delay").values[0, 0, :, 0]  # (ant, corr), ns
    for s in delays.series:
        c = list(k.corr.values).index(s.corr)
        if s.antenna == FLAGGED_ANT:
            assert len(s.x) == 0
        else:
            assert s.x.tolist() == [s.antenna]
            assert s.values.tolist() == [tau[s.antenna, c]]
    assert delay_curves(terms["G"]) is None  # no delay parameter, no delay panel
    assert gain_curves(k).axis == FREQUENCY  # a delay's gains vary across the band


def test_each_spectral_window_is_a_series_of_its_own(tmp_path):
    """G per integration over two SPWs (8 and 4 channels): each antenna and correlation has a
    series per band, holding that band's solutions, not the other's flagged fill."""
    from radiocloud.core.testing import MSSpec, build_ms

    spec = MSSpec(n_ant=6, n_time=3, spw_chans=(8, 4), n_corr=2, extra_columns=("MODEL_DATA",))
    ms = build_ms(tmp_path / "spw.ms", spec)
    args = [str(ms), "--terms", "G", "--time-interval", "1", "--min-baselines", "2",
            "--gain-table", str(tmp_path / "g.zarr")]  # fmt: skip
    assert run_cli(calibrate_app, "rc-calibrate", args) == 0
    g = read_gain_table(str(tmp_path / "g.zarr"))[0]["G"]
    cur = gain_curves(g)
    assert cur.axis == TIME
    assert len(cur.series) == 6 * 2 * 2  # antennas x correlations x bands
    t = g.gain_time.values
    f = g.gain_freq.values
    for s in cur.series:
        rows = np.flatnonzero(g.ddid.values == s.band)
        (own,) = np.flatnonzero((f > g.band_lo.values[rows[0]]) & (f < g.band_hi.values[rows[0]]))
        c = list(g.corr.values).index(s.corr)
        keep = ~g.gain_flags.values[rows, own, s.antenna, 0, c]
        assert keep.all()  # noise-like data, every antenna with 5 baselines: all solved
        np.testing.assert_array_equal(s.x, t[rows] - t.min())
        np.testing.assert_array_equal(s.values, g.gains.values[rows, own, s.antenna, 0, c])


def test_fully_flagged_table_gives_an_empty_labelled_plot(gains, tmp_path):
    terms, attrs = read_gain_table(str(gains))
    flagged = {"G": terms["G"].assign(gain_flags=terms["G"].gain_flags | True)}
    write_gain_table(str(tmp_path / "flagged.zarr"), flagged, {"dataset": attrs["dataset"]})
    (path,) = plot_gain_table(str(tmp_path / "flagged.zarr"), str(tmp_path / "f.png"))
    assert png_size(path) == (800, 600)
    term = read_gain_table(str(tmp_path / "flagged.zarr"))[0]["G"]
    assert not any(len(s.x) for s in gain_curves(term).series)
    assert texts(draw_term(term, title="G", size=(800, 600))).count("every solution is flagged")


def test_many_antennas_get_a_colour_bar_instead_of_a_legend(gains):
    g = read_gain_table(str(gains))[0]["G"]
    names = [f"m{i:03d}" for i in range(64)]
    wide = g.isel(ant=np.arange(64) % len(g.ant)).assign_coords(ant=names)
    fig = draw_term(wide, title="G", size=(800, 600))
    assert len(fig.legends) == 1  # the correlations' line styles only
    assert fig.axes[-1].get_ylabel() == "antenna (index)"
    assert len(gain_curves(wide).series) == 64 * len(g.corr)


# --- FITS images --------------------------------------------------------------------------


def write_image(path, *, cdelt=(-2 * ARCSEC, 2 * ARCSEC), beam=(20, 10, 30), noise=1e-4,
                peak=0.05, n=96) -> np.ndarray:  # fmt: skip
    """A WSClean-like cube (RA, Dec, FREQ, STOKES): a Gaussian source on Gaussian noise;
    ``beam`` (BMAJ, BMIN in arcsec, BPA in degrees) or None. Returns the plane written."""
    y, x = np.mgrid[:n, :n]
    rng = np.random.default_rng(3)
    plane = noise * rng.standard_normal((n, n)) + peak * np.exp(
        -((x - 60) ** 2 + (y - 40) ** 2) / (2 * 2.0**2)
    )
    header = fits.Header()
    cards = dict(CTYPE1="RA---SIN", CRVAL1=244.0, CRPIX1=n / 2, CDELT1=cdelt[0], CUNIT1="deg",
                 CTYPE2="DEC--SIN", CRVAL2=-60.0, CRPIX2=n / 2, CDELT2=cdelt[1], CUNIT2="deg",
                 CTYPE3="FREQ", CRVAL3=1.284e9, CRPIX3=1, CDELT3=8.56e8, CUNIT3="Hz",
                 CTYPE4="STOKES", CRVAL4=1, CRPIX4=1, CDELT4=1, BUNIT="JY/BEAM")  # fmt: skip
    if beam is not None:
        cards |= dict(BMAJ=beam[0] * ARCSEC, BMIN=beam[1] * ARCSEC, BPA=beam[2])
    header.update(cards)
    fits.PrimaryHDU(plane[None, None].astype(np.float32), header).writeto(path)
    return plane.astype(np.float32)


def test_fits_image_png_size_frequency_peak_and_rms(tmp_path):
    plane = write_image(tmp_path / "img.fits")
    assert plot_fits_image(str(tmp_path / "img.fits"), str(tmp_path / "img.png")) == [
        str(tmp_path / "img.png")
    ]
    assert png_size(tmp_path / "img.png") == (800, 800)
    image = read_image(str(tmp_path / "img.fits"))
    np.testing.assert_array_equal(image.data, plane)
    assert image.freq == 1.284e9
    peak, rms = image_stats(image.data)
    assert peak == plane.max()
    assert rms == pytest.approx(1e-4, rel=0.05)  # the injected noise, the source ignored
    title = texts(draw_image(image, name="img.fits", size=(800, 800)))
    assert "1.284 GHz" in title
    assert f"peak {plane.max() * 1e3:.3g} mJy/beam" in title


def sampled_beam(wcs, bmaj, bmin, bpa) -> tuple[float, float, float]:
    """(width, height, angle) in pixels of the beam ellipse traced on the sky about the
    reference pixel (astropy's position angles, east of north) and projected by ``wcs``."""
    centre = wcs.pixel_to_world(*wcs.wcs.crpix - 1)
    t = np.linspace(0, 2 * np.pi, 7200, endpoint=False)
    pa = np.radians(bpa)
    east = bmaj / 2 * np.cos(t) * np.sin(pa) + bmin / 2 * np.sin(t) * np.cos(pa)
    north = bmaj / 2 * np.cos(t) * np.cos(pa) - bmin / 2 * np.sin(t) * np.sin(pa)
    points = centre.directional_offset_by(np.arctan2(east, north) * u.rad,
                                          np.hypot(east, north) * u.deg)  # fmt: skip
    px, py = wcs.world_to_pixel(points)
    dx, dy = px - (wcs.wcs.crpix[0] - 1), py - (wcs.wcs.crpix[1] - 1)
    r = np.hypot(dx, dy)
    far = r.argmax()
    return 2 * r.max(), 2 * r.min(), np.degrees(np.arctan2(dy[far], dx[far])) % 180


def angle_diff(a, b) -> float:
    return abs((a - b + 90) % 180 - 90)


@pytest.mark.parametrize(
    ("cdelt", "bpa", "analytic"),
    [
        ((-2, 2), 0, (10, 5, 90)),  # major axis north: up
        ((-2, 2), 30, (10, 5, 120)),  # 30 deg towards the east, which is left
        ((-2, 2), 90, (10, 5, 0)),  # east-west
        ((-2, 4), 0, (5, 5, 90)),  # tall pixels: 20" is 5 px up, 10" is 5 px across
        ((-1, 4), 90, (20, 2.5, 0)),  # the major axis along the small pixel side
        ((-1, 4), 30, None),  # non-square and oblique: against the sky tracing alone
        ((2, 2), 30, (10, 5, 60)),  # RA increasing to the right: the beam mirrored
    ],
)
def test_beam_ellipse_in_pixels(tmp_path, cdelt, bpa, analytic):
    path = tmp_path / "beam.fits"
    write_image(path, cdelt=(cdelt[0] * ARCSEC, cdelt[1] * ARCSEC), beam=(20, 10, bpa))
    image = read_image(str(path))
    beam = beam_pixels(image.header, image.wcs)
    width, height, angle = sampled_beam(WCS(image.header).celestial, 20 * ARCSEC, 10 * ARCSEC, bpa)
    assert beam.width == pytest.approx(width, rel=1e-3)
    assert beam.height == pytest.approx(height, rel=1e-3)
    if not np.isclose(beam.width, beam.height):  # a circle has no angle
        assert angle_diff(beam.angle, angle) < 0.2
    if analytic is not None:
        assert beam.width == pytest.approx(analytic[0], rel=1e-9)
        assert beam.height == pytest.approx(analytic[1], rel=1e-9)
        if analytic[0] != analytic[1]:
            assert angle_diff(beam.angle, analytic[2]) < 1e-6


def test_missing_beam_still_plots_and_says_so(tmp_path):
    write_image(tmp_path / "nobeam.fits", beam=None)
    image = read_image(str(tmp_path / "nobeam.fits"))
    assert beam_pixels(image.header, image.wcs) is None
    (out,) = plot_fits_image(
        str(tmp_path / "nobeam.fits"), str(tmp_path / "n.png"), size=(500, 400)
    )
    assert png_size(out) == (500, 400)
    assert "no beam in the header" in texts(draw_image(image, name="nobeam.fits", size=(500, 400)))


# --- flag summaries -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def flag_summary(small_ms, tmp_path_factory):
    """rc-flag-summary --json of the small observation with antenna 2 and channels 0-1 flagged;
    (JSON path, Measurement Set)."""
    tmp = tmp_path_factory.mktemp("products-flags")
    ms = tmp / "f.ms"
    shutil.copytree(small_ms, ms)
    flag_antenna(ms, 2, channels=(0, 1))
    out = tmp / "flags.json"
    assert run_cli(summary_app, "rc-flag-summary", [str(ms), "--json", str(out)]) == 0
    return out, ms


def test_flag_summary_panels_are_the_datasets_flagged_fractions(flag_summary, tmp_path):
    path, ms = flag_summary
    with table(str(ms), ack=False) as t:
        flag, a1, a2 = t.getcol("FLAG"), t.getcol("ANTENNA1"), t.getcol("ANTENNA2")
    p = panels(read_summary(str(path)))
    nant = len(p.antenna.labels)
    truth = [flag[(a1 == a) | (a2 == a)].mean() for a in range(nant)]
    np.testing.assert_allclose(p.antenna.fractions, truth, rtol=1e-12)
    assert p.antenna.fractions[2] == 1.0  # the flagged antenna at 100 %
    assert p.antenna.fractions[[0, 1, 3]].max() < 1
    recorded = [a["fraction"] for a in json.loads(path.read_text())["antenna"]]
    np.testing.assert_allclose(p.antenna.fractions, recorded, rtol=1e-12)
    (spw,) = p.channels
    np.testing.assert_allclose(spw.fractions, flag.mean(axis=(0, 2)), rtol=1e-12)
    assert spw.fractions[:2].tolist() == [1.0, 1.0]
    assert p.fraction == pytest.approx(flag.mean(), rel=1e-12)
    np.testing.assert_allclose(p.correlation.fractions, flag.mean(axis=(0, 1)), rtol=1e-12)

    assert plot_flag_summary(str(path), str(tmp_path / "f.png")) == [str(tmp_path / "f.png")]
    assert png_size(tmp_path / "f.png") == (1000, 800)
    title = texts(draw_summary(p, name="f.ms", size=(1000, 800)))
    assert f"f.ms: {flag.mean():.2%} flagged ({int(flag.sum()):,} of {flag.size:,})" in title


# --- what a path holds, and bad input ------------------------------------------------------


def test_kind_of_each_product(gains, flag_summary, small_ms, tmp_path):
    write_image(tmp_path / "image.fits")
    shutil.copy(tmp_path / "image.fits", tmp_path / "image.data")
    shutil.copy(flag_summary[0], tmp_path / "summary.txt")
    (tmp_path / "notes.txt").write_text("not data\n")
    assert kind(str(gains)) == "gains"
    assert kind(str(tmp_path / "image.fits")) == "fits"
    assert kind(str(tmp_path / "image.data")) == "fits"  # the FITS signature
    assert kind(str(flag_summary[0])) == "flag-summary"
    assert kind(str(tmp_path / "summary.txt")) == "flag-summary"  # its keys
    assert kind(str(small_ms)) == "visibilities"
    assert kind(str(tmp_path / "notes.txt")) == "visibilities"


def test_bad_input_is_one_clear_error_naming_the_file(small_ms, tmp_path):
    fake = tmp_path / "fake.fits"
    fake.write_text("this is not a FITS file\n")
    with pytest.raises(NotADatasetError, match=rf"'{fake}' is not a FITS image: "):
        plot_fits_image(str(fake), str(tmp_path / "x.png"))

    flat = tmp_path / "flat.fits"
    fits.PrimaryHDU(np.zeros((8, 8), np.float32)).writeto(flat)  # no RA/Dec axes
    with pytest.raises(NotADatasetError, match=r"flat.fits' is not a FITS image: .*RA and Dec"):
        plot_fits_image(str(flat), str(tmp_path / "x.png"))

    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(NotADatasetError, match=r"other.json' is not a flag summary .*no total"):
        plot_flag_summary(str(other), str(tmp_path / "x.png"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(NotADatasetError, match=r"broken.json' is not a flag summary .*JSON"):
        plot_flag_summary(str(broken), str(tmp_path / "x.png"))

    with pytest.raises(NotADatasetError, match=rf"'{small_ms}' is not a radiocloud gain table"):
        plot_gain_table(str(small_ms), str(tmp_path / "x.png"))
    with pytest.raises(DatasetNotFoundError, match=r"gain table '.*nope.zarr' does not exist"):
        plot_gain_table(str(tmp_path / "nope.zarr"), str(tmp_path / "x.png"))
    assert not list(tmp_path.glob("*.png"))


def test_rc_plot_draws_each_kind_of_file_in_its_own_way(gains, flag_summary, tmp_path, capfd):
    """The command line dispatches on what DATASET is; -x/-y are for visibilities only."""
    from .conftest import plot

    write_image(tmp_path / "img.fits")
    assert plot(gains, "--output", tmp_path / "g.png") == 0
    assert sorted(p.name for p in tmp_path.glob("g-*.png")) == ["g-B.png", "g-G.png", "g-K.png"]
    assert plot(tmp_path / "img.fits", "--output", tmp_path / "i.png", "--size", "500x400") == 0
    assert png_size(tmp_path / "i.png") == (500, 400)
    assert plot(flag_summary[0], "--output", tmp_path / "f.png") == 0
    assert png_size(tmp_path / "f.png") == (1000, 800)
    assert plot(gains, "-x", "TIME", "-y", "DATA:amp", "--output", tmp_path / "x.png") == 2
    assert "drop -x and -y" in capfd.readouterr().err


# --- a gain table against true gains ---------------------------------------------------------


def write_truth(path, table_path, ms, factor) -> None:
    """True gains as rc-simulate writes them: the table's own chain at every integration and
    channel of ``ms``, divided by ``factor`` (ant, feed)."""
    import xarray as xr
    from daskms.experimental.zarr import xds_to_zarr

    from radiocloud.core.io.gaintable import chain_gains

    with table(str(ms), ack=False) as t:
        times = np.unique(t.getcol("TIME"))
    with table(f"{ms}/SPECTRAL_WINDOW", ack=False) as t:
        freq = t.getcol("CHAN_FREQ")[0]
    terms, _ = read_gain_table(str(table_path))
    net, _ = chain_gains(terms, times, freq)
    ants = terms["G"].ant.values
    truth = xr.Dataset(
        {"gains": (("time", "chan", "ant", "corr"), net / factor)},
        coords={"time": times, "chan": freq, "ant": ants, "corr": ["X", "Y"]},
    )
    import dask

    dask.compute(xds_to_zarr([truth.chunk()], str(path)))


def test_gains_against_the_truth_show_the_injected_errors(gains, small_ms, tmp_path):
    """A truth that differs from the table by 10% in one antenna's amplitude and 5 degrees in
    another's phase: the errors' rms are those, diluted by the other antennas' zeros."""
    from radiocloud.core.io.gaintable import chain_gains
    from radiocloud.plot.products import plot_gains_vs_truth

    terms, _ = read_gain_table(str(gains))
    nant = terms["G"].sizes["ant"]
    factor = np.ones((nant, 2), complex)
    factor[1] = 1.1
    factor[2] = np.exp(1j * np.radians(5))
    write_truth(tmp_path / "truth.zarr", gains, small_ms, factor)
    written, summary = plot_gains_vs_truth(str(gains), str(tmp_path / "truth.zarr"),
                                           str(tmp_path / "t.png"), size=(700, 500))  # fmt: skip
    assert written == [str(tmp_path / "t.png")]
    assert png_size(tmp_path / "t.png") == (700, 500)
    with table(str(small_ms), ack=False) as t:
        times = np.unique(t.getcol("TIME"))
    with table(f"{small_ms}/SPECTRAL_WINDOW", ack=False) as t:
        freq = t.getcol("CHAN_FREQ")[0]
    _, flags = chain_gains(terms, times, freq)
    valid = ~flags & ~flags[:, :, :1]
    share = valid.sum(axis=(0, 1, 3)) / valid.sum()  # of each antenna in the statistics
    assert share[FLAGGED_ANT] == 0
    amp, phase = 10 * np.sqrt(share[1]), 5 * np.sqrt(share[2])
    assert "amplitude scale 1.0000" in summary
    assert f"errors rms {amp:.2f}%" in summary
    assert f"phase rms {phase:.2f} deg" in summary


def test_truth_of_other_antennas_or_with_no_gain_table_is_refused(gains, small_ms, tmp_path,
                                                                 capfd):  # fmt: skip
    from radiocloud.plot.products import plot_gains_vs_truth

    from .conftest import plot

    write_image(tmp_path / "img.fits")
    assert plot(tmp_path / "img.fits", "--truth", tmp_path / "x.zarr") == 2
    assert "--truth compares a gain table with true gains" in capfd.readouterr().err
    with pytest.raises(DatasetNotFoundError, match="truth"):
        plot_gains_vs_truth(str(gains), str(tmp_path / "none.zarr"), str(tmp_path / "t.png"))
    import dask
    import xarray as xr
    from daskms.experimental.zarr import xds_to_zarr

    other = xr.Dataset({"gains": (("time", "chan", "ant", "corr"), np.ones((2, 3, 2, 2)))},
                       coords={"ant": ["a", "b"]})  # fmt: skip
    dask.compute(xds_to_zarr([other.chunk()], str(tmp_path / "other.zarr")))
    with pytest.raises(NotADatasetError, match="antennas"):
        plot_gains_vs_truth(str(gains), str(tmp_path / "other.zarr"), str(tmp_path / "t.png"))
    assert not (tmp_path / "t.png").exists()
