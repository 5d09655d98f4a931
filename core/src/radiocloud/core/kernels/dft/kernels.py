"""Direct Fourier transform of a component list (points and Gaussians) to visibilities.

Conventions (shared by rc-simulate and rc-predict):

* Phase: ``V(u, v, w) = Σ_s B_s(ν) G_s(u, v, ν) exp(+2πi (u l + v m + w (n - 1)) ν / c)`` with
  ``n = sqrt(1 - l² - m²)``, uvw in metres as stored in the Measurement Set's UVW column, ``l``
  increasing to the East and ``m`` to the North. The sign is :data:`PHASE_SIGN` (+1); it is the
  one WSClean's DFT predictor, DP3's component predictor and codex-africanus's
  ``wsclean_predict`` (which codex-africanus labels the "casa" convention) apply to MS UVW.
  With the opposite sign a model predicted here would image at ``(-l, -m)`` in WSClean.
* No ``1/n`` factor: ``B_s`` is a component's integrated (apparent) flux, as in a WSClean
  component list, not a surface brightness per unit ``dl dm``. DP3 and codex-africanus predict
  component lists this way; WSClean's DFT predictor divides by ``n``, which differs from this
  by less than 2e-4 within 1 degree of the phase centre.
* Gaussian: FWHM ``θ_maj``, ``θ_min`` (radians) and position angle ``PA`` of the major axis from
  North through East. The major axis points along ``(l, m) = (sin PA, cos PA)``, so with
  ``u_maj = u sin PA + v cos PA`` and ``u_min = u cos PA - v sin PA`` (in wavelengths),
  ``G = exp(-π² (θ_maj² u_maj² + θ_min² u_min²) / (4 ln 2))``; ``G = 1`` at the origin, so ``B``
  stays the integrated flux. tests/core/test_dft.py checks this against a numeric Fourier sum.
* Smearing (optional): a visibility is the average over its channel width and integration
  time. With the phase ``φ = τ ν`` (``τ = 2π (u l + v m + w (n - 1)) / c``) varying linearly
  across a channel of width ``Δν``, the average of ``exp(iφ)`` is ``sinc(τ Δν / 2)`` times its
  value at the channel centre (``sinc x = sin x / x``); likewise over the integration, with the
  change ``Δτ`` of ``τ`` over the integration, ``sinc(Δτ ν / 2)``. Both are exact for a phase
  linear in frequency and time, which holds to second order over one channel and integration.
  :func:`earth_rotation_uvw_rate` gives the UVW rate from which ``Δτ`` follows.
* Brightness (no factor 1/2, as in CASA and WSClean): XX = I+Q, XY = U+iV, YX = U-iV, YY = I-Q;
  RR = I+V, RL = Q+iU, LR = Q-iU, LL = I-V.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import prange

from radiocloud.core.jit import njit

LIGHTSPEED = 299_792_458.0
"""Speed of light in vacuum, m/s."""

PHASE_SIGN = 1.0
"""Sign of the phase exponent, see the module docstring."""

_ANCHOR_EVERY = 32  # channels between exact phasors in the geometric progression
_UNIFORM_RTOL = 1e-9  # channel spacings equal to this fraction of the spacing count as uniform
_PHASE_PER_HZ = PHASE_SIGN * 2.0 * math.pi / LIGHTSPEED
_GAUSS_PER_HZ2 = math.pi**2 / (4.0 * math.log(2.0)) / LIGHTSPEED**2
_GAUSS_UNDERFLOW = 746.0  # exp(-746) rounds to zero in float64
_GAUSS_PROGRESSION_MAX = 50.0  # a Gaussian attenuated less than exp(-50) uses the progression
_RESOLVED = -1.0  # q of a Gaussian whose exp(-q ν²) is zero in every channel

# Weights of (I, Q, U, V) in each correlation.
_STOKES_WEIGHTS = {
    "XX": (1, 1, 0, 0),
    "XY": (0, 0, 1, 1j),
    "YX": (0, 0, 1, -1j),
    "YY": (1, -1, 0, 0),
    "RR": (1, 0, 0, 1),
    "RL": (0, 1, 1j, 0),
    "LR": (0, 1, -1j, 0),
    "LL": (1, 0, 0, -1),
}


def brightness(stokes: np.ndarray, corr_names: Sequence[str]) -> np.ndarray:
    """Correlations (..., corr) complex128 from Stokes (..., 4) [I, Q, U, V].

    ``corr_names`` is any selection of ``XX XY YX YY`` (linear feeds) or ``RR RL LR LL``
    (circular feeds), in the dataset's order, e.g. ``("XX", "YY")`` or ``("RR",)``.
    """
    stokes = np.asarray(stokes)
    if stokes.ndim == 0 or stokes.shape[-1] != 4:
        raise ValueError(f"stokes must have shape (..., 4) [I, Q, U, V], got {stokes.shape}")
    names = [str(name).upper() for name in corr_names]
    unknown = [name for name in names if name not in _STOKES_WEIGHTS]
    if not names or unknown:
        raise ValueError(
            f"unknown correlations {unknown or names}: expected names from "
            f"{' '.join(_STOKES_WEIGHTS)}"
        )
    if len({name[0] in "XY" for name in names}) > 1:
        raise ValueError(f"correlations {names} mix linear (X, Y) and circular (R, L) feeds")
    weights = np.array([_STOKES_WEIGHTS[name] for name in names], dtype=np.complex128)
    return np.matmul(stokes, weights.T)


def predict_vis(
    uvw: np.ndarray,
    lm: np.ndarray,
    shape: np.ndarray,
    frequency: np.ndarray,
    coherency: np.ndarray,
    *,
    out: np.ndarray | None = None,
    accumulate: bool = False,
    chan_width: float = 0.0,
    uvw_delta: np.ndarray | None = None,
) -> np.ndarray:
    """Visibilities (row, chan, corr) of a component list, by direct Fourier transform.

    ``uvw`` (row, 3) metres; ``lm`` (source, 2) direction cosines from the phase centre;
    ``shape`` (source, 3) Gaussian (FWHM major, FWHM minor, position angle North through East),
    radians, all zero for a point source; ``frequency`` (chan,) Hz; ``coherency``
    (source, chan, corr) each component's correlations per channel (:func:`brightness` times
    its spectrum). See the module docstring for the phase sign, the absence of ``1/n`` and the
    Gaussian.

    The result is complex64 if ``coherency`` is complex64, else complex128; sums run in
    complex128. ``out`` (row, chan, corr), C-contiguous complex64 or complex128, receives the
    result in its own dtype; with ``accumulate=True`` the result is added to it instead.

    Smearing (module docstring): ``chan_width`` (Hz, every channel's width) > 0 applies
    bandwidth smearing; ``uvw_delta`` (row, 3), each row's change of UVW over its integration in
    metres (:func:`earth_rotation_uvw_rate` times the exposure), applies time smearing. Time
    smearing differs per channel, so it takes one exact exponential per channel (about twice
    the cost); bandwidth smearing costs nothing measurable.

    Evenly spaced channels (spacings equal within 1e-9 of the spacing) advance each phasor, and
    each Gaussian attenuated by less than exp(-50), by one multiplication per channel, restarting
    from exact values every 32 channels; the phase error this adds stays below ``32e-9`` times
    the phase step between channels. Other channels take one exact exponential each.
    """
    uvw = np.ascontiguousarray(uvw, dtype=np.float64)
    lm = np.ascontiguousarray(lm, dtype=np.float64)
    shape = np.ascontiguousarray(shape, dtype=np.float64)
    frequency = np.ascontiguousarray(frequency, dtype=np.float64)
    coherency = np.asarray(coherency)
    dtype = np.complex64 if coherency.dtype == np.complex64 else np.complex128
    _check_shapes(uvw, lm, shape, frequency, coherency)
    vis_shape = (uvw.shape[0], frequency.shape[0], coherency.shape[2])
    if out is None:
        if accumulate:
            raise ValueError("accumulate=True needs an out array to add to")
        out = np.empty(vis_shape, dtype=dtype)
    else:
        _check_out(out, vis_shape)
    # Points first, so the kernel's per-channel loops over points carry no Gaussian work, and
    # coherency as (chan, corr, source) real and imaginary planes, so its sums over sources
    # read contiguous memory.
    order = np.argsort(np.any(shape[:, :2] != 0.0, axis=1), kind="stable")
    npoint = int(np.sum(np.all(shape[:, :2] == 0.0, axis=1)))
    planes = np.asarray(coherency[order], dtype=np.complex128).transpose(1, 2, 0)
    uniform, spacing = _uniform_spacing(frequency)
    if not (math.isfinite(chan_width) and chan_width >= 0.0):
        raise ValueError(f"chan_width must be a finite width >= 0 Hz, got {chan_width}")
    time_smear = uvw_delta is not None
    if time_smear:
        uvw_delta = np.ascontiguousarray(uvw_delta, dtype=np.float64)
        if uvw_delta.shape != uvw.shape:
            raise ValueError(f"uvw_delta must have shape {uvw.shape}, got {uvw_delta.shape}")
    else:
        uvw_delta = np.zeros((0, 3))
    _predict(
        uvw,
        lm[order],
        shape[order],
        npoint,
        frequency,
        uniform,
        spacing,
        np.ascontiguousarray(planes.real),
        np.ascontiguousarray(planes.imag),
        out,
        accumulate,
        float(chan_width),
        uvw_delta,
        time_smear,
    )
    return out


_EARTH_ROTATION = 7.292115e-5
"""Earth's sidereal rotation rate, rad/s (hour angle advances at this rate)."""


def earth_rotation_uvw_rate(uvw: np.ndarray, dec: float) -> np.ndarray:
    """d(u, v, w)/dt (row, 3), m/s, of baselines ``uvw`` (row, 3) m tracking declination ``dec``.

    With ``u = Lx sin H + Ly cos H``, ``v = sin δ (Ly sin H - Lx cos H) + Lz cos δ`` and
    ``w = cos δ (Lx cos H - Ly sin H) + Lz sin δ`` for a baseline (Lx, Ly, Lz) in the equatorial
    frame and hour angle H, ``du/dH = w cos δ - v sin δ``, ``dv/dH = u sin δ`` and
    ``dw/dH = -u cos δ``; H advances at Earth's sidereal rate. Precession and aberration change
    this by far less than the rate's own variation over an integration.
    """
    uvw = np.asarray(uvw, dtype=np.float64)
    sin_d, cos_d = math.sin(dec), math.cos(dec)
    rate = np.empty_like(uvw)
    rate[:, 0] = uvw[:, 2] * cos_d - uvw[:, 1] * sin_d
    rate[:, 1] = uvw[:, 0] * sin_d
    rate[:, 2] = -uvw[:, 0] * cos_d
    return rate * _EARTH_ROTATION


def _check_shapes(uvw, lm, shape, frequency, coherency) -> None:
    if uvw.ndim != 2 or uvw.shape[1] != 3:
        raise ValueError(f"uvw must have shape (row, 3), got {uvw.shape}")
    if lm.ndim != 2 or lm.shape[1] != 2:
        raise ValueError(f"lm must have shape (source, 2), got {lm.shape}")
    nsrc = lm.shape[0]
    if shape.shape != (nsrc, 3):
        raise ValueError(f"shape must have shape (source={nsrc}, 3), got {shape.shape}")
    if frequency.ndim != 1:
        raise ValueError(f"frequency must have shape (chan,), got {frequency.shape}")
    nchan = frequency.shape[0]
    if coherency.ndim != 3 or coherency.shape[:2] != (nsrc, nchan):
        raise ValueError(
            f"coherency must have shape (source={nsrc}, chan={nchan}, corr), got {coherency.shape}"
        )
    if np.any(np.sum(lm**2, axis=1) > 1.0):
        raise ValueError("lm holds directions with l² + m² > 1 (beyond the horizon)")


def _check_out(out: np.ndarray, vis_shape: tuple[int, int, int]) -> None:
    if not isinstance(out, np.ndarray) or out.shape != vis_shape:
        raise ValueError(f"out must be an array of shape {vis_shape}")
    if out.dtype not in (np.complex64, np.complex128):
        raise ValueError(f"out must be complex64 or complex128, got {out.dtype}")
    if not (out.flags.c_contiguous and out.flags.writeable):
        raise ValueError("out must be C-contiguous and writeable")


def _uniform_spacing(frequency: np.ndarray) -> tuple[bool, float]:
    """(True, spacing) if the channels are evenly spaced, else (False, 0.0)."""
    if frequency.shape[0] < 2:
        return False, 0.0
    spacing = (frequency[-1] - frequency[0]) / (frequency.shape[0] - 1)
    deviation = np.max(np.abs(np.diff(frequency) - spacing))
    return bool(deviation <= _UNIFORM_RTOL * abs(spacing)), float(spacing)


@njit()
def _source_terms(lm, shape):
    """Per source: n - 1, and (a, b, c) with -ln G = (a u² + b uv + c v²) ν², u, v in metres."""
    nsrc = lm.shape[0]
    nm1 = np.empty(nsrc)
    forms = np.zeros((nsrc, 3))
    for s in range(nsrc):
        r2 = lm[s, 0] ** 2 + lm[s, 1] ** 2
        nm1[s] = -r2 / (1.0 + math.sqrt(1.0 - r2))  # n - 1 without cancellation
        major2 = shape[s, 0] ** 2
        minor2 = shape[s, 1] ** 2
        sin_pa = math.sin(shape[s, 2])
        cos_pa = math.cos(shape[s, 2])
        forms[s, 0] = _GAUSS_PER_HZ2 * (major2 * sin_pa**2 + minor2 * cos_pa**2)
        forms[s, 1] = _GAUSS_PER_HZ2 * 2.0 * (major2 - minor2) * sin_pa * cos_pa
        forms[s, 2] = _GAUSS_PER_HZ2 * (major2 * cos_pa**2 + minor2 * sin_pa**2)
    return nm1, forms


# Scratch rows of the per-row kernel, each (source,).
_TAU, _Q, _WEIGHT, _RE, _IM, _STEP_RE, _STEP_IM, _RATIO, _RATIO_STEP, _SMEAR, _TAU_DELTA = range(11)
_ROWS_PER_TASK = 16  # rows sharing one scratch allocation

# parallel: this loop is the whole cost of a simulation (~1e10 visibility-source terms) and
# rows are independent, so prange over blocks of rows splits it across cores, no shared writes.
# fastmath reassoc+contract only: lets LLVM vectorise the sums over sources (3x faster); without
# nnan/ninf/afn, special values and the accuracy of cos, sin and exp are untouched.
_FAST = {"reassoc", "contract"}


@njit(parallel=True, fastmath=_FAST)
def _predict(
    uvw, lm, shape, npoint, frequency, uniform, spacing, coh_re, coh_im, out, accumulate,
    chan_width, uvw_delta, time_smear,
):  # fmt: skip
    nrow = uvw.shape[0]
    nsrc = lm.shape[0]
    nchan, ncorr = coh_re.shape[0], coh_re.shape[1]
    nm1, forms = _source_terms(lm, shape)
    nu2 = frequency * frequency
    nu2_range = (np.min(nu2), np.max(nu2)) if nchan else (0.0, 0.0)
    ntask = (nrow + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in prange(ntask):
        scratch = np.empty((11, nsrc))
        acc = np.empty((nchan, ncorr), dtype=np.complex128)
        for r in range(task * _ROWS_PER_TASK, min((task + 1) * _ROWS_PER_TASK, nrow)):
            acc[:] = 0.0
            _row_terms(uvw[r], lm, nm1, forms, npoint, nu2_range, uniform, spacing, scratch)
            _smear_terms(r, lm, nm1, chan_width, uvw_delta, time_smear, scratch)
            _row_sum(scratch, npoint, frequency, uniform and not time_smear, spacing, time_smear,
                     coh_re, coh_im, acc)  # fmt: skip
            for s in range(npoint, nsrc):  # Gaussians the progressions cannot carry
                if uniform and scratch[_WEIGHT, s] == 0.0 and scratch[_Q, s] != _RESOLVED:
                    _add_exact(acc, coh_re, coh_im, s, frequency, scratch[:, s], time_smear)
            for k in range(nchan):
                for c in range(ncorr):
                    if accumulate:
                        out[r, k, c] += acc[k, c]
                    else:
                        out[r, k, c] = acc[k, c]
    return out


@njit(fastmath=_FAST)
def _row_terms(uvw_r, lm, nm1, forms, npoint, nu2_range, uniform, spacing, scratch):
    """Per source for one row: delay tau (rad/Hz), Gaussian q (1/Hz²), weight, steps."""
    u, v, w = uvw_r[0], uvw_r[1], uvw_r[2]
    for s in range(lm.shape[0]):
        tau = _PHASE_PER_HZ * (u * lm[s, 0] + v * lm[s, 1] + w * nm1[s])
        scratch[_TAU, s] = tau
        scratch[_STEP_RE, s] = math.cos(tau * spacing)
        scratch[_STEP_IM, s] = math.sin(tau * spacing)
        scratch[_Q, s] = 0.0
        scratch[_WEIGHT, s] = 1.0
    for s in range(npoint, lm.shape[0]):
        q = forms[s, 0] * u * u + forms[s, 1] * u * v + forms[s, 2] * v * v
        scratch[_Q, s] = q
        scratch[_RATIO_STEP, s] = math.exp(-2.0 * q * spacing * spacing)
        if q * nu2_range[0] > _GAUSS_UNDERFLOW:
            scratch[_Q, s] = _RESOLVED
            scratch[_WEIGHT, s] = 0.0
        elif uniform and q * nu2_range[1] > _GAUSS_PROGRESSION_MAX:
            scratch[_WEIGHT, s] = 0.0  # its ratios between channels could overflow


@njit(fastmath=_FAST)
def _smear_terms(r, lm, nm1, chan_width, uvw_delta, time_smear, scratch):
    """Per source for row r: the bandwidth-smearing factor, and the change of tau (rad/Hz) over
    the integration that sets the time smearing of each channel."""
    for s in range(lm.shape[0]):
        scratch[_SMEAR, s] = _sinc(0.5 * scratch[_TAU, s] * chan_width)
        scratch[_TAU_DELTA, s] = 0.0
        if time_smear:
            du, dv, dw = uvw_delta[r, 0], uvw_delta[r, 1], uvw_delta[r, 2]
            scratch[_TAU_DELTA, s] = _PHASE_PER_HZ * (du * lm[s, 0] + dv * lm[s, 1] + dw * nm1[s])


@njit()
def _sinc(x):
    """sin(x) / x, 1 at 0 (the series below |x| = 1e-4 is exact to double precision)."""
    if abs(x) < 1e-4:
        return 1.0 - x * x / 6.0
    return math.sin(x) / x


@njit(fastmath=_FAST)
def _row_sum(scratch, npoint, frequency, uniform, spacing, time_smear, coh_re, coh_im, acc):
    """acc[chan, corr] += Σ_s weight coherency exp(i tau ν - q ν²), vectorised over sources.

    Evenly spaced channels advance each source's phasor (times its Gaussian) by one complex
    multiplication per channel, a Gaussian's ratio between channels itself advancing by the
    constant exp(-2 q spacing²), and restart from exact values every _ANCHOR_EVERY channels so
    rounding does not accumulate. Other channels take exact values at every channel.
    """
    nsrc = scratch.shape[1]
    nchan, ncorr = acc.shape
    block = _ANCHOR_EVERY if uniform else 1
    re, im = scratch[_RE], scratch[_IM]
    step_re, step_im = scratch[_STEP_RE], scratch[_STEP_IM]
    ratio, ratio_step, q = scratch[_RATIO], scratch[_RATIO_STEP], scratch[_Q]
    for start in range(0, nchan, block):
        nu = frequency[start]
        for s in range(nsrc):
            amp = scratch[_WEIGHT, s] * scratch[_SMEAR, s]
            if time_smear:
                amp *= _sinc(0.5 * scratch[_TAU_DELTA, s] * nu)
            if s >= npoint:
                ratio[s] = 0.0
                if amp != 0.0:
                    amp *= math.exp(-q[s] * nu * nu)
                    ratio[s] = math.exp(-q[s] * spacing * (2.0 * nu + spacing))
            phase = scratch[_TAU, s] * nu
            re[s] = amp * math.cos(phase)
            im[s] = amp * math.sin(phase)
        for k in range(start, min(start + block, nchan)):
            for c in range(ncorr):
                sum_re = 0.0
                sum_im = 0.0
                for s in range(nsrc):
                    sum_re += re[s] * coh_re[k, c, s] - im[s] * coh_im[k, c, s]
                    sum_im += re[s] * coh_im[k, c, s] + im[s] * coh_re[k, c, s]
                acc[k, c] += complex(sum_re, sum_im)
            if k + 1 < start + block:
                _advance(re, im, step_re, step_im, ratio, ratio_step, npoint)


@njit(fastmath=_FAST)
def _advance(re, im, step_re, step_im, ratio, ratio_step, npoint):
    """One channel on: phasor *= step for points, *= step * ratio for Gaussians."""
    for s in range(npoint):
        new_re = re[s] * step_re[s] - im[s] * step_im[s]
        im[s] = re[s] * step_im[s] + im[s] * step_re[s]
        re[s] = new_re
    for s in range(npoint, re.shape[0]):
        new_re = (re[s] * step_re[s] - im[s] * step_im[s]) * ratio[s]
        im[s] = (re[s] * step_im[s] + im[s] * step_re[s]) * ratio[s]
        re[s] = new_re
        ratio[s] *= ratio_step[s]


@njit()
def _add_exact(acc, coh_re, coh_im, s, frequency, terms, time_smear):
    """acc[chan, corr] += coherency[s] exp(i tau ν - q ν²) (times the smearing factors), one
    exact exponential per channel; ``terms`` is source s's column of the row's scratch."""
    nchan, ncorr = acc.shape
    tau, q = terms[_TAU], terms[_Q]
    for k in range(nchan):
        nu = frequency[k]
        amp = terms[_SMEAR] * math.exp(-q * nu * nu)
        if time_smear:
            amp *= _sinc(0.5 * terms[_TAU_DELTA] * nu)
        term = amp * complex(math.cos(tau * nu), math.sin(tau * nu))
        for c in range(ncorr):
            acc[k, c] += term * complex(coh_re[k, c, s], coh_im[k, c, s])
