"""Imaging weights against a slow reference written from the definitions: cells found by
searching for the nearest grid point, conjugates added as points of their own, weights by a
loop over points; then the limits of Briggs weighting, the taper against a numeric Fourier
transform, dask == numpy, and the beam each scheme makes."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from radiocloud.core.errors import OptionError
from radiocloud.core.kernels.image import weighting_dask
from radiocloud.core.kernels.image.weighting import imaging_weights, uv_cell_weights

C = 299_792_458.0
ARCSEC = np.pi / 180 / 3600
# 32 x 25 pixels of 20": cells of 322 x 413 wavelengths; baselines to 1.3 km at up to 1.5 GHz
# reach past the grid's edge (15.5 du x 12.5 dv = 5.0 x 5.2 kλ), so some points fall outside.
GEOMETRY = {"npix_x": 32, "npix_y": 25, "cell": 20 * ARCSEC}


@pytest.fixture(scope="module")
def obs():
    """400 rows x 4 channels, dense enough that cells hold several points, with flags, zero
    and NaN weights; weights are multiples of 1/4 so that every sum of them is exact."""
    rng = np.random.default_rng(42)
    nrow = 400
    uvw = rng.uniform(-1, 1, (nrow, 3)) * np.array([1300.0, 1300.0, 200.0])
    uvw[:60, :2] *= 0.15  # a dense core of short baselines
    freq = np.array([1.2e9, 1.3e9, 1.4e9, 1.5e9])
    weight = rng.integers(1, 9, (nrow, 4)) / 4.0
    weight[rng.random((nrow, 4)) < 0.03] = 0.0
    weight[5, 2] = np.nan
    flag = rng.random((nrow, 4)) < 0.1
    return uvw, freq, weight, flag


def reference_cells(uvw, freq, weight, flag, *, npix_x, npix_y, cell, uv_min=0.0, uv_max=np.inf):
    """W from the definition, and the (row, col) of each point's cell (-1 if unused)."""
    u = uvw[:, 0, None] * freq / C
    v = uvw[:, 1, None] * freq / C
    with np.errstate(invalid="ignore"):
        used = ~flag & (weight > 0) & (np.hypot(u, v) >= uv_min) & (np.hypot(u, v) <= uv_max)
    col, in_u = nearest_grid_point(u, 1 / (npix_x * cell), npix_x)
    row, in_v = nearest_grid_point(v, 1 / (npix_y * cell), npix_y)
    used &= in_u & in_v
    grid = np.zeros((npix_y, npix_x))
    for r, c in zip(*np.nonzero(used), strict=True):
        for sign in (1, -1):  # the point, then its Hermitian conjugate
            j, _ = nearest_grid_point(sign * v[r, c], 1 / (npix_y * cell), npix_y)
            i, _ = nearest_grid_point(sign * u[r, c], 1 / (npix_x * cell), npix_x)
            grid[j, i] += weight[r, c]
    return grid, np.where(used, row, -1), np.where(used, col, -1)


def nearest_grid_point(x, step, npix):
    """Index in the centred axis of the grid point k·step nearest x, for k in the symmetric
    range |k| <= (npix - 1) // 2, and whether x lies within half a step of it."""
    ks = np.arange(-((npix - 1) // 2), (npix - 1) // 2 + 1)
    x = np.asarray(x)
    k = ks[np.argmin(np.abs(x[..., None] - ks * step), axis=-1)]
    return k + npix // 2, np.abs(x - k * step) <= step / 2


def reference_weights(obs, scheme, robust=0.0, taper_fwhm=0.0, **cuts):
    uvw, freq, weight, _ = obs
    grid, row, col = reference_cells(*obs, **GEOMETRY, **cuts)
    f2 = (5 * 10.0**-robust) ** 2 / (np.sum(grid**2) / np.sum(grid))
    want = np.zeros(weight.shape)
    for r, c in zip(*np.nonzero(row >= 0), strict=True):
        w, cell_w = weight[r, c], grid[row[r, c], col[r, c]]
        want[r, c] = {"natural": w, "uniform": w / cell_w, "briggs": w / (1 + cell_w * f2)}[scheme]
        rho = np.hypot(*uvw[r, :2]) * freq[c] / C
        want[r, c] *= np.exp(-((np.pi * taper_fwhm * rho) ** 2) / (4 * np.log(2)))
    return want


def weights(obs, scheme, robust=0.0, taper_fwhm=0.0, **cuts):
    """The kernels' imaging weights, cells and all."""
    grid = uv_cell_weights(*obs, **GEOMETRY, **cuts)
    return imaging_weights(*obs, **GEOMETRY, scheme=scheme, robust=robust, cell_weights=grid,
                           taper_fwhm=taper_fwhm, **cuts)  # fmt: skip


def test_cell_weights_hold_each_point_and_its_conjugate(obs):
    weight = obs[2]
    grid = uv_cell_weights(*obs, **GEOMETRY)
    want, row, _ = reference_cells(*obs, **GEOMETRY)
    np.testing.assert_array_equal(grid, want)
    assert grid.sum() == 2 * weight[row >= 0].sum()
    # point-symmetric about the origin [12, 16]; column 0 (k = -16) has no mirror and is empty
    np.testing.assert_array_equal(grid[:, 1:], grid[::-1, :0:-1])
    assert not grid[:, 0].any()


def test_a_point_halfway_between_grid_points_and_its_conjugate_land_in_mirror_cells():
    """u/du = 2.5 and v/dv = -1.5 exactly (ν = c, 32 pixels of 2^-11 rad: du = dv = 64 λ):
    half to even puts the point in (2, -2) and its conjugate in (-2, 2)."""
    obs = (np.array([[160.0, -96.0, 0.0]]), np.array([C]), np.ones((1, 1)), np.zeros((1, 1), bool))
    grid = uv_cell_weights(*obs, npix_x=32, npix_y=32, cell=2.0**-11)
    assert grid[16 - 2, 16 + 2] == grid[16 + 2, 16 - 2] == 1
    assert grid.sum() == 2


def test_chunks_accumulate_into_out(obs):
    uvw, freq, weight, flag = obs
    out = np.zeros((25, 32))
    for rows in (slice(0, 150), slice(150, None)):
        got = uv_cell_weights(uvw[rows], freq, weight[rows], flag[rows], **GEOMETRY, out=out)
        assert got is out
    np.testing.assert_array_equal(out, uv_cell_weights(*obs, **GEOMETRY))


@pytest.mark.parametrize(
    ("scheme", "robust"),
    [("natural", 0.0), ("uniform", 0.0), ("briggs", -1.0), ("briggs", 0.0), ("briggs", 0.5)],
)
def test_weights_equal_the_reference(obs, scheme, robust):
    got = weights(obs, scheme, robust)
    np.testing.assert_allclose(got, reference_weights(obs, scheme, robust), rtol=1e-13, atol=0)


@pytest.mark.parametrize("scheme", ["uniform", "briggs"])
def test_uv_cuts_remove_points_from_the_cells_too(obs, scheme):
    cuts = {"uv_min": 300.0, "uv_max": 3000.0}
    got = weights(obs, scheme, 0.0, **cuts)
    np.testing.assert_allclose(got, reference_weights(obs, scheme, 0.0, **cuts), rtol=1e-13)
    uvw, freq, _, _ = obs
    rho = np.hypot(uvw[:, 0, None], uvw[:, 1, None]) * freq / C
    assert not got[(rho < 300) | (rho > 3000)].any()
    assert (rho < 300).any()
    assert (rho > 3000).any()
    # the uncut cells hold more, so the same points weigh differently
    assert not np.allclose(got, weights(obs, scheme, 0.0) * (got > 0))


def test_points_beyond_the_grid_weigh_nothing(obs):
    uvw, freq, _, _ = obs
    u, v = (uvw[:, k, None] * freq / C for k in (0, 1))
    du, dv = (1 / (n * GEOMETRY["cell"]) for n in (GEOMETRY["npix_x"], GEOMETRY["npix_y"]))
    beyond = (np.abs(u) > 15.5 * du) | (np.abs(v) > 12.5 * dv)  # |k| <= 15 and 12
    assert beyond.sum() > 100
    for scheme in ("natural", "uniform", "briggs"):
        got = weights(obs, scheme)
        assert not got[beyond].any()
        assert got[~beyond].any()


def test_cell_weights_of_another_grid_are_refused(obs):
    with pytest.raises(ValueError, match=r"cell_weights must have shape \(25, 32\)"):
        imaging_weights(*obs, **GEOMETRY, scheme="uniform", cell_weights=np.ones((32, 25)))


def test_natural_weights_are_the_weights_of_the_used_points(obs):
    uvw, freq, weight, flag = obs
    _, row, _ = reference_cells(*obs, **GEOMETRY)
    got = imaging_weights(*obs, **GEOMETRY)  # natural needs no cell weights
    np.testing.assert_array_equal(got, np.where(row >= 0, weight, 0.0))
    got32 = imaging_weights(uvw, freq, weight.astype(np.float32), flag, **GEOMETRY)
    assert got32.dtype == np.float32
    np.testing.assert_array_equal(got32, got.astype(np.float32))


def test_robust_minus_two_is_uniform_and_plus_two_natural(obs):
    """Briggs weights over their limit's vary over the points by a factor 1 + max 1/(W f²) at
    R = -2 and 1 + max W f² at R = 2: 1 + 1.3e-4 and 1 + 0.011 here (W from 0.25 to 34, mean
    8.1), against 2.3 and 60 at R = 0."""
    used = weights(obs, "natural") > 0

    def spread(robust, limit):
        ratio = weights(obs, "briggs", robust)[used] / weights(obs, limit)[used]
        return ratio.max() / ratio.min() - 1

    assert spread(-2.0, "uniform") < 2e-4
    assert spread(2.0, "natural") < 0.015
    assert spread(0.0, "uniform") > 1
    assert spread(0.0, "natural") > 10


def test_taper_is_the_fourier_transform_of_the_image_gaussian(obs):
    """The weights of a 40" taper over natural ones, against Σ G(l, m) cos 2π(ul + vm) / Σ G
    for the image-plane Gaussian G of 40" FWHM summed on a fine (l, m) grid."""
    uvw, freq, weight, _ = obs
    fwhm = 40 * ARCSEC
    ratio = weights(obs, "natural", taper_fwhm=fwhm) / np.where(weight > 0, weight, 1)
    l = np.linspace(-4 * fwhm, 4 * fwhm, 321)  # noqa: E741
    ll, mm = np.meshgrid(l, l)
    gauss = np.exp(-4 * np.log(2) * (ll**2 + mm**2) / fwhm**2)
    rows, chans = np.nonzero(ratio > 1e-3)
    picked = np.random.default_rng(0).choice(len(rows), 12, replace=False)
    for r, c in zip(rows[picked], chans[picked], strict=True):
        u, v = uvw[r, :2] * freq[c] / C
        want = np.sum(gauss * np.cos(2 * np.pi * (u * ll + v * mm))) / gauss.sum()
        assert ratio[r, c] == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert ratio[ratio > 0].min() < 0.1  # the taper bites
    want = reference_weights(obs, "briggs", 0.5, taper_fwhm=fwhm)
    np.testing.assert_allclose(weights(obs, "briggs", 0.5, taper_fwhm=fwhm), want, rtol=1e-13)


@pytest.mark.parametrize("scheme", ["natural", "uniform", "briggs"])
@pytest.mark.parametrize("cells", ["in the graph", "delayed", "computed"])
def test_dask_over_chunks_and_partitions_equals_numpy_in_one_chunk(obs, scheme, cells):
    """Two partitions (spectral windows) chunked in rows and channels make one image: their
    weights equal the numpy kernel's over both at once, bit for bit (sums of quarters are
    exact in any order), whether the cell weights are built in the graph or given."""
    uvw, freq, weight, flag = obs
    freq2 = freq + 0.45e9
    parts = [
        (da.from_array(uvw, chunks=(70, 3)), freq, da.from_array(weight, chunks=(90, 2)),
         da.from_array(flag, chunks=(110, 3))),
        (da.from_array(uvw[::-1], chunks=(400, 3)), freq2,
         da.from_array(weight[::-1].astype(np.float32), chunks=(130, 4)),
         da.from_array(flag[::-1], chunks=(400, 4))),
    ]  # fmt: skip
    options = {"scheme": scheme, "robust": -0.5, "taper_fwhm": 15 * ARCSEC, "uv_min": 200.0}
    lazy_grid = weighting_dask.uv_cell_weights(parts, **GEOMETRY, uv_min=200.0)
    given = {"in the graph": None, "delayed": lazy_grid, "computed": lazy_grid.compute()}
    lazy = weighting_dask.imaging_weights(parts, **GEOMETRY, **options, cell_weights=given[cells])
    assert lazy[0].chunks == parts[0][2].chunks
    assert lazy[1].dtype == np.float32
    got = da.compute(*lazy)

    both = (np.concatenate([uvw, uvw[::-1]]), np.concatenate([freq, freq2]),
            np.block([[weight, np.full_like(weight, np.nan)],
                      [np.full_like(weight, np.nan), weight[::-1]]]),
            np.block([[flag, np.ones_like(flag)], [np.ones_like(flag), flag[::-1]]]))  # fmt: skip
    grid = uv_cell_weights(*both, **GEOMETRY, uv_min=200.0)
    want = imaging_weights(*both, **GEOMETRY, cell_weights=grid, **options)
    np.testing.assert_array_equal(got[0], want[:400, :4])
    np.testing.assert_array_equal(got[1], want[400:, 4:].astype(np.float32))
    np.testing.assert_array_equal(given["computed"], grid)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scheme": "briggs", "robust": 3.0}, "robust must be between -2 and 2, got 3"),
        ({"scheme": "superuniform"}, "unknown weighting 'superuniform'"),
        ({"taper_fwhm": -1.0}, "taper FWHM must be a finite angle >= 0"),
        ({"uv_min": 10.0, "uv_max": 5.0}, "uv range must have 0 <= uv_min <= uv_max"),
        ({"cell": 0.0}, "cell must be a positive angle"),
        ({"npix_x": 0}, "npix_x must be a positive number of pixels"),
    ],
)
def test_bad_options_raise_one_line(obs, options, message):
    for call in (
        lambda o: imaging_weights(*obs, **o),
        lambda o: weighting_dask.imaging_weights([tuple(map(da.asarray, obs))], **o),
    ):
        with pytest.raises(OptionError, match=message) as err:
            call({**GEOMETRY, **options})
        assert "\n" not in str(err.value)


def array_uv(rng, *, nant=24, radius=1000.0, hours=12, freq=(1.3e9, 1.4e9)):
    """uv points (m) of antennas scattered over a disc, rotating with the hour angle (the
    baselines' density falls from the centre, as any array's does), as (uvw, freq)."""
    r, phi = radius * np.sqrt(rng.random(nant)), rng.uniform(0, 2 * np.pi, nant)
    xy = np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)
    a1, a2 = np.triu_indices(nant, 1)
    baselines = xy[a2] - xy[a1]
    uvw = []
    for h in np.linspace(-1, 1, hours):  # ±3.8 hours: the beam differs along l and m
        rot = np.array([[np.cos(h), -np.sin(h)], [np.sin(h), np.cos(h)]])
        uvw.append(np.column_stack([baselines @ rot.T, np.zeros(len(baselines))]))
    return np.concatenate(uvw), np.asarray(freq)


def psf_fwhm(uvw, freq, w, axis):
    """Full width at half maximum (radians) of the PSF Σ w cos 2π(u l + v m) along l (axis
    0) or m (axis 1), summed point by point, the first half-power crossing from the centre."""
    x = np.linspace(0, 60 * ARCSEC, 601)
    u = uvw[:, axis, None] * freq / C
    psf = np.array([np.sum(w * np.cos(2 * np.pi * u * xi)) for xi in x]) / np.sum(w)
    first = np.argmax(psf < 0.5)
    assert first > 0, "half power not reached"
    return 2 * np.interp(0.5, psf[first::-1], x[first::-1])


def test_uniform_weighting_makes_a_narrower_beam_than_natural():
    """Natural weighting favours the many short baselines; uniform weighting evens the uv
    plane out, which narrows the main lobe: 22.9" x 24.3" natural, 19.0" x 18.3" robust 0,
    18.4" x 17.4" uniform (FWHM along l and m) for this array."""
    uvw, freq = array_uv(np.random.default_rng(1))
    obs = (uvw, freq, np.ones((len(uvw), len(freq))), np.zeros((len(uvw), len(freq)), bool))
    geometry = {"npix_x": 256, "npix_y": 256, "cell": 2 * ARCSEC}  # holds 2 km at 1.4 GHz
    grid = uv_cell_weights(*obs, **geometry)
    widths = {}
    for scheme, robust in (("natural", 0.0), ("briggs", 0.0), ("uniform", 0.0)):
        w = imaging_weights(*obs, **geometry, scheme=scheme, robust=robust, cell_weights=grid)
        assert (w > 0).all()
        widths[scheme] = [psf_fwhm(uvw, freq, w, axis) for axis in (0, 1)]
    for axis in (0, 1):
        natural, briggs, uniform = (widths[s][axis] for s in ("natural", "briggs", "uniform"))
        assert uniform < briggs < natural
        assert uniform < 0.85 * natural, widths
