"""rc-predict against analytic truth, the simulator's truth and its own inverse."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import dask
import numpy as np
import pytest
from casacore.tables import table

from radiocloud.core.kernels.dft import brightness, predict_vis
from radiocloud.core.skymodel import SkyModel, read_skymodel, write_skymodel

from .conftest import predict, simulate

C = 299_792_458.0


def col(ms, name, sub=None):
    t = table(f"{ms}::{sub}" if sub else str(ms), ack=False)
    try:
        return t.getcol(name) if name in t.colnames() else None
    finally:
        t.close()


def one_component(path, ra, dec, *, i=1.0, q=0.0, u=0.0, v=0.0, si=-0.7, shape=(0, 0, 0)):
    gauss = shape[0] > 0
    write_skymodel(
        SkyModel(
            names=("c",), is_gaussian=[gauss], ra=[ra], dec=[dec], stokes=[[i, q, u, v]],
            spectral_coeffs=[[si]], log_si=True, ref_freq=[1.284e9], shape=[shape],
        ),
        path,
    )  # fmt: skip
    return path


def test_point_at_phase_centre_is_its_flux_in_every_correlation(ms_copy, tmp_path):
    ra, dec = col(ms_copy, "PHASE_DIR", "FIELD")[0, 0]
    sky = one_component(tmp_path / "p.txt", ra, dec, i=2.0, q=0.5, u=-0.3, v=0.1)
    assert predict(ms_copy, "--model", sky) == 0
    freq = col(ms_copy, "CHAN_FREQ", "SPECTRAL_WINDOW")[0]
    s = (freq / 1.284e9) ** -0.7
    expected = np.stack([2.5 * s, (-0.3 + 0.1j) * s, (-0.3 - 0.1j) * s, 1.5 * s], axis=-1)
    got = col(ms_copy, "MODEL_DATA")
    np.testing.assert_allclose(got, np.broadcast_to(expected, got.shape), rtol=1e-6)


def test_gaussian_at_phase_centre_matches_its_analytic_fourier_transform(ms_copy, tmp_path):
    ra, dec = col(ms_copy, "PHASE_DIR", "FIELD")[0, 0]
    arcsec = np.pi / 180 / 3600
    major, minor, pa = 40 * arcsec, 15 * arcsec, np.radians(30.0)
    sky = one_component(tmp_path / "g.txt", ra, dec, i=3.0, si=0.0, shape=(major, minor, pa))
    assert predict(ms_copy, "--model", sky) == 0
    uvw = col(ms_copy, "UVW")
    lam = C / col(ms_copy, "CHAN_FREQ", "SPECTRAL_WINDOW")[0]
    u, v = uvw[:, 0:1] / lam, uvw[:, 1:2] / lam
    # major axis along position angle pa (North through East): (l, m) = (sin pa, cos pa)
    along = u * np.sin(pa) + v * np.cos(pa)
    across = u * np.cos(pa) - v * np.sin(pa)
    expected = 3.0 * np.exp(-(np.pi**2) * (major**2 * along**2 + minor**2 * across**2)
                            / (4 * np.log(2)))  # fmt: skip
    got = col(ms_copy, "MODEL_DATA")
    np.testing.assert_allclose(got[..., 0].real, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(got[..., 0].imag).max() < 1e-6
    assert expected.min() < 0.5  # the source is resolved on the longer baselines


def test_eso137_truth_predicts_the_simulators_model_in_any_chunking(ms_copy):
    sky = ms_copy.with_name("copy.truth") / "skymodel.txt"
    # 256 kB: the plan splits channels and rows into many small blocks
    assert predict(ms_copy, "--model", sky, "--output-column", "PRED",
                   "--memory-budget", "256kB") == 0  # fmt: skip
    truth, got = col(ms_copy, "MODEL_DATA"), col(ms_copy, "PRED")
    np.testing.assert_allclose(got, truth, rtol=0, atol=1e-5 * np.abs(truth).max())


def test_add_then_subtract_restores_the_column(ms_copy, tmp_path):
    before = col(ms_copy, "MODEL_DATA")
    sky = ms_copy.with_name("copy.truth") / "skymodel.txt"
    assert predict(ms_copy, "--model", sky, "--mode", "add") == 0
    np.testing.assert_allclose(col(ms_copy, "MODEL_DATA"), 2 * before, rtol=1e-5, atol=1e-6)
    assert predict(ms_copy, "--model", sky, "--mode", "subtract") == 0
    after = col(ms_copy, "MODEL_DATA")
    # complex64 column: (a + m) - m is a to within the rounding of the stored sum
    np.testing.assert_allclose(after, before, rtol=0, atol=4 * np.finfo(np.float32).eps
                               * np.abs(before).max())  # fmt: skip
    assert predict(ms_copy, "--model", sky, "--mode", "subtract", "--output-column", "DATA") == 2


def test_selection_equals_predicting_the_selected_components(ms_copy, tmp_path):
    sky = read_skymodel(ms_copy.with_name("copy.truth") / "skymodel.txt")
    sky_file = ms_copy.with_name("copy.truth") / "skymodel.txt"
    ra, dec = col(ms_copy, "PHASE_DIR", "FIELD")[0, 0]
    # the 5 brightest points within 3 arcmin of the phase centre
    args = ["--within", "3amin", "--points-only", "--brightest", "5"]
    assert predict(ms_copy, "--model", sky_file, "--output-column", "SEL", *args) == 0
    d = np.hypot(*sky.lm(ra, dec).T)
    pick = np.flatnonzero((d < np.radians(3 / 60)) & ~sky.is_gaussian)
    pick = pick[np.argsort(-sky.stokes[pick, 0])][:5]
    write_skymodel(sky.select(np.sort(pick)), tmp_path / "sub.txt")
    assert predict(ms_copy, "--model", tmp_path / "sub.txt", "--output-column", "REF") == 0
    np.testing.assert_allclose(col(ms_copy, "SEL"), col(ms_copy, "REF"), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("bad-line", [], "bad.txt:2"),
        ("far", [], "90 degrees or more from the phase centre"),
        (None, ["--mode", "add", "--output-column", "NOPE"], "does not have"),
        (None, ["--field", "3"], "the dataset has fields 0 to 0"),
        (None, ["--output-column", "DATA"], "would overwrite the observation's own data"),
        (None, ["--within", "3amin", "--brightest", "0"], "Invalid value"),
        ("missing", [], "does not exist"),
    ],
)
def test_bad_input_one_line_and_dataset_untouched(ms_copy, tmp_path, capsys, setup, args, message):
    sky = ms_copy.with_name("copy.truth") / "skymodel.txt"
    if setup == "bad-line":
        sky = tmp_path / "bad.txt"
        sky.write_text("Format = Name, Type, Ra, Dec, I, SpectralIndex, LogarithmicSI, "
                       "ReferenceFrequency, MajorAxis, MinorAxis, Orientation\n"
                       "s0,POINT,16:15:03.8,-60.54.26,lots,[],true,1.4e9,,,\n")  # fmt: skip
    elif setup == "far":
        ra, dec = col(ms_copy, "PHASE_DIR", "FIELD")[0, 0]
        sky = one_component(tmp_path / "far.txt", ra + np.pi, -dec)
    elif setup == "missing":
        sky = tmp_path / "nothing.txt"
    before = {c: col(ms_copy, c) for c in ("DATA", "MODEL_DATA")}
    assert predict(ms_copy, "--model", sky, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in "\n".join(err)
    for c, values in before.items():
        np.testing.assert_array_equal(col(ms_copy, c), values)
    assert col(ms_copy, "PRED") is None


PEAK_RSS = textwrap.dedent(
    """
    import json, resource, subprocess, sys
    subprocess.run(sys.argv[1:], check=True, capture_output=True)
    print(json.dumps(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024))
    """
)


def _peak_rss(*args) -> int:
    exe = [sys.executable, "-m", "radiocloud.predict", *map(str, args)]
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, *exe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_memory_budget_holds_for_20k_components(tmp_path):
    ms = tmp_path / "m.ms"
    assert simulate(ms, "--antennas", "6", "--channels", "128", "--integrations", "40",
                    "--no-rfi", "--noise", "0") == 0  # fmt: skip
    ra, dec = col(ms, "PHASE_DIR", "FIELD")[0, 0]
    rng = np.random.default_rng(1)
    n = 20_000
    big = SkyModel(
        names=tuple(f"s{i}" for i in range(n)), is_gaussian=np.zeros(n, bool),
        ra=ra + rng.normal(0, 0.01, n), dec=dec + rng.normal(0, 0.01, n),
        stokes=np.column_stack([rng.uniform(0.001, 0.1, n), np.zeros((n, 3))]),
        spectral_coeffs=rng.normal(-0.7, 0.1, (n, 1)), log_si=True,
        ref_freq=np.full(n, 1.284e9), shape=np.zeros((n, 3)),
    )  # fmt: skip
    write_skymodel(big, tmp_path / "big.txt")
    budget = 48 * 2**20
    # 20k components x 128 channels x 4 correlations of coherency alone is 82 MB. The base
    # run reads the same model (parsing is outside the budget) and predicts one component.
    base = _peak_rss(ms, "--model", tmp_path / "big.txt", "--brightest", 1,
                     "--memory-budget", budget)  # fmt: skip
    peak = _peak_rss(ms, "--model", tmp_path / "big.txt", "--memory-budget", budget)
    assert peak - base < budget, (peak, base)
    # and the values are right: a few rows against the numpy kernel on the whole model
    rows = slice(0, 600, 97)
    freq = col(ms, "CHAN_FREQ", "SPECTRAL_WINDOW")[0]
    coherency = brightness(big.flux(freq), ("XX", "XY", "YX", "YY"))
    expected = predict_vis(col(ms, "UVW")[rows], big.lm(ra, dec), big.shape, freq, coherency)
    np.testing.assert_allclose(col(ms, "MODEL_DATA")[rows], expected, rtol=0,
                               atol=1e-5 * np.abs(expected).max())  # fmt: skip


def test_fits_model_degridded_agrees_with_the_dft_of_its_pixels(ms_copy, tmp_path):
    from radiocloud.core.fitsmodel import ImageModel, write_fits_model
    from radiocloud.simulate.sky import _offset

    ra0, dec0 = col(ms_copy, "PHASE_DIR", "FIELD")[0, 0]
    arcsec = np.pi / 180 / 3600
    n, cell = 256, 4 * arcsec
    image = np.zeros((1, 1, n, n))
    pixels = [(128, 128, 1.5), (40, 200, 0.7), (230, 20, -0.3), (10, 130, 0.25)]  # (j, i, Jy)
    for j, i, flux in pixels:
        image[0, 0, j, i] = flux
    model = ImageModel(image=image, freqs=[1.284e9], ra0=ra0, dec0=dec0, cell_l=-cell,
                       cell_m=cell, ref_x=128, ref_y=128, stokes=("I",))  # fmt: skip
    write_fits_model(model, tmp_path / "model.fits", dtype=np.float64)
    # the same sky as a component list: each pixel a flat-spectrum point at its (l, m)
    l_pix, m_pix = model.pixel_lm((ra0, dec0))
    l_ = np.array([l_pix[i] for _, i, _ in pixels])
    m_ = np.array([m_pix[j] for j, _, _ in pixels])
    ra, dec = _offset(ra0, dec0, l_, m_)
    k = len(pixels)
    write_skymodel(
        SkyModel(names=tuple(f"p{i}" for i in range(k)), is_gaussian=np.zeros(k, bool), ra=ra,
                 dec=dec, stokes=np.column_stack([[f for *_, f in pixels], np.zeros((k, 3))]),
                 spectral_coeffs=np.zeros((k, 1)), log_si=True, ref_freq=np.full(k, 1.284e9),
                 shape=np.zeros((k, 3))),
        tmp_path / "points.txt",
    )  # fmt: skip
    for eps in (1e-4, 1e-7):
        assert predict(ms_copy, "--model", tmp_path / "model.fits", "--epsilon", eps,
                       "--output-column", "DEGRID") == 0  # fmt: skip
        assert predict(ms_copy, "--model", tmp_path / "points.txt", "--output-column", "DFT") == 0
        degrid, dft = col(ms_copy, "DEGRID"), col(ms_copy, "DFT")
        scale = np.abs(dft).max()
        assert np.abs(degrid - dft).max() < 10 * max(eps, 1e-6) * scale


def test_correlations_without_a_stokes_mapping_are_refused(tmp_path, capsys):
    from radiocloud.core.io import new_dataset, write_tables
    from radiocloud.core.testing.builders import MSSpec, ms_datasets

    main, subtables = ms_datasets(MSSpec(n_corr=1))
    pol = subtables["POLARIZATION"][0]
    subtables["POLARIZATION"] = [pol.assign(CORR_TYPE=(pol.CORR_TYPE.dims, [[1]]))]  # Stokes I
    with new_dataset(tmp_path / "stokes.ms") as (tmp, fmt):
        dask.compute(write_tables(main, subtables, tmp, fmt))
    sky = one_component(tmp_path / "p.txt", 1.0, -0.9)
    assert predict(tmp_path / "stokes.ms", "--model", sky) == 2
    assert "has correlations I: rc-predict maps Stokes" in capsys.readouterr().err
    assert col(tmp_path / "stokes.ms", "MODEL_DATA") is None


def test_uvw_rate_matches_the_measures_uvw_of_the_simulated_ms(ms_copy):
    """earth_rotation_uvw_rate against central differences of casacore's UVW over time."""
    from radiocloud.core.kernels.dft import earth_rotation_uvw_rate

    dec = col(ms_copy, "PHASE_DIR", "FIELD")[0, 0, 1]
    uvw, time = col(ms_copy, "UVW"), col(ms_copy, "TIME")
    nbl = int(np.sum(time == time[0]))
    uvw, time = uvw.reshape(-1, nbl, 3), time.reshape(-1, nbl)[:, 0]
    numeric = (uvw[2:] - uvw[:-2]) / (time[2:] - time[:-2])[:, None, None]
    analytic = earth_rotation_uvw_rate(uvw[1:-1].reshape(-1, 3), dec).reshape(numeric.shape)
    scale = np.abs(numeric).max()
    np.testing.assert_allclose(analytic, numeric, atol=2e-3 * scale)


def test_smearing_attenuates_by_the_analytic_sinc_factors(ms_copy, tmp_path):
    (ra0, dec0), exposure = col(ms_copy, "PHASE_DIR", "FIELD")[0, 0], col(ms_copy, "EXPOSURE")
    ra, dec = ra0 + np.radians(0.4) / np.cos(dec0), dec0 + np.radians(0.2)
    sky = one_component(tmp_path / "off.txt", ra, dec, i=1.0)
    assert predict(ms_copy, "--model", sky) == 0
    plain = col(ms_copy, "MODEL_DATA")[..., 0]
    assert predict(ms_copy, "--model", sky, "--smearing", "both") == 0
    smeared = col(ms_copy, "MODEL_DATA")[..., 0]
    # Independent truth: l, m by spherical trigonometry, the UVW rate by differencing the MS's
    # own UVW over time, the channel width from the SPECTRAL_WINDOW table.
    east = np.cos(dec) * np.sin(ra - ra0)
    north = np.sin(dec) * np.cos(dec0) - np.cos(dec) * np.sin(dec0) * np.cos(ra - ra0)
    nm1 = np.sqrt(1 - east**2 - north**2) - 1
    uvw, time = col(ms_copy, "UVW"), col(ms_copy, "TIME")
    nbl = int(np.sum(time == time[0]))
    rate = np.gradient(uvw.reshape(-1, nbl, 3), time[::nbl], axis=0).reshape(-1, 3)
    freq = col(ms_copy, "CHAN_FREQ", "SPECTRAL_WINDOW")[0]
    width = np.abs(col(ms_copy, "CHAN_WIDTH", "SPECTRAL_WINDOW")[0, 0])
    tau = 2 * np.pi / C * (uvw @ [east, north, nm1])[:, None]
    tau_delta = 2 * np.pi / C * ((rate * exposure[:, None]) @ [east, north, nm1])[:, None]
    expected = np.sinc(tau * width / (2 * np.pi)) * np.sinc(tau_delta * freq / (2 * np.pi))
    assert expected.min() < 0.5  # bandwidth smearing is strong at 48 channels
    np.testing.assert_allclose(smeared, plain * expected, atol=2e-5)


def test_within_a_region_file_selects_inside_its_shapes(ms_copy, tmp_path):
    sky = read_skymodel(ms_copy.with_name("copy.truth") / "skymodel.txt")
    sky_file = ms_copy.with_name("copy.truth") / "skymodel.txt"
    ra, dec = np.degrees(col(ms_copy, "PHASE_DIR", "FIELD")[0, 0])
    brightest = int(np.argmax(sky.stokes[:, 0]))
    bra, bdec = np.degrees(sky.ra[brightest]), np.degrees(sky.dec[brightest])
    region = tmp_path / "keep.reg"
    region.write_text(f"fk5\ncircle({ra},{dec},4')\n-circle({bra},{bdec},2\") # not the core\n")
    assert predict(ms_copy, "--model", sky_file, "--within", region, "--output-column", "SEL") == 0
    ra0, dec0 = np.radians([ra, dec])
    d = np.hypot(*sky.lm(ra0, dec0).T)
    pick = np.flatnonzero((d < np.radians(4 / 60)) & (np.arange(len(sky)) != brightest))
    assert 0 < len(pick) < len(sky) - 1
    write_skymodel(sky.select(pick), tmp_path / "sub.txt")
    assert predict(ms_copy, "--model", tmp_path / "sub.txt", "--output-column", "REF") == 0
    np.testing.assert_allclose(col(ms_copy, "SEL"), col(ms_copy, "REF"), rtol=1e-6, atol=1e-7)
