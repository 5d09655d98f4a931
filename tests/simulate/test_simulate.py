"""rc-simulate against analytic truth, casacore's own UVW and its injected ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from casacore.tables import table, taql
from daskms.experimental.zarr import xds_from_zarr

from radiocloud.core.skymodel import read_skymodel
from radiocloud.simulate.corruptions import thermal_sigma
from radiocloud.simulate.sky import eso137

from .conftest import simulate

POINT_MODEL = """Format = Name, Type, Ra, Dec, I, Q, U, V, SpectralIndex, LogarithmicSI, \
ReferenceFrequency='1284000000', MajorAxis, MinorAxis, Orientation
c,POINT,16:15:03.8,-60.54.26.0,2.5,0.3,0.2,0.1,[-0.7],true,1284000000,,,
"""


def _col(ms, name, sub=None):
    t = table(f"{ms}::{sub}" if sub else str(ms), ack=False)
    try:
        return t.getcol(name)
    finally:
        t.close()


def test_point_source_at_phase_centre_gives_its_flux_on_every_baseline(tmp_path):
    sky = tmp_path / "point.txt"
    sky.write_text(POINT_MODEL)
    ms = tmp_path / "point.ms"
    code = simulate(ms, "--antennas", "6", "--channels", "16", "--integrations", "5",
                    "--sky", sky, "--no-gains", "--no-delays", "--no-bandpass", "--no-rfi",
                    "--noise", "0")  # fmt: skip
    assert code == 0
    data = _col(ms, "DATA")
    freq = _col(ms, "CHAN_FREQ", "SPECTRAL_WINDOW")[0]
    s = (freq / 1.284e9) ** -0.7
    # XX = I + Q, XY = U + iV, YX = U - iV, YY = I - Q  (no factor 1/2)
    expected = np.stack([2.8 * s, (0.2 + 0.1j) * s, (0.2 - 0.1j) * s, 2.2 * s], axis=-1)
    assert data.shape == (15 * 5, 16, 4)
    np.testing.assert_allclose(data, np.broadcast_to(expected, data.shape), rtol=1e-6, atol=1e-6)


def test_uvw_matches_casacore_within_a_millimetre(noise_free_obs):
    t = taql(f"select UVW, mscal.uvwj2000() as UVWCALC from '{noise_free_obs}'")
    ours, theirs = t.getcol("UVW"), t.getcol("UVWCALC")
    assert np.abs(ours).max() > 1000.0  # the check is not vacuous: km baselines
    assert np.abs(ours - theirs).max() < 1e-3


def test_gains_recovered_exactly_from_noise_free_data_over_model(noise_free_obs):
    ms = noise_free_obs
    data, model = _col(ms, "DATA"), _col(ms, "MODEL_DATA")
    a1, a2 = _col(ms, "ANTENNA1"), _col(ms, "ANTENNA2")
    times = _col(ms, "TIME")
    truth = xds_from_zarr(str(ms).replace(".ms", ".truth") + "/gains.zarr")[0].compute()
    g = truth.gains.values  # (time, chan, ant, feed)
    t_index = np.searchsorted(truth.time.values, times)
    assert np.allclose(truth.time.values[t_index], times)
    for c, (fp, fq) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        ratio = data[:, :, c] / model[:, :, c]
        expected = g[t_index, :, a1, fp] * np.conj(g[t_index, :, a2, fq])
        good = np.abs(model[:, :, c]) > 1e-3 * np.abs(model[:, :, c]).max()
        np.testing.assert_allclose(ratio[good], expected[good], rtol=2e-5)
    # the gains are not trivial: phases of order a radian, amplitudes that vary
    assert np.std(np.angle(g)) > 0.5
    assert np.std(np.abs(g)) > 0.01


def test_truth_files(noise_free_obs):
    truth = noise_free_obs.with_name("clean.truth")
    manifest = json.loads((truth / "manifest.json").read_text())
    assert manifest["settings"]["seed"] == 3
    assert manifest["observation"]["n_rows"] == 28 * 12
    assert manifest["observation"]["antennas"] == list(_col(noise_free_obs, "NAME", "ANTENNA"))
    sky = read_skymodel(truth / "skymodel.txt")
    ref = eso137()
    assert sky.names == ref.names
    np.testing.assert_allclose(sky.stokes, ref.stokes, rtol=1e-12)
    np.testing.assert_allclose(sky.ra, ref.ra, rtol=0, atol=1e-12)
    assert not (truth / "rfi_mask.npy").exists()  # --no-rfi
    # every cell of the filled subtables is defined (CASA reads whole columns)
    assert _col(noise_free_obs, "TELESCOPE_NAME", "OBSERVATION") == ["MeerKAT"]
    assert _col(noise_free_obs, "LOG", "OBSERVATION")["shape"] == [1, 1]
    feeds = _col(noise_free_obs, "POLARIZATION_TYPE", "FEED")  # string arrays come as a dict
    assert feeds["shape"] == [8, 2]
    assert feeds["array"][:2] == ["X", "Y"]


def test_noise_has_the_radiometer_rms(tmp_path):
    ms = tmp_path / "noise.ms"
    code = simulate(ms, "--antennas", "10", "--channels", "8", "--integrations", "20",
                    "--integration-time", "4s", "--no-gains", "--no-delays", "--no-bandpass",
                    "--no-rfi", "--model-data", "--sefd", "430", "--seed", "11")  # fmt: skip
    assert code == 0
    noise = _col(ms, "DATA") - _col(ms, "MODEL_DATA")
    width = _col(ms, "CHAN_WIDTH", "SPECTRAL_WINDOW")[0]
    sigma = thermal_sigma(430.0, width, 4.0)
    measured = np.concatenate([noise.real, noise.imag]).std(axis=(0, 2))
    # 2 x 900 x 4 = 7200 samples per channel: the rms is known to ~1%
    np.testing.assert_allclose(measured, sigma, rtol=0.04)
    np.testing.assert_allclose(_col(ms, "SIGMA")[0], sigma.mean(), rtol=1e-6)
    np.testing.assert_allclose(_col(ms, "WEIGHT")[0], sigma.mean() ** -2, rtol=1e-5)


def test_rfi_mask_marks_exactly_the_injected_interference(tmp_path):
    ms = tmp_path / "rfi.ms"
    code = simulate(ms, "--antennas", "6", "--channels", "64", "--integrations", "30",
                    "--noise", "0", "--model-data", "--seed", "5")  # fmt: skip
    assert code == 0
    mask = np.load(tmp_path / "rfi.truth" / "rfi_mask.npy")
    data = _col(ms, "DATA")
    assert mask.shape == data.shape
    assert mask.dtype == bool
    # gains are on, so compare against the corrupted model: DATA - J M J^H = RFI
    truth = xds_from_zarr(str(tmp_path / "rfi.truth" / "gains.zarr"))[0].compute()
    g = truth.gains.values
    t_index = np.searchsorted(truth.time.values, _col(ms, "TIME"))
    a1, a2, model = _col(ms, "ANTENNA1"), _col(ms, "ANTENNA2"), _col(ms, "MODEL_DATA")
    corrupted = np.empty_like(model)
    for c, (fp, fq) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        corrupted[:, :, c] = g[t_index, :, a1, fp] * model[:, :, c] * np.conj(g[t_index, :, a2, fq])
    injected = np.abs(data - corrupted)
    assert 0.01 < mask.mean() < 0.9
    # noise-free, so every sample with RFI is marked; unmarked samples hold none (up to
    # float32 rounding of a few-Jy sky), marked ones are not a blanket over clean data
    assert np.all(mask[injected > 1e-3])
    assert injected[~mask].max() < 1e-4
    assert np.median(injected[mask]) > 0.1


def test_same_seed_same_data_whatever_the_chunking(tmp_path):
    # 16 antennas x 30 integrations = 3600 rows: one chunk, or one integration per chunk at 1 MB
    args = ["--antennas", "16", "--channels", "16", "--integrations", "30", "--seed", "2"]
    assert simulate(tmp_path / "a.ms", *args) == 0
    assert simulate(tmp_path / "b.ms", *args, "--memory-budget", "1MB") == 0
    assert simulate(tmp_path / "c.ms", *args[:-1], "3") == 0
    manifests = [json.loads((tmp_path / f"{x}.truth/manifest.json").read_text()) for x in "ab"]
    assert [m["observation"]["row_chunk"] for m in manifests] == [3600, 120]
    a, b, c = (_col(tmp_path / f"{x}.ms", "DATA") for x in "abc")
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    ga, gb = (xds_from_zarr(str(tmp_path / f"{x}.truth/gains.zarr"))[0].gains.values for x in "ab")
    assert np.array_equal(ga, gb)
    ma, mb = (np.load(tmp_path / f"{x}.truth/rfi_mask.npy") for x in "ab")
    assert np.array_equal(ma, mb)


def test_channel_chunks_when_one_integration_exceeds_the_budget(tmp_path):
    # one integration of 120 baselines x 256 channels x 4 corr is ~9 MB in flight: a 4 MB
    # budget on 2 threads splits it into 64-channel chunks, and the data do not change
    args = ["--antennas", "16", "--channels", "256", "--integrations", "3", "--seed", "8"]
    assert simulate(tmp_path / "a.ms", *args) == 0
    assert simulate(tmp_path / "b.ms", *args, "--memory-budget", "4MB", "--threads", "2") == 0
    chunking = [
        json.loads((tmp_path / f"{x}.truth/manifest.json").read_text())["observation"] for x in "ab"
    ]
    assert [(c["row_chunk"], c["chan_chunk"]) for c in chunking] == [(360, 256), (120, 64)]
    for name in ("DATA", "FLAG", "WEIGHT"):
        assert np.array_equal(_col(tmp_path / "a.ms", name), _col(tmp_path / "b.ms", name))
    ma, mb = (np.load(tmp_path / f"{x}.truth/rfi_mask.npy") for x in "ab")
    assert np.array_equal(ma, mb)


def test_worker_processes_write_the_same_observation(tmp_path):
    args = ["--antennas", "8", "--channels", "8", "--integrations", "24", "--seed", "4"]
    assert simulate(tmp_path / "a.ms", *args) == 0
    assert simulate(tmp_path / "b.ms", *args, "--workers", "2", "--threads", "1",
                    "--memory-budget", "1KB") == 0  # fmt: skip
    assert np.array_equal(_col(tmp_path / "a.ms", "DATA"), _col(tmp_path / "b.ms", "DATA"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ms", "a.truth", "b.ms", "b.truth"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--antennas", "m000,m999"], "unknown antenna m999"),
        (["--antennas", "80"], "MeerKAT has 64 antennas"),
        (["--channels", "lots"], "--channels 'lots'"),
        (["--integration-time", "8 parsecs"], "cannot read the duration"),
        (["--sky", "nowhere.txt"], "sky model 'nowhere.txt' does not exist"),
        (["--noise", "-1"], "sigma must be 0"),
        (["--start-time", "yesterday"], "cannot read --start-time"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, args, message):
    out = tmp_path / "bad.ms"
    assert simulate(out, "--integrations", "2", *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert message in err[0]
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_refused_and_untouched(tmp_path, capsys):
    out = tmp_path / "keep.ms"
    args = ["--antennas", "4", "--channels", "4", "--integrations", "2"]
    assert simulate(out, *args) == 0
    before = _col(out, "DATA")
    assert simulate(out, *args, "--seed", "9") == 2
    assert "exists" in capsys.readouterr().err
    np.testing.assert_array_equal(_col(out, "DATA"), before)
    assert simulate(out, *args, "--seed", "9", "--overwrite") == 0
    assert not np.array_equal(_col(out, "DATA"), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.ms", "keep.truth"]


def test_unwritable_output_folder(tmp_path, capsys):
    assert simulate(tmp_path / "missing" / "x.ms", "--integrations", "2") == 2
    assert "does not exist" in capsys.readouterr().err


def test_eso137_model_is_the_radio_galaxy():
    sky = eso137()
    flux = sky.stokes[:, 0]
    galaxy = np.array([not n.startswith("bg") for n in sky.names])
    assert 10.0 < flux[galaxy].sum() < 14.0
    lm = sky.lm(sky.ra[0], sky.dec[0])
    extent = np.degrees(np.hypot(*lm[galaxy].T)).max() * 60
    assert 2.0 < extent < 5.0  # lobes a few arcmin from the core
    threads = [i for i, n in enumerate(sky.names) if n.startswith("thread")]
    assert len(threads) >= 10
    assert np.all(sky.shape[threads, 0] > 4 * sky.shape[threads, 1])  # long and thin
    assert np.all(sky.spectral_coeffs[threads, 0] < -1.0)  # steep spectrum


def test_pointing_reads_sexagesimal_with_or_without_unit_letters():
    import math

    import pytest

    from radiocloud.core.errors import OptionError
    from radiocloud.simulate.cli import _pointing

    ra, dec = _pointing("13:15:30.0,-58:05:00.0")
    assert math.degrees(ra) == pytest.approx(198.875)
    assert math.degrees(dec) == pytest.approx(-58 - 5 / 60)
    assert _pointing("13h15m30s,-58d05m00s") == pytest.approx((ra, dec))
    with pytest.raises(OptionError, match="cannot read --pointing"):
        _pointing("13.2,-58")  # no units: hours or degrees? refused, not guessed
