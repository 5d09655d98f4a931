"""delay (K): a delay and a phase offset per antenna and feed, g(ν) = exp(i(φ + 2πτ(ν - ν₀)))
with ν₀ the centre of the solution interval in frequency; ``pure-delay`` has no offset, for
data whose phases at ν₀ are already calibrated (without the offset, a phase beyond ±90° at
ν₀ turns the χ² minimum in τ into a maximum).

Delays are in ns and frequencies in GHz, so the normal equations stay well conditioned. Solves
start from the peak of each antenna's delay spectrum on its baseline to the reference
antenna (a zero-padded FFT across the channels), so Gauss-Newton starts inside the right
2π-wrap and does not diverge on large delays.
"""

from __future__ import annotations

import numpy as np

from radiocloud.core.kernels.calibrate.terms.base import Term, expand

PAD = 16  # FFT zero-padding factor for the initial estimate


class Delay(Term):
    type = "delay"
    params = ("offset", "delay")
    per_channel = True
    time_interval = 0
    summary = "delay (ns) and phase offset per antenna and feed (K)"

    @classmethod
    def _phase(cls, theta, fmap, nu):
        tau = expand(theta[..., -1], fmap)
        phase = 2 * np.pi * tau * nu[None, :, None, None]
        if len(cls.params) == 2:
            phase = phase + expand(theta[..., 0], fmap)
        return phase

    @classmethod
    def gains(cls, theta, fmap, nu):
        return np.exp(1j * cls._phase(theta, fmap, nu))

    @classmethod
    def jacobian(cls, theta, g, fmap, nu):
        d = (2j * np.pi * nu[None, :, None, None] * g)[..., None]
        if len(cls.params) == 2:
            d = np.concatenate([(1j * g)[..., None], d], axis=-1)
        return d

    @classmethod
    def reference(cls, theta, ref):
        return theta - theta[:, :, ref : ref + 1]

    @classmethod
    def initialise(cls, theta, stats, geo, ref):
        S = stats.S
        theta = theta.copy()
        pairs, feeds, freq = geo.pairs, geo.feeds, geo.freq
        for fi in range(theta.shape[1]):
            chans = np.flatnonzero(geo.fmap == fi)
            if len(chans) < 2:
                continue
            f = freq[chans]
            df = np.median(np.diff(f))
            k = np.rint((f - f[0]) / df).astype(int)
            if df <= 0 or np.abs((f - f[0]) / df - k).max() > 1e-3:
                continue  # channels not on one grid: start from zero delay
            nfft = int(2 ** np.ceil(np.log2(PAD * (k[-1] + 1))))
            for b, (p, q) in enumerate(pairs):
                if ref not in (p, q):
                    continue
                other, conj = (p, False) if q == ref else (q, True)
                for c, (fa, fb) in enumerate(feeds):
                    if fa != fb:
                        continue
                    z = np.zeros((S.shape[0], nfft), np.complex128)
                    z[:, k] = np.conj(S[:, chans, b, c]) if conj else S[:, chans, b, c]
                    spec = np.fft.fft(z, axis=1)
                    tau, phase0 = _peak(spec, nfft, df)
                    theta[:, fi, other, fa, -1] = tau
                    if len(cls.params) == 2:  # the phase at channel 0, moved to ν₀
                        centre = phase0 - 2 * np.pi * tau * geo.nu[chans[0]]
                        theta[:, fi, other, fa, 0] = np.angle(np.exp(1j * centre))
        return theta


class PureDelay(Delay):
    type = "pure-delay"
    params = ("delay",)
    summary = "delay per antenna and feed, ns, no phase offset"


def _peak(spectrum: np.ndarray, nfft: int, df: float) -> tuple[np.ndarray, np.ndarray]:
    """(time,) delay in ns at each row's spectrum peak, refined by a parabola through it, and
    the phase there (the phase of the fringe at the first channel)."""
    spec = np.abs(spectrum)
    j = spec.argmax(axis=1)
    rows = np.arange(len(spec))
    lo, mid, hi = spec[rows, (j - 1) % nfft], spec[rows, j], spec[rows, (j + 1) % nfft]
    denom = lo - 2 * mid + hi
    shift = np.where(denom < 0, 0.5 * (lo - hi) / np.where(denom < 0, denom, 1), 0.0)
    cycles = (j + shift) / nfft
    cycles = np.where(cycles >= 0.5, cycles - 1, cycles)
    return np.where(mid > 0, cycles / df * 1e9, 0.0), np.angle(spectrum[rows, j])
