"""A gain table's chain evaluated at the data's times and channels, and compared with the truth."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from radiocloud.core.io.gaintable import chain_gains, compare_gains


def _term(gains, lo, hi, gain_freq, flags=None):
    """A term as rc-calibrate writes it: gains (gain_time, gain_freq, ant, dir, corr)."""
    gains = np.asarray(gains)[:, :, :, None, :]
    flags = np.zeros(gains.shape, bool) if flags is None else flags[:, :, :, None, :]
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    dims = ("gain_time", "gain_freq", "ant", "dir", "corr")
    return xr.Dataset(
        {"gains": (dims, gains), "gain_flags": (dims, flags)},
        coords={
            "gain_time": (lo + hi) / 2,
            "gain_time_lo": ("gain_time", lo),
            "gain_time_hi": ("gain_time", hi),
            "band_lo": ("gain_time", np.full(len(lo), 0.9e9)),
            "band_hi": ("gain_time", np.full(len(lo), 1.1e9)),
            "gain_freq": np.asarray(gain_freq, float),
        },
    )


def test_chain_is_the_product_of_each_terms_interval():
    rng = np.random.default_rng(1)
    times = 100.0 + 8 * np.arange(6)  # 6 integrations
    freq = 0.95e9 + 10e6 * np.arange(8)  # 8 channels
    shape = (3, 2)  # ant, feed
    k = np.exp(2j * np.pi * rng.normal(size=(1, 8, *shape)))  # per channel, whole scan
    g = rng.normal(size=(2, 2, *shape)) + 1j * rng.normal(size=(2, 2, *shape))  # 3 ints x 4 chans
    gflags = np.zeros(g.shape, bool)
    gflags[1, 0, 2, 1] = True
    terms = {
        "K": _term(k, [96], [148], freq),
        "G": _term(g, [96, 120], [116, 148], freq.reshape(2, 4).mean(1), gflags),
    }
    net, flags = chain_gains(terms, times, freq)
    want = np.empty((6, 8, *shape), complex)
    for t in range(6):
        for c in range(8):
            want[t, c] = k[0, c] * g[t // 3, c // 4]
    np.testing.assert_allclose(net, want)
    assert flags.sum() == 3 * 4
    assert flags[3:, :4, 2, 1].all()


def test_compare_takes_out_the_reference_phase_and_the_scale():
    rng = np.random.default_rng(2)
    truth = np.exp(1j * rng.uniform(-np.pi, np.pi, (4, 5, 6, 2))) * rng.uniform(0.5, 1.5)
    error = 1 + 0.01 * (rng.normal(size=truth.shape) + 1j * rng.normal(size=truth.shape))
    ref_phase = np.exp(1j * rng.uniform(-np.pi, np.pi, (4, 5, 1, 2)))  # what selfcal can't fix
    solved = 0.9 * truth * ref_phase * error
    flags = np.zeros(truth.shape, bool)
    flags[0, 0, 0, 0] = True  # the reference: no valid solution of that time, channel, feed
    result = compare_gains(solved, flags, truth)
    assert result.scale == pytest.approx(0.9, rel=0.01)
    assert not result.valid[0, 0, :, 0].any()
    assert result.valid.sum() == truth.size - 6
    want = 0.9 * error * np.exp(-1j * np.angle(error[:, :, :1])) / result.scale
    np.testing.assert_allclose(result.ratio, want)
    amp, phase = result.amplitude, result.phase_deg
    assert np.sqrt(np.mean(amp**2)) == pytest.approx(0.01, rel=0.2)  # one part of 1% noise
    expected = np.degrees(0.01) * np.sqrt(2 * 5 / 6)  # the reference antenna's phase is 0
    assert np.sqrt(np.mean(phase**2)) == pytest.approx(expected, rel=0.2)
    assert result.summary().startswith(f"amplitude scale {result.scale:.4f}; errors rms 1.")
