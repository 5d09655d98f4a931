"""The ESO 137-006 selfcal recipe, end to end through rc-run, on a simulated observation.

rc-simulate makes a small MeerKAT observation of the field (16 antennas, 64 channels across
L-band, 60 x 8 s) with gains, delays, bandpass, noise and RFI, and its truth. The recipe flags,
images the raw data, and runs delay, phase and amplitude-and-phase selfcal rounds, starting from
the truth's component list as the field's catalogue. The products are checked against the truth:
dynamic range, the core's flux (on the data's own flux scale: there is no flux calibrator) and
position, the delays, the RFI flagged; then ``--resume`` must run nothing.

A second run calibrates the same kind of observation against the known sky in every round
(``init-model.every-round``): there the gains are limited by noise alone, and the last round's
gain chain is checked against the injected gains with the Cramér-Rao bound of its intervals.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from casacore.tables import table

from .conftest import BIN, RECIPE, dynamic_range

CORE = SkyCoord("16:15:03.8 -60:54:26.0", unit=(u.hourangle, u.deg))  # truth: POINT, 0.08 Jy
CORE_FLUX, CORE_INDEX, CORE_REF = 0.08, -0.1, 1.284e9


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900)


def _simulate_and_run(cwd: Path, *overrides: str) -> Path:
    sim = _run(str(BIN / "rc-simulate"), "obs.ms", "--integrations", "60", cwd=cwd)
    assert sim.returncode == 0, sim.stderr
    result = _run(
        str(BIN / "rc-run"), str(RECIPE), "ms=obs.ms", "prefix=out/eso137",
        "init-model.path=obs.truth/skymodel.txt", "init-model.brightest=1000",
        "truth-gains=obs.truth/gains.zarr", *overrides,
        "--run-dir", "run1", cwd=cwd,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return cwd


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Selfcal: the truth's components start the first round, CLEAN models the others."""
    return _simulate_and_run(tmp_path_factory.mktemp("eso137"))


@pytest.fixture(scope="module")
def known_sky(tmp_path_factory):
    """Every round predicts the truth's components (calibration against a known sky)."""
    return _simulate_and_run(tmp_path_factory.mktemp("known"), "init-model.every-round=true")


def test_selfcal_raises_the_dynamic_range_at_least_fivefold(run):
    initial = dynamic_range(run / "out" / "eso137-0")
    final = dynamic_range(run / "out" / "eso137-ap1")
    assert final >= 5 * initial, (initial, final)


def test_the_core_has_its_flux_and_position(run):
    header = fits.getheader(run / "out" / "eso137-ap1-image.fits")
    image = fits.getdata(run / "out" / "eso137-ap1-image.fits").squeeze()
    x, y = (float(v) for v in WCS(header).celestial.world_to_pixel(CORE))
    xi, yi = round(x), round(y)
    box = image[yi - 3 : yi + 4, xi - 3 : xi + 4]
    j, i = np.unravel_index(box.argmax(), box.shape)
    py = yi - 3 + j + _vertex(box[j - 1, i], box[j, i], box[j + 1, i])
    px = xi - 3 + i + _vertex(box[j, i - 1], box[j, i], box[j, i + 1])
    beam = np.sqrt(header["BMAJ"] * header["BMIN"])
    offset = np.hypot(px - x, py - y) * abs(header["CDELT1"])
    assert offset < 0.1 * beam
    expected = CORE_FLUX * (header["CRVAL3"] / CORE_REF) ** CORE_INDEX * _flux_scale(run)
    assert box.max() == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("lobe", ["lobe-east", "lobe-west"])
def test_the_lobes_have_their_flux(run, lobe):
    """The brightest components are the lobes' overlapping Gaussians (0.3-1.6 Jy, 40-60"): the
    CLEAN flux within 75" of a lobe's components is the sum of their true fluxes at the
    image's frequency, on the data's flux scale, within 5%."""
    from radiocloud.core.skymodel import read_skymodel

    sky = read_skymodel(str(run / "obs.truth" / "skymodel.txt"))
    mine = np.char.startswith(np.array(sky.names), lobe)
    header = fits.getheader(run / "out" / "eso137-ap1-model.fits")
    model = fits.getdata(run / "out" / "eso137-ap1-model.fits").squeeze()
    x, y = WCS(header).celestial.world_to_pixel(
        SkyCoord(np.asarray(sky.ra)[mine] * u.rad, np.asarray(sky.dec)[mine] * u.rad)
    )
    rows, cols = np.indices(model.shape)
    region = np.zeros(model.shape, bool)
    for xi, yi in zip(x, y, strict=True):
        region |= np.hypot(cols - xi, rows - yi) < 75 / 3600 / abs(header["CDELT1"])
    log_nu = np.log(header["CRVAL3"] / np.asarray(sky.ref_freq)[mine])
    a = np.asarray(sky.spectral_coeffs)[mine]
    true = np.asarray(sky.stokes)[mine, 0] * np.exp(a[:, 0] * log_nu + a[:, 1] * log_nu**2)
    assert np.all(sky.log_si)  # the spectra are logarithmic polynomials
    assert model[region].sum() == pytest.approx(true.sum() * _flux_scale(run), rel=0.05)


def _flux_scale(run: Path) -> float:
    """The flux scale selfcal can recover: the mean |g_p||g_q| of the injected gains over the
    unflagged channels. Without a flux calibrator, amplitude selfcal keeps the data's own
    scale (0.945 here: the bandpass's edge roll-off and ripple)."""
    from daskms.experimental.zarr import xds_from_zarr

    gains = np.abs(xds_from_zarr(str(run / "obs.truth" / "gains.zarr"))[0].gains.values)
    t = table(str(run / "obs.ms"), ack=False)
    try:
        good = ~t.getcol("FLAG")[..., 0].all(axis=0)
    finally:
        t.close()
    amp = gains[:, good]  # time, chan, ant, feed
    p, q = np.triu_indices(amp.shape[2], 1)
    return float((amp[:, :, p] * amp[:, :, q]).mean())


def _vertex(a: float, b: float, c: float) -> float:
    """Offset of the vertex of the parabola through three equally spaced samples."""
    d = a - 2 * b + c
    return 0.5 * (a - c) / d if d < 0 else 0.0


def test_the_delays_are_the_injected_ones(run):
    """The first round's delays against the injected ones plus what a delay cannot tell from
    them: the bandpass's mean phase slope over the unflagged channels (its 5-degree ripple
    tilts it by 0.05 ns rms). Without that slope they differ by up to 0.17 ns; with it, by
    0.08 ns (the slope's weights here are the bandpass amplitudes, not the solver's full
    weights); the noise alone would allow 0.002 ns. Delays are 2 ns rms."""
    from daskms.experimental.zarr import xds_from_zarr

    from radiocloud.core.io.gaintable import read_gain_table

    truth = xds_from_zarr(str(run / "obs.truth" / "gains.zarr"))[0]
    tau, bandpass, freq = truth.delay.values, truth.bandpass.values, truth.chan.values
    t = table(str(run / "obs.ms"), ack=False)
    try:
        good = ~t.getcol("FLAG")[..., 0].all(axis=0)  # channels with data
    finally:
        t.close()
    rel = bandpass[good] * np.conj(bandpass[good, :1])  # chan, ant, feed; against antenna 0
    rel *= np.exp(-1j * np.angle(rel.sum(axis=0)))  # the constant phase out: no wraps
    weight = np.abs(bandpass[good]) * np.abs(bandpass[good, :1])
    nu = freq[good, None, None] / 1e9  # GHz: phase = 2 pi tau[ns] nu[GHz]
    nu = nu - (weight * nu).sum(axis=0) / weight.sum(axis=0)
    slope = (weight * nu * np.angle(rel)).sum(axis=0) / (weight * nu**2).sum(axis=0) / (2 * np.pi)
    expected = tau - tau[:1] + slope
    terms, _ = read_gain_table(str(run / "out" / "eso137-d1-gains.zarr"))
    solved = terms["K"].params.sel(param="delay").values[:, 0, :, 0, :]  # time, ant, feed
    solved = solved - solved[:, :1]
    assert np.abs(solved.std(axis=0)).max() < 0.05  # the intervals agree (0.013 ns)
    assert np.abs(solved - expected).max() < 0.1
    assert np.abs(solved - (tau - tau[:1])).max() > 0.1  # the slope is worth taking out


def test_the_injected_rfi_is_flagged(run):
    mask = np.load(run / "obs.truth" / "rfi_mask.npy")
    t = table(str(run / "obs.ms"), ack=False)
    try:
        flags = t.getcol("FLAG")
    finally:
        t.close()
    assert (flags & mask).sum() / mask.sum() >= 0.9


def test_the_products_and_the_record(run):
    for name in (
        "eso137-gains-K.png",
        "eso137-gains-G.png",
        "eso137-gains-B.png",
        "eso137-truth-gains.png",
        "eso137-image.png",
        "eso137-flag.json",
    ):
        assert (run / "out" / name).stat().st_size > 0
    record = json.loads((run / "run1" / "provenance.json").read_text())
    assert record["status"] == "succeeded"
    ran = [k for k, v in record["steps"].items() if v["status"] == "ok"]
    assert "eso137.selfcal-ap1.calibrate" in ran
    assert all(record["steps"][k]["peak_rss_mib"] > 50 for k in ran)
    report = (run / "run1" / "report.md").read_text()
    rounds = [line for line in report.splitlines() if "-image.fits |" in line]
    assert [line.split("|")[1].strip() for line in rounds] == [
        "eso137.image-0",
        "eso137.selfcal-d1.image",
        "eso137.selfcal-p1.image",
        "eso137.selfcal-ap1.image",
    ]
    assert "![eso137.plot-image](../out/eso137-image.png)" in report
    assert "| eso137.plot-gains-truth | amplitude scale " in report


def test_resume_runs_nothing(run):
    result = _run(
        str(BIN / "rc-run"), str(RECIPE), "ms=obs.ms", "prefix=out/eso137",
        "init-model.path=obs.truth/skymodel.txt", "init-model.brightest=1000",
        "truth-gains=obs.truth/gains.zarr", "--run-dir", "run2", "--resume", "run1", cwd=run,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = json.loads((run / "run2" / "provenance.json").read_text())
    statuses = {k: v["status"] for k, v in record["steps"].items()}
    assert set(statuses.values()) <= {"resumed", "skipped"}, statuses
    assert "0 run" in result.stderr


def _cramer_rao(ms: Path, truth: np.ndarray, terms: dict, times: np.ndarray) -> np.ndarray:
    """(time, chan, ant, feed) noise bound on each relative gain error, per real part: for a
    term of intervals I, σ_p² = σ² / Σ_{q, samples in I} |M_pq g_p g_q|² (the unflagged
    samples, the true gains), summed over the chain's free terms (the delays are fixed by
    the whole band and add little)."""
    nt, nc, na, _ = truth.shape
    t = table(str(ms), ack=False)
    try:
        model, flag = t.getcol("MODEL_DATA"), t.getcol("FLAG")
        a1, a2, sigma = t.getcol("ANTENNA1"), t.getcol("ANTENNA2"), t.getcol("SIGMA")[0, 0]
    finally:
        t.close()
    nb = na * (na - 1) // 2
    p, q = a1[:nb], a2[:nb]
    var = np.zeros(truth.shape)
    for feed, corr in ((0, 0), (1, model.shape[-1] - 1)):
        g = np.abs(truth[..., feed])  # time, chan, ant
        power = (np.abs(model[..., corr]) ** 2 * ~flag[..., corr]).reshape(nt, nb, nc)
        power = power * (g[:, :, p] * g[:, :, q]).transpose(0, 2, 1) ** 2
        per_ant = np.zeros((nt, nc, na))
        for b in range(nb):
            per_ant[:, :, p[b]] += power[:, b]
            per_ant[:, :, q[b]] += power[:, b]
        for term in terms.values():
            if term.attrs["type"] == "delay":
                continue
            ti = np.clip(np.searchsorted(term.gain_time_hi.values, times - 1e-3), 0, None)
            fi = np.arange(nc) * term.sizes["gain_freq"] // nc
            cell = ti[:, None] * nc + fi[None, :]  # each sample's interval
            info = np.zeros((cell.max() + 1, na))
            np.add.at(info, cell.ravel(), per_ant.reshape(-1, na))
            info = info[cell]
            var[..., feed] += np.where(info > 0, sigma**2 / np.where(info > 0, info, 1), np.inf)
    return np.sqrt(var)


def test_gains_against_a_known_sky_are_the_injected_ones_within_the_noise(known_sky):
    """The last round's chain (K from the phase round, G per integration, B per channel) times
    the injected gains' inverse, phase-referenced to antenna 0, is 1 within the noise: the
    flux scale within 1% and each gain's error |Δg/g| at the Cramér-Rao bound σ of its terms'
    intervals (with the reference antenna's own error). A Rayleigh of that σ has median 1.18σ;
    the bound ignores that G and B share the data, so the errors are allowed 2.5σ at the
    median and 6σ at the 90th percentile. A chain solved per 4 integrations x 8 channels
    instead is 60σ off (the bandpass varies within its intervals)."""
    from daskms.experimental.zarr import xds_from_zarr

    from radiocloud.core.io.gaintable import chain_gains, compare_gains, read_gain_table

    truth = xds_from_zarr(str(known_sky / "obs.truth" / "gains.zarr"))[0]
    times, gains = truth.time.values, truth.gains.values.astype(np.complex128)
    terms, _ = read_gain_table(str(known_sky / "out" / "eso137-ap1-gains.zarr"))
    assert list(terms) == ["K", "G", "B"]
    net, flags = chain_gains(terms, times, truth.chan.values)
    errors = compare_gains(net, flags, gains)
    assert errors.valid.mean() > 0.3  # the band's RFI-free part
    assert errors.scale == pytest.approx(1.0, abs=0.01)
    sigma = _cramer_rao(known_sky / "obs.ms", gains, terms, times)
    sigma = np.hypot(sigma, sigma[:, :, :1])
    z = (np.abs(errors.ratio - 1) / sigma)[errors.valid]
    assert np.median(z) < 2.5, np.percentile(z, [50, 90, 99])
    assert np.percentile(z, 90) < 6.0, np.percentile(z, [50, 90, 99])


def test_delays_against_a_known_sky_are_the_noise_free_ones_within_the_noise(known_sky):
    """The first round's delays differ from those solved the same way on the same observation
    without noise (same flags, same model) by the noise alone: |Δτ| / σ has median below 1.2
    and no value beyond 6 (a Gaussian's median is 0.67), where σ is the Cramér-Rao bound of a
    delay fitted across the band, σ_τ = σ / (2π sqrt(Σ w (ν - ν̄)²)) per interval, antenna
    and feed, with the reference antenna's. (What the noise-free delays are against the
    injected ones is test_the_delays_are_the_injected_ones: their bandpass slope.)"""
    from radiocloud.core.io.gaintable import read_gain_table

    def run(*args: str) -> None:
        result = _run(*args, cwd=known_sky)
        assert result.returncode == 0, result.stderr

    run(str(BIN / "rc-simulate"), "twin.ms", "--integrations", "60", "--noise", "0")
    run(str(BIN / "rc-predict"), "twin.ms", "--model", "obs.truth/skymodel.txt")
    with table(str(known_sky / "obs.ms"), ack=False) as obs:
        flags = obs.getcol("FLAG")
    with table(str(known_sky / "twin.ms"), readonly=False, ack=False) as twin:
        twin.putcol("FLAG", flags)
    run(str(BIN / "rc-calibrate"), "twin.ms", "--terms", "K", "--time-interval", "4",
        "--gain-table", "twin-k.zarr")  # fmt: skip

    def delays(path: Path) -> np.ndarray:
        terms, _ = read_gain_table(str(path))
        tau = terms["K"].params.sel(param="delay").values[:, 0, :, 0, :]  # time, ant, feed
        return tau - tau[:, :1]

    noisy = delays(known_sky / "out" / "eso137-d1-gains.zarr")
    noise_free = delays(known_sky / "twin-k.zarr")
    sigma = _delay_bound(known_sky / "obs.ms", noisy.shape[0])
    z = (np.abs(noisy - noise_free) / np.hypot(sigma, sigma[:, :1]))[:, 1:]
    assert np.median(z) < 1.2, np.percentile(z, [50, 90, 100])
    assert z.max() < 6.0, np.percentile(z, [50, 90, 100])


def _delay_bound(ms: Path, nint: int) -> np.ndarray:
    """(interval, ant, feed) Cramér-Rao bound of each delay, ns: w = Σ_q |M_pq g_p g_q|² / σ²
    per channel over the interval's unflagged samples (the true gains' amplitudes)."""
    from daskms.experimental.zarr import xds_from_zarr

    truth = xds_from_zarr(str(ms.with_suffix(".truth") / "gains.zarr"))[0]
    amp, nu = np.abs(truth.gains.values), truth.chan.values / 1e9  # GHz: tau in ns
    nt, nc, na, _ = amp.shape
    with table(str(ms), ack=False) as t:
        model, flag, sigma = t.getcol("MODEL_DATA"), t.getcol("FLAG"), t.getcol("SIGMA")[0, 0]
        a1, a2 = t.getcol("ANTENNA1"), t.getcol("ANTENNA2")
    nb = na * (na - 1) // 2
    p, q = a1[:nb], a2[:nb]
    bound = np.zeros((nint, na, 2))
    for feed, corr in ((0, 0), (1, model.shape[-1] - 1)):
        power = (np.abs(model[..., corr]) ** 2 * ~flag[..., corr]).reshape(nt, nb, nc)
        power = power * (amp[:, :, p, feed] * amp[:, :, q, feed]).transpose(0, 2, 1) ** 2
        w = np.zeros((nint, nc, na))
        for b in range(nb):
            per = power[:, b].reshape(nint, nt // nint, nc).sum(axis=1)
            w[:, :, p[b]] += per
            w[:, :, q[b]] += per
        w /= sigma**2
        mean = (w * nu[:, None]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-300)
        spread = (w * (nu[None, :, None] - mean[:, None, :]) ** 2).sum(axis=1)
        bound[..., feed] = 1 / (2 * np.pi * np.sqrt(np.maximum(spread, 1e-300)))
    return bound
