"""Degridding FITS model images: against the DFT kernel, offsets, cubes, dask == numpy, FITS I/O."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from radiocloud.core.errors import SkyModelError
from radiocloud.core.fitsmodel import ImageModel, read_fits_model, write_fits_model
from radiocloud.core.kernels.dft import brightness, predict_vis

pytest.importorskip("ducc0")  # rc-predict's and rc-image's dependency, not core's

from radiocloud.core.kernels.degrid import dask as degrid_dask
from radiocloud.core.kernels.degrid import degrid_vis

ARCMIN = math.pi / 180 / 60
PHASE_CENTRE = (math.radians(201.365), math.radians(-43.019))
LINEAR = ("XX", "XY", "YX", "YY")
CIRCULAR = ("RR", "RL", "LR", "LL")
NY, NX = 40, 51  # odd width: the degridder pads to ducc0's even sizes
REF_Y, REF_X = 17.0, 30.0  # 0-based reference pixel, off the image centre
CELL_L, CELL_M = -1.5 * ARCMIN, 1.2 * ARCMIN  # FITS orientation: RA grows to the left
# Non-zero pixels (j, i): the reference, and off-centre ones with both signs of l and m, out to
# ~0.5 degrees so that the w-term matters on 8 km baselines.
PIXELS = [(17, 30), (3, 2), (39, 50), (0, 45), (33, 9), (20, 29)]


def make_model(freqs=(1.284e9,), ra0=PHASE_CENTRE[0], dec0=PHASE_CENTRE[1], seed=0) -> ImageModel:
    rng = np.random.default_rng(seed)
    image = np.zeros((len(freqs), 4, NY, NX))
    for j, i in PIXELS:
        image[:, :, j, i] = rng.normal(size=(len(freqs), 4)) * [1.0, 0.2, 0.2, 0.1]
    return ImageModel(image, freqs, ra0, dec0, CELL_L, CELL_M, REF_X, REF_Y)


def observation(nrow=2000, nchan=16, seed=1):
    """Random uvw with |uvw| up to 8 km (w included) and L-band channels."""
    uvw = np.random.default_rng(seed).uniform(-4600.0, 4600.0, size=(nrow, 3))
    return uvw, np.linspace(0.856e9, 1.712e9, nchan)


def sin_lm(ra, dec, centre):
    """SIN projection (l East, m North) of (ra, dec) about centre, written out independently."""
    dra = ra - centre[0]
    l_ = np.cos(dec) * np.sin(dra)
    m_ = np.sin(dec) * np.cos(centre[1]) - np.cos(dec) * np.sin(centre[1]) * np.cos(dra)
    return l_, m_


def reference(uvw, freq, model, corrs, centre=PHASE_CENTRE):
    """The DFT kernel over the non-zero pixels as points at l0 + (i - ref) cell, fluxes
    interpolated linearly in frequency between planes (nearest plane outside)."""
    l0, m0 = sin_lm(model.ra0, model.dec0, centre)
    lm = np.array([(l0 + (i - REF_X) * CELL_L, m0 + (j - REF_Y) * CELL_M) for j, i in PIXELS])
    stokes = np.array(
        [
            [np.interp(freq, model.freqs, model.image[:, s, j, i]) for s in range(4)]
            for j, i in PIXELS
        ]
    )  # (source, stokes, chan)
    coherency = brightness(stokes.transpose(0, 2, 1), corrs)
    return predict_vis(uvw, lm, np.zeros((len(PIXELS), 3)), freq, coherency)


def assert_within(actual, expected, tol):
    error = np.max(np.abs(actual - expected)) / np.max(np.abs(expected))
    assert error <= tol, f"max error {error:.2e} of max |V| exceeds {tol:.0e}"


@pytest.mark.parametrize(("epsilon", "dtype"), [(1e-4, np.complex64), (1e-7, np.complex128)])
@pytest.mark.parametrize("corrs", [LINEAR, CIRCULAR, ("XX", "YY")])
def test_matches_dft_of_pixels(epsilon, dtype, corrs):
    uvw, freq = observation()
    model = make_model()
    vis = degrid_vis(
        uvw, freq, model, phase_centre=PHASE_CENTRE, corr_names=corrs, epsilon=epsilon, dtype=dtype
    )
    assert vis.shape == (len(uvw), len(freq), len(corrs))
    assert vis.dtype == dtype
    assert_within(vis, reference(uvw, freq, model, corrs), 10 * epsilon)


@pytest.mark.parametrize("offset", [(7.0, 4.0), (-3.0, -9.0)])
def test_reference_offset_from_phase_centre(offset):
    """CRVAL several arcmin from the phase centre: the reference pixel lands at its SIN (l0, m0)."""
    ra0 = PHASE_CENTRE[0] + offset[0] * ARCMIN / math.cos(PHASE_CENTRE[1])
    model = make_model(ra0=ra0, dec0=PHASE_CENTRE[1] + offset[1] * ARCMIN)
    uvw, freq = observation()
    for epsilon in (1e-4, 1e-7):
        vis = degrid_vis(
            uvw, freq, model, phase_centre=PHASE_CENTRE, corr_names=LINEAR,
            epsilon=epsilon, dtype=np.complex128,
        )  # fmt: skip
        assert_within(vis, reference(uvw, freq, model, LINEAR), 10 * epsilon)


def test_cube_interpolates_between_planes():
    """Three planes inside a wider band: linear between planes, flat beyond the end planes."""
    model = make_model(freqs=(1.0e9, 1.25e9, 1.55e9))
    uvw, freq = observation(nchan=24)
    assert freq[0] < model.freqs[0] < model.freqs[-1] < freq[-1]
    vis = degrid_vis(uvw, freq, model, phase_centre=PHASE_CENTRE, corr_names=CIRCULAR, epsilon=1e-6)
    assert_within(vis, reference(uvw, freq, model, CIRCULAR), 1e-5)
    weights = model.spectral_weights([0.9e9, 1.0e9, 1.125e9, 1.4e9, 2.0e9])
    expected = [[1, 1, 0.5, 0, 0], [0, 0, 0.5, 0.5, 0], [0, 0, 0, 0.5, 1]]
    np.testing.assert_allclose(weights, expected, atol=1e-12)


def test_source_at_phase_centre_gives_flat_visibilities():
    image = np.zeros((1, 4, 32, 32))
    image[0, :, 16, 16] = [2.0, 0.3, -0.4, 0.1]
    model = ImageModel(image, [1.4e9], *PHASE_CENTRE, -ARCMIN, ARCMIN, 16, 16)
    uvw, freq = observation(nrow=200)
    vis = degrid_vis(uvw, freq, model, phase_centre=PHASE_CENTRE, corr_names=LINEAR, epsilon=1e-7)
    expected = brightness(np.array([2.0, 0.3, -0.4, 0.1]), LINEAR)
    np.testing.assert_allclose(vis, np.broadcast_to(expected, vis.shape), atol=1e-6)


def test_stokes_not_needed_or_absent_give_zeros():
    image = np.zeros((1, 1, NY, NX))
    image[0, 0, 5, 5] = 1.0
    model = ImageModel(image, [1.4e9], *PHASE_CENTRE, CELL_L, CELL_M, REF_X, REF_Y, stokes=("V",))
    uvw, freq = observation(nrow=50, nchan=4)
    vis = degrid_vis(uvw, freq, model, phase_centre=PHASE_CENTRE, corr_names=("XX", "YY"))
    assert vis.shape == (50, 4, 2)
    assert not np.any(vis)


def test_bad_arguments():
    model = make_model()
    uvw, freq = observation(nrow=10, nchan=2)
    with pytest.raises(ValueError, match="unknown correlations"):
        degrid_vis(uvw, freq, model, phase_centre=PHASE_CENTRE, corr_names=("QQ",))
    with pytest.raises(ValueError, match="epsilon"):
        degrid_vis(uvw, freq, model, phase_centre=PHASE_CENTRE, corr_names=LINEAR, epsilon=0.5)
    with pytest.raises(ValueError, match="uvw"):
        degrid_vis(uvw[:, :2], freq, model, phase_centre=PHASE_CENTRE, corr_names=LINEAR)


def test_dask_matches_numpy():
    model = make_model(freqs=(1.0e9, 1.25e9, 1.55e9))
    uvw, freq = observation(nrow=3000, nchan=16)
    expected = degrid_vis(
        uvw, freq, model, phase_centre=PHASE_CENTRE, corr_names=LINEAR, epsilon=1e-6
    )
    lazy = degrid_dask.degrid_vis(
        da.from_array(uvw, chunks=(1000, 3)), da.from_array(freq, chunks=5),
        model, phase_centre=PHASE_CENTRE, corr_names=LINEAR, epsilon=1e-6,
    )  # fmt: skip
    assert lazy.chunks == ((1000,) * 3, (5, 5, 5, 1), (4,))
    assert lazy.dtype == np.complex64
    # ducc0 sizes its grid from each block's uvw, so blocks agree to epsilon, not bit for bit.
    assert_within(lazy.compute(scheduler="threads"), expected, 1e-5)


# --- FITS -----------------------------------------------------------------------------------


def wsclean_hdu(nplane=1, **cards) -> fits.PrimaryHDU:
    """A model image as WSClean writes it: 4 axes RA, Dec, FREQ, STOKES, float32 data."""
    data = np.zeros((1, nplane, NY, NX), dtype=np.float32)
    for n, (j, i) in enumerate(PIXELS):
        data[0, :, j, i] = 0.5 + n
    header = fits.Header()
    header["BUNIT"] = "JY/PIXEL"
    axes = [
        ("RA---SIN", REF_X + 1, 201.365, math.degrees(CELL_L), "deg"),
        ("DEC--SIN", REF_Y + 1, -43.019, math.degrees(CELL_M), "deg"),
        ("FREQ", 1, 1.284e9, 8.56e8, "Hz"),
        ("STOKES", 1, 1, 1, ""),
    ]
    for k, (ctype, crpix, crval, cdelt, cunit) in enumerate(axes, start=1):
        header.update({f"CTYPE{k}": ctype, f"CRPIX{k}": crpix, f"CRVAL{k}": crval})
        header.update({f"CDELT{k}": cdelt, f"CUNIT{k}": cunit})
    header.update({"EQUINOX": 2000.0, "SPECSYS": "TOPOCENT", "WSCVERSI": "3.4", "ORIGIN": "x"})
    header.update(cards)
    return fits.PrimaryHDU(data=data, header=header)


def test_write_read_round_trip(tmp_path):
    model = make_model(freqs=(1.0e9, 1.2e9, 1.4e9), ra0=3.5, dec0=-0.7)
    path = tmp_path / "cube-model.fits"
    write_fits_model(model, path, dtype=np.float64)
    header = fits.getheader(path)
    assert header["NAXIS"] == 4
    assert header["CDELT1"] < 0
    assert header["BUNIT"] == "JY/PIXEL"
    ctypes = [header[f"CTYPE{k}"] for k in range(1, 5)]
    assert ctypes == ["RA---SIN", "DEC--SIN", "FREQ", "STOKES"]
    back = read_fits_model(path)
    np.testing.assert_array_equal(back.image, model.image)
    np.testing.assert_allclose(back.freqs, model.freqs, rtol=1e-12)
    for name in ("ra0", "dec0", "cell_l", "cell_m", "ref_x", "ref_y"):
        assert getattr(back, name) == pytest.approx(getattr(model, name), rel=1e-12, abs=1e-14)
    assert back.stokes == ("I", "Q", "U", "V")


def test_wsclean_header_pixels_predict_at_their_sky_positions(tmp_path):
    """End to end against astropy's WCS: each pixel is predicted at its RA/Dec (CRVAL = phase
    centre), which pins the l orientation of CDELT1 < 0 independently of our own geometry."""
    path = tmp_path / "wsclean-model.fits"
    wsclean_hdu().writeto(path)
    model = read_fits_model(path)
    assert model.image.shape == (1, 1, NY, NX)
    assert model.stokes == ("I",)
    assert model.freqs.tolist() == [1.284e9]
    assert model.cell_l < 0
    centre = (model.ra0, model.dec0)
    j, i = np.nonzero(fits.getdata(path)[0, 0])
    ra, dec, _, _ = WCS(fits.getheader(path)).wcs_pix2world(i, j, 0, 0, 0)
    l_sky, m_sky = sin_lm(np.radians(ra), np.radians(dec), centre)
    l_px, m_px = model.pixel_lm(centre)
    np.testing.assert_allclose(l_px[i], l_sky, atol=1e-13)
    np.testing.assert_allclose(m_px[j], m_sky, atol=1e-13)
    assert l_px[int(REF_X) + 1] < 0  # one pixel right of the reference: West, smaller RA
    uvw, freq = observation(nrow=500, nchan=4)
    vis = degrid_vis(uvw, freq, model, phase_centre=centre, corr_names=("XX",), epsilon=1e-7)
    flux = fits.getdata(path)[0, 0, j, i].astype(np.float64)
    coherency = np.broadcast_to(flux[:, None, None], (len(flux), len(freq), 1))
    lm = np.stack([l_sky, m_sky], axis=-1)
    expected = predict_vis(uvw, lm, np.zeros((len(flux), 3)), freq, coherency)
    assert_within(vis, expected, 1e-6)


def test_axes_in_another_order(tmp_path):
    """CASA's order (RA, Dec, STOKES, FREQ), a descending FREQ axis, Stokes I and V only."""
    hdu = wsclean_hdu(nplane=1)
    data = np.zeros((3, 2, NY, NX), dtype=np.float32)  # (freq, stokes, y, x)
    data[:, 0, 4, 7] = [3.0, 2.0, 1.0]
    data[:, 1, 4, 7] = [0.3, 0.2, 0.1]
    hdu.header.update({"CTYPE3": "STOKES", "CRVAL3": 1, "CDELT3": 3, "CRPIX3": 1, "CUNIT3": ""})
    hdu.header.update({"CTYPE4": "FREQ", "CRVAL4": 1.5, "CDELT4": -0.25, "CRPIX4": 1})
    hdu.header["CUNIT4"] = "GHz"
    path = tmp_path / "casa.fits"
    fits.PrimaryHDU(data=data, header=hdu.header).writeto(path)
    model = read_fits_model(path)
    assert model.stokes == ("I", "V")
    np.testing.assert_allclose(model.freqs, [1.0e9, 1.25e9, 1.5e9])
    np.testing.assert_allclose(model.image[:, :, 4, 7], [[1.0, 0.1], [2.0, 0.2], [3.0, 0.3]])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN"}, "projection TAN .* regrid it to SIN"),
        ({"CTYPE3": "VRAD", "CUNIT3": "m/s", "CRVAL3": 0.0}, "no FREQ axis.*; add one"),
        ({"CUNIT3": "deg"}, "cannot read its WCS .*; check its CTYPE"),
        ({"BUNIT": "JY/BEAM"}, "restored or residual image; predict from the model image"),
        ({"PC1_2": 0.01, "PC2_1": -0.01}, "rotated"),
        ({"CRVAL4": -5}, r"correlation planes \(XX\)"),
        ({"CTYPE1": "GLON-SIN", "CTYPE2": "GLAT-SIN"}, "no RA/Dec axes"),
    ],
)
def test_bad_headers_raise_skymodel_error(tmp_path, change, message):
    path = tmp_path / "bad.fits"
    wsclean_hdu(**change).writeto(path)
    with pytest.raises(SkyModelError, match=f"^{path}: .*{message}"):
        read_fits_model(path)


def test_missing_freq_axis_and_nan_pixels(tmp_path):
    hdu = wsclean_hdu()
    three_axes = fits.Header(
        [card for card in hdu.header.cards if not card.keyword.endswith("4")]
    )  # RA, Dec, STOKES moved to axis 3: no FREQ at all
    three_axes.update({"CTYPE3": "STOKES", "CRVAL3": 1, "CDELT3": 1, "CRPIX3": 1, "CUNIT3": ""})
    path = tmp_path / "nofreq.fits"
    fits.PrimaryHDU(data=hdu.data[0], header=three_axes).writeto(path)
    with pytest.raises(SkyModelError, match="no FREQ axis"):
        read_fits_model(path)
    hdu = wsclean_hdu()
    hdu.data[0, 0, 3, 3] = np.nan
    path = tmp_path / "nan.fits"
    hdu.writeto(path)
    with pytest.raises(SkyModelError, match=f"^{path}: 1 pixels are NaN .*; set them to 0"):
        read_fits_model(path)
    (tmp_path / "junk.fits").write_text("not a FITS file")
    with pytest.raises(SkyModelError, match="cannot read the FITS image"):
        read_fits_model(tmp_path / "junk.fits")
