"""Radio-frequency interference at realistic amplitudes, with a ground-truth mask.

Three kinds, drawn once per simulation from its seed:

- persistent narrow-band emitters at the frequencies that plague MeerKAT L-band (GSM, GNSS,
  Inmarsat, Iridium), slowly modulated in time;
- broadband bursts lasting one integration (lightning, arcing, radar);
- interference on a few baselines only (e.g. a local source coupling into two antennas),
  in a channel range for part of the observation.

An emitter on the ground does not move with the sky: after fringe stopping on the phase
centre it rotates with the fringe phase 2π ν w/c and is smeared over an integration by
sinc(ν ω_E u cos δ Δt / c), so it is strongest on short baselines, as in real data.
Emitters are fully linearly polarised at a random angle ψ: XX = cos²ψ, XY = YX = cosψ sinψ,
YY = sin²ψ (times the amplitude).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radiocloud.simulate.corruptions import EARTH_ROTATION, RFI, C, rng

# (low MHz, high MHz, amplitude Jy) of persistent emitters inside 856-1712 MHz
L_BAND_EMITTERS = (
    (935.0, 960.0, 800.0),  # GSM-900 downlink
    (1164.0, 1215.0, 60.0),  # GPS L5 / Galileo E5
    (1217.0, 1238.0, 150.0),  # GPS L2
    (1242.0, 1250.0, 60.0),  # GLONASS L2
    (1525.0, 1559.0, 40.0),  # Inmarsat downlink
    (1574.4, 1576.4, 400.0),  # GPS L1
    (1598.0, 1606.0, 120.0),  # GLONASS L1
    (1616.0, 1626.5, 250.0),  # Iridium
)


@dataclass(frozen=True)
class RFIModel:
    emitters: np.ndarray  # (time, chan, corr): persistent emitters' flux, before fringing
    bursts: np.ndarray  # (time, corr): broadband bursts' flux (zero outside burst times)
    antenna_offset: np.ndarray  # (ant,) metres: each emitter path's extra delay at an antenna
    local: tuple  # ((ant1, ant2, chan_lo, chan_hi, t_lo, t_hi, amplitude, phase), ...)


def _pol(psi: float, corr_feeds: np.ndarray) -> np.ndarray:
    e = np.array([np.cos(psi), np.sin(psi)])
    return e[corr_feeds[:, 0]] * e[corr_feeds[:, 1]]


def draw(seed, freq, chan_width, times, n_ant, corr_feeds) -> RFIModel:
    """Draw the interference of one simulation."""
    g = rng(seed, RFI)
    n_time, n_chan, n_corr = len(times), len(freq), len(corr_feeds)
    lo, hi = freq - np.abs(chan_width) / 2, freq + np.abs(chan_width) / 2
    emitters = np.zeros((n_time, n_chan, n_corr))
    bursts = np.zeros((n_time, n_corr))
    t = times - times[0]
    for f_lo, f_hi, amp in L_BAND_EMITTERS:
        overlap = np.clip(np.minimum(hi, f_hi * 1e6) - np.maximum(lo, f_lo * 1e6), 0, None)
        if not overlap.any():
            continue
        spectrum = amp * overlap / np.abs(chan_width)  # flux in each channel, Jy
        period = g.uniform(300.0, 3000.0)
        modulation = 0.6 + 0.4 * np.sin(2 * np.pi * t / period + g.uniform(0, 2 * np.pi))
        pol = _pol(g.uniform(0, np.pi), corr_feeds)
        emitters += modulation[:, None, None] * spectrum[None, :, None] * pol[None, None, :]
    n_burst = max(1, round(0.03 * n_time))
    for ti in g.choice(n_time, size=min(n_burst, n_time), replace=False):
        bursts[ti] += g.uniform(20.0, 100.0) * _pol(g.uniform(0, np.pi), corr_feeds)
    local = []
    pairs = set()
    while len(pairs) < min(3, n_ant * (n_ant - 1) // 2):
        p, q = sorted(g.choice(n_ant, size=2, replace=False))
        pairs.add((int(p), int(q)))
    for p, q in sorted(pairs):
        width = max(1, round(0.05 * n_chan))
        c0 = int(g.integers(0, n_chan - width + 1))
        span = max(1, round(0.2 * n_time))
        t0 = int(g.integers(0, n_time - span + 1))
        local.append(
            (p, q, c0, c0 + width, t0, t0 + span, g.uniform(5.0, 30.0), g.uniform(0, 2 * np.pi))
        )
    offset = g.uniform(-50.0, 50.0, n_ant)
    return RFIModel(emitters, bursts, offset, tuple(local))


def _fringe(uvw, w, freq, dec, integration_time) -> np.ndarray:
    """(row, chan) fringe phasor of a ground-based emitter, smeared over an integration."""
    phase = (2 * np.pi / C) * freq[None, :] * w[:, None]
    rate = (EARTH_ROTATION * np.cos(dec) * integration_time / C) * uvw[:, 0:1] * freq[None, :]
    return (np.sinc(rate) * np.exp(1j * phase)).astype(np.complex64)


def rfi_block(time_index, ant1, ant2, uvw, freq, chans, *, model: RFIModel, dec, integration_time):
    """(row, chan, corr) complex64 interference visibilities of a block of rows and of the
    channels ``chans`` (indices into the band) at frequencies ``freq``.

    Work is spent where there is interference: the emitters' channels on every row, every
    channel only on the rows of burst integrations."""
    n_corr = model.emitters.shape[2]
    out = np.zeros((len(time_index), len(freq), n_corr), np.complex64)
    w = uvw[:, 2] + model.antenna_offset[ant2] - model.antenna_offset[ant1]
    emitters = model.emitters[:, chans]
    hot = np.flatnonzero(emitters.any(axis=(0, 2)))
    if len(hot):
        fringe = _fringe(uvw, w, freq[hot], dec, integration_time)
        flux = emitters[time_index[:, None], hot[None, :]].astype(np.float32)
        out[:, hot] = fringe[:, :, None] * flux
    rows = np.flatnonzero(model.bursts[time_index].any(axis=1))
    if len(rows):
        fringe = _fringe(uvw[rows], w[rows], freq, dec, integration_time)
        flux = model.bursts[time_index[rows]][:, None, :].astype(np.float32)
        out[rows] += fringe[:, :, None] * flux
    for p, q, c0, c1, t0, t1, amp, phs in model.local:
        hit = (ant1 == p) & (ant2 == q) & (time_index >= t0) & (time_index < t1)
        band = (chans >= c0) & (chans < c1)
        out[np.ix_(hit, band)] += amp * np.exp(1j * phs)
    return out


def mask_block(time_index, ant1, ant2, uvw, freq, chans, *, threshold, **rfi_args):
    """(row, chan, corr) bool: where the block's RFI is non-zero and at least
    ``threshold[chans]`` (Jy; all of the band's channels)."""
    values = np.abs(rfi_block(time_index, ant1, ant2, uvw, freq, chans, **rfi_args))
    return (values >= np.asarray(threshold)[chans][None, :, None]) & (values > 0)
