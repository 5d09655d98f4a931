"""rc-image's products against analytic truth: beam fits of known Gaussians and Airy patterns,
restored fluxes and orientations checked through astropy's WCS, FITS headers and pixel
geometry against the SIN projection and rc-predict's reader, component lists through the
repo's reader, and writes that never leave a half-written file."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from scipy.optimize import brentq
from scipy.special import j1

from radiocloud.core.errors import BadInputError, OptionError, OutputNotWritableError
from radiocloud.core.fitsmodel import ImageModel, read_fits_model, write_fits_model
from radiocloud.core.skymodel import read_skymodel
from radiocloud.image.products import (
    Beam,
    Component,
    fit_beam,
    pixel_to_radec,
    restore,
    write_components,
    write_image,
    write_plane,
)

ARCSEC = math.pi / 648000
CELL = 1.5 * ARCSEC
RA0, DEC0 = math.radians(244.0158), math.radians(-60.9072)  # a southern field
FOUR_LN2 = 4 * math.log(2)


def rotated(shape, bpa_deg, centre=None):
    """(along, across) the axis at position angle ``bpa_deg`` (North through East), in pixels,
    for each pixel of an image with CDELT1 < 0: East is towards decreasing column i."""
    ny, nx = shape
    ci, cj = centre if centre is not None else (nx // 2, ny // 2)
    j, i = np.mgrid[0:ny, 0:nx]
    east, north = -(i - ci), j - cj
    pa = math.radians(bpa_deg)
    return east * math.sin(pa) + north * math.cos(pa), east * math.cos(pa) - north * math.sin(pa)


def gaussian_psf(shape, bmaj_px, bmin_px, bpa_deg):
    along, across = rotated(shape, bpa_deg)
    return np.exp(-FOUR_LN2 * ((along / bmaj_px) ** 2 + (across / bmin_px) ** 2))


def pa_error(measured, truth):
    """Difference of two position angles of an axis (modulo 180 deg), in (-90, 90]."""
    return (measured - truth + 90) % 180 - 90


def assert_cards(header, expected):
    for key, value in expected.items():
        if isinstance(value, float):
            assert header[key] == pytest.approx(value, rel=1e-14), key
        else:
            assert header[key] == value, key


def write(path, planes, **overrides):
    options = dict(ra0=RA0, dec0=DEC0, cell_rad=CELL, freqs=[1.28e9], widths=[8.0e5])
    return write_image(path, planes, **(options | overrides))


# --- fit_beam ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bpa", [0.0, 30.0, 90.0, -45.0, 67.5, -80.0])
@pytest.mark.parametrize(("bmaj", "bmin"), [(6.0, 3.0), (4.5, 4.0), (12.0, 2.5)])
def test_fit_beam_recovers_elliptical_gaussians(bpa, bmaj, bmin):
    beam = fit_beam(gaussian_psf((96, 128), bmaj, bmin, bpa), CELL)
    assert beam.fitted
    assert beam.bmaj_rad == pytest.approx(bmaj * CELL, rel=1e-6)
    assert beam.bmin_rad == pytest.approx(bmin * CELL, rel=1e-6)
    assert abs(pa_error(beam.bpa_deg, bpa)) < 1e-4
    assert -90 < beam.bpa_deg <= 90


def test_fit_beam_normalises_by_the_centre_pixel():
    beam = fit_beam(3.0 * gaussian_psf((64, 64), 7.0, 4.0, 20.0), CELL)
    assert (beam.bmaj_rad / CELL, beam.bmin_rad / CELL) == pytest.approx((7.0, 4.0), rel=1e-6)


def test_fit_beam_airy_pattern_is_its_main_lobe():
    """The PSF of a uniformly filled elliptical uv disk, 2 J1(x) / x (an Airy amplitude
    pattern: a first sidelobe at -13%, rings beyond): the fit follows the main lobe."""
    x_half = brentq(lambda x: 2 * j1(x) / x - 0.5, 1.0, 3.0)  # 2.2152: half the peak
    fwhm = (11.0, 5.0)  # pixels
    along, across = rotated((128, 128), -35.0)
    x = 2 * x_half * np.hypot(along / fwhm[0], across / fwhm[1])
    psf = np.where(x > 0, 2 * j1(x) / np.where(x > 0, x, 1), 1.0)
    assert psf.min() == pytest.approx(-0.132, abs=1e-3)  # the first sidelobe is sampled
    beam = fit_beam(psf, CELL)
    assert beam.fitted
    assert beam.bmaj_rad / CELL == pytest.approx(fwhm[0], rel=0.03)
    assert beam.bmin_rad / CELL == pytest.approx(fwhm[1], rel=0.03)
    assert abs(pa_error(beam.bpa_deg, -35.0)) < 0.5  # the lobe edge is pixelated


def test_fit_beam_of_a_restored_point_is_the_restoring_beam():
    beam = Beam(9 * CELL, 4 * CELL, 55.0)
    point = np.zeros((64, 64))
    point[32, 32] = 1.0
    fitted = fit_beam(restore(point, np.zeros_like(point), beam, CELL), CELL)
    assert (fitted.bmaj_rad, fitted.bmin_rad) == pytest.approx((9 * CELL, 4 * CELL), rel=1e-6)
    assert abs(pa_error(fitted.bpa_deg, 55.0)) < 1e-4


def test_fit_beam_falls_back_to_a_circle_of_the_lobe_area(caplog):
    delta = np.zeros((64, 64))
    delta[32, 32] = 1.0
    with caplog.at_level(logging.WARNING, logger="radiocloud.image"):
        beam = fit_beam(delta, CELL)
    assert not beam.fitted
    assert "circular beam" in caplog.text
    # a circular Gaussian of FWHM F is above 0.35 within π F² ln(1/0.35) / (4 ln 2) = 1 pixel
    fwhm = math.sqrt(FOUR_LN2 / (math.pi * math.log(1 / 0.35))) * CELL
    assert (beam.bmaj_rad, beam.bmin_rad, beam.bpa_deg) == pytest.approx((fwhm, fwhm, 0.0))


def test_fit_beam_falls_back_on_a_ridge():
    """An East-West ridge (a one-dimensional array's snapshot): 40 lobe pixels on a line."""
    ridge = np.zeros((64, 64))
    ridge[32, 12:52] = 1.0
    beam = fit_beam(ridge, CELL)
    assert not beam.fitted
    area = math.pi * beam.bmaj_rad * beam.bmin_rad * math.log(1 / 0.35) / FOUR_LN2
    assert area == pytest.approx(40 * CELL**2)


def test_fit_beam_of_an_empty_psf_is_an_error():
    with pytest.raises(BadInputError, match="no beam can be fitted"):
        fit_beam(np.zeros((64, 64)), CELL)


def test_beam_checks_and_normalises():
    assert Beam(2.0, 1.0, 135.0).bpa_deg == pytest.approx(-45.0)
    assert Beam(2.0, 1.0, -90.0).bpa_deg == 90.0
    assert Beam(2.0, 1.0, 0.0).area_sr == pytest.approx(math.pi * 2.0 / FOUR_LN2)
    with pytest.raises(OptionError, match="major >= minor"):
        Beam(1.0, 2.0, 0.0)


# --- restore ------------------------------------------------------------------------------------


def test_restored_point_peaks_at_its_flux():
    beam = Beam(5 * CELL, 3 * CELL, 20.0)
    model = np.zeros((64, 96))
    model[20, 71] = 2.5
    residual = np.random.default_rng(1).normal(0, 1e-3, model.shape)
    image = restore(model, residual, beam, CELL)
    assert image[20, 71] - residual[20, 71] == pytest.approx(2.5, rel=1e-12)
    assert np.unravel_index(np.argmax(image - residual), image.shape) == (20, 71)
    np.testing.assert_array_equal(restore(np.zeros_like(model), residual, beam, CELL), residual)


def test_restored_gaussian_source_keeps_its_flux():
    beam = Beam(6 * CELL, 4 * CELL, -30.0)
    along, across = rotated((128, 128), 70.0, centre=(60, 70))
    source = np.exp(-0.5 * ((along / 4.0) ** 2 + (across / 2.0) ** 2))
    source *= 3.2 / source.sum()  # 3.2 Jy in Jy/pixel
    image = restore(source, np.zeros_like(source), beam, CELL)
    beam_pixels = math.pi * 6 * 4 / FOUR_LN2
    assert image.sum() / beam_pixels == pytest.approx(3.2, rel=1e-6)


@pytest.mark.parametrize("bpa", [30.0, -45.0, 90.0, 0.0])
def test_restored_ellipse_points_at_bpa_on_the_sky(tmp_path, bpa):
    """The restored point's long axis, taken to sky coordinates by astropy from the written
    header, has astropy's position angle (East of North) equal to the BPA."""
    shape = (64, 64)
    point = np.zeros(shape)
    point[32, 32] = 1.0
    image = restore(point, np.zeros(shape), Beam(12 * CELL, 3 * CELL, bpa), CELL)
    j, i = np.mgrid[0 : shape[0], 0 : shape[1]]
    offsets = np.stack([(i - 32).ravel(), (j - 32).ravel()])
    _, vectors = np.linalg.eigh((offsets * image.ravel()) @ offsets.T)
    tip = 32 + 10 * vectors[:, 1]  # (i, j) along the principal axis
    path = write_plane(
        tmp_path / "r.fits", image, freq=1e9, width=1e6, ra0=RA0, dec0=DEC0, cell_rad=CELL
    )
    wcs = WCS(fits.getheader(path))
    centre, end = wcs.celestial.pixel_to_world([32, tip[0]], [32, tip[1]])
    assert abs(pa_error(centre.position_angle(end).deg, bpa)) < 0.05
    assert isinstance(centre, SkyCoord)


def test_restore_rejects_mismatched_planes():
    with pytest.raises(OptionError, match="differ"):
        restore(np.zeros((8, 8)), np.zeros((8, 9)), Beam(CELL, CELL, 0), CELL)


# --- FITS images --------------------------------------------------------------------------------


def test_fits_header_and_wcs_follow_the_sin_projection(tmp_path):
    nx, ny, freqs = 64, 48, np.array([1.0e9, 1.1e9, 1.2e9])
    planes = np.random.default_rng(2).normal(size=(3, ny, nx))
    beam = Beam(9 * ARCSEC, 6 * ARCSEC, -20.0)
    path = write(
        tmp_path / "cube.fits", planes, freqs=freqs, widths=[1e8] * 3, beam=beam,
        date_obs="2024-03-01T12:00:00.0", keywords={"WSCNITER": 1000}, history=["rc-image x"],
    )  # fmt: skip
    with fits.open(path) as hdus:
        header, data = hdus[0].header, hdus[0].data
    assert data.shape == (1, 3, ny, nx)
    assert data.dtype == np.dtype(">f4")  # WSClean's BITPIX = -32
    np.testing.assert_array_equal(data[0], planes.astype(np.float32))
    expected = {
        "CTYPE1": "RA---SIN", "CRPIX1": nx / 2 + 1, "CDELT1": -CELL * 180 / math.pi,
        "CTYPE2": "DEC--SIN", "CRPIX2": ny / 2 + 1, "CDELT2": CELL * 180 / math.pi,
        "CRVAL1": 244.0158, "CRVAL2": -60.9072, "CTYPE3": "FREQ", "CRVAL3": 1e9, "CDELT3": 1e8,
        "CTYPE4": "STOKES", "CRVAL4": 1.0, "NAXIS3": 3, "NAXIS4": 1, "BUNIT": "JY/BEAM",
        "BMAJ": 9 / 3600, "BMIN": 6 / 3600, "BPA": -20.0, "RESTFRQ": 1e9, "EQUINOX": 2000.0,
        "RADESYS": "FK5", "SPECSYS": "TOPOCENT", "BTYPE": "Intensity", "WSCNITER": 1000,
        "DATE-OBS": "2024-03-01T12:00:00.0",
    }  # fmt: skip
    assert_cards(header, expected)
    assert "rc-image x" in str(header["HISTORY"])

    wcs = WCS(header)
    i = np.array([0, 10, 32, 63, 5])
    j = np.array([0, 40, 24, 47, 30])
    ra, dec, freq, _ = wcs.wcs_pix2world(i, j, [0, 1, 2, 2, 1], 0, 0)
    np.testing.assert_allclose(freq, freqs[[0, 1, 2, 2, 1]], rtol=1e-15)
    ra, dec = np.radians(ra), np.radians(dec)
    # the forward SIN projection of each pixel's direction is its (l, m) on the grid
    dra = ra - RA0
    l_ = np.cos(dec) * np.sin(dra)
    m_ = np.sin(dec) * math.cos(DEC0) - np.cos(dec) * math.sin(DEC0) * np.cos(dra)
    np.testing.assert_allclose(l_, -(i - nx // 2) * CELL, rtol=0, atol=1e-15)
    np.testing.assert_allclose(m_, (j - ny // 2) * CELL, rtol=0, atol=1e-15)
    ra_ours, dec_ours = pixel_to_radec(i, j, ra0=RA0, dec0=DEC0, cell_rad=CELL, shape=(ny, nx))
    np.testing.assert_allclose(ra_ours, ra, rtol=0, atol=1e-13)
    np.testing.assert_allclose(dec_ours, dec, rtol=0, atol=1e-13)


def test_plane_is_a_wsclean_channel_image(tmp_path):
    path = write_plane(tmp_path / "p.fits", np.ones((32, 32)), freq=1.4e9, width=2e6,
                       ra0=RA0, dec0=DEC0, cell_rad=CELL, bunit="jy/pixel", stokes="V")  # fmt: skip
    header = fits.getheader(path)
    assert (header["NAXIS"], header["NAXIS3"], header["NAXIS4"]) == (4, 1, 1)
    assert (header["CRVAL3"], header["CDELT3"], header["CRVAL4"]) == (1.4e9, 2e6, 4.0)
    assert (header["CRPIX1"], header["CRPIX2"], header["BUNIT"]) == (17.0, 17.0, "JY/PIXEL")
    assert "BMAJ" not in header


def test_model_image_is_read_by_rc_predict_with_the_same_geometry(tmp_path):
    nx, ny, freqs = 48, 32, [0.9e9, 1.0e9]
    planes = np.random.default_rng(3).normal(size=(2, ny, nx))
    ours = write(tmp_path / "model.fits", planes, freqs=freqs, widths=[1e8] * 2, bunit="JY/PIXEL")
    model = read_fits_model(ours)
    assert (model.ra0, model.dec0) == pytest.approx((RA0, DEC0), rel=1e-14)
    assert (model.cell_l, model.cell_m) == pytest.approx((-CELL, CELL), rel=1e-14)
    assert (model.ref_x, model.ref_y) == (nx // 2, ny // 2)
    np.testing.assert_array_equal(model.freqs, freqs)
    np.testing.assert_array_equal(model.image[:, 0], planes.astype(np.float32))
    # the WCS cards are those core's own model writer puts down for the same model
    core = tmp_path / "core.fits"
    write_fits_model(ImageModel(model.image, model.freqs, RA0, DEC0, -CELL, CELL,
                                nx // 2, ny // 2, stokes=("I",)), core)  # fmt: skip
    theirs, mine = fits.getheader(core), fits.getheader(ours)
    cards = [f"{k}{n}" for k in ("CTYPE", "CRPIX", "CRVAL", "CDELT", "CUNIT") for n in range(1, 5)]
    assert_cards(
        mine, {key: theirs[key] for key in [*cards, "BUNIT", "RADESYS", "EQUINOX", "SPECSYS"]}
    )


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"bunit": "K"}, "BUNIT"),
        ({"freqs": [1e9, 1.1e9, 1.3e9], "widths": [1e8] * 3}, "uneven"),
        ({"freqs": [1e9, 1.1e9], "widths": [5e7] * 2}, "uneven"),
        ({"freqs": [1e9, 1.1e9]}, "frequencies and widths"),
        ({"keywords": {"CRPIX1": 3}}, "free 8-character"),
        ({"keywords": {"TOOLONGNAME": 3}}, "free 8-character"),
        ({"history": ["caf\u00e9"]}, "ASCII"),
        ({"stokes": "XX"}, "Stokes"),
        ({"dec0": 2.0}, "out of range"),
    ],
)
def test_write_image_rejects_bad_input(tmp_path, overrides, match):
    nplane = len(overrides.get("freqs", [1]))
    with pytest.raises(OptionError, match=match):
        write(tmp_path / "x.fits", np.zeros((nplane, 8, 8)), **overrides)
    assert list(tmp_path.iterdir()) == []


# --- component lists ----------------------------------------------------------------------------


def test_component_list_round_trips_through_the_repo_reader(tmp_path):
    components = [
        Component(RA0, DEC0, 1.25, (-0.7, 0.05)),
        Component(2 * math.pi - 1e-12, -1e-9, 3e-4),  # rounds to 00:00:00, just below 0 Dec
        (0.3, 1.2, -0.02, [0.1]),  # a negative component, a tuple, one term
        Component(4.5, -1.5707, 0.1234567890123, (1.0, -2.0, 3.0)),
    ]
    path = write_components(tmp_path / "sources.txt", components, ref_freq=1.2840e9)
    lines = Path(path).read_text().splitlines()
    assert lines[0] == (
        "Format = Name, Type, Ra, Dec, I, SpectralIndex, LogarithmicSI, "
        "ReferenceFrequency='1284000000.0', MajorAxis, MinorAxis, Orientation"
    )
    assert lines[1].startswith("s0c0,POINT,16:16:03.7920000,-60.54.25.920000,1.25,[-0.7,0.05],")
    sky = read_skymodel(path)
    assert sky.names == ("s0c0", "s0c1", "s0c2", "s0c3")
    assert sky.log_si is False
    assert not sky.is_gaussian.any()
    np.testing.assert_array_equal(sky.ref_freq, 1.284e9)
    np.testing.assert_array_equal(sky.stokes[:, 0], [1.25, 3e-4, -0.02, 0.1234567890123])
    np.testing.assert_array_equal(sky.stokes[:, 1:], 0)
    terms = [[-0.7, 0.05, 0], [0, 0, 0], [0.1, 0, 0], [1.0, -2.0, 3.0]]
    np.testing.assert_array_equal(sky.spectral_coeffs, terms)
    truth = SkyCoord([c[0] for c in components], [c[1] for c in components], unit="rad")
    separation = SkyCoord(sky.ra, sky.dec, unit="rad").separation(truth).to_value("arcsec")
    assert separation.max() < 1e-6
    # WSClean's ordinary polynomial: I(ν) = I₀ + c₀ (ν/ν₀ - 1) + c₁ (ν/ν₀ - 1)² + ...
    x = 1.5e9 / 1.284e9 - 1
    assert sky.flux(1.5e9)[0, 0, 0] == pytest.approx(1.25 - 0.7 * x + 0.05 * x**2, rel=1e-14)


def test_components_of_model_pixels_land_on_their_pixels(tmp_path):
    shape, i, j = (64, 80), np.array([40, 0, 79, 13]), np.array([32, 63, 0, 5])
    ra, dec = pixel_to_radec(i, j, ra0=RA0, dec0=DEC0, cell_rad=CELL, shape=shape)
    components = [Component(r, d, 1.0) for r, d in zip(ra, dec, strict=True)]
    sky = read_skymodel(write_components(tmp_path / "m.txt", components, ref_freq=1e9))
    lm = sky.lm(RA0, DEC0)
    np.testing.assert_allclose(lm[:, 0] / CELL, -(i - 40), rtol=0, atol=1e-5)
    np.testing.assert_allclose(lm[:, 1] / CELL, j - 32, rtol=0, atol=1e-5)


def test_component_list_rejects_bad_components(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("old\n")
    with pytest.raises(OptionError, match="component 1"):
        write_components(path, [(0.0, 0.0, 1.0), (0.0, 0.0, math.nan)], ref_freq=1e9)
    with pytest.raises(OptionError, match="reference frequency"):
        write_components(path, [], ref_freq=0.0)
    assert path.read_text() == "old\n"


# --- atomic writes ------------------------------------------------------------------------------


def _fail_half_way(self, stream, **kwargs):
    stream.write(b"SIMPLE  =                    T" + b" " * 50)  # the start of a valid FITS
    raise RuntimeError("interrupted")


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(fits.PrimaryHDU, "writeto", _fail_half_way)
    with pytest.raises(RuntimeError, match="interrupted"):
        write(tmp_path / "image.fits", np.ones((1, 8, 8)))
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_replaced_only_when_complete(tmp_path, monkeypatch):
    path = write(tmp_path / "image.fits", np.ones((1, 8, 8)))
    with monkeypatch.context() as patch:
        patch.setattr(fits.PrimaryHDU, "writeto", _fail_half_way)
        with pytest.raises(RuntimeError):
            write(path, np.full((1, 8, 8), 2.0))
    assert fits.getdata(path).max() == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.fits"]
    write(path, np.full((1, 8, 8), 2.0))
    assert fits.getdata(path).min() == 2.0


def test_unwritable_location_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputNotWritableError, match="cannot write"):
        write(blocker / "image.fits", np.ones((1, 8, 8)))
