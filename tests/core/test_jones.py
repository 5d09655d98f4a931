"""Diagonal Jones application against a plain numpy reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from radiocloud.core.kernels.jones import apply_diag_jones, corr_feeds
from radiocloud.core.testing.strategies import visibilities

CORRS = {1: ("XX",), 2: ("XX", "YY"), 4: ("XX", "XY", "YX", "YY")}


def reference(vis, gains, t, f, a1, a2, names):
    """J_p V J_q^H with 2x2 diagonal matrices, row by row (slow and obvious)."""
    out = np.zeros_like(vis)
    full = ("XX", "XY", "YX", "YY")
    for r in range(vis.shape[0]):
        for c in range(vis.shape[1]):
            v = np.zeros((2, 2), complex)
            for k, name in enumerate(names):
                v.flat[full.index(name)] = vis[r, c, k]
            jp = np.diag(gains[t[r], f[c], a1[r]])
            jq = np.diag(gains[t[r], f[c], a2[r]])
            res = jp @ v @ jq.conj().T
            for k, name in enumerate(names):
                out[r, c, k] = res.flat[full.index(name)]
    return out


@settings(max_examples=25, deadline=None)
@given(
    nrow=st.integers(1, 20),
    nchan=st.integers(1, 6),
    ncorr=st.sampled_from([1, 2, 4]),
    ntime=st.integers(1, 3),
    nfreq=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_matches_reference(nrow, nchan, ncorr, ntime, nfreq, seed):
    rng = np.random.default_rng(seed)
    nant = 4
    vis = rng.normal(size=(nrow, nchan, ncorr)) + 1j * rng.normal(size=(nrow, nchan, ncorr))
    gains = rng.normal(size=(ntime, nfreq, nant, 2)) + 1j * rng.normal(size=(ntime, nfreq, nant, 2))
    t = rng.integers(0, ntime, nrow)
    f = rng.integers(0, nfreq, nchan)
    a1 = rng.integers(0, nant, nrow)
    a2 = rng.integers(0, nant, nrow)
    names = CORRS[ncorr]
    got = apply_diag_jones(
        vis, gains, time_index=t, chan_index=f, ant1=a1, ant2=a2, feeds=corr_feeds(names)
    )
    np.testing.assert_allclose(got, reference(vis, gains, t, f, a1, a2, names), rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(vis=visibilities(max_rows=12, max_chan=5))
def test_unit_gains_leave_any_visibilities_unchanged(vis):
    names = CORRS[vis.shape[2]]
    out = apply_diag_jones(
        vis, np.ones((1, 1, 3, 2)), time_index=np.zeros(len(vis), int),
        chan_index=np.zeros(vis.shape[1], int), ant1=np.zeros(len(vis), int),
        ant2=np.full(len(vis), 2), feeds=corr_feeds(names),
    )  # fmt: skip
    np.testing.assert_array_equal(out, vis)


def test_complex64_stays_complex64_and_unit_gains_are_identity():
    vis = (np.arange(24).reshape(2, 3, 4) * (1 + 1j)).astype(np.complex64)
    gains = np.ones((1, 1, 2, 2), complex)
    out = apply_diag_jones(
        vis, gains, time_index=np.zeros(2, int), chan_index=np.zeros(3, int),
        ant1=np.zeros(2, int), ant2=np.ones(2, int), feeds=corr_feeds(CORRS[4]),
    )  # fmt: skip
    assert out.dtype == np.complex64
    np.testing.assert_array_equal(out, vis)
