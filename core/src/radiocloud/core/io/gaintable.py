"""Gain tables: one zarr folder holding one dask-ms zarr store per term (``OUT.zarr/G``),
each an xarray dataset: read a table with :func:`read_gain_table`, or a term with
``daskms.experimental.zarr.xds_from_zarr("OUT.zarr/G")[0]``.

Layout of a term's group: ``gains`` and ``gain_flags`` (gain_time, gain_freq, ant, dir,
corr), the diagonal of the term's Jones matrix per feed at each solution interval in time and
each frequency bin (a channel for terms whose gain varies across their interval, such as a
delay); ``params`` (gain_time, param_freq, ant, dir, corr, param), the solved parameters;
``iterations``, ``converged``, ``chi2_before``, ``chi2_after`` (gain_time, param_freq), the
solver's record. A table is written beside its final place and moved there only when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import dask
import numpy as np
import xarray as xr
import zarr
from daskms.experimental.zarr import xds_from_zarr, xds_to_zarr

from radiocloud.core.errors import DatasetNotFoundError, OutputExistsError
from radiocloud.core.io.write import move_into_place

MARKER = "radiocloud_gain_table"


def write_gain_table(path: str, terms: dict[str, xr.Dataset], attrs: dict) -> None:
    """Write ``terms`` (name -> dataset) as the table at ``path``, replacing an existing
    gain table there (but nothing else)."""
    final = str(Path(path))
    if os.path.exists(final) and not is_gain_table(final):
        raise OutputExistsError(
            f"--gain-table {path} exists and is not a radiocloud gain table: choose a new path"
        )
    tmp = f"{final}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        root = zarr.open_group(tmp, mode="w")
        root.attrs.update({MARKER: 1, "terms": list(terms), **attrs})
        writes = [xds_to_zarr([ds.chunk()], f"{tmp}/{name}") for name, ds in terms.items()]
        dask.compute(writes)
        move_into_place(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def is_gain_table(path: str) -> bool:
    try:
        return MARKER in zarr.open_group(path, mode="r").attrs
    except (zarr.errors.GroupNotFoundError, ValueError, OSError, KeyError):
        return False


def read_gain_table(path: str) -> tuple[dict[str, xr.Dataset], dict]:
    """The terms (in chain order) of the table at ``path``, loaded, and its attributes."""
    if not os.path.exists(path):
        raise DatasetNotFoundError(f"gain table '{path}' does not exist")
    if not is_gain_table(path):
        raise DatasetNotFoundError(
            f"'{path}' is not a radiocloud gain table (written by rc-calibrate --gain-table)"
        )
    attrs = dict(zarr.open_group(path, mode="r").attrs)
    terms = {name: xds_from_zarr(f"{path}/{name}")[0].load() for name in attrs["terms"]}
    return terms, json.loads(json.dumps(attrs))


def chain_gains(
    terms: dict[str, xr.Dataset], times: np.ndarray, freq: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The chain's gains at each of ``times`` (MJD seconds) and ``freq`` (Hz): the product of
    the terms' gains (time, chan, ant, feed), each from the solution whose interval holds the
    time and whose frequency bin is nearest, and whether any of them is flagged there. Only
    solutions of the band holding ``freq``'s centre are used, and a term's first direction.

    For comparing a table with the gains of the data it was solved on (their truth, when
    simulated); applying a table to other data interpolates (rc-calibrate --load-from)."""
    net = np.ones((len(times), len(freq)), np.complex128)[..., None, None]
    flags = np.zeros(net.shape, bool)
    centre = float(np.mean(freq))
    for name, term in terms.items():
        if "band_lo" in term.coords:
            rows = (term.band_lo.values <= centre) & (centre <= term.band_hi.values)
            if not rows.any():
                raise ValueError(f"term {name} has no solutions at {centre / 1e6:.1f} MHz")
            term = term.isel(gain_time=rows)
        hi = term.gain_time_hi.values
        order = np.argsort(hi)
        ti = order[np.clip(np.searchsorted(hi[order], times), 0, len(hi) - 1)]
        fi = np.abs(term.gain_freq.values[None, :] - freq[:, None]).argmin(axis=1)
        gains = term.gains.values[:, :, :, 0, :][ti][:, fi]
        net = net * gains
        flags = flags | term.gain_flags.values[:, :, :, 0, :][ti][:, fi]
    return net, flags


@dataclass(frozen=True)
class GainErrors:
    """Solved gains against true ones (time, chan, ant, feed), the phase of the reference
    antenna taken out of both and the solved ones divided by ``scale``, the median amplitude
    ratio (selfcal without a flux calibrator keeps the data's own scale)."""

    ratio: np.ndarray  # solved / true, referenced and scaled
    valid: np.ndarray  # the solution and the reference antenna's are unflagged
    scale: float

    @property
    def amplitude(self) -> np.ndarray:
        """Relative amplitude errors of the valid solutions."""
        return np.abs(self.ratio[self.valid]) - 1.0

    @property
    def phase_deg(self) -> np.ndarray:
        return np.angle(self.ratio[self.valid], deg=True)

    def summary(self) -> str:
        amp, phase = self.amplitude, self.phase_deg
        return (
            f"amplitude scale {self.scale:.4f}; errors rms {100 * np.sqrt(np.mean(amp**2)):.2f}%"
            f" (median |error| {100 * np.median(np.abs(amp)):.2f}%), phase rms "
            f"{np.sqrt(np.mean(phase**2)):.2f} deg (median {np.median(np.abs(phase)):.2f} deg)"
            f" over {100 * self.valid.mean():.0f}% of solutions"
        )


def compare_gains(solved, flags, truth, ref: int = 0) -> GainErrors:
    """Solved gains (with their flags) against the true ones, all (time, chan, ant, feed)."""
    ratio = solved / np.where(truth == 0, np.nan, truth)
    ratio = ratio * np.exp(-1j * np.angle(ratio[:, :, ref : ref + 1]))
    valid = ~flags & ~flags[:, :, ref : ref + 1] & np.isfinite(ratio)
    if not valid.any():
        raise ValueError("no unflagged solution to compare with the truth")
    scale = float(np.median(np.abs(ratio[valid])))
    return GainErrors(ratio / scale, valid, scale)
