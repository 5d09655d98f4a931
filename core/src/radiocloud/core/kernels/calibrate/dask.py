"""Passes over the visibilities: one per term solve, reducing every chunk to its term's
sufficient statistics, and one to write the output products.

A chunk may hold any rows: its statistics cover the solution intervals its rows fall in, and
a tree of additions merges neighbouring chunks, so an interval spanning many chunks (a
bandpass over a whole scan) is summed without ever holding its visibilities at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np

from radiocloud.core.kernels.calibrate.kernels import (
    accumulate_stats,
    apply_products,
    whitened_residuals,
)
from radiocloud.core.reduce import tree_reduce

MEDIAN_CHI2_2DOF = 2 * np.log(2)  # median of w|r|² for correct weights (χ², 2 dof)


@dataclass(frozen=True)
class Partition:
    """One partition's columns, rows chunked alike; ``weight`` is zero where flagged."""

    vis: da.Array
    model: da.Array
    weight: da.Array
    time: da.Array
    ant1: da.Array
    ant2: da.Array
    utimes: np.ndarray  # sorted unique TIME


@dataclass(frozen=True)
class Lookup:
    """How each gain of a chain is found: per term, the interval of each unique time of
    each partition, and the bin of each channel; and the term's gains (time, bin, ant,
    feed) with their flags."""

    utimes: Sequence[np.ndarray]  # [partition] sorted unique TIME
    tmaps: Sequence[Sequence[np.ndarray]]  # [term][partition] (utime,) -> time index
    chan_bins: Sequence[np.ndarray]  # [term] (chan,) -> bin
    gains: Sequence[np.ndarray]  # [term] (time, bin, ant, feed) complex
    flags: Sequence[np.ndarray]  # [term] (time, bin, ant, feed) bool

    def product(self, part: int, uniq: np.ndarray, skip: int | None = None):
        """The chain's gains (utime, chan, ant, feed) at the given unique times of a
        partition (without term ``skip``), and their flags."""
        g = f = None
        for j, (gains, flags) in enumerate(zip(self.gains, self.flags, strict=True)):
            if j == skip:
                continue
            t = self.tmaps[j][part][uniq]
            gj = gains[t][:, self.chan_bins[j]]
            fj = flags[t][:, self.chan_bins[j]]
            g, f = (gj, fj) if g is None else (g * gj, f | fj)
        return g, f


@dataclass(frozen=True)
class Reweight:
    """Robust weights for a pass: Student-t with ``dof`` degrees of freedom (None: off) and
    flags beyond ``mad`` robust standard deviations (None: off), from residuals against the
    current chain."""

    dof: float | None
    mad: float | None


def _rows(ds_time, utimes):
    ut = np.searchsorted(utimes, ds_time)
    uniq, row_h = np.unique(ut, return_inverse=True)
    return ut, uniq, row_h.astype(np.int64)


def reweight(weight, e2, how: Reweight) -> np.ndarray:
    """Weights after MAD flagging and Student-t reweighting of the whitened residuals."""
    good = weight > 0
    if not good.any():
        return weight
    scale = np.median(e2[good]) / MEDIAN_CHI2_2DOF  # 1 when the weights are right
    if scale <= 0:
        return weight
    z = e2 / scale
    out = weight.copy()
    if how.mad is not None:
        out[z > how.mad**2] = 0.0
    if how.dof is not None:
        out *= ((how.dof + 2) / (how.dof + z)).astype(out.dtype)
    return out


def _chunk_stats(vis, model, weight, time, ant1, ant2, *, part, k, lookup, lut, feeds, nbins,
                 how):  # fmt: skip
    ut, uniq, row_h = _rows(time, lookup.utimes[part])
    nchan = vis.shape[1]
    others, other_flags = lookup.product(part, uniq, skip=k)
    if others is None:
        others = np.ones((len(uniq), nchan, lut.shape[0], 2), np.complex128)
    elif other_flags.any():  # samples another term cannot correct say nothing of this one
        weight = np.where(_sample_flags(other_flags, row_h, ant1, ant2, feeds), 0.0, weight)
    rt = lookup.tmaps[k][part][ut]
    t0 = int(rt.min())
    if how is not None:
        own = lookup.gains[k][lookup.tmaps[k][part][uniq]][:, lookup.chan_bins[k]]
        e2 = whitened_residuals(vis, model, weight, row_h, ant1, ant2, feeds, others * own)
        weight = reweight(weight, e2, how)
    nt = int(rt.max()) - t0 + 1
    ncorr = vis.shape[2]
    S = np.zeros((nt, nbins, lut.max() + 1, ncorr), np.complex128)
    W = np.zeros(S.shape)
    D = np.zeros((nt, nbins))
    C = np.zeros((nt, nbins))
    accumulate_stats(vis, model, weight, rt - t0, row_h, lookup.chan_bins[k], lut[ant1, ant2],
                     ant1, ant2, feeds, np.ascontiguousarray(others), S, W, D, C)  # fmt: skip
    return t0, S, W, D, C


def _merge(x, y):
    """The sum of two chunks' statistics, each (t0, arrays over its intervals). Each partial
    has this merge as its only consumer, so one covering the other is added to in place."""
    (xa, xn), (ya, yn) = (x[0], len(x[1])), (y[0], len(y[1]))
    if xa > ya or (xa == ya and xn < yn):
        x, y, (xa, xn), (ya, yn) = y, x, (ya, yn), (xa, xn)
    if ya + yn <= xa + xn:  # x covers y
        for a, b in zip(x[1:], y[1:], strict=True):
            a[ya - xa : ya - xa + yn] += b
        return x
    t1 = ya + yn
    out = [xa]
    for a, b in zip(x[1:], y[1:], strict=True):
        total = np.zeros((t1 - xa, *a.shape[1:]), a.dtype)
        total[:xn] += a
        total[ya - xa :] += b
        out.append(total)
    return tuple(out)


def _blocks(*arrays: da.Array) -> list[tuple]:
    """Each row chunk's blocks of ``arrays`` (one chunk along their other axes)."""
    return list(zip(*(a.to_delayed().ravel() for a in arrays), strict=True))


def term_stats(parts: Sequence[Partition], k: int, lookup, lut, feeds, nbins: int,
               how: Reweight | None):  # fmt: skip
    """A delayed (t0, S, W, D, C): term ``k``'s statistics summed over every chunk, with the
    chain's other terms at their current gains."""
    shared = dask.delayed(lookup, pure=True)
    leaves = []
    for i, p in enumerate(parts):
        for blocks in _blocks(p.vis, p.model, p.weight, p.time, p.ant1, p.ant2):
            leaves.append(dask.delayed(_chunk_stats)(
                *blocks, part=i, k=k, lookup=shared, lut=lut, feeds=feeds, nbins=nbins, how=how
            ))  # fmt: skip
    return tree_reduce(leaves, _merge)


def _chunk_apply(vis, model, time, ant1, ant2, *, part, lookup, feeds, corrected, residual):
    time, ant1, ant2 = time.ravel(), ant1.ravel(), ant2.ravel()
    _, uniq, row_h = _rows(time, lookup.utimes[part])
    g, f = lookup.product(part, uniq)
    out = np.empty(vis.shape, vis.dtype)
    apply_products(vis, model, row_h, ant1, ant2, feeds, np.ascontiguousarray(g),
                   np.ascontiguousarray(f), corrected, residual, out)  # fmt: skip
    return out


def _sample_flags(f, row_h, ant1, ant2, feeds) -> np.ndarray:
    """(row, chan, corr) True where gains ``f`` (utime, chan, ant, feed) are flagged for a
    sample's antennas and feeds."""
    fa = f[row_h[:, None], :, ant1[:, None], feeds[None, :, 0]]  # (row, corr, chan)
    fb = f[row_h[:, None], :, ant2[:, None], feeds[None, :, 1]]
    return np.moveaxis(fa | fb, 1, 2)


def _chunk_gain_flags(time, ant1, ant2, *, part, lookup, feeds, nchan):
    time, ant1, ant2 = time.ravel(), ant1.ravel(), ant2.ravel()
    _, uniq, row_h = _rows(time, lookup.utimes[part])
    _, f = lookup.product(part, uniq)
    return _sample_flags(f, row_h, ant1, ant2, feeds)


def apply_chain(p: Partition, part: int, lookup, feeds, product: str) -> da.Array:
    """The output product ('corrected', 'residual' or 'corrected-residual') of a partition."""
    corrected = product in ("corrected", "corrected-residual")
    residual = product in ("residual", "corrected-residual")
    return da.map_blocks(
        _chunk_apply, p.vis, p.model, p.time[:, None, None], p.ant1[:, None, None],
        p.ant2[:, None, None], dtype=p.vis.dtype, part=part, lookup=lookup, feeds=feeds,
        corrected=corrected, residual=residual,
    )  # fmt: skip


def gain_flags(p: Partition, part: int, lookup, feeds) -> da.Array:
    """(row, chan, corr) True where a sample's gains are flagged."""
    return da.map_blocks(
        _chunk_gain_flags, p.time[:, None, None], p.ant1[:, None, None], p.ant2[:, None, None],
        dtype=bool, chunks=p.vis.chunks, part=part, lookup=lookup, feeds=feeds,
        nchan=p.vis.shape[1],
    )  # fmt: skip


def _chunk_full(vis, model, weight, time, ant1, ant2, *, utimes, tmap, chan_bin, lut, feeds,
                nbins):  # fmt: skip
    from radiocloud.core.kernels.calibrate.full import accumulate_full

    ut = np.searchsorted(utimes, time)
    rt = tmap[ut]
    t0 = int(rt.min())
    nt = int(rt.max()) - t0 + 1
    nbl = lut.max() + 1
    T1 = np.zeros((nt, nbins, nbl, 2, 2, 2, 2), np.complex128)
    T2 = np.zeros((nt, nbins, nbl, 2, 2, 2, 2, 2, 2), np.complex128)
    D = np.zeros((nt, nbins))
    C = np.zeros((nt, nbins))
    accumulate_full(vis, model, weight, rt - t0, chan_bin, lut[ant1, ant2], feeds, T1, T2, D, C)
    return t0, T1, T2, D, C


def full_stats(parts: Sequence[Partition], tmaps, chan_bin, lut, feeds, nbins: int):
    """A delayed (t0, T1, T2, D, C): a full-Jones term's statistics over every chunk."""
    leaves = []
    for i, p in enumerate(parts):
        for blocks in _blocks(p.vis, p.model, p.weight, p.time, p.ant1, p.ant2):
            leaves.append(dask.delayed(_chunk_full)(
                *blocks, utimes=p.utimes, tmap=tmaps[i], chan_bin=chan_bin, lut=lut,
                feeds=feeds, nbins=nbins,
            ))  # fmt: skip
    return tree_reduce(leaves, _merge)


def _chunk_apply_full(vis, model, time, ant1, ant2, *, utimes, tmap, chan_bin, feeds, G, flags,
                      corrected, residual, want_flags):  # fmt: skip
    from radiocloud.core.kernels.calibrate.full import apply_full

    time, ant1, ant2 = time.ravel(), ant1.ravel(), ant2.ravel()
    rt = tmap[np.searchsorted(utimes, time)]
    out = np.empty(vis.shape, vis.dtype)
    bad = apply_full(vis, model, rt, chan_bin, ant1, ant2, feeds, G, flags, corrected, residual,
                     out)  # fmt: skip
    return bad if want_flags else out


def apply_full_chain(p: Partition, tmap, chan_bin, feeds, G, flags, product: str,
                     want_flags: bool = False) -> da.Array:  # fmt: skip
    """A full-Jones term's output product (or, with ``want_flags``, its gain-flag mask)."""
    return da.map_blocks(
        _chunk_apply_full, p.vis, p.model, p.time[:, None, None], p.ant1[:, None, None],
        p.ant2[:, None, None], dtype=bool if want_flags else p.vis.dtype, utimes=p.utimes,
        tmap=tmap, chan_bin=chan_bin, feeds=feeds, G=G, flags=flags,
        corrected=product in ("corrected", "corrected-residual"),
        residual=product in ("residual", "corrected-residual"), want_flags=want_flags,
    )  # fmt: skip
