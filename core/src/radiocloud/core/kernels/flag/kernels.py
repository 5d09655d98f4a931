"""RFI flagging of real-valued (time, chan) planes: AOFlagger's SumThreshold and its helpers.

Every function takes ``data`` (time, chan) real, e.g. the amplitude of one baseline and
correlation, and ``flags`` (time, chan) bool, True where a sample is already flagged; the
``*_cube`` forms take (baseline, time, chan) and run baselines in parallel (numba threads,
``nthreads`` of them; None keeps numba's setting). Inputs are never modified: flagging
functions return a new array holding the input flags OR what they found.

* Flagged and non-finite samples are excluded from every statistic (sums, medians,
  smoothing weights); the flagging functions (:func:`sum_threshold`, :func:`flag_plane`,
  :func:`mad_flag`) also flag every non-finite sample.
* float32 and float64 data run as they are (sums and smoothing in float64); other real types
  are converted to float64. Complex data must be reduced first (e.g. ``np.abs``).

The iterated strategy (:func:`flag_plane`) follows AOFlagger's default: estimate a smooth
background with the flagged samples left out, divide the residual by its robust sigma,
SumThreshold it, and repeat at a lower threshold, so strong RFI is flagged before it can bias
the background under the fainter RFI around it. A. R. Offringa et al. 2010, MNRAS 405, 155,
"Post-correlation radio frequency interference classification methods".
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
from numba import prange

from radiocloud.core.jit import njit
from radiocloud.core.kernels.flag import options, planes
from radiocloud.core.kernels.flag.background import smooth_plane_linear
from radiocloud.core.kernels.flag.options import DEFAULT_WINDOWS

TIME_SIGMA = 1.6
"""Default width (samples) of :func:`flag_plane`'s background smoothing along time."""

CHAN_SIGMA = 2.2
"""Default width (channels) of :func:`flag_plane`'s background smoothing along frequency."""


# --- Public functions on one plane --------------------------------------------------------------


def sum_threshold(
    data: np.ndarray,
    flags: np.ndarray,
    *,
    threshold: float,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    rho: float = 1.5,
    direction: str = "both",
    absolute: bool = False,
) -> np.ndarray:
    """(time, chan) bool: ``flags`` OR what SumThreshold finds in ``data`` (units of sigma).

    For each window size M of ``windows``, in the order given, every run of M consecutive
    samples along the direction whose mean exceeds ``threshold / rho**log2(M)`` is flagged
    whole. Flagged samples, including those flagged by earlier window sizes of this call,
    count as the threshold value (AOFlagger): a run's mean then exceeds the threshold exactly
    when the mean of its unflagged samples does, so a strong flagged spike does not spread to
    its neighbours. Flags found at one window size count from the next one on.

    ``direction``: "time" (runs along time, for narrow-band RFI), "freq" (alias "chan", runs
    along frequency, for broadband bursts) or "both": every window size along time, then every
    one along frequency. Only positive excursions by default; ``absolute=True`` flags runs
    whose mean is below ``-threshold / rho**log2(M)`` too (the magnitude of the run's mean is
    tested, as in AOFlagger: summing ``|data|`` would flag pure noise in long windows).
    """
    data, flags = options.pair(data, flags, 2)
    plan = options.sum_threshold_plan(threshold, windows, rho, direction)
    mask = planes.excluded(data, flags)
    return planes.sum_threshold_plane(data, mask, *plan, bool(absolute))


def smooth_background(
    data: np.ndarray,
    flags: np.ndarray,
    *,
    time_sigma: float,
    chan_sigma: float,
    linear: bool = True,
) -> np.ndarray:
    """(time, chan) smooth background of ``data``, in its dtype (float64 for other types).

    ``linear`` (the default, and :func:`flag_plane`'s background) fits a plane under the
    weights below at every sample (local-linear regression, see ``background.py``): unbiased
    for trends, also at the edges and beside flagged gaps, where a weighted mean is pulled
    towards the inside. ``linear=False`` returns the weighted mean itself:

    A Gaussian of ``time_sigma`` samples along time and ``chan_sigma`` channels along
    frequency (0 = no smoothing along that axis), truncated at ``ceil(3 sigma)`` samples either
    side, with flagged and non-finite samples given weight 0 and the result divided by the
    smoothed weights: ``Σ g w x / Σ g w``. Near the edges the kernel is cut off and the weights
    renormalise the same way. Where no usable sample lies under the kernel, the median of the
    usable samples of the plane (0.0 if there are none): never NaN. Cost
    O(time × chan × (kernel length in time + kernel length in chan)).
    """
    data, flags = options.pair(data, flags, 2)
    gauss = options.gaussians(time_sigma, chan_sigma)
    smooth = smooth_plane_linear if linear else planes.smooth_plane
    background = smooth(data, planes.excluded(data, flags), *gauss)
    return background.astype(data.dtype, copy=False)


def robust_sigma(data: np.ndarray, flags: np.ndarray) -> float:
    """1.4826 × the median absolute deviation of the unflagged finite samples of ``data``
    (any shape): the standard deviation for Gaussian noise, robust to outliers below half
    the samples. NaN if no sample is unflagged and finite."""
    data, flags = options.pair(data, flags, None)
    mask = flags | ~np.isfinite(data)
    return float(planes.robust_sigma_plane(data.ravel(), mask.ravel()))


def flag_plane(
    data: np.ndarray,
    flags: np.ndarray,
    *,
    threshold: float = 6.0,
    iterations: int = 3,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    rho: float = 1.5,
    time_sigma: float = TIME_SIGMA,
    chan_sigma: float = CHAN_SIGMA,
    direction: str = "both",
    absolute: bool = False,
) -> np.ndarray:
    """(time, chan) bool: ``flags``, non-finite samples, and the RFI the iterated strategy finds.

    Iteration ``i = 0 .. iterations - 1``, with ``flags`` the flags so far::

        residual = data - smooth_background(data, flags, time_sigma, chan_sigma)
        flags = sum_threshold(residual / robust_sigma(residual, flags), flags,
                              threshold=threshold * 2**(iterations - 1 - i), ...)

    so with the defaults the thresholds are 24, 12 and 6 sigma (AOFlagger's schedule, factor 2
    per iteration): the strongest RFI is flagged first and left out of the background and the
    noise estimate before the faint RFI beside it is judged. If the residual has no spread
    (robust sigma 0 or NaN: constant or fully flagged data), the iterations stop there.
    ``windows``, ``rho``, ``direction`` and ``absolute`` as in :func:`sum_threshold`; the
    smoothing widths as in :func:`smooth_background`. ``threshold`` is in units of the noise.
    """
    data, flags = options.pair(data, flags, 2)
    args = options.flag_plan(threshold, iterations, windows, rho, time_sigma, chan_sigma, direction)
    return planes.flag_plane(data, flags, *args, bool(absolute))


def mad_flag(
    data: np.ndarray,
    flags: np.ndarray,
    *,
    threshold: float = 5.0,
    axis: str = "time",
    upper: bool = False,
) -> np.ndarray:
    """(time, chan) bool: ``flags``, non-finite samples, and robust outliers.

    ``axis`` is the axis the statistics run over: "time" gives each channel the median and
    1.4826 × MAD of its unflagged finite samples over time, "chan" each time over frequency.
    A sample is flagged when ``|x - median| > threshold × 1.4826 × MAD`` of its line (strictly,
    so a line whose MAD is 0 loses every sample that differs from its median). A line with no
    usable sample gains no flags. ``upper`` flags only samples above the median
    (``x - median > threshold × 1.4826 × MAD``): RFI adds power, dips are not RFI.
    """
    data, flags = options.pair(data, flags, 2)
    mask = planes.excluded(data, flags)
    return planes.mad_flag_plane(
        data, mask, options.positive(threshold, "threshold"), options.axis_code(axis), bool(upper)
    )


def dilate(flags: np.ndarray, *, time: int = 0, chan: int = 0) -> np.ndarray:
    """(time, chan) bool: every flag grown by ``time`` samples either side along time and
    ``chan`` channels either side along frequency (a (2 time + 1) × (2 chan + 1) rectangle)."""
    flags = options.flag_array(flags, 2)
    return planes.dilate_plane(flags, options.reach(time, "time"), options.reach(chan, "chan"))


def flag_dense(flags: np.ndarray, *, max_fraction: float, axis: str) -> np.ndarray:
    """(time, chan) bool: ``flags`` with mostly flagged lines flagged whole.

    ``axis="time"``: a channel whose fraction of flagged times exceeds ``max_fraction``
    becomes fully flagged; ``axis="chan"``: a time whose fraction of flagged channels does.
    """
    flags = options.flag_array(flags, 2)
    return planes.flag_dense_plane(flags, options.fraction(max_fraction), options.axis_code(axis))


_FLAG_PLAN_ARGS = (
    "threshold", "iterations", "windows", "rho", "time_sigma", "chan_sigma", "direction"
)  # fmt: skip


def check_flag_options(**kwargs) -> None:
    """Raise as :func:`flag_plane` would for these keyword options (TypeError for unknown
    names, ValueError for bad values), without running it."""
    bound = inspect.signature(flag_plane).bind(None, None, **kwargs)
    bound.apply_defaults()
    args = bound.arguments
    options.flag_plan(*(args[name] for name in _FLAG_PLAN_ARGS))


# --- Cube forms: (baseline, time, chan), baselines in parallel ----------------------------------


def sum_threshold_cube(
    data: np.ndarray,
    flags: np.ndarray,
    *,
    threshold: float,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    rho: float = 1.5,
    direction: str = "both",
    absolute: bool = False,
    nthreads: int | None = None,
) -> np.ndarray:
    """(baseline, time, chan) bool: :func:`sum_threshold` of every baseline's plane."""
    data, flags = options.pair(data, flags, 3)
    plan = options.sum_threshold_plan(threshold, windows, rho, direction)
    out = np.empty(data.shape, dtype=np.bool_)
    with options.numba_threads(nthreads):
        return _sum_threshold_cube(data, flags, *plan, bool(absolute), out)


def smooth_background_cube(
    data,
    flags,
    *,
    time_sigma: float,
    chan_sigma: float,
    linear: bool = True,
    nthreads: int | None = None,
) -> np.ndarray:
    """(baseline, time, chan): :func:`smooth_background` of every baseline's plane."""
    data, flags = options.pair(data, flags, 3)
    gauss = options.gaussians(time_sigma, chan_sigma)
    out = np.empty(data.shape, dtype=data.dtype)
    with options.numba_threads(nthreads):
        return _smooth_cube(data, flags, *gauss, bool(linear), out)


def robust_sigma_cube(data, flags, *, nthreads: int | None = None) -> np.ndarray:
    """(baseline,) float64: :func:`robust_sigma` of every baseline's plane."""
    data, flags = options.pair(data, flags, 3)
    out = np.empty(data.shape[0])
    with options.numba_threads(nthreads):
        return _robust_sigma_cube(data, flags, out)


def flag_cube(
    data: np.ndarray,
    flags: np.ndarray,
    *,
    threshold: float = 6.0,
    iterations: int = 3,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    rho: float = 1.5,
    time_sigma: float = TIME_SIGMA,
    chan_sigma: float = CHAN_SIGMA,
    direction: str = "both",
    absolute: bool = False,
    nthreads: int | None = None,
) -> np.ndarray:
    """(baseline, time, chan) bool: :func:`flag_plane` of every baseline's plane."""
    data, flags = options.pair(data, flags, 3)
    args = options.flag_plan(threshold, iterations, windows, rho, time_sigma, chan_sigma, direction)
    out = np.empty(data.shape, dtype=np.bool_)
    with options.numba_threads(nthreads):
        return _flag_cube(data, flags, *args, bool(absolute), out)


def mad_flag_cube(
    data, flags, *, threshold: float = 5.0, axis: str = "time", upper: bool = False, nthreads=None
):
    """(baseline, time, chan) bool: :func:`mad_flag` of every baseline's plane."""
    data, flags = options.pair(data, flags, 3)
    threshold, over = options.positive(threshold, "threshold"), options.axis_code(axis)
    out = np.empty(data.shape, dtype=np.bool_)
    with options.numba_threads(nthreads):
        return _mad_cube(data, flags, threshold, over, bool(upper), out)


def dilate_cube(flags, *, time: int = 0, chan: int = 0, nthreads: int | None = None):
    """(baseline, time, chan) bool: :func:`dilate` of every baseline's plane."""
    flags = options.flag_array(flags, 3)
    out = np.empty(flags.shape, dtype=np.bool_)
    with options.numba_threads(nthreads):
        return _dilate_cube(flags, options.reach(time, "time"), options.reach(chan, "chan"), out)


def flag_dense_cube(flags, *, max_fraction: float, axis: str, nthreads: int | None = None):
    """(baseline, time, chan) bool: :func:`flag_dense` of every baseline's plane."""
    flags = options.flag_array(flags, 3)
    out = np.empty(flags.shape, dtype=np.bool_)
    with options.numba_threads(nthreads):
        return _dense_cube(flags, options.fraction(max_fraction), options.axis_code(axis), out)


# parallel, in every driver below: baselines are independent planes and a cube holds tens to
# thousands of them, so prange gives each thread whole planes, with no shared writes.


@njit(parallel=True)
def _sum_threshold_cube(data, flags, windows, chis, direction, absolute, out):
    for b in prange(data.shape[0]):
        mask = planes.excluded(data[b], flags[b])
        out[b] = planes.sum_threshold_plane(data[b], mask, windows, chis, direction, absolute)
    return out


@njit(parallel=True)
def _smooth_cube(data, flags, time_kernel, chan_kernel, linear, out):
    for b in prange(data.shape[0]):
        mask = planes.excluded(data[b], flags[b])
        if linear:
            out[b] = smooth_plane_linear(data[b], mask, time_kernel, chan_kernel)
        else:
            out[b] = planes.smooth_plane(data[b], mask, time_kernel, chan_kernel)
    return out


@njit(parallel=True)
def _robust_sigma_cube(data, flags, out):
    for b in prange(data.shape[0]):
        out[b] = planes.robust_sigma_plane(data[b], planes.excluded(data[b], flags[b]))
    return out


@njit(parallel=True)
def _flag_cube(
    data, flags, iterations, windows, chis, direction, time_kernel, chan_kernel, absolute, out
):
    for b in prange(data.shape[0]):
        plane = planes.flag_plane(
            data[b], flags[b], iterations, windows, chis, direction, time_kernel, chan_kernel,
            absolute,
        )  # fmt: skip
        out[b] = plane
    return out


@njit(parallel=True)
def _mad_cube(data, flags, threshold, over, upper, out):
    for b in prange(data.shape[0]):
        mask = planes.excluded(data[b], flags[b])
        out[b] = planes.mad_flag_plane(data[b], mask, threshold, over, upper)
    return out


@njit(parallel=True)
def _dilate_cube(flags, time, chan, out):
    for b in prange(flags.shape[0]):
        out[b] = planes.dilate_plane(flags[b], time, chan)
    return out


@njit(parallel=True)
def _dense_cube(flags, max_fraction, over, out):
    for b in prange(flags.shape[0]):
        out[b] = planes.flag_dense_plane(flags[b], max_fraction, over)
    return out
