"""rc-image end to end on noise-free simulated observations of known sources: positions,
fluxes, CLEAN components, FITS headers, MODEL_DATA, and bad input leaving no FITS behind."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from casacore.tables import table

from radiocloud.core.cli import run_cli
from radiocloud.image.cli import cli
from radiocloud.simulate.cli import app as simulate_app

ARCSEC = math.pi / 180 / 3600
CENTRE = SkyCoord("13h15m30s", "-58d05m00s", frame="fk5")
SOURCES = [  # name, RA, Dec, flux at 1284 MHz: on pixel centres of 2 arcsec pixels
    ("a", "13:15:30.0", "-58:02:00.0", 1.0),
    ("b", "13:15:30.0", "-58:06:10.0", 0.4),
]
HEADER = ("Format = Name, Type, Ra, Dec, I, SpectralIndex, LogarithmicSI, "
          "ReferenceFrequency='1284000000.0', MajorAxis, MinorAxis, Orientation")  # fmt: skip


def simulate(tmp, name: str, lines: list[str], *extra: str):
    sky = tmp / f"{name}.txt"
    sky.write_text("\n".join([HEADER, *lines]) + "\n")
    ms = tmp / f"{name}.ms"
    args = [str(ms), "--antennas", "16", "--channels", "8", "--integrations", "40", "--sky",
            str(sky), "--no-gains", "--no-delays", "--no-bandpass", "--no-rfi", "--noise", "0",
            "--pointing", "13h15m30s,-58d05m00s", *extra]  # fmt: skip
    assert run_cli(simulate_app, "rc-simulate", args) == 0
    return ms


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    lines = [f"{n}, POINT, {ra}, {dec}, {s}, [], false, 1284000000.0, , ," for n, ra, dec, s in
             SOURCES]  # fmt: skip
    return simulate(tmp_path_factory.mktemp("image"), "points", lines)


def read(prefix, name):
    with fits.open(f"{prefix}-{name}.fits") as f:
        return f[0].data[0, 0].astype(float), f[0].header


def pixel_of(header, ra: str, dec: str) -> tuple[float, float]:
    where = SkyCoord(ra, dec, unit=("hourangle", "deg"), frame="fk5")
    i, j = WCS(header).celestial.world_to_pixel(where)
    return float(i), float(j)


def image(ms, prefix, *extra) -> int:
    return cli([ms, "--prefix", prefix, "--size", "256", "--scale", "2asec", *extra])


@pytest.fixture(scope="module")
def cleaned(points, tmp_path_factory):
    prefix = tmp_path_factory.mktemp("out") / "pt"
    assert image(points, prefix, "--niter", "2000", "--mgain", "0.8", "--threshold",
                 "1e-4", "--weight", "briggs", "0") == 0  # fmt: skip
    return prefix


def test_point_sources_at_their_pixels_and_fluxes_in_the_restored_image(cleaned):
    restored, header = read(cleaned, "image")
    for _, ra, dec, flux in SOURCES:
        i, j = pixel_of(header, ra, dec)
        assert abs(i - round(i)) < 1e-4  # the sources sit on pixel centres
        assert abs(j - round(j)) < 1e-4
        box = restored[round(j) - 1 : round(j) + 2, round(i) - 1 : round(i) + 2]
        jj, ii = np.unravel_index(np.argmax(box), box.shape)
        assert (jj, ii) == (1, 1)  # the peak is at the source's pixel
        assert box[1, 1] == pytest.approx(flux, rel=0.01)


def test_clean_converges_to_the_true_component_fluxes(cleaned):
    model, header = read(cleaned, "model")
    residual, _ = read(cleaned, "residual")
    for _, ra, dec, flux in SOURCES:
        i, j = (round(v) for v in pixel_of(header, ra, dec))
        near = model[j - 2 : j + 3, i - 2 : i + 3].sum()
        assert near == pytest.approx(flux, rel=0.01)
    assert model.sum() == pytest.approx(sum(s[3] for s in SOURCES), rel=0.01)
    assert np.abs(residual).max() < 0.01


def test_fits_headers_read_back_with_the_right_wcs_and_beam(cleaned):
    header = read(cleaned, "image")[1]
    psf, _ = read(cleaned, "psf")
    w = WCS(header).celestial
    centre = w.pixel_to_world(128, 128)
    assert centre.separation(CENTRE).arcsec < 1e-6
    assert header["CDELT1"] == pytest.approx(-2 / 3600)
    assert header["CDELT2"] == pytest.approx(2 / 3600)
    assert header["BUNIT"] == "JY/BEAM"
    assert 0 < header["BMIN"] <= header["BMAJ"] < 60 / 3600
    # the restoring beam is the PSF's main lobe: half power at half the FWHM along the axes
    assert psf[128, 128] == pytest.approx(1.0)
    model_header = read(cleaned, "model")[1]
    assert model_header["BUNIT"] == "JY/PIXEL"


def test_sources_file_lists_the_brightest_component_first(cleaned):
    from radiocloud.core.skymodel import read_skymodel

    sky = read_skymodel(f"{cleaned}-sources.txt")
    brightest = SkyCoord(sky.ra[0], sky.dec[0], unit="rad")
    assert (
        brightest.separation(
            SkyCoord("13:15:30.0", "-58:02:00.0", unit=("hourangle", "deg"))
        ).arcsec
        < 1.0
    )


def test_gaussian_source_integrated_flux(tmp_path):
    """A 20 x 12 arcsec Gaussian of 2 Jy: the restored image integrates to 2 Jy (within 2%)."""
    line = "g, GAUSSIAN, 13:15:30.0, -58:05:00.0, 2.0, [], false, 1284000000.0, 20, 12, 30"
    ms = simulate(tmp_path, "gauss", [line])
    prefix = tmp_path / "g"
    assert image(ms, prefix, "--niter", "5000", "--mgain", "0.8", "--threshold", "1e-4",
                 "--gain", "0.2") == 0  # fmt: skip
    restored, header = read(prefix, "image")
    bmaj, bmin = header["BMAJ"] * 3600 / 2, header["BMIN"] * 3600 / 2  # pixels of 2 arcsec
    beam_pixels = math.pi * bmaj * bmin / (4 * math.log(2))
    box = restored[128 - 40 : 128 + 40, 128 - 40 : 128 + 40]
    assert box.sum() / beam_pixels == pytest.approx(2.0, rel=0.02)


def test_predict_writes_the_model_visibilities(points, tmp_path):
    ms = tmp_path / "p.ms"
    shutil.copytree(points, ms)
    assert image(ms, tmp_path / "p", "--niter", "2000", "--mgain", "0.8", "--threshold", "1e-4",
                 "--predict") == 0  # fmt: skip
    with table(str(ms), ack=False) as t:
        data, model = t.getcol("DATA"), t.getcol("MODEL_DATA")
        cross = t.getcol("ANTENNA1") != t.getcol("ANTENNA2")
    err = np.abs(model[cross][..., 0] - data[cross][..., 0])
    assert np.sqrt(np.mean(err**2)) < 0.02 * np.sqrt(np.mean(np.abs(data[cross][..., 0]) ** 2))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--size", "30000", "--memory-budget", "1GB"], "over the memory budget"),
        (["--size", "255"], "even number"),
        (["--weight", "briggs", "3"], "ROBUST must lie in [-2, 2]"),
        (["--field", "4"], "--field 4"),
        (["--channels", "20:30"], "no data"),
        (["--column", "NOPE"], "has no column NOPE"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_fits(points, tmp_path, capfd, args, words):
    base = ["--size", "256", "--scale", "2asec"]
    for opt in ("--size",):
        if opt in args:
            base = base[2:]
    assert cli([points, "--prefix", tmp_path / "x", *base, *args]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert words in err[0]
    assert not list(tmp_path.glob("*.fits"))


def test_fully_flagged_data_is_refused_and_undersampling_warned(points, tmp_path, capfd, caplog):
    ms = tmp_path / "f.ms"
    shutil.copytree(points, ms)
    with table(str(ms), readonly=False, ack=False) as t:
        t.putcol("FLAG", np.ones_like(t.getcol("FLAG")))
    assert image(ms, tmp_path / "f") == 2
    assert "nothing to image" in capfd.readouterr().err
    assert not list(tmp_path.glob("*.fits"))
    assert cli([points, "--prefix", tmp_path / "u", "--size", "64", "--scale", "30asec"]) == 0
    assert "undersamples the longest baseline" in capfd.readouterr().err + caplog.text


def test_rc_plot_draws_the_restored_image(cleaned, tmp_path):
    """rc-plot on rc-image's output (issue 8: image plots from the other apps' outputs)."""
    from matplotlib.image import imread

    from radiocloud.plot.cli import app as plot_app

    out = tmp_path / "image.png"
    assert run_cli(plot_app, "rc-plot", [f"{cleaned}-image.fits", "--output", str(out)]) == 0
    assert imread(str(out)).shape[:2] == (800, 800)


def test_output_channels_clean_jointly_and_fit_the_spectra(tmp_path):
    """Two sources with linear spectra (I = I0 + c (ν/ν0 - 1)) imaged in 4 output channels:
    each channel's restored flux, the MFS files, the fitted spectral terms and the predicted
    MODEL_DATA (from the model cube) all follow the truth."""
    truth = [("a", "13:15:30.0", "-58:02:00.0", 1.0, -0.8), ("b", "13:15:30.0", "-58:06:10.0",
             0.5, 0.6)]  # fmt: skip
    lines = [f"{n}, POINT, {ra}, {dec}, {s}, [{c}], false, 1284000000.0, , ,"
             for n, ra, dec, s, c in truth]  # fmt: skip
    ms = simulate(tmp_path, "spectral", lines)
    prefix = tmp_path / "sp"
    assert image(ms, prefix, "--niter", "3000", "--mgain", "0.8", "--threshold", "1e-4",
                 "--channels-out", "4", "--fit-spectral-pol", "2", "--predict") == 0  # fmt: skip
    for name in ("0000", "0001", "0002", "0003", "MFS"):
        assert (tmp_path / f"sp-{name}-image.fits").exists()
    assert not (tmp_path / "sp-image.fits").exists()
    for band in ("0000", "0003"):
        restored, header = read(f"{prefix}-{band}", "image")
        nu = header["CRVAL3"]
        for _, ra, dec, s, c in truth:
            i, j = (round(v) for v in pixel_of(header, ra, dec))
            assert restored[j, i] == pytest.approx(s + c * (nu / 1.284e9 - 1), rel=0.015)
    from radiocloud.core.skymodel import read_skymodel

    sky = read_skymodel(f"{prefix}-sources.txt")
    fluxes = sky.flux(np.array([0.9e9, 1.6e9]))[:, :, 0].sum(axis=0)  # every component
    want = [sum(s + c * (nu / 1.284e9 - 1) for _, _, _, s, c in truth) for nu in (0.9e9, 1.6e9)]
    np.testing.assert_allclose(fluxes, want, rtol=0.02)
    with table(str(ms), ack=False) as t:
        data, model = t.getcol("DATA")[..., 0], t.getcol("MODEL_DATA")[..., 0]
        cross = t.getcol("ANTENNA1") != t.getcol("ANTENNA2")
    err = np.sqrt(np.mean(np.abs(model[cross] - data[cross]) ** 2, axis=0))
    assert np.all(err < 0.03 * np.sqrt(np.mean(np.abs(data[cross]) ** 2, axis=0)))


def test_streaming_each_major_cycle_gives_the_same_images(points, tmp_path, monkeypatch):
    """Stokes I re-read from the dataset at every major cycle (not held in memory): the same
    model and residual as when held."""
    from radiocloud.image import pipeline

    args = ["--niter", "300", "--mgain", "0.8", "--threshold", "1e-3"]
    assert image(points, tmp_path / "held", *args) == 0
    monkeypatch.setattr(pipeline, "HOLD_FRACTION", 0.0)
    assert image(points, tmp_path / "streamed", *args) == 0
    for name in ("model", "residual"):
        held, _ = read(tmp_path / "held", name)
        streamed, _ = read(tmp_path / "streamed", name)
        np.testing.assert_allclose(streamed, held, atol=1e-6)


def test_fits_mask_keeps_components_inside_it(points, cleaned, tmp_path):
    """A mask around source a only: every component inside it, and b left in the residual."""
    _, header = read(cleaned, "image")
    mask = np.zeros((256, 256), np.float32)
    ia, ja = (round(v) for v in pixel_of(header, *SOURCES[0][1:3]))
    mask[ja - 5 : ja + 6, ia - 5 : ia + 6] = 1
    fits.writeto(tmp_path / "mask.fits", mask)
    prefix = tmp_path / "m"
    assert image(points, prefix, "--niter", "500", "--mgain", "0.8", "--threshold", "1e-3",
                 "--fits-mask", tmp_path / "mask.fits") == 0  # fmt: skip
    model, _ = read(prefix, "model")
    assert np.all(model[mask == 0] == 0)
    assert model.sum() == pytest.approx(1.0, rel=0.01)
    residual, _ = read(prefix, "residual")
    ib, jb = (round(v) for v in pixel_of(header, *SOURCES[1][1:3]))
    assert residual[jb, ib] == pytest.approx(0.4, rel=0.05)  # b, uncleaned


def test_auto_mask_and_auto_threshold_on_noisy_data(tmp_path):
    """With thermal noise: cleaning to 5 sigma unmasked, then within the model to 1 sigma,
    finds the sources' flux and leaves a residual at the noise."""
    lines = [f"{n}, POINT, {ra}, {dec}, {s}, [], false, 1284000000.0, , ," for n, ra, dec, s in
             SOURCES]  # fmt: skip
    sky = tmp_path / "noisy.txt"
    sky.write_text("\n".join([HEADER, *lines]) + "\n")
    ms = tmp_path / "noisy.ms"
    args = [str(ms), "--antennas", "16", "--channels", "8", "--integrations", "40", "--sky",
            str(sky), "--no-gains", "--no-delays", "--no-bandpass", "--no-rfi", "--noise", "2",
            "--pointing", "13h15m30s,-58d05m00s"]  # fmt: skip
    assert run_cli(simulate_app, "rc-simulate", args) == 0
    prefix = tmp_path / "n"
    assert image(ms, prefix, "--niter", "5000", "--mgain", "0.8", "--auto-mask", "5",
                 "--auto-threshold", "1") == 0  # fmt: skip
    model, header = read(prefix, "model")
    residual, _ = read(prefix, "residual")
    sigma = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    for _, ra, dec, flux in SOURCES:
        i, j = (round(v) for v in pixel_of(header, ra, dec))
        assert model[j - 2 : j + 3, i - 2 : i + 3].sum() == pytest.approx(flux, abs=3 * sigma)
    far = np.ones_like(model, bool)
    for _, ra, dec, _ in SOURCES:
        i, j = (round(v) for v in pixel_of(header, ra, dec))
        far[j - 10 : j + 11, i - 10 : i + 11] = False
    assert np.count_nonzero(model[far]) < 0.2 * np.count_nonzero(model)  # mostly on sources
    assert np.abs(residual).max() < 6 * sigma


def test_interval_and_spw_selection(points, tmp_path, capfd):
    prefix = tmp_path / "half"
    assert image(points, prefix, "--interval", "0:20", "--spw", "0") == 0
    half, _ = read(prefix, "psf")
    assert image(points, tmp_path / "all") == 0
    whole, _ = read(tmp_path / "all", "psf")
    assert not np.allclose(half, whole, atol=1e-3)  # a different uv coverage
    dirty, header = read(prefix, "dirty")
    i, j = (round(v) for v in pixel_of(header, *SOURCES[0][1:3]))
    assert dirty[j, i] == pytest.approx(1.0, abs=0.05)  # the source, from half the data
    assert image(points, tmp_path / "x", "--interval", "50:60") == 2
    assert "selects no integration of the 40" in capfd.readouterr().err
    assert image(points, tmp_path / "x", "--spw", "3") == 2
    assert "--spw 3" in capfd.readouterr().err


AVERAGING = [
    ["--time-bin", "4", "--chan-bin", "1", "--fov", "0.2"],
    ["--bda", "--time-bin", "8", "--chan-bin", "4", "--fov", "0.2"],
]


@pytest.mark.parametrize("how", AVERAGING)
def test_averaged_and_bda_outputs_of_rc_average_image_alike(points, cleaned, tmp_path, how):
    """rc-average's outputs (plain, and BDA with an SPW per channel resolution) give the
    sources at their pixels with their fluxes (sources 2-3 arcmin out: little smearing)."""
    from radiocloud.average.cli import app as average_app

    out = tmp_path / "avg.ms"
    assert run_cli(average_app, "rc-average", [str(points), str(out), *how]) == 0
    prefix = tmp_path / "a"
    assert image(out, prefix, "--niter", "2000", "--mgain", "0.8", "--threshold", "1e-3") == 0
    restored, header = read(prefix, "image")
    for _, ra, dec, flux in SOURCES:
        i, j = (round(v) for v in pixel_of(header, ra, dec))
        box = restored[j - 1 : j + 2, i - 1 : i + 2]
        assert np.unravel_index(np.argmax(box), box.shape) == (1, 1)
        assert box[1, 1] == pytest.approx(flux, rel=0.02)


def test_multiscale_cleans_extended_emission_deeper_than_point_components(tmp_path):
    """A 40 x 30 arcsec Gaussian of 2 Jy: after the same 300 components, multi-scale's
    residual is a small fraction of Clark's, and its model holds the source's flux."""
    line = "g, GAUSSIAN, 13:15:30.0, -58:05:00.0, 2.0, [], false, 1284000000.0, 40, 30, 30"
    ms = simulate(tmp_path, "wide", [line])
    args = ["--niter", "300", "--mgain", "0.8", "--threshold", "1e-4"]
    assert image(ms, tmp_path / "ms", *args, "--multiscale") == 0
    assert image(ms, tmp_path / "cl", *args) == 0
    ms_residual, _ = read(tmp_path / "ms", "residual")
    cl_residual, _ = read(tmp_path / "cl", "residual")
    assert np.abs(ms_residual).max() < 0.3 * np.abs(cl_residual).max()
    model, _ = read(tmp_path / "ms", "model")
    assert model.sum() == pytest.approx(2.0, rel=0.03)
    psf, _ = read(tmp_path / "ms", "psf")
    assert psf.shape == (256, 256)
    assert psf[128, 128] == pytest.approx(1.0)


@pytest.mark.parametrize("correlations", ["1", "2"])
def test_one_or_two_correlations_with_row_weights(tmp_path, correlations):
    """XX (or XX YY) with WEIGHT per row and no WEIGHT_SPECTRUM: the source at its flux."""
    lines = [f"a, POINT, {SOURCES[0][1]}, {SOURCES[0][2]}, 1.0, [], false, 1284000000.0, , ,"]
    ms = simulate(tmp_path, "two", lines, "--correlations", correlations)
    with table(str(ms), ack=False) as t:
        assert "WEIGHT_SPECTRUM" not in t.colnames()
    assert image(ms, tmp_path / "t", "--niter", "500", "--mgain", "0.8") == 0
    restored, header = read(tmp_path / "t", "image")
    i, j = (round(v) for v in pixel_of(header, *SOURCES[0][1:3]))
    assert restored[j, i] == pytest.approx(1.0, rel=0.01)
