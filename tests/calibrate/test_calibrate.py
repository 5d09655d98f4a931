"""rc-calibrate on simulated observations with known gains: accuracy against the noise bound,
chains, memory, robustness, products, tables, and bad input."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from casacore.tables import table

from radiocloud.core.io import list_versions, read_gain_table

from .conftest import apply, calibrate, columns, copy, simulate, truth


def chain_gains(table_path, times, freqs) -> np.ndarray:
    """(time, chan, ant, feed) product of a table's terms, each at the interval holding the
    time and the bin nearest the channel."""
    terms, _ = read_gain_table(str(table_path))
    out = 1
    for ds in terms.values():
        ti = np.abs(ds.gain_time.values[None] - times[:, None]).argmin(1)
        fi = np.abs(ds.gain_freq.values[None] - freqs[:, None]).argmin(1)
        out = out * ds.gains.values[:, :, :, 0, :][ti][:, fi]
    return out


def gauge(g, ref=0):
    r = g[:, :, ref : ref + 1]
    return g * np.conj(r) / np.abs(r)


def noise_bound(ms, g_true) -> np.ndarray:
    """(time, ant, feed) expected rms error of a gain solved per integration over the band:
    sqrt(2 / A), A = Σ w |g_q M_pq|² over the antenna's baselines and channels."""
    c = columns(ms, "TIME", "ANTENNA1", "ANTENNA2", "MODEL_DATA", "WEIGHT")
    times = np.unique(c["TIME"])
    t = np.searchsorted(times, c["TIME"])
    nant = g_true.shape[2]
    A = np.zeros((len(times), nant, 2))
    for feed in range(2):
        w = c["WEIGHT"][:, feed][:, None]
        m2 = np.abs(c["MODEL_DATA"][:, :, feed]) ** 2
        gq = np.abs(g_true[t, :, c["ANTENNA2"], feed]) ** 2
        gp = np.abs(g_true[t, :, c["ANTENNA1"], feed]) ** 2
        np.add.at(A[:, :, feed], (t, c["ANTENNA1"]), (w * m2 * gq).sum(1))
        np.add.at(A[:, :, feed], (t, c["ANTENNA2"]), (w * m2 * gp).sum(1))
    return np.sqrt(2 / A)


def digest(path) -> str:
    h = hashlib.sha1(usedforsecurity=False)
    for f in sorted(Path(path).rglob("*")):
        if f.is_file() and f.name != "table.lock":
            h.update(f.read_bytes())
    return h.hexdigest()


def test_g_recovers_injected_gains_within_the_noise(g_ms, tmp_path):
    """Per-integration complex gains: rms error within 1.5x the noise bound sqrt(2/A) (and
    not below a third of it: the errors are noise, as they should be)."""
    ms = copy(g_ms, tmp_path)
    assert calibrate(ms, "--terms", "G", "--time-interval", "1", "--gain-table",
                     tmp_path / "g.zarr", "--iter-recipe", "100") == 0  # fmt: skip
    tr = truth(ms)
    est = chain_gains(tmp_path / "g.zarr", tr["time"], tr["freq"])
    err = np.abs(gauge(est) - gauge(tr["gains"]))[:, 0]  # gains are flat across the band
    bound = noise_bound(ms, tr["gains"])
    rms, expected = np.sqrt((err**2).mean()), np.sqrt((bound**2).mean())
    assert expected / 3 < rms < 1.5 * expected


def test_k_then_g_recovers_delays_and_gains(kg_ms, tmp_path):
    """K (delay with offset, whole scan) then G (per integration), two cycles: delays within
    0.05 ns of the truth at SNR > 50 per antenna, and the corrected residual at the noise."""
    ms = copy(kg_ms, tmp_path)
    report = tmp_path / "report.json"
    assert calibrate(ms, "--terms", "K,G", "--time-interval", "K=0,G=1", "--iter-recipe",
                     "30,30,30,30", "--gain-table", tmp_path / "kg.zarr", "--report", report,
                     "--output-column", "CORRECTED_RESIDUAL", "--output-product",
                     "corrected-residual") == 0  # fmt: skip
    tr = truth(ms)
    terms, _ = read_gain_table(str(tmp_path / "kg.zarr"))
    tau = terms["K"].params.sel(param="delay").values[0, 0, :, 0, :]
    want = tr["delay"] - tr["delay"][:1]
    snr = 1 / noise_bound(ms, tr["gains"]).mean(axis=0)  # per antenna and feed, one integration
    assert snr.min() * np.sqrt(len(tr["time"])) > 50
    assert np.abs(tau - want).max() < 0.05
    c = columns(ms, "CORRECTED_RESIDUAL", "WEIGHT", "FLAG")
    z = np.abs(c["CORRECTED_RESIDUAL"]) ** 2 * c["WEIGHT"][:, None, :] / 2
    # the corrected residual is noise / |g|²: close to 1 in units of the thermal noise
    assert np.sqrt(z[~c["FLAG"]].mean()) == pytest.approx(1.0, abs=0.1)
    import json

    steps = json.loads(report.read_text())["steps"]
    assert [s["term"] for s in steps] == ["K", "G", "K", "G"]
    assert steps[-1]["chi2_after"] == pytest.approx(1.0, abs=0.03)


def test_apply_of_the_solution_leaves_residuals_at_the_noise(g_ms, tmp_path):
    ms = copy(g_ms, tmp_path)
    assert calibrate(ms, "--terms", "G", "--output-column", "RESIDUAL",
                     "--output-product", "residual") == 0  # fmt: skip
    c = columns(ms, "RESIDUAL", "WEIGHT", "FLAG", "DATA", "MODEL_DATA")
    z = np.abs(c["RESIDUAL"]) ** 2 * c["WEIGHT"][:, None, :] / 2
    assert z[~c["FLAG"]].mean() == pytest.approx(1.0, abs=0.05)
    before = np.abs(c["DATA"] - c["MODEL_DATA"]) ** 2 * c["WEIGHT"][:, None, :] / 2
    assert before.mean() > 100  # the uncalibrated residual is far above the noise


def test_gain_table_round_trips_through_apply_and_load_from(g_ms, tmp_path):
    ms = copy(g_ms, tmp_path)
    table_path = tmp_path / "g.zarr"
    assert calibrate(ms, "--terms", "G", "--gain-table", table_path,
                     "--output-column", "CORRECTED_DATA") == 0  # fmt: skip
    assert apply(ms, "--gain-table", table_path, "--output-column", "CORRECTED_2") == 0
    c = columns(ms, "CORRECTED_DATA", "CORRECTED_2")
    np.testing.assert_array_equal(c["CORRECTED_DATA"], c["CORRECTED_2"])
    # zero iterations from a loaded table: the same gains come back out
    assert calibrate(ms, "--terms", "G", "--load-from", f"G={table_path}", "--iter-recipe", "0",
                     "--gain-table", tmp_path / "again.zarr") == 0  # fmt: skip
    a, _ = read_gain_table(str(table_path))
    b, _ = read_gain_table(str(tmp_path / "again.zarr"))
    np.testing.assert_array_equal(a["G"].gains.values, b["G"].gains.values)
    np.testing.assert_array_equal(a["G"].gain_time.values, b["G"].gain_time.values)


def test_chunks_do_not_change_the_solution(g_ms, tmp_path):
    """Solution intervals are independent of dask chunks: tiny chunks give the same gains."""
    ms = copy(g_ms, tmp_path)
    for name, budget in (("big", "2GiB"), ("small", "3MiB")):
        assert calibrate(ms, "--terms", "G", "--time-interval", "4", "--gain-table",
                         tmp_path / f"{name}.zarr", "--memory-budget", budget) == 0  # fmt: skip
    a, _ = read_gain_table(str(tmp_path / "big.zarr"))
    b, _ = read_gain_table(str(tmp_path / "small.zarr"))
    np.testing.assert_allclose(a["G"].gains.values, b["G"].gains.values, rtol=1e-9, atol=1e-12)


def test_robust_solve_ignores_injected_rfi(g_ms, tmp_path):
    """3% of samples hit by strong RFI (30x the typical visibility): the robust solve (three
    cycles, two of them reweighted) stays within the noise bound; the plain solve does not."""
    ms = copy(g_ms, tmp_path)
    with table(str(ms), readonly=False, ack=False) as t:
        data = t.getcol("DATA")
        rng = np.random.default_rng(7)
        hit = rng.random(data.shape) < 0.03
        scale = 30 * np.median(np.abs(data))
        data[hit] += scale * np.exp(2j * np.pi * rng.random(hit.sum()))
        t.putcol("DATA", data)
    tr = truth(ms)
    bound = np.sqrt((noise_bound(ms, tr["gains"]) ** 2).mean())
    errs = {}
    for robust in ("--robust", "--no-robust"):
        out = tmp_path / f"{robust}.zarr"
        assert calibrate(ms, "--terms", "G", robust, "--iter-recipe", "50",
                         "--gain-table", out) == 0  # fmt: skip
        est = chain_gains(out, tr["time"], tr["freq"])
        errs[robust] = np.sqrt((np.abs(gauge(est) - gauge(tr["gains"]))[:, 0] ** 2).mean())
    assert errs["--robust"] < 1.5 * bound
    assert errs["--no-robust"] > 5 * bound


def test_flagged_antenna_gets_flagged_gains(g_ms, tmp_path):
    """Antenna 3 fully flagged, antenna 5 left with 2 baselines (< --min-baselines 4): both
    get flagged gains, finite values; their samples' products are 0 and now flagged (FLAG
    saved as a flag version first); every other antenna is solved."""
    ms = copy(g_ms, tmp_path)
    with table(str(ms), readonly=False, ack=False) as t:
        flag = t.getcol("FLAG")
        a1, a2 = t.getcol("ANTENNA1"), t.getcol("ANTENNA2")
        flag[(a1 == 3) | (a2 == 3)] = True
        keep5 = ((a1 == 5) & np.isin(a2, [6, 7])) | ((a2 == 5) & np.isin(a1, [6, 7]))
        flag[((a1 == 5) | (a2 == 5)) & ~keep5] = True
        t.putcol("FLAG", flag)
    assert calibrate(ms, "--terms", "G", "--gain-table", tmp_path / "g.zarr",
                     "--output-column", "CORRECTED_DATA") == 0  # fmt: skip
    terms, _ = read_gain_table(str(tmp_path / "g.zarr"))
    g = terms["G"]
    assert g.gain_flags.values[:, :, [3, 5]].all()
    assert not g.gain_flags.values[:, :, [0, 1, 2, 4, 6, 7, 8]].any()
    assert np.isfinite(g.gains.values).all()
    c = columns(ms, "CORRECTED_DATA", "ANTENNA1", "ANTENNA2", "FLAG")
    rows = np.isin(c["ANTENNA1"], [3, 5]) | np.isin(c["ANTENNA2"], [3, 5])
    assert (c["CORRECTED_DATA"][rows] == 0).all()
    assert c["FLAG"][rows].all()
    assert not c["FLAG"][~rows].any()
    assert (c["CORRECTED_DATA"][~rows] != 0).all()
    assert any(v.name.startswith("rc-calibrate-") for v in list_versions(str(ms)))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--terms", "G", "--type", "G=wobble"], "--type G=wobble"),
        (["--terms", "Q"], "term Q has no type"),
        (["--terms", "X"], "cross-hand"),
        (["--terms", "G", "--time-interval", "12s"], "not a multiple"),
        (["--terms", "G", "--ref-ant", "99"], "--ref-ant 99"),
        (["--terms", "G", "--model-column", "NOPE"], "--model-column NOPE"),
        (["--terms", "G", "--output-column", "DATA"], "--output-column DATA"),
        (["--terms", "K,G", "--iter-recipe", "5"], "--iter-recipe 5"),
        (["--terms", "G", "--time-interval", "H=3"], "there is no term H"),
        (["--terms", "G", "--load-from", "G=nope.zarr"], "--load-from G=nope.zarr"),
        (["--terms", "G", "--gain-table", "/"], "--gain-table / exists"),
    ],
)
def test_bad_input_is_one_line_and_leaves_the_data(g_ms, tmp_path, capfd, args, words):
    ms = copy(g_ms, tmp_path)
    before = digest(ms)
    out = [] if "--output-column" in args else ["--output-column", "CORRECTED_DATA"]
    assert calibrate(ms, *args, *out) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("rc-calibrate: error:")
    assert words in err[0]
    assert digest(ms) == before


def test_fully_flagged_reference_antenna_is_refused(g_ms, tmp_path, capfd):
    ms = copy(g_ms, tmp_path)
    with table(str(ms), readonly=False, ack=False) as t:
        flag = t.getcol("FLAG")
        flag[(t.getcol("ANTENNA1") == 0) | (t.getcol("ANTENNA2") == 0)] = True
        t.putcol("FLAG", flag)
    before = digest(ms)
    assert calibrate(ms, "--terms", "G", "--output-column", "CORRECTED_DATA") == 2
    assert "--ref-ant 0" in capfd.readouterr().err
    assert digest(ms) == before


def test_bandpass_over_the_band_fits_a_budget_smaller_than_its_data(tmp_path):
    """A bandpass (per channel, the whole scan) from 264 MB of visibilities with a 48 MiB
    budget: peak memory above the app's baseline (the same run on a tiny MS) stays far below
    the data's size, and the bandpass matches the truth within the noise."""
    big = tmp_path / "big.ms"
    assert simulate(big, "--antennas", "32", "--channels", "256", "--integrations", "60",
                    "--correlations", "2", "--model-data", "--no-gains", "--no-delays",
                    "--no-rfi") == 0  # fmt: skip
    tiny = tmp_path / "tiny.ms"
    assert simulate(tiny, "--antennas", "4", "--channels", "256", "--integrations", "2",
                    "--correlations", "2", "--model-data", "--no-gains", "--no-delays",
                    "--no-rfi") == 0  # fmt: skip

    def peak(ms) -> int:
        code = (
            "import sys\n"
            "from radiocloud.calibrate.cli import app\n"
            "from radiocloud.core.cli import run_cli\n"
            "rc = run_cli(app, 'rc-calibrate', sys.argv[1:])\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print('PEAK', int(hwm.split()[1]) * 1024)\n"
            "sys.exit(rc)\n"
        )
        args = [str(ms), "--terms", "B", "--gain-table", str(ms) + ".zarr",
                "--memory-budget", "48MiB", "--threads", "2"]  # fmt: skip
        run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return int(next(x for x in run.stdout.splitlines() if x.startswith("PEAK")).split()[1])

    data_bytes = sum(f.stat().st_size for f in big.rglob("table.f*"))
    growth = peak(big) - peak(tiny)
    assert data_bytes > 200e6
    assert growth < 150e6  # the budget plus the statistics and dask's bookkeeping
    tr = truth(big)
    est = chain_gains(str(big) + ".zarr", tr["time"][:1], tr["freq"])
    err = np.abs(gauge(est) - gauge(tr["gains"][:1]))
    assert np.sqrt((err**2).mean()) < 0.02


def test_sky_model_predicted_on_the_fly_matches_the_model_column(g_ms, tmp_path):
    """--sky-model predicts the component list with rc-predict's DFT kernel: the same gains
    as against MODEL_DATA (the simulator's prediction of the same list)."""
    ms = copy(g_ms, tmp_path)
    sky = ms.with_suffix(".truth") / "skymodel.txt"
    assert calibrate(ms, "--terms", "G", "--gain-table", tmp_path / "col.zarr") == 0
    assert calibrate(ms, "--terms", "G", "--sky-model", sky, "--gain-table",
                     tmp_path / "sky.zarr") == 0  # fmt: skip
    a, _ = read_gain_table(str(tmp_path / "col.zarr"))
    b, _ = read_gain_table(str(tmp_path / "sky.zarr"))
    np.testing.assert_allclose(a["G"].gains.values, b["G"].gains.values, atol=1e-5)


def _table(path, kind, times, freqs, gains, params, param_freq):
    """A gain table written directly: one term, gains (time, freq, ant, feed)."""
    import xarray as xr

    from radiocloud.core.io import write_gain_table

    gd = ("gain_time", "gain_freq", "ant", "dir", "corr")
    pd = ("gain_time", "param_freq", "ant", "dir", "corr", "param")
    ds = xr.Dataset(
        {
            "gains": (gd, gains[:, :, :, None]),
            "gain_flags": (gd, np.zeros(gains[:, :, :, None].shape, bool)),
            "params": (pd, params[:, :, :, None]),
            "param_flags": (pd[:-1], np.zeros(params.shape[:-1], bool)[:, :, :, None]),
        },
        coords={
            "gain_time": times,
            "gain_time_lo": ("gain_time", times),
            "gain_time_hi": ("gain_time", times),
            "gain_freq": freqs,
            "param_freq": param_freq,
            "corr": ["X", "Y"],
        },
        attrs={"type": kind},
    )
    write_gain_table(str(path), {"T": ds}, {})


def test_apply_interpolates_between_solutions_in_time_and_frequency(g_ms, tmp_path):
    """Gains tabulated at 3 times (and, for a bandpass, at 9 channels) with amplitude and
    phase linear in time (frequency) are applied exactly at every integration (channel);
    a delay table is evaluated at the dataset's channels from its delays."""
    ms = copy(g_ms, tmp_path)
    c = columns(ms, "TIME", "ANTENNA1", "ANTENNA2", "DATA")
    tr = truth(ms)
    times, freq = tr["time"], tr["freq"]
    nant = tr["gains"].shape[2]
    rng = np.random.default_rng(11)
    a, b, phi = (rng.uniform(-0.3, 0.3, (nant, 2)), rng.uniform(-1.5, 1.5, (nant, 2)),
                 rng.uniform(-np.pi, np.pi, (nant, 2)))  # fmt: skip

    def ramp(x):  # (x,) in [0, 1] -> (x, ant, feed): amplitude and phase linear in x
        return (1 + a[None] * x[:, None, None]) * np.exp(1j * (phi + b * x[:, None, None]))

    span = (times[-1] - times[0]) or 1.0
    tab_t = np.array([times[0], times[0] + span / 3, times[-1]])
    cases = {
        "time": (np.array([freq.mean()]), ramp((tab_t - times[0]) / span)[:, None],
                 lambda t, f: ramp((t - times[0]) / span)[:, None]),
        "freq": (freq[np.r_[0:32:4, 31]], None, None),
    }  # fmt: skip
    fsel = cases["freq"][0]
    fspan = freq[-1] - freq[0]
    cases["freq"] = (fsel, ramp((fsel - freq[0]) / fspan)[None], lambda t, f: np.broadcast_to(
        ramp((f - freq[0]) / fspan)[None], (len(t), len(f), nant, 2)))  # fmt: skip
    for name, (tab_f, gains, expect) in cases.items():
        t_axis = tab_t if name == "time" else np.array([times.mean()])
        params = np.stack([gains.real, gains.imag], -1)[:, :1]
        _table(tmp_path / f"{name}.zarr", "diag-complex", t_axis, tab_f, gains, params,
               np.array([freq.mean()]))  # fmt: skip
        assert apply(ms, "--gain-table", tmp_path / f"{name}.zarr", "--output-column",
                     "CORRECTED_DATA") == 0  # fmt: skip
        g = expect(np.unique(c["TIME"]), freq)  # (time, chan, ant, feed)
        t = np.searchsorted(np.unique(c["TIME"]), c["TIME"])
        gp, gq = g[t, :, c["ANTENNA1"]], g[t, :, c["ANTENNA2"]]  # (row, chan, feed)
        want = c["DATA"] / (gp * np.conj(gq))
        got = columns(ms, "CORRECTED_DATA")["CORRECTED_DATA"]
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6, err_msg=name)
    # a delay term: exp(i(φ + 2π τ (ν - ν₀))) at the dataset's channels
    tau = rng.normal(0, 3, (nant, 2))
    params = np.stack([phi, tau], -1)[None, None]
    nu0 = freq.mean()
    gains = np.exp(1j * (phi + 2 * np.pi * tau * (freq[::8, None, None] - nu0) / 1e9))[None]
    _table(tmp_path / "k.zarr", "delay", np.array([times.mean()]), freq[::8], gains, params,
           np.array([nu0]))  # fmt: skip
    assert apply(ms, "--gain-table", tmp_path / "k.zarr", "--output-column", "CORRECTED_DATA") == 0
    g = np.exp(1j * (phi + 2 * np.pi * tau * (freq[:, None, None] - nu0) / 1e9))
    want = c["DATA"] / (g[:, c["ANTENNA1"]].transpose(1, 0, 2)
                        * np.conj(g[:, c["ANTENNA2"]].transpose(1, 0, 2)))  # fmt: skip
    got = columns(ms, "CORRECTED_DATA")["CORRECTED_DATA"]
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


def test_crosshand_phase_of_a_polarised_calibrator(tmp_path):
    """A polarised point source (U = 20% of I) and an X-Y phase of 40° put into the cross
    hands: --terms X recovers it within 3 noise standard deviations."""
    sky = tmp_path / "pol.txt"
    sky.write_text(
        "Format = Name, Type, Ra, Dec, I, Q, U, V, SpectralIndex, LogarithmicSI, "
        "ReferenceFrequency, MajorAxis, MinorAxis, Orientation\n"
        "cal,POINT,13:15:30.0,-60.40.00.0,10.0,0.5,2.0,0.0,[],false,1400000000.0,,,\n"
    )
    ms = tmp_path / "pol.ms"
    assert simulate(ms, "--antennas", "12", "--channels", "16", "--integrations", "8",
                    "--correlations", "4", "--model-data", "--no-gains", "--no-delays",
                    "--no-bandpass", "--no-rfi", "--sky", sky,
                    "--pointing", "13h15m30s,-60d40m00s") == 0  # fmt: skip
    psi = np.radians(40.0)
    with table(str(ms), readonly=False, ack=False) as t:
        data = t.getcol("DATA")
        data[:, :, 1] *= np.exp(-1j * psi)  # XY = g_pX M conj(g_qY)
        data[:, :, 2] *= np.exp(1j * psi)
        t.putcol("DATA", data)
    assert calibrate(ms, "--terms", "X", "--gain-table", tmp_path / "x.zarr") == 0
    terms, _ = read_gain_table(str(tmp_path / "x.zarr"))
    got = terms["X"].params.values[0, 0, :, 0, 1, 0]
    c = columns(ms, "MODEL_DATA", "WEIGHT")
    cross = (np.abs(c["MODEL_DATA"][:, :, [1, 2]]) ** 2 * c["WEIGHT"][:, None, [1, 2]]).sum()
    assert np.ptp(got) == 0
    assert abs(got[0] - psi) < 3 / np.sqrt(cross)


def test_fields_left_out_get_the_data_in_a_new_output_column(tmp_path):
    """--field 0 of a two-field, two-SPW observation (--ddid 0): the other field's and SPW's
    rows of the new CORRECTED_DATA hold DATA, not zeros; the calibrated rows are corrected."""
    from radiocloud.core.testing import MSSpec, build_ms

    ms = build_ms(tmp_path / "two.ms", MSSpec(n_ant=6, n_time=4, spw_chans=(8, 4), n_field=2,
                                              extra_columns=("MODEL_DATA",)))  # fmt: skip
    assert calibrate(ms, "--terms", "G", "--field", "0", "--ddid", "0", "--min-baselines", "2",
                     "--output-column", "CORRECTED_DATA") == 0  # fmt: skip
    t = table(str(ms), ack=False)
    try:
        for field in (0, 1):
            for ddid in (0, 1):
                q = t.query(f"FIELD_ID=={field} && DATA_DESC_ID=={ddid}")
                data, corrected = q.getcol("DATA"), q.getcol("CORRECTED_DATA")
                if (field, ddid) == (0, 0):
                    assert not np.allclose(data, corrected)
                else:
                    np.testing.assert_array_equal(corrected, data)
                q.close()
    finally:
        t.close()


def test_each_spectral_window_is_solved_and_applied(tmp_path):
    """Two SPWs (8 and 4 channels) with different injected gains, noise-free: one run solves
    both into one table (each band's intervals and bins), and applying the table corrects
    each SPW's data back to the model."""
    from radiocloud.core.testing import MSSpec, build_ms

    ms = build_ms(tmp_path / "spw.ms", MSSpec(n_ant=6, n_time=3, spw_chans=(8, 4), n_corr=2,
                                              extra_columns=("MODEL_DATA",)))  # fmt: skip
    rng = np.random.default_rng(5)
    g = np.exp(1j * rng.uniform(-np.pi, np.pi, (2, 6, 2))) * rng.uniform(0.8, 1.2, (2, 6, 2))
    with table(str(ms), readonly=False, ack=False) as t:
        dd = t.getcol("DATA_DESC_ID")
        a1, a2 = t.getcol("ANTENNA1"), t.getcol("ANTENNA2")
        for d in (0, 1):
            rows = np.flatnonzero(dd == d)
            cell = t.getcell("MODEL_DATA", int(rows[0])).shape
            for r in rows:
                m = t.getcell("MODEL_DATA", int(r))
                t.putcell("DATA", int(r), g[d, a1[r]][None] * m * np.conj(g[d, a2[r]][None]))
                t.putcell("FLAG", int(r), np.zeros(cell, bool))
    assert calibrate(ms, "--terms", "G", "--time-interval", "0", "--min-baselines", "2",
                     "--gain-table", tmp_path / "g.zarr", "--iter-recipe", "100") == 0  # fmt: skip
    terms, _ = read_gain_table(str(tmp_path / "g.zarr"))
    tab = terms["G"]
    assert sorted(set(tab.ddid.values)) == [0, 1]
    for d in (0, 1):
        rows = tab.ddid.values == d
        sol = tab.gains.values[rows][:, ~tab.gain_flags.values[rows][0, :, 0, 0, 0]][0, 0, :, 0]
        want = g[d] * np.conj(g[d, :1]) / np.abs(g[d, :1])
        np.testing.assert_allclose(sol, want, atol=1e-5)
    assert apply(ms, "--gain-table", tmp_path / "g.zarr", "--output-column", "CORRECTED_DATA") == 0
    with table(str(ms), ack=False) as t:
        for r in range(t.nrows()):
            np.testing.assert_allclose(t.getcell("CORRECTED_DATA", r), t.getcell("MODEL_DATA", r),
                                       rtol=1e-4, atol=1e-5)  # fmt: skip


def test_apply_to_one_spw_leaves_the_others_with_their_data(tmp_path):
    from radiocloud.core.testing import MSSpec, build_ms

    ms = build_ms(tmp_path / "two.ms", MSSpec(n_ant=6, n_time=3, spw_chans=(8, 4), n_corr=2,
                                              extra_columns=("MODEL_DATA",)))  # fmt: skip
    assert calibrate(ms, "--terms", "G", "--ddid", "0", "--min-baselines", "2",
                     "--gain-table", tmp_path / "g.zarr") == 0  # fmt: skip
    assert apply(ms, "--gain-table", tmp_path / "g.zarr", "--ddid", "0",
                 "--output-column", "CORRECTED_DATA") == 0  # fmt: skip
    with table(str(ms), ack=False) as t:
        q = t.query("DATA_DESC_ID==1")
        for r in range(q.nrows()):
            np.testing.assert_array_equal(q.getcell("CORRECTED_DATA", r), q.getcell("DATA", r))
        q.close()


def test_full_jones_term_corrects_gains_and_leakage(tmp_path, capfd):
    """A full 2x2 Jones matrix per antenna (gains and 5% leakages) put into 4-correlation
    data: --type J=complex corrects the data to the model as well as the true Jones matrices
    do, rc-calibrate-apply of its table gives the same, and it refuses 2-correlation data and
    other terms beside it."""
    ms = tmp_path / "full.ms"
    assert simulate(ms, "--antennas", "10", "--channels", "16", "--integrations", "8",
                    "--correlations", "4", "--model-data", "--no-gains", "--no-delays",
                    "--no-bandpass", "--no-rfi") == 0  # fmt: skip
    rng = np.random.default_rng(3)
    off = (1 - np.eye(2))[None]
    leak = 0.05 * (rng.normal(size=(10, 2, 2)) + 1j * rng.normal(size=(10, 2, 2))) * off
    G = (np.eye(2)[None] * (1 + 0.1 * rng.normal(size=(10, 1, 1)))
         * np.exp(1j * rng.uniform(-np.pi, np.pi, (10, 1, 1))) + leak)  # fmt: skip
    with table(str(ms), readonly=False, ack=False) as t:
        d, a1, a2 = t.getcol("DATA"), t.getcol("ANTENNA1"), t.getcol("ANTENNA2")
        D = np.einsum("rij,rfjk,rlk->rfil", G[a1], d.reshape(len(d), -1, 2, 2), np.conj(G[a2]))
        t.putcol("DATA", D.reshape(d.shape).astype(d.dtype))
    assert calibrate(ms, "--terms", "J", "--type", "J=complex", "--time-interval", "0",
                     "--output-column", "CORRECTED_DATA", "--gain-table", tmp_path / "j.zarr",
                     "--iter-recipe", "50") == 0  # fmt: skip
    c = columns(ms, "CORRECTED_DATA", "MODEL_DATA", "DATA", "WEIGHT")
    inv = np.linalg.inv(G)
    D = c["DATA"].reshape(len(c["DATA"]), -1, 2, 2)
    truth_corrected = np.einsum("rij,rfjk,rlk->rfil", inv[a1], D, np.conj(inv[a2]))

    def whitened(x):
        return np.sqrt((np.abs(x - c["MODEL_DATA"]) ** 2 * c["WEIGHT"][:, None, :] / 2).mean())

    want = whitened(truth_corrected.reshape(c["DATA"].shape))
    assert whitened(c["CORRECTED_DATA"]) == pytest.approx(want, rel=0.03)
    assert whitened(c["DATA"]) > 50 * want
    assert apply(ms, "--gain-table", tmp_path / "j.zarr", "--output-column", "CORR_2") == 0
    np.testing.assert_array_equal(columns(ms, "CORR_2")["CORR_2"], c["CORRECTED_DATA"])
    capfd.readouterr()
    assert calibrate(ms, "--terms", "K,J", "--type", "J=complex") == 2
    assert "is solved alone" in capfd.readouterr().err
    two = tmp_path / "two.ms"
    assert simulate(two, "--antennas", "4", "--channels", "4", "--integrations", "2",
                    "--correlations", "2", "--model-data") == 0  # fmt: skip
    capfd.readouterr()
    assert calibrate(two, "--terms", "J", "--type", "J=complex") == 2
    assert "needs all four correlations" in capfd.readouterr().err
