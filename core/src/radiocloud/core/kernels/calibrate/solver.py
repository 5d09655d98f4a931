"""Gauss-Newton on the sufficient statistics of one term, with an exact line search.

Each iteration builds the per-antenna normal equations (the block-diagonal approximation of
JᴴJ over the term's real parameters, from Wirtinger derivatives of g_p M' conj(g_q)), solves
them per solution interval, antenna and feed, and tries the step at full and half length
(then shorter): χ² of every interval is evaluated exactly from the statistics, so a step is
taken only where it lowers χ², and no solve can diverge. An interval has converged when its
gains change by less than ``tol`` (relative) or no step lowers its χ² further.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radiocloud.core.kernels.calibrate.kernels import antenna_sums, chi2_bins, mask_baselines
from radiocloud.core.kernels.calibrate.terms.base import Term

STEPS = (1.0, 0.5)  # tried every iteration; the better one is taken
BACKTRACK = (0.25, 0.125, 0.0625)  # tried where neither lowers χ²


@dataclass
class Stats:
    """One term's sufficient statistics: S, W (time, bin, baseline, corr), D and the count
    of unflagged samples C (time, bin)."""

    S: np.ndarray
    W: np.ndarray
    D: np.ndarray
    C: np.ndarray


@dataclass
class Geometry:
    pairs: np.ndarray  # (baseline, 2)
    feeds: np.ndarray  # (corr, 2)
    nant: int
    fmap: np.ndarray  # (bin,) freq interval of each bin
    nu: np.ndarray  # (bin,) GHz from the interval's centre
    freq: np.ndarray  # (bin,) Hz


@dataclass
class Solution:
    theta: np.ndarray  # (time, freq interval, ant, feed, param)
    gains: np.ndarray  # (time, bin, ant, feed)
    flags: np.ndarray  # (time, freq interval, ant, feed)
    iterations: np.ndarray  # (time, freq interval)
    converged: np.ndarray  # (time, freq interval)
    chi2_before: np.ndarray  # (time, freq interval)
    chi2_after: np.ndarray
    samples: np.ndarray  # (time, freq interval) unflagged samples
    #: (time, freq interval) a gain flagged though its antenna had data there: the χ² and
    #: samples of these intervals include that antenna's samples, unexplained
    starved: np.ndarray


def _reduce(x: np.ndarray, fmap: np.ndarray, how=np.add) -> np.ndarray:
    """Sum (or ``how``) bins into their freq intervals along axis 1 (bins are sorted)."""
    starts = np.r_[0, np.flatnonzero(np.diff(fmap)) + 1]
    return how.reduceat(x, starts, axis=1)


def _flag_antennas(term, stats, theta, geo, min_baselines):
    """Flags (time, freq interval, ant, feed) of gains with fewer than ``min_baselines``
    baselines of data, and statistics with their baselines zeroed (repeated until no
    new flag appears: removing one antenna can starve another); and the intervals where a
    flagged gain's antenna had data (its samples stay in D and C, which are not per baseline:
    χ² there is not that of the solved gains alone)."""
    S, W = stats.S, stats.W
    g = term.gains(theta, geo.fmap, geo.nu)
    flags = np.zeros(theta.shape[:4], bool)
    had_data = None
    for _ in range(geo.nant):
        _, _, count = antenna_sums(S, W, g, geo.pairs, geo.feeds, geo.nant)
        count = _reduce(count, geo.fmap, np.maximum)
        had_data = count > 0 if had_data is None else had_data
        new = count < min_baselines
        if not (new & ~flags).any():
            break
        if S is stats.S:  # copy only when something is to be masked
            S, W = S.copy(), W.copy()
        flags |= new
        mask_baselines(S, W, flags[:, geo.fmap], geo.pairs, geo.feeds)
    starved = (flags & had_data).any(axis=(2, 3))
    return Stats(S, W, stats.D, stats.C), flags, starved


def _chi2(term, theta, stats, geo):
    g = term.gains(theta, geo.fmap, geo.nu)
    return _reduce(chi2_bins(stats.S, stats.W, stats.D, g, geo.pairs, geo.feeds), geo.fmap)


def _step(term, theta, stats, geo, flags):
    """The Gauss-Newton step (time, freq interval, ant, feed, param)."""
    g = term.gains(theta, geo.fmap, geo.nu)
    A, B, _ = antenna_sums(stats.S, stats.W, g, geo.pairs, geo.feeds, geo.nant)
    d = term.jacobian(theta, g, geo.fmap, geo.nu)
    r = B - g * A
    jtj = _reduce(
        np.real(np.conj(d)[..., :, None] * d[..., None, :]) * A[..., None, None], geo.fmap
    )
    jtr = _reduce(np.real(np.conj(d) * r[..., None]), geo.fmap)
    npar = theta.shape[-1]
    scale = np.trace(jtj, axis1=-2, axis2=-1)[..., None, None] / npar
    ok = (scale[..., 0, 0] > 0) & ~flags
    jtj = np.where(ok[..., None, None], jtj + 1e-12 * scale, np.eye(npar))
    delta = np.linalg.solve(jtj, jtr[..., None])[..., 0]
    return np.where(ok[..., None], delta, 0.0)


def _rel_change(term, old, new, geo):
    g0 = term.gains(old, geo.fmap, geo.nu)
    g1 = term.gains(new, geo.fmap, geo.nu)
    rel = np.abs(g1 - g0) / np.maximum(np.abs(g0), 1e-12)
    return _reduce(rel.max(axis=(2, 3)), geo.fmap, np.maximum)


def solve(
    term: type[Term],
    theta: np.ndarray,
    stats: Stats,
    geo: Geometry,
    *,
    max_iter: int,
    tol: float = 1e-6,
    ref: int = 0,
    min_baselines: int = 4,
    initialise: bool = True,
) -> Solution:
    """Solve ``term`` from its statistics, starting at ``theta``."""
    stats, flags, starved = _flag_antennas(term, stats, theta, geo, min_baselines)
    if initialise:
        theta = term.initialise(theta, stats, geo, ref)
    samples = _reduce(stats.C, geo.fmap)
    chi2 = chi2_before = _chi2(term, theta, stats, geo)
    active = samples > 0
    iterations = np.zeros(active.shape, np.int32)
    converged = ~active
    for _ in range(max_iter):
        if converged.all():
            break
        if term.shared:
            d = term.shared_step(theta, stats.S, stats.W, geo.feeds, geo.fmap)
            delta = np.broadcast_to(d[:, :, None, None, None], theta.shape)
        else:
            delta = _step(term, theta, stats, geo, flags)
        tries = [(s, theta + s * delta) for s in STEPS]
        trial = [(_chi2(term, t, stats, geo), t) for _, t in tries]
        best_chi2, best = trial[0]
        for c, t in trial[1:]:
            better = c < best_chi2
            best_chi2 = np.where(better, c, best_chi2)
            best = np.where(better[:, :, None, None, None], t, best)
        for s in BACKTRACK:
            worse = ~(best_chi2 < chi2) & ~converged
            if not worse.any():
                break
            t = theta + s * delta
            c = _chi2(term, t, stats, geo)
            take = worse & (c < chi2)
            best_chi2 = np.where(take, c, best_chi2)
            best = np.where(take[:, :, None, None, None], t, best)
        improved = (best_chi2 < chi2) & ~converged
        new = np.where(improved[:, :, None, None, None], best, theta)
        change = _rel_change(term, theta, new, geo)
        iterations += ~converged
        converged |= ~improved | (change < tol)
        theta, chi2 = new, np.where(improved, best_chi2, chi2)
    theta = term.reference(theta, ref)
    flags |= ~active[:, :, None, None]
    return Solution(
        theta=theta,
        gains=term.gains(theta, geo.fmap, geo.nu),
        flags=flags,
        iterations=iterations,
        converged=converged & active,
        chi2_before=chi2_before,
        chi2_after=_chi2(term, theta, stats, geo),
        samples=samples,
        starved=starved,
    )
