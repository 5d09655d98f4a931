"""Sky models for simulation: a WSClean component list, or the built-in ``eso137`` field.

The ``eso137`` model is a stylised ESO 137-006 (PKS 1610-60.8, z = 0.0182) as MeerKAT sees it
at L-band (Ramatsoku et al. 2020, A&A 636, L1): a faint flat-spectrum core, two bright lobes
east and west of it built from extended Gaussians, and collimated synchrotron threads (thin,
steep-spectrum filaments) running between the lobes, plus a background of point sources.
It is a fixed model (its own seed), so every simulation of the field sees the same sky.
Flux densities are apparent: the background is drawn with primary-beam attenuation at the
reference frequency already applied; no frequency-dependent beam is simulated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radiocloud.core.errors import DatasetNotFoundError
from radiocloud.core.skymodel import SkyModel, read_skymodel

ESO137_RA = np.radians(15 * (16 + 15 / 60 + 3.8 / 3600))  # 16h15m03.8s
ESO137_DEC = -np.radians(60 + 54 / 60 + 26 / 3600)  # -60d54m26s
REF_FREQ = 1.284e9  # MeerKAT L-band centre
ARCSEC = np.pi / 180 / 3600
ARCMIN = 60 * ARCSEC
_SEED = 137_006
JET_PA = np.radians(100.0)  # jet axis, North through East: the lobes lie roughly E-W


def _offset(ra0: float, dec0: float, dl: np.ndarray, dm: np.ndarray):
    """RA/Dec of small tangent-plane offsets (radians, l to the East, m to the North)."""
    dl, dm = np.asarray(dl), np.asarray(dm)
    n = np.sqrt(1.0 - dl**2 - dm**2)
    dec = np.arcsin(dm * np.cos(dec0) + n * np.sin(dec0))
    ra = ra0 + np.arctan2(dl, n * np.cos(dec0) - dm * np.sin(dec0))
    return ra, dec


def _along(distance: np.ndarray, across: np.ndarray, pa: float):
    """(l, m) of points ``distance`` along and ``across`` a direction at position angle pa."""
    l_ = distance * np.sin(pa) + across * np.cos(pa)
    m_ = distance * np.cos(pa) - across * np.sin(pa)
    return l_, m_


def eso137(n_background: int = 150) -> SkyModel:
    """The built-in ESO 137-006 field (about 12 Jy at 1.284 GHz, plus the background)."""
    rng = np.random.default_rng(_SEED)
    comps: list[tuple] = []  # (name, l, m, I, alpha, curvature, major, minor, pa)

    comps.append(("core", 0.0, 0.0, 0.08, -0.1, 0.0, 0.0, 0.0, 0.0))
    for side, sign, dist, total in (
        ("east", 1, 2.3 * ARCMIN, 5.5),
        ("west", -1, 2.5 * ARCMIN, 6.0),
    ):
        # a jet feeding each lobe, then the lobe itself as a clump of broad Gaussians
        for k, frac in enumerate((0.25, 0.5, 0.75)):
            jl, jm = _along(sign * frac * dist, 0.0, JET_PA)
            comps.append(
                (f"jet-{side}-{k}", jl, jm, 0.06, -0.6, 0.0, 12 * ARCSEC, 5 * ARCSEC, JET_PA)
            )
        weights = rng.dirichlet(np.full(7, 3.0))
        for k, w in enumerate(weights):
            d = sign * dist + rng.normal(0.0, 25 * ARCSEC)
            a = rng.normal(0.0, 30 * ARCSEC)
            ll, mm = _along(d, a, JET_PA)
            major = rng.uniform(30, 70) * ARCSEC
            minor = major * rng.uniform(0.5, 0.9)
            pa = rng.uniform(0, np.pi)
            comps.append((f"lobe-{side}-{k}", ll, mm, total * w, -0.9, -0.1, major, minor, pa))
    # collimated synchrotron threads: long, thin, faint, steep-spectrum, between the lobes
    for t, across in enumerate((-70, -40, 45, 75)):
        length = rng.uniform(1.2, 2.0) * ARCMIN
        pa = JET_PA + np.radians(rng.normal(0.0, 6.0))
        centre = rng.normal(0.0, 20 * ARCSEC)
        for k, frac in enumerate(np.linspace(-0.5, 0.5, 5)):
            d = centre + frac * length
            ll, mm = _along(d, across * ARCSEC, pa)
            flux = rng.uniform(0.004, 0.012)
            comps.append((f"thread{t}-{k}", ll, mm, flux, -1.5, 0.0, 28 * ARCSEC, 4 * ARCSEC, pa))

    names, l_, m_, flux, alpha, curv, major, minor, pa = (
        np.array(x) for x in zip(*comps, strict=True)
    )
    galaxy = dict(
        names=tuple(names),
        l=l_.astype(float),
        m=m_.astype(float),
        flux=flux.astype(float),
        alpha=alpha.astype(float),
        curv=curv.astype(float),
        shape=np.column_stack([major, minor, pa]).astype(float),
    )

    # background: Euclidean-ish counts (N(>S) ~ S^-1.5) from 0.5 mJy to 1 Jy, inside ~0.8 deg,
    # attenuated by a cos^6 primary beam of 1.1 deg FWHM, spectral indices around -0.75
    radius = np.radians(0.8) * np.sqrt(rng.uniform(0.0016, 1.0, n_background))
    theta = rng.uniform(0, 2 * np.pi, n_background)
    s_min, s_max = 5e-4, 1.0
    u = rng.uniform(0, 1, n_background)
    s_true = (s_min**-1.5 - u * (s_min**-1.5 - s_max**-1.5)) ** (-1 / 1.5)
    beam = np.cos(np.clip(1.189 * radius / np.radians(1.1), 0, np.pi / 2)) ** 6
    bl, bm = radius * np.sin(theta), radius * np.cos(theta)

    l_all = np.concatenate([galaxy["l"], bl])
    m_all = np.concatenate([galaxy["m"], bm])
    ra, dec = _offset(ESO137_RA, ESO137_DEC, l_all, m_all)
    n_gal = len(galaxy["names"])
    n = n_gal + n_background
    stokes = np.zeros((n, 4))
    stokes[:, 0] = np.concatenate([galaxy["flux"], s_true * beam])
    # mild linear polarisation in the lobes (a few per cent), none elsewhere
    lobes = np.array([name.startswith("lobe") for name in galaxy["names"]] + [False] * n_background)
    chi = rng.uniform(0, np.pi, n)
    stokes[lobes, 1] = 0.05 * stokes[lobes, 0] * np.cos(2 * chi[lobes])
    stokes[lobes, 2] = 0.05 * stokes[lobes, 0] * np.sin(2 * chi[lobes])
    coeffs = np.zeros((n, 2))
    coeffs[:n_gal, 0] = galaxy["alpha"]
    coeffs[:n_gal, 1] = galaxy["curv"]
    coeffs[n_gal:, 0] = rng.normal(-0.75, 0.2, n_background)
    shape = np.zeros((n, 3))
    shape[:n_gal] = galaxy["shape"]
    return SkyModel(
        names=galaxy["names"] + tuple(f"bg{i:03d}" for i in range(n_background)),
        is_gaussian=shape[:, 0] > 0,
        ra=ra,
        dec=dec,
        stokes=stokes,
        spectral_coeffs=coeffs,
        log_si=True,
        ref_freq=np.full(n, REF_FREQ),
        shape=shape,
    )


def load_sky(sky: str) -> SkyModel:
    """``eso137`` or the path of a WSClean component list."""
    if sky == "eso137":
        return eso137()
    if not Path(sky).exists():
        raise DatasetNotFoundError(
            f"sky model '{sky}' does not exist: give a WSClean component list or 'eso137'"
        )
    return read_skymodel(sky)
