"""Everything that defines a simulation, in one frozen dataclass (filled by the CLI)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from radiocloud.simulate.corruptions import MEERKAT_SEFD, GainSettings

# MeerKAT L-band: 856-1712 MHz. Channelisations of the correlator, by preset name.
L_BAND_START = 856e6
L_BAND_WIDTH = 856e6
CHANNEL_PRESETS = {"1k": 1024, "4k": 4096, "32k": 32768}
DEFAULT_DATE_MJD = 58617.0  # 2019-05-14


@dataclass(frozen=True)
class SimulateConfig:
    output: str
    antennas: str = "16"
    channels: int = 64
    freq_start: float = L_BAND_START
    bandwidth: float = L_BAND_WIDTH
    integrations: int = 120
    integration_time: float = 8.0
    start_time: str | None = None  # ISO UTC; default: a track centred on transit
    sky: str = "eso137"
    pointing: tuple[float, float] | None = None  # J2000 RA, Dec radians; default ESO 137-006
    correlations: int = 4
    gains: bool = True
    delays: bool = True
    bandpass: bool = True
    rfi: bool = True
    noise: float | None = None  # Jy per real/imaginary part; None = from the SEFD
    sefd: float = MEERKAT_SEFD
    gain_settings: GainSettings = field(default_factory=GainSettings)
    model_data: bool = False
    weight_spectrum: bool = False
    seed: int = 0
    overwrite: bool = False

    def as_dict(self) -> dict:
        return asdict(self)
