"""Instrumental corruptions with known truth: gains, delays, bandpass, thermal noise and RFI.

Every random draw comes from ``numpy.random.SeedSequence([seed, STREAM, ...])`` keyed by what
it describes (an integration, a baseline), never by how the data is chunked, so a simulation
is the same bit for bit whatever the memory budget or the number of threads.

Conventions. Antenna ``p``'s Jones matrix is diagonal, J_p(t, ν) = g_p(t) K_p(ν) B_p(ν) per
feed (X, Y), with K_p(ν) = exp(2πi τ_p ν) for a delay τ_p, and corrupts V_pq into
J_p V_pq J_q^H. Thermal noise has rms σ = SEFD / sqrt(2 Δν Δt) in each of the real and
imaginary parts of a visibility; WEIGHT = 1/σ², SIGMA = σ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

C = 299_792_458.0
EARTH_ROTATION = 7.2921150e-5  # rad/s
MEERKAT_SEFD = 430.0  # Jy, L-band (420-450 Jy)

# independent random streams
GAINS, DELAYS, BANDPASS, NOISE, RFI = range(5)
NOISE_CHAN_BLOCK = 64  # channels per noise key block (see noise_block)


def rng(seed: int, stream: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *key]))


def thermal_sigma(sefd: float, chan_width: np.ndarray, integration_time: float) -> np.ndarray:
    """(chan,) noise rms in the real and imaginary parts of one visibility, Jy."""
    return sefd / np.sqrt(2.0 * np.abs(chan_width) * integration_time)


def _smooth_process(generator, n: int, width: float, size: tuple) -> np.ndarray:
    """Gaussian random processes along the first axis (``n`` samples), unit rms, correlated
    over ``width`` samples (a Gaussian kernel of that FWHM); extra axes are independent."""
    if width <= 1.0:
        out = generator.normal(size=(n, *size))
    else:
        sigma = width / 2.3548
        pad = int(4 * sigma) + 1
        white = generator.normal(size=(n + 2 * pad, *size))
        x = np.arange(-pad, pad + 1)
        kernel = np.exp(-0.5 * (x / sigma) ** 2)
        out = np.apply_along_axis(lambda s: np.convolve(s, kernel, mode="valid"), 0, white)
    out -= out.mean(axis=0)
    rms = np.sqrt((out**2).mean(axis=0))
    return out / np.where(rms > 0, rms, 1.0)


@dataclass(frozen=True)
class GainSettings:
    amplitude_rms: float = 0.05
    phase_rms_deg: float = 30.0
    coherence_time: float = 900.0  # s
    delay_rms_ns: float = 2.0
    bandpass_amplitude_rms: float = 0.1
    bandpass_phase_rms_deg: float = 5.0


def time_gains(seed, n_time, n_ant, integration_time, s: GainSettings) -> np.ndarray:
    """(time, ant, feed) smooth random complex gains, mean amplitude 1."""
    g = rng(seed, GAINS)
    width = s.coherence_time / integration_time
    amp = 1.0 + s.amplitude_rms * _smooth_process(g, n_time, width, (n_ant, 2))
    # a random constant offset per antenna and feed plus a smooth drift
    offset = g.uniform(-np.pi, np.pi, (1, n_ant, 2))
    phase = offset + np.radians(s.phase_rms_deg) * _smooth_process(g, n_time, width, (n_ant, 2))
    return amp * np.exp(1j * phase)


def delays_ns(seed: int, n_ant: int, s: GainSettings) -> np.ndarray:
    """(ant, feed) delays in ns."""
    return rng(seed, DELAYS).normal(0.0, s.delay_rms_ns, (n_ant, 2))


def delay_gains(delay_ns: np.ndarray, freq: np.ndarray) -> np.ndarray:
    """(chan, ant, feed) exp(2πi τ ν)."""
    return np.exp(2j * np.pi * delay_ns[None, :, :] * 1e-9 * freq[:, None, None])


def bandpass(seed: int, freq: np.ndarray, n_ant: int, s: GainSettings) -> np.ndarray:
    """(chan, ant, feed) smooth bandpass: a ripple of a few cosine terms across the band
    and a gentle roll-off towards both band edges."""
    g = rng(seed, BANDPASS)
    x = (freq - freq.min()) / max(np.ptp(freq), 1.0)  # 0..1 across the band
    nterm = 6
    k = np.arange(1, nterm + 1)
    basis = np.cos(np.pi * k[None, :] * x[:, None])  # (chan, term)
    scale = 1.0 / k  # smoother: less power in higher terms
    amp_c = g.normal(size=(nterm, n_ant, 2)) * scale[:, None, None]
    phs_c = g.normal(size=(nterm, n_ant, 2)) * scale[:, None, None]
    norm = np.sqrt((scale**2).sum() / 2)
    ripple = np.einsum("ct,tap->cap", basis, amp_c) / norm
    phase = np.einsum("ct,tap->cap", basis, phs_c) / norm
    rolloff = 1.0 - 0.3 * np.exp(-(np.minimum(x, 1 - x) / 0.03))[:, None, None]
    amp = rolloff * (1.0 + s.bandpass_amplitude_rms * ripple)
    return amp * np.exp(1j * np.radians(s.bandpass_phase_rms_deg) * phase)


def noise_block(time_index, baseline_index, chans, *, seed, n_baseline, sigma, n_corr):
    """(row, chan, corr) complex64 Gaussian noise of rms ``sigma[chans]`` in each part.

    Noise is drawn in key blocks of one integration x NOISE_CHAN_BLOCK channels, each from its
    own seed, and the block's rows and channels pick theirs out, so the result does not depend
    on how rows or channels are chunked."""
    out = np.empty((len(time_index), len(chans), n_corr), dtype=np.complex64)
    scale = np.asarray(sigma, dtype=np.float32)[chans][None, :, None]
    edges = np.flatnonzero(np.diff(time_index)) + 1
    keys = chans // NOISE_CHAN_BLOCK
    for rows in np.split(np.arange(len(time_index)), edges):
        if not len(rows):
            continue
        t = int(time_index[rows[0]])
        for key in np.unique(keys):
            g = rng(seed, NOISE, t, int(key))
            draw = g.standard_normal((n_baseline, NOISE_CHAN_BLOCK, n_corr, 2), dtype=np.float32)
            full = draw.view(np.complex64)[..., 0]
            picked = keys == key
            sub = full[baseline_index[rows]][:, chans[picked] % NOISE_CHAN_BLOCK]
            out[np.ix_(rows, np.flatnonzero(picked))] = sub
    return out * scale
