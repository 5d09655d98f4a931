"""WSClean component lists: parsing vs hand-computed truth, spectra, lm, round trips, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import Angle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radiocloud.core.errors import BadInputError, SkyModelError
from radiocloud.core.skymodel import SkyModel, read_skymodel, write_skymodel

ARCSEC = math.pi / 648000
HEADER = (
    "Format = Name, Type, Ra, Dec, I, SpectralIndex, LogarithmicSI, "
    "ReferenceFrequency='125584411.621094', MajorAxis, MinorAxis, Orientation"
)
S0C0 = (
    "s0c0,POINT,08:28:05.152,39.35.08.511,0.000748810650400475,"
    "[-0.00695379313004673,-0.0134075078315267],false,125584411.621094,,,"
)
S1C1 = "s1c1,GAUSSIAN,16:15:03.8,-60.54.26.0,2.5,[-0.7],true,1.4e9,30.0,10.0,45.0"


def _write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "model.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _model(**overrides) -> SkyModel:
    fields = dict(
        names=("a",), is_gaussian=[False], ra=[1.0], dec=[-0.5], stokes=[[2.0, 0.2, -0.1, 0.05]],
        spectral_coeffs=[[-0.7]], log_si=True, ref_freq=[1.4e9], shape=[[0.0, 0.0, 0.0]],
    )  # fmt: skip
    return SkyModel(**(fields | overrides))


# --- parsing against hand-computed truth -------------------------------------------------------


def test_wsclean_example_point(tmp_path):
    model = read_skymodel(_write(tmp_path, HEADER, S0C0))
    assert len(model) == 1
    assert model.names == ("s0c0",)
    assert not model.is_gaussian[0]
    assert model.kind.tolist() == ["POINT"]
    # 08:28:05.152 = 8h + 28m + 5.152s = 30485.152 s of time = 127.0214666...°
    ra_truth = (8 + 28 / 60 + 5.152 / 3600) * 15 * math.pi / 180
    assert model.ra[0] == pytest.approx(ra_truth, rel=1e-15, abs=0)
    assert model.ra[0] == pytest.approx(math.radians(127.02146666666667), rel=1e-14)
    assert model.ra[0] == pytest.approx(Angle("08h28m05.152s").rad, rel=1e-15)
    # 39.35.08.511 = 39° 35' 8.511" = 39.5856975°
    dec_truth = math.radians(39 + 35 / 60 + 8.511 / 3600)
    assert model.dec[0] == pytest.approx(dec_truth, rel=1e-15)
    assert model.dec[0] == pytest.approx(math.radians(39.5856975), rel=1e-14)
    np.testing.assert_array_equal(model.stokes, [[0.000748810650400475, 0, 0, 0]])
    np.testing.assert_array_equal(
        model.spectral_coeffs, [[-0.00695379313004673, -0.0134075078315267]]
    )
    assert model.log_si is False
    np.testing.assert_array_equal(model.ref_freq, [125584411.621094])
    np.testing.assert_array_equal(model.shape, [[0, 0, 0]])


def test_wsclean_example_gaussian(tmp_path):
    model = read_skymodel(_write(tmp_path, HEADER, S1C1))
    assert model.is_gaussian.tolist() == [True]
    assert model.log_si is True
    assert model.ra[0] == pytest.approx(math.radians((16 + 15 / 60 + 3.8 / 3600) * 15), rel=1e-15)
    assert model.dec[0] == pytest.approx(-math.radians(60 + 54 / 60 + 26 / 3600), rel=1e-15)
    assert model.dec[0] == pytest.approx(Angle("-60d54m26s").rad, rel=1e-15)
    np.testing.assert_allclose(model.shape[0], [30 * ARCSEC, 10 * ARCSEC, math.pi / 4], rtol=1e-15)
    np.testing.assert_array_equal(model.ref_freq, [1.4e9])


@pytest.mark.parametrize(
    ("dec", "degrees"),
    [
        ("-00.30.00", -0.5),
        ("-00:30:00", -0.5),
        ("-0.0.36", -0.01),
        ("+12.30.00", 12.5),
        ("12:30:00.0", 12.5),
        ("-90.00.00", -90.0),
    ],
)
def test_declination_forms_keep_their_sign(tmp_path, dec, degrees):
    line = f"c,POINT,00:00:00,{dec},1.0,[],true,1e9,,,"
    model = read_skymodel(_write(tmp_path, HEADER, line))
    assert model.dec[0] == pytest.approx(math.radians(degrees), rel=1e-15)
    assert math.copysign(1.0, model.dec[0]) == math.copysign(1.0, degrees)


def test_columns_in_any_order_defaults_and_optional_stokes(tmp_path):
    path = _write(
        tmp_path,
        "# a comment before the header",
        "format = Type, Dec, Ra, Name, I, Q, U, V, ReferenceFrequency='1e9', "
        "SpectralIndex='[-0.8]', LogarithmicSI='true', MajorAxis, MinorAxis, Orientation",
        "",
        "POINT, -10.00.00, 01:00:00, p1, 1.5, 0.1, , -0.2, , , , , ,",
        "# comment between components",
        "GAUSSIAN, 10:00:00, 02:00:00, g1, 3.0, , , , 2e9, [0.1,0.2], true, 6.0, 3.0, -30",
    )
    model = read_skymodel(path)
    assert model.names == ("p1", "g1")
    np.testing.assert_allclose(model.ra, [math.pi / 12, math.pi / 6], rtol=1e-15)
    np.testing.assert_allclose(model.dec, np.radians([-10.0, 10.0]), rtol=1e-15)
    np.testing.assert_array_equal(model.stokes, [[1.5, 0.1, 0.0, -0.2], [3.0, 0, 0, 0]])
    np.testing.assert_array_equal(model.ref_freq, [1e9, 2e9])
    np.testing.assert_array_equal(model.spectral_coeffs, [[-0.8, 0.0], [0.1, 0.2]])
    np.testing.assert_allclose(model.shape[1], [6 * ARCSEC, 3 * ARCSEC, math.radians(-30)])


def test_dp3_style_header_and_patch_lines(tmp_path):
    path = _write(
        tmp_path,
        "# (Name, Type, Patch, Ra, Dec, I, Q, U, V, ReferenceFrequency='74e6', "
        "SpectralIndex='[]', MajorAxis, MinorAxis, Orientation) = format",
        ", , 3C53, 01:53:23.9, -03.33.58.94",
        "3C53p, POINT, 3C53, 01:53:23.90, -03.33.58.94, 10.167013,0.0, 0.0,0.0, 150.e6, "
        "[-0.760371, -0.318728] , , , ",
    )
    model = read_skymodel(path)
    assert model.names == ("3C53p",)
    assert model.log_si is True  # LogarithmicSI absent means logarithmic
    np.testing.assert_array_equal(model.ref_freq, [150e6])
    assert model.dec[0] == pytest.approx(-math.radians(3 + 33 / 60 + 58.94 / 3600), rel=1e-15)


def test_header_only_gives_empty_model(tmp_path):
    model = read_skymodel(_write(tmp_path, HEADER))
    assert len(model) == 0
    assert model.stokes.shape == (0, 4)
    assert model.flux([1e9]).shape == (0, 1, 4)


# --- spectra ----------------------------------------------------------------------------------


def test_logarithmic_spectrum():
    model = _model(stokes=[[2.5, 0.0, 0.0, 0.0]], spectral_coeffs=[[-0.7, -0.1]])
    flux = model.flux([1.4e9, 14e9, 0.14e9])[0, :, 0]
    # x = 1: I0; x = 10: log10 x = 1 -> 2.5·10^(-0.7 - 0.1); x = 0.1: 2.5·0.1^(-0.7 + 0.1)
    np.testing.assert_allclose(flux, [2.5, 2.5 * 10**-0.8, 2.5 * 10**0.6], rtol=1e-14)
    simple = _model(stokes=[[2.5, 0, 0, 0]], spectral_coeffs=[[-0.7]]).flux(2.8e9)
    assert simple[0, 0, 0] == pytest.approx(2.5 * 2**-0.7, rel=1e-14)


def test_ordinary_polynomial_spectrum(tmp_path):
    model = read_skymodel(_write(tmp_path, HEADER, S0C0))
    i0, c0, c1 = 0.000748810650400475, -0.00695379313004673, -0.0134075078315267
    nu0 = 125584411.621094
    flux = model.flux(np.array([nu0, 2 * nu0, 0.5 * nu0, 1.5 * nu0]))[0, :, 0]
    truth = [i0, i0 + c0 + c1, i0 - 0.5 * c0 + 0.25 * c1, i0 + 0.5 * c0 + 0.25 * c1]
    np.testing.assert_allclose(flux, truth, rtol=1e-13)


def test_polarisation_follows_the_shape_of_stokes_i():
    log = _model().flux([2.8e9])[0, 0]
    np.testing.assert_allclose(log, np.array([2.0, 0.2, -0.1, 0.05]) * 2**-0.7, rtol=1e-14)
    ordinary = _model(stokes=[[1.0, 0.1, 0.0, -0.2]], spectral_coeffs=[[0.5]], log_si=False)
    # x - 1 = 1: I = 1 + 0.5 = 1.5, so every Stokes parameter scales by 1.5
    np.testing.assert_allclose(ordinary.flux([2.8e9])[0, 0], [1.5, 0.15, 0.0, -0.3], rtol=1e-14)


def test_flat_spectrum_without_terms():
    model = _model(spectral_coeffs=np.zeros((1, 0)))
    np.testing.assert_array_equal(model.flux([1e8, 1e10])[0], [[2.0, 0.2, -0.1, 0.05]] * 2)


# --- lm ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dec0_deg", [-89.0, -30.0, 0.0, 45.0, 88.0])
def test_lm_at_phase_centre_and_one_degree_north(dec0_deg):
    ra0, dec0 = 1.2, math.radians(dec0_deg)
    model = _model(names=("c", "n"), is_gaussian=[False, False], ra=[ra0, ra0],
                   dec=[dec0, dec0 + math.radians(1.0)], stokes=[[1, 0, 0, 0]] * 2,
                   spectral_coeffs=np.zeros((2, 0)), ref_freq=[1e9] * 2,
                   shape=np.zeros((2, 3)))  # fmt: skip
    lm = model.lm(ra0, dec0)
    np.testing.assert_allclose(lm[0], [0.0, 0.0], atol=1e-16)
    assert lm[1, 0] == pytest.approx(0.0, abs=1e-16)
    assert lm[1, 1] == pytest.approx(math.sin(math.radians(1.0)), rel=1e-13)


def test_lm_east_is_positive_l():
    model = _model(ra=[math.radians(1.0)], dec=[math.radians(-30.0)])
    l_, m_ = model.lm(0.0, math.radians(-30.0))[0]
    assert l_ == pytest.approx(math.cos(math.radians(-30)) * math.sin(math.radians(1)), rel=1e-15)
    truth_m = (
        math.sin(math.radians(-30)) * math.cos(math.radians(-30)) * (1 - math.cos(math.radians(1)))
    )
    assert m_ == pytest.approx(truth_m, rel=1e-12)


# --- select, concat, construction -------------------------------------------------------------


def test_select_and_concat(tmp_path):
    a = read_skymodel(_write(tmp_path, HEADER, S1C1))
    b = _model(names=("b",), spectral_coeffs=[[0.1, 0.2, 0.3]])
    joined = a.concat(b)
    assert joined.names == ("s1c1", "b")
    assert joined.spectral_coeffs.shape == (2, 3)
    np.testing.assert_array_equal(joined.spectral_coeffs[0], [-0.7, 0.0, 0.0])
    picked = joined.select(np.array([False, True]))
    assert picked.names == ("b",)
    np.testing.assert_array_equal(picked.stokes, b.stokes)
    assert joined.select([1, 0]).names == ("b", "s1c1")
    ordinary = read_skymodel(_write(tmp_path, HEADER, S0C0))
    with pytest.raises(SkyModelError, match="LogarithmicSI"):
        a.concat(ordinary)


def test_model_arrays_are_read_only_and_checked():
    model = _model()
    with pytest.raises(ValueError, match="read-only"):
        model.stokes[0, 0] = 1.0
    with pytest.raises(ValueError, match="shape"):
        _model(stokes=[[1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="NaN"):
        _model(ra=[math.nan])
    with pytest.raises(ValueError, match="positive"):
        _model(ref_freq=[0.0])


# --- round trip -------------------------------------------------------------------------------

_finite = {"allow_nan": False, "allow_infinity": False, "allow_subnormal": False}
_ra = st.one_of(
    st.floats(0.0, 2 * math.pi, exclude_max=True, **_finite),
    st.sampled_from([0.0, 1e-15, 2 * math.pi - 1e-13, math.nextafter(2 * math.pi, 0.0)]),
)
_dec = st.one_of(
    st.floats(-math.pi / 2, math.pi / 2, **_finite),
    st.sampled_from([-1e-9, -0.5 * math.pi / 180, -math.pi / 2, math.pi / 2, -0.0]),
)
_flux = st.one_of(st.floats(-1e4, 1e4, **_finite), st.floats(1e-12, 1e-3, **_finite))


@st.composite
def sky_models(draw) -> SkyModel:
    n = draw(st.integers(0, 6))
    ncoeff = draw(st.integers(0, 3))
    gaussian = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    name = st.text("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_+-.:", min_size=1, max_size=12)
    axis = st.floats(0.0, 3600 * ARCSEC, **_finite)
    shape = [
        [draw(axis), draw(axis), draw(st.floats(-math.pi, math.pi, **_finite))] if g else [0.0] * 3
        for g in gaussian
    ]
    polarised = draw(st.booleans())
    stokes = [
        [draw(_flux)] + [draw(_flux) if polarised else 0.0 for _ in range(3)] for _ in gaussian
    ]
    return SkyModel(
        names=tuple(draw(name) for _ in range(n)), is_gaussian=gaussian,
        ra=[draw(_ra) for _ in range(n)], dec=[draw(_dec) for _ in range(n)], stokes=stokes,
        spectral_coeffs=np.array(
            [[draw(st.floats(-5, 5, **_finite)) for _ in range(ncoeff)] for _ in range(n)]
        ).reshape(n, ncoeff),
        log_si=draw(st.booleans()),
        ref_freq=[draw(st.floats(1e6, 1e11, **_finite)) for _ in range(n)],
        shape=shape,
    )  # fmt: skip


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(model=sky_models())
def test_write_read_round_trip(tmp_path, model):
    path = tmp_path / "roundtrip.txt"
    write_skymodel(model, path)
    back = read_skymodel(path)
    if not len(model):  # an empty file keeps neither the spectral kind nor the term count
        assert len(back) == 0
        return
    assert back.names == model.names
    np.testing.assert_array_equal(back.is_gaussian, model.is_gaussian)
    assert back.log_si == model.log_si
    np.testing.assert_allclose(back.stokes, model.stokes, rtol=1e-12, atol=0)
    np.testing.assert_allclose(back.spectral_coeffs, model.spectral_coeffs, rtol=1e-12, atol=0)
    np.testing.assert_allclose(back.ref_freq, model.ref_freq, rtol=1e-12, atol=0)
    np.testing.assert_allclose(back.shape, model.shape, rtol=1e-12, atol=1e-300)
    dra = np.remainder(back.ra - model.ra + math.pi, 2 * math.pi) - math.pi
    assert np.all(np.abs(dra) <= 1e-9 * ARCSEC)
    assert np.all(np.abs(back.dec - model.dec) <= 1e-9 * ARCSEC)
    assert np.all(np.sign(back.dec) * np.sign(model.dec) >= 0)
    assert np.all((back.ra >= 0) & (back.ra < 2 * math.pi))
    write_skymodel(back, path)  # a second cycle is bit-exact
    again = read_skymodel(path)
    for field in ("ra", "dec", "stokes", "spectral_coeffs", "ref_freq"):
        np.testing.assert_array_equal(getattr(again, field), getattr(back, field))


def test_written_file_looks_like_wsclean(tmp_path):
    path = tmp_path / "out.txt"
    write_skymodel(
        read_skymodel(_write(tmp_path, HEADER, S0C0, S1C1.replace("true", "false"))), path
    )
    lines = path.read_text().splitlines()
    assert lines[0] == (
        "Format = Name, Type, Ra, Dec, I, SpectralIndex, LogarithmicSI, ReferenceFrequency, "
        "MajorAxis, MinorAxis, Orientation"
    )
    assert lines[1].startswith("s0c0,POINT,08:28:05.152,39.35.08.511,")
    assert lines[1].endswith(",false,125584411.621094,,,")
    assert lines[2].startswith("s1c1,GAUSSIAN,16:15:03.8,-60.54.26.0,2.5,")


def test_read_write_read_is_exact(tmp_path):
    first = read_skymodel(_write(tmp_path, HEADER, S0C0, S0C0.replace("s0c0", "x")))
    path = tmp_path / "again.txt"
    write_skymodel(first, path)
    second = read_skymodel(path)
    for field in ("ra", "dec", "stokes", "spectral_coeffs", "ref_freq", "shape"):
        np.testing.assert_array_equal(getattr(second, field), getattr(first, field))


def test_flux_needs_positive_frequencies():
    with pytest.raises(ValueError, match="positive"):
        _model().flux([0.0, 1e9])


def test_writer_refuses_unwritable_names(tmp_path):
    with pytest.raises(ValueError, match="name"):
        write_skymodel(_model(names=("a,b",)), tmp_path / "bad.txt")


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "line_number", "words"),
    [
        ([S0C0], 1, "Format"),
        (["# comment", "", S0C0], 3, "Format"),
        ([HEADER, S0C0, S1C1.replace("GAUSSIAN", "SHAPELET")], 3, "SHAPELET"),
        ([HEADER, S0C0.replace("0.000748810650400475", "0.0007x")], 2, "0.0007x"),
        ([HEADER, S1C1.replace("[-0.7]", "[-0.7,abc]")], 2, "abc"),
        ([HEADER, S1C1.replace("2.5", "nan")], 2, "nan"),
        ([HEADER, S0C0, S0C0 + ","], 3, "12 fields for 11 columns"),
        ([HEADER, S1C1.rsplit(",", 1)[0]], 2, "10 fields for 11 columns"),
        ([HEADER, S0C0, S1C1], 3, "line 2"),
        ([HEADER, S1C1, "# c", S0C0], 4, "LogarithmicSI is false here but true"),
        ([HEADER, S1C1.replace("16:15:03.8", "16.15.03.8")], 2, "Ra"),
        ([HEADER, S1C1.replace("16:15:03.8", "25:00:00")], 2, "out of range"),
        ([HEADER, S1C1.replace("-60.54.26.0", "-91.00.00")], 2, "out of range"),
        ([HEADER, S1C1.replace("-60.54.26.0", "-60.61.00")], 2, "out of range"),
        ([HEADER, S1C1.replace("-60.54.26.0", "minus sixty")], 2, "Dec"),
        ([HEADER, S1C1.replace(",true,", ",maybe,")], 2, "LogarithmicSI"),
        ([HEADER.replace("='125584411.621094'", ""), S1C1.replace(",1.4e9,", ",,")], 2, "empty"),
        ([HEADER, S1C1.replace(",30.0,", ",-30.0,")], 2, "negative"),
        ([HEADER.replace("Dec, ", ""), S1C1], 1, "no Dec column"),
        ([HEADER + ", Ra", S1C1], 1, "twice"),
        ([HEADER + ", RotationMeasure", S1C1 + ",3.5"], 2, "RotationMeasure"),
    ],
)
def test_errors_name_file_and_line(tmp_path, lines, line_number, words):
    path = _write(tmp_path, *lines)
    with pytest.raises(SkyModelError) as info:
        read_skymodel(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line_number}: "), message
    assert words in message
    assert "; " in message  # what went wrong; how to fix it
    assert "\n" not in message
    assert isinstance(info.value, BadInputError)


def test_missing_file_is_a_sky_model_error(tmp_path):
    with pytest.raises(SkyModelError, match=r"nothere\.txt"):
        read_skymodel(tmp_path / "nothere.txt")
