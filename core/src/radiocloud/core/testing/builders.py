"""Build tiny, fully valid Measurement Sets (or zarr/parquet datasets) for tests.

The geometry is arbitrary (random UVW) unless a caller passes its own: these datasets test
I/O and kernels, not physics. rc-simulate makes physically correct observations.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import numpy as np

from radiocloud.core import msdef
from radiocloud.core.io import new_dataset, write_tables

CORRS = {1: ("XX",), 2: ("XX", "YY"), 4: ("XX", "XY", "YX", "YY")}


@dataclass(frozen=True)
class MSSpec:
    """Shape of a test dataset. ``spw_chans`` gives the channel count of each SPW."""

    n_ant: int = 4
    n_time: int = 3
    spw_chans: tuple[int, ...] = (8,)
    n_corr: int = 4
    n_field: int = 1
    n_scan: int = 1
    autocorrelations: bool = False
    vis_dtype: str = "complex64"
    extra_columns: tuple[str, ...] = ()  # e.g. ("MODEL_DATA", "WEIGHT_SPECTRUM")
    seed: int = 0


def _baselines(n_ant: int, autos: bool) -> tuple[np.ndarray, np.ndarray]:
    a1, a2 = np.triu_indices(n_ant, 0 if autos else 1)
    return a1.astype(np.int32), a2.astype(np.int32)


def ms_datasets(spec: MSSpec) -> tuple[list, dict]:
    """Main-table partitions (one per field, spw, scan) and subtables of a test dataset."""
    rng = np.random.default_rng(spec.seed)
    corrs = CORRS[spec.n_corr]
    a1, a2 = _baselines(spec.n_ant, spec.autocorrelations)
    nbl = len(a1)
    t0 = 5.0e9  # MJD seconds, in 2017
    main = []
    scan = 0
    for field in range(spec.n_field):
        for _ in range(spec.n_scan):
            scan += 1
            times = t0 + 8.0 * (np.arange(spec.n_time) + 1000 * scan)
            for ddid, nchan in enumerate(spec.spw_chans):
                nrow = nbl * spec.n_time
                shape = (nrow, nchan, spec.n_corr)

                def vis(shape=shape):
                    z = rng.normal(size=shape) + 1j * rng.normal(size=shape)
                    return z.astype(spec.vis_dtype)

                columns = {"DATA": vis()}
                extra = {}
                for name in spec.extra_columns:
                    if name == "WEIGHT_SPECTRUM":
                        extra[name] = (msdef.dims.VIS, rng.uniform(0.5, 2, shape).astype("f4"))
                    else:
                        columns[name] = vis()
                main.append(
                    msdef.main_dataset(
                        time=np.repeat(times, nbl),
                        interval=8.0,
                        antenna1=np.tile(a1, spec.n_time),
                        antenna2=np.tile(a2, spec.n_time),
                        uvw=rng.normal(scale=1000.0, size=(nrow, 3)),
                        field_id=field,
                        data_desc_id=ddid,
                        scan_number=scan,
                        visibilities=columns,
                        flag=rng.random(shape) < 0.1,
                        weight=rng.uniform(0.5, 2.0, (nrow, spec.n_corr)).astype("f4"),
                        sigma=rng.uniform(0.5, 2.0, (nrow, spec.n_corr)).astype("f4"),
                        extra=extra,
                    )
                )
    positions = np.array([5109224.0, 2006790.0, -3239100.0]) + rng.normal(
        scale=500.0, size=(spec.n_ant, 3)
    )
    freq0 = 856e6
    spws = []
    for i, nchan in enumerate(spec.spw_chans):
        width = 856e6 / max(nchan, 1) / len(spec.spw_chans)
        start = freq0 + i * 856e6 / len(spec.spw_chans)
        freqs = start + width * (np.arange(nchan) + 0.5)
        spws.append(msdef.spectral_window_dataset(freqs, np.full(nchan, width), name=f"spw{i}"))
    n_spw = len(spec.spw_chans)
    subtables = {
        "ANTENNA": [
            msdef.antenna_dataset([f"m{i:03d}" for i in range(spec.n_ant)], positions, 13.5)
        ],
        "SPECTRAL_WINDOW": spws,
        "POLARIZATION": [msdef.polarization_dataset(corrs)],
        "DATA_DESCRIPTION": [msdef.data_description_dataset(range(n_spw), [0] * n_spw)],
        "FIELD": [
            msdef.field_dataset(
                [f"field{i}" for i in range(spec.n_field)],
                np.column_stack([np.linspace(1.0, 2.0, spec.n_field), np.full(spec.n_field, -0.9)]),
            )
        ],
        "FEED": [msdef.feed_dataset(spec.n_ant)],
        "OBSERVATION": [msdef.observation_dataset("MeerKAT", (t0, t0 + 1e5))],
    }
    return main, subtables


def build_ms(path, spec: MSSpec | None = None, *, overwrite: bool = False) -> str:
    """Write a test dataset at ``path`` (format from its suffix: .ms, .zarr, .parquet)."""
    main, subtables = ms_datasets(spec or MSSpec())
    with new_dataset(str(path), overwrite=overwrite) as (tmp, fmt):
        dask.compute(write_tables(main, subtables, tmp, fmt), scheduler="sync")
    return str(path)


# -- imaging: dirty beams of uv samples, for the CLEAN tests ---------------------------------


def dirty_beam(uv: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Σ_k cos(2π (u_k x + v_k y)) / K on a grid of pixel offsets from its centre pixel
    (shape // 2): the dirty beam of the uv points (cycles per pixel) and their conjugates."""
    y = np.arange(shape[0]) - shape[0] // 2
    x = np.arange(shape[1]) - shape[1] // 2
    rows = np.exp(2j * np.pi * uv[:, 1, None] * y)  # (K, ny)
    cols = np.exp(2j * np.pi * uv[:, 0, None] * x)  # (K, nx)
    return (rows.T @ cols).real / len(uv)


def response(psf: np.ndarray, j: int, i: int, shape: tuple[int, int]) -> np.ndarray:
    """The image of a 1 Jy component at (j, i): psf[y - j + cy, x - i + cx] where defined."""
    (ny, nx), (py, px) = shape, psf.shape
    cy, cx = py // 2, px // 2
    y0, y1, x0, x1 = max(0, j - cy), min(ny, j - cy + py), max(0, i - cx), min(nx, i - cx + px)
    image = np.zeros(shape)
    image[y0:y1, x0:x1] = psf[y0 - j + cy : y1 - j + cy, x0 - i + cx : x1 - i + cx]
    return image
