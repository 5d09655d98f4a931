"""rc-simulate: a synthetic MeerKAT observation written as a Measurement Set, with its truth."""

from __future__ import annotations

from typing import Annotated

import typer

from radiocloud.core.cli import (
    RunSummary,
    RuntimeOptions,
    dask_runtime,
    new_app,
    run_cli,
    with_runtime,
)
from radiocloud.core.errors import OptionError
from radiocloud.core.units import parse_duration, parse_frequency
from radiocloud.simulate.config import CHANNEL_PRESETS, L_BAND_START, L_BAND_WIDTH, SimulateConfig
from radiocloud.simulate.corruptions import MEERKAT_SEFD, GainSettings

app = new_app(__doc__)
SKY, INSTRUMENT, OBS = "Sky", "Instrument", "Observation"


def _channels(text: str) -> int:
    if text.lower() in CHANNEL_PRESETS:
        return CHANNEL_PRESETS[text.lower()]
    if not text.isdigit() or int(text) < 1:
        raise OptionError(f"--channels '{text}': give a positive count or one of 1k, 4k, 32k")
    return int(text)


def _pointing(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    from astropy import units
    from astropy.coordinates import SkyCoord

    # sexagesimal without unit letters (13:15:30,-58:05:00) reads as hours and degrees
    units_of = {"unit": (units.hourangle, units.deg)} if ":" in text else {}
    try:
        c = (SkyCoord(*text.split(","), frame="fk5", **units_of) if "," in text
             else SkyCoord(text, frame="fk5", **units_of))  # fmt: skip
    except (ValueError, units.UnitsError):
        raise OptionError(
            f"cannot read --pointing '{text}': write e.g. '16h15m03.8s,-60d54m26s'"
        ) from None
    return float(c.ra.rad), float(c.dec.rad)


def _noise(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise OptionError(
            f"--noise '{text}': give 'auto' (from the SEFD) or a sigma in Jy"
        ) from None
    if value < 0:
        raise OptionError(f"--noise {text}: sigma must be 0 (noise-free) or positive")
    return value


@app.command()
@with_runtime
def simulate(
    output: Annotated[
        str, typer.Argument(help="Measurement Set to write (OUT.ms); truth goes to OUT.truth/.")
    ],
    antennas: Annotated[
        str,
        typer.Option(
            help="Antenna count (spread over core and arms) or names m000,m001,...",
            rich_help_panel=OBS,
        ),
    ] = "16",
    channels: Annotated[
        str,
        typer.Option(
            help="Channels across the band, or a MeerKAT preset 1k, 4k, 32k.", rich_help_panel=OBS
        ),
    ] = "64",
    freq_start: Annotated[
        str, typer.Option(help="Lower band edge.", rich_help_panel=OBS)
    ] = f"{L_BAND_START / 1e6:g}MHz",
    bandwidth: Annotated[
        str, typer.Option(help="Total bandwidth.", rich_help_panel=OBS)
    ] = f"{L_BAND_WIDTH / 1e6:g}MHz",
    integrations: Annotated[
        int, typer.Option(min=1, help="Number of integrations.", rich_help_panel=OBS)
    ] = 120,
    integration_time: Annotated[
        str, typer.Option(help="Integration (dump) time, e.g. 8s.", rich_help_panel=OBS)
    ] = "8s",
    start_time: Annotated[
        str | None,
        typer.Option(
            help="UTC start (ISO); default: a track centred on transit on 2019-05-14.",
            rich_help_panel=OBS,
        ),
    ] = None,
    pointing: Annotated[
        str | None,
        typer.Option(
            help="Phase centre 'RA,Dec' (J2000); default ESO 137-006.", rich_help_panel=OBS
        ),
    ] = None,
    correlations: Annotated[
        int, typer.Option(help="1 (XX), 2 (XX YY) or 4 (XX XY YX YY).", rich_help_panel=OBS)
    ] = 4,
    sky: Annotated[
        str, typer.Option(help="'eso137' or a WSClean component list.", rich_help_panel=SKY)
    ] = "eso137",
    model_data: Annotated[
        bool,
        typer.Option(help="Also write the uncorrupted sky as MODEL_DATA.", rich_help_panel=SKY),
    ] = False,
    gains: Annotated[
        bool,
        typer.Option(
            help="Smooth random complex gains per antenna and feed.", rich_help_panel=INSTRUMENT
        ),
    ] = True,
    gain_amplitude_rms: Annotated[
        float, typer.Option(help="Gain amplitude rms (fraction).", rich_help_panel=INSTRUMENT)
    ] = 0.05,
    gain_phase_rms: Annotated[
        float, typer.Option(help="Gain phase drift rms, degrees.", rich_help_panel=INSTRUMENT)
    ] = 30.0,
    gain_coherence: Annotated[
        str, typer.Option(help="Gain coherence time, e.g. 15min.", rich_help_panel=INSTRUMENT)
    ] = "900s",
    delays: Annotated[
        bool, typer.Option(help="Per-antenna delays.", rich_help_panel=INSTRUMENT)
    ] = True,
    delay_rms: Annotated[
        float, typer.Option(help="Delay rms, ns.", rich_help_panel=INSTRUMENT)
    ] = 2.0,
    bandpass: Annotated[
        bool,
        typer.Option(
            help="Per-antenna bandpass ripple and edge roll-off.", rich_help_panel=INSTRUMENT
        ),
    ] = True,
    rfi: Annotated[
        bool,
        typer.Option(
            help="Narrow-band emitters, broadband bursts, a few bad baselines.",
            rich_help_panel=INSTRUMENT,
        ),
    ] = True,
    noise: Annotated[
        str,
        typer.Option(
            help="'auto' (from the SEFD), or sigma in Jy per real/imaginary part; 0 = none.",
            rich_help_panel=INSTRUMENT,
        ),
    ] = "auto",
    sefd: Annotated[
        float, typer.Option(help="System equivalent flux density, Jy.", rich_help_panel=INSTRUMENT)
    ] = MEERKAT_SEFD,
    weight_spectrum: Annotated[
        bool, typer.Option(help="Also write WEIGHT_SPECTRUM.", rich_help_panel=INSTRUMENT)
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    overwrite: Annotated[
        bool, typer.Option(help="Replace OUT.ms and OUT.truth/ if they exist.")
    ] = False,
    *,
    runtime: RuntimeOptions,
) -> None:
    """Simulate a MeerKAT observation: geometry, sky, gains, delays, bandpass, noise and RFI."""
    cfg = SimulateConfig(
        output=output,
        antennas=antennas,
        channels=_channels(channels),
        freq_start=parse_frequency(freq_start),
        bandwidth=parse_frequency(bandwidth),
        integrations=integrations,
        integration_time=parse_duration(integration_time),
        start_time=start_time,
        sky=sky,
        pointing=_pointing(pointing),
        correlations=correlations,
        gains=gains,
        delays=delays,
        bandpass=bandpass,
        rfi=rfi,
        noise=_noise(noise),
        sefd=sefd,
        gain_settings=GainSettings(
            amplitude_rms=gain_amplitude_rms,
            phase_rms_deg=gain_phase_rms,
            coherence_time=parse_duration(gain_coherence),
            delay_rms_ns=delay_rms,
        ),
        model_data=model_data,
        weight_spectrum=weight_spectrum,
        seed=seed,
        overwrite=overwrite,
    )
    from radiocloud.simulate.pipeline import run

    summary = RunSummary(
        "rc-simulate", written=f"{output} and {output.rstrip('/').rsplit('.', 1)[0]}.truth/"
    )
    with dask_runtime(runtime):
        result = run(cfg, memory_budget=runtime.memory_budget, threads=runtime.nthreads)
    summary.rows, summary.visibilities = result.n_row, result.n_vis
    if result.rfi_fraction is not None:
        summary.details.append(
            f"{100 * result.rfi_fraction:.1f}% of visibilities carry RFI above 1 sigma"
        )
    summary.print()


def main() -> None:
    raise SystemExit(run_cli(app, "rc-simulate"))
