"""The observation's axes and the instrument's truth, derived from a SimulateConfig."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.time import Time

from radiocloud.core.errors import OptionError
from radiocloud.core.kernels.jones import corr_feeds
from radiocloud.simulate import array as mk_array
from radiocloud.simulate import corruptions, geometry, rfi
from radiocloud.simulate.config import DEFAULT_DATE_MJD, SimulateConfig
from radiocloud.simulate.sky import ESO137_DEC, ESO137_RA

CORRELATIONS = {1: ("XX",), 2: ("XX", "YY"), 4: ("XX", "XY", "YX", "YY")}


@dataclass(frozen=True)
class Plan:
    """The observation's axes, derived from the config."""

    array: mk_array.Array
    freq: np.ndarray
    chan_width: np.ndarray
    times: np.ndarray  # MJD seconds, integration mid-points
    ra: float
    dec: float
    ant1: np.ndarray
    ant2: np.ndarray
    corr_names: tuple[str, ...]
    sigma: np.ndarray  # (chan,) Jy

    @property
    def n_baseline(self) -> int:
        return len(self.ant1)

    @property
    def n_row(self) -> int:
        return len(self.times) * self.n_baseline


def make_plan(cfg: SimulateConfig) -> Plan:
    if cfg.channels < 1 or cfg.integrations < 1 or cfg.integration_time <= 0:
        raise OptionError("--channels, --integrations and --integration-time must be positive")
    if cfg.correlations not in CORRELATIONS:
        raise OptionError("--correlations must be 1 (XX), 2 (XX YY) or 4 (XX XY YX YY)")
    arr = mk_array.select(cfg.antennas)
    width = cfg.bandwidth / cfg.channels
    freq = cfg.freq_start + width * (np.arange(cfg.channels) + 0.5)
    ra, dec = cfg.pointing or (ESO137_RA, ESO137_DEC)
    duration = cfg.integrations * cfg.integration_time
    if cfg.start_time:
        try:
            start = Time(cfg.start_time, scale="utc").mjd * geometry.SECONDS_PER_DAY
        except ValueError:
            raise OptionError(
                f"cannot read --start-time '{cfg.start_time}': write e.g. 2019-05-14T18:00:00"
            ) from None
    else:
        lon = np.radians(mk_array.REFERENCE_LON_DEG)
        start = geometry.transit_start(DEFAULT_DATE_MJD, ra, lon, duration)
    times = start + cfg.integration_time * (np.arange(cfg.integrations) + 0.5)
    ant1, ant2 = geometry.baselines(len(arr))
    if cfg.noise is None:
        sigma = corruptions.thermal_sigma(
            cfg.sefd, np.full(cfg.channels, width), cfg.integration_time
        )
    else:
        sigma = np.full(cfg.channels, float(cfg.noise))
    return Plan(
        arr,
        freq,
        np.full(cfg.channels, width),
        times,
        ra,
        dec,
        ant1,
        ant2,
        CORRELATIONS[cfg.correlations],
        sigma,
    )


@dataclass(frozen=True)
class Instrument:
    gain_time: np.ndarray  # (time, ant, feed)
    delay_ns: np.ndarray  # (ant, feed)
    bandpass: np.ndarray  # (chan, ant, feed)
    rfi: rfi.RFIModel | None

    def jones(self, freq: np.ndarray) -> np.ndarray:
        """(time, chan, ant, feed) total gains."""
        return self.gain_time[:, None] * self.freq_gains(freq)[None]

    def freq_gains(self, freq: np.ndarray) -> np.ndarray:
        """(chan, ant, feed) delays and bandpass together."""
        return corruptions.delay_gains(self.delay_ns, freq) * self.bandpass


def make_instrument(cfg: SimulateConfig, plan: Plan) -> Instrument:
    n_ant, n_time, s = len(plan.array), len(plan.times), cfg.gain_settings
    gain_time = (
        corruptions.time_gains(cfg.seed, n_time, n_ant, cfg.integration_time, s)
        if cfg.gains
        else np.ones((n_time, n_ant, 2), np.complex128)
    )
    delay = corruptions.delays_ns(cfg.seed, n_ant, s) if cfg.delays else np.zeros((n_ant, 2))
    bp = (
        corruptions.bandpass(cfg.seed, plan.freq, n_ant, s)
        if cfg.bandpass
        else np.ones((len(plan.freq), n_ant, 2), np.complex128)
    )
    feeds = corr_feeds(plan.corr_names)
    interference = (
        rfi.draw(cfg.seed, plan.freq, plan.chan_width, plan.times, n_ant, feeds)
        if cfg.rfi
        else None
    )
    return Instrument(gain_time, delay, bp, interference)
