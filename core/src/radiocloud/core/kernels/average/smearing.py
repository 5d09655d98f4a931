"""Predicted decorrelation of averaging, and the baseline-dependent bins it allows.

A source at distance ``l`` (direction cosine) from the phase centre has visibility phase
``2π ν/c (u l + v m)``. Over a bin of ``n`` samples that phase advances linearly (to first
order), and the mean of ``n`` unit phasors stepping by ``2x`` has amplitude
``D_n(x) = |sin(n x) / (n sin x)|``. That is exactly the ratio of the smearing of the wide bin
to that of one input sample, whether the input samples are point samples or boxcar integrals:
``D_n(x) = sinc(n x) / sinc(x)``. For time, ``x = π ν l |(u̇, v̇)| Δt / c`` with the Earth-rotation
rate of the baseline; for frequency ``x = π l |(u, v)| Δν / c``. The worst direction on a circle of
radius ``l`` is along the rate, so these are upper bounds of the loss for any source inside
the circle. Time and frequency losses multiply (their cross term is second order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from radiocloud.core.kernels.dft.kernels import earth_rotation_uvw_rate

C = 299_792_458.0
# Half width at half maximum of a uniformly illuminated dish's beam: 1.02 λ / D / 2 (Airy)
HWHM_FACTOR = 0.51


def dirichlet(x: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """``|sin(n x) / (n sin x)|``, 1 at x = 0 (and for n = 1)."""
    x = np.asarray(x, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    sin_x = np.sin(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(np.sin(n * x) / (n * sin_x))
    return np.where(np.abs(sin_x) < 1e-12, 1.0, ratio)


@dataclass(frozen=True)
class BaselineMotion:
    """Per baseline: the largest projected length |(u, v)| and Earth-rotation rate |(u̇, v̇)|
    over the rows seen (m and m/s)."""

    antenna1: np.ndarray
    antenna2: np.ndarray
    uv_length: np.ndarray
    uv_rate: np.ndarray

    @classmethod
    def from_rows(cls, antenna1, antenna2, uvw, dec: float, n_ant: int) -> BaselineMotion:
        uvw = np.asarray(uvw, dtype=np.float64)
        rate = earth_rotation_uvw_rate(uvw, dec)
        bl = np.asarray(antenna1, np.int64) * n_ant + np.asarray(antenna2, np.int64)
        ids, inverse = np.unique(bl, return_inverse=True)
        length = np.zeros(len(ids))
        speed = np.zeros(len(ids))
        np.maximum.at(length, inverse, np.hypot(uvw[:, 0], uvw[:, 1]))
        np.maximum.at(speed, inverse, np.hypot(rate[:, 0], rate[:, 1]))
        return cls(ids // n_ant, ids % n_ant, length, speed)

    def merge(self, other: BaselineMotion, n_ant: int) -> BaselineMotion:
        a1 = np.r_[self.antenna1, other.antenna1]
        a2 = np.r_[self.antenna2, other.antenna2]
        bl = a1 * n_ant + a2
        ids, inverse = np.unique(bl, return_inverse=True)
        length = np.zeros(len(ids))
        speed = np.zeros(len(ids))
        np.maximum.at(length, inverse, np.r_[self.uv_length, other.uv_length])
        np.maximum.at(speed, inverse, np.r_[self.uv_rate, other.uv_rate])
        return BaselineMotion(ids // n_ant, ids % n_ant, length, speed)


def edge_distance(freq: np.ndarray, fov: float | None, dish_diameter: float) -> np.ndarray:
    """Direction cosine of the field's edge at each frequency: ``sin(fov / 2)`` for a given
    field of view (diameter, radians), else the primary beam's half-power radius."""
    freq = np.asarray(freq, dtype=np.float64)
    if fov is not None:
        return np.full(freq.shape, math.sin(0.5 * fov))
    return np.minimum(HWHM_FACTOR * C / (freq * dish_diameter), 1.0)


def decorrelation(
    motion: BaselineMotion,
    *,
    freq: np.ndarray,
    chan_width: np.ndarray,
    edge: np.ndarray,
    dt: float,
    time_factor: np.ndarray | int,
    chan_factor: np.ndarray | int,
) -> dict[str, np.ndarray]:
    """Predicted amplitude loss per baseline at the field's edge (worst channel): the losses
    of time averaging alone, of channel averaging alone, and of both ("both" is 1 - the
    product of the two amplitudes)."""
    freq = np.asarray(freq, dtype=np.float64)[None, :]
    width = np.abs(np.asarray(chan_width, dtype=np.float64))[None, :]
    edge = np.asarray(edge, dtype=np.float64)[None, :]
    nt = np.broadcast_to(np.asarray(time_factor), motion.uv_rate.shape)[:, None]
    nc = np.broadcast_to(np.asarray(chan_factor), motion.uv_rate.shape)[:, None]
    x_time = math.pi * freq * edge * motion.uv_rate[:, None] * dt / C
    x_freq = math.pi * edge * motion.uv_length[:, None] * width / C
    amp_time = dirichlet(x_time, nt)
    amp_freq = dirichlet(x_freq, nc)
    return {
        "time": 1.0 - amp_time.min(axis=1),
        "frequency": 1.0 - amp_freq.min(axis=1),
        "both": 1.0 - (amp_time * amp_freq).min(axis=1),
    }


def bda_factors(
    motion: BaselineMotion,
    *,
    freq: np.ndarray,
    chan_width: np.ndarray,
    edge: np.ndarray,
    dt: float,
    max_time_factor: int,
    max_chan_factor: int,
    max_decorrelation: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per baseline, the power-of-two time and channel factors (up to the maxima) that shrink
    the data most with a predicted loss at the field's edge of at most ``max_decorrelation``;
    ties go to the smaller loss. Returns (time factors, channel factors, predicted losses)."""
    powers_t = [1 << i for i in range(int(math.log2(max(max_time_factor, 1))) + 1)]
    powers_c = [1 << i for i in range(int(math.log2(max(max_chan_factor, 1))) + 1)]
    nbl = len(motion.uv_rate)
    best_t = np.ones(nbl, dtype=np.int64)
    best_c = np.ones(nbl, dtype=np.int64)
    best_loss = decorrelation(
        motion, freq=freq, chan_width=chan_width, edge=edge, dt=dt, time_factor=1, chan_factor=1
    )["both"]
    best_gain = np.ones(nbl)
    for nt in powers_t:
        for nc in powers_c:
            loss = decorrelation(
                motion, freq=freq, chan_width=chan_width, edge=edge, dt=dt,
                time_factor=nt, chan_factor=nc,
            )["both"]  # fmt: skip
            gain = float(nt * nc)
            better = (loss <= max_decorrelation) & (
                (gain > best_gain) | ((gain == best_gain) & (loss < best_loss))
            )
            best_t[better], best_c[better] = nt, nc
            best_loss[better], best_gain[better] = loss[better], gain
    return best_t, best_c, best_loss
