"""rc-image: Stokes I images of a dataset: weighting, gridding with ducc0's wgridder, CLEAN
(Högbom or Clark minor cycles, Cotton-Schwab major cycles) and WSClean-named FITS products:
PREFIX-dirty.fits, -psf, -model, -residual, -image and PREFIX-sources.txt."""

from __future__ import annotations

import math
import sys
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
from radiocloud.core.units import parse_angle

app = new_app(__doc__)
WEIGHTS = ("natural", "uniform", "briggs")


def _size(values: list[int]) -> tuple[int, int]:
    if len(values) not in (1, 2):
        raise OptionError("--size: give one number (square) or two, WIDTH HEIGHT")
    return (values[0], values[-1])


def _ints(text: str | None, option: str) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise OptionError(f"{option} {text}: give numbers separated by commas, e.g. 0,1") from None


def _floats(text: str | None, option: str) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise OptionError(
            f"{option} {text}: give numbers separated by commas, e.g. 0,4,8"
        ) from None


def _channels(text: str | None, option: str) -> tuple[int | None, int | None]:
    if not text:
        return (None, None)
    try:
        parts = [int(v) if v.strip() else None for v in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) != 2:
        raise OptionError(f"{option} {text}: write START:STOP (STOP excluded), e.g. 0:128")
    return parts[0], parts[1]


def _weighting(text: str) -> tuple[str, float]:
    weight = text.replace(":", " ").split()
    scheme = weight[0].lower() if weight else ""
    if scheme not in WEIGHTS:
        raise OptionError(f"--weight {weight[0]}: choose natural, uniform or briggs ROBUST")
    if scheme != "briggs":
        return scheme, 0.0
    try:
        robust = float(weight[1]) if len(weight) > 1 else 0.0
    except ValueError:
        raise OptionError(f"--weight briggs {weight[1]}: ROBUST is a number in [-2, 2]") from None
    if not -2.0 <= robust <= 2.0:
        raise OptionError(f"--weight briggs {robust}: ROBUST must lie in [-2, 2]")
    return scheme, robust


@app.command()
@with_runtime
def image(
    dataset: Annotated[str, typer.Argument(help="Measurement Set, zarr or parquet dataset.")],
    prefix: Annotated[str, typer.Option(help="Output prefix: PREFIX-image.fits, ...")],
    size: Annotated[list[int], typer.Option(help="Image size in pixels: N, or N M (even).")],
    scale: Annotated[str, typer.Option(help="Pixel size, e.g. 1.5asec.")],
    column: Annotated[str, typer.Option(help="Data column to image.")] = "DATA",
    field: Annotated[int, typer.Option(help="FIELD_ID to image.")] = 0,
    spw: Annotated[
        str | None, typer.Option(help="Spectral windows, e.g. 0,1 (default all).")
    ] = None,
    interval: Annotated[
        str | None, typer.Option(help="Integrations START:STOP (STOP excluded), as WSClean's.")
    ] = None,
    channels: Annotated[
        str | None, typer.Option(help="Channels START:STOP (STOP excluded); default all.")
    ] = None,
    weight: Annotated[
        str, typer.Option(help="natural, uniform, or briggs ROBUST (e.g. --weight briggs 0).")
    ] = "briggs 0",
    taper_gaussian: Annotated[
        str | None, typer.Option(help="Gaussian taper: FWHM in the image, e.g. 10asec.")
    ] = None,
    minuv_l: Annotated[float, typer.Option(help="Shortest baseline used, wavelengths.")] = 0.0,
    maxuv_l: Annotated[float, typer.Option(help="Longest baseline used, wavelengths.")] = math.inf,
    niter: Annotated[int, typer.Option(min=0, help="CLEAN components at most.")] = 0,
    gain: Annotated[float, typer.Option(help="Minor-cycle loop gain.")] = 0.1,
    mgain: Annotated[
        float, typer.Option(help="Major-cycle gain: minor cycles clean the peak down by this.")
    ] = 1.0,
    threshold: Annotated[float, typer.Option(help="Stop CLEAN at this peak, Jy.")] = 0.0,
    auto_threshold: Annotated[
        float | None, typer.Option(help="Stop CLEAN at this many times the residual's rms.")
    ] = None,
    auto_mask: Annotated[
        float | None,
        typer.Option(help="Clean unmasked to this many rms, then within the model's pixels."),
    ] = None,
    fits_mask: Annotated[
        str | None, typer.Option(help="FITS mask: components only where it is non-zero.")
    ] = None,
    minor: Annotated[
        str, typer.Option(help="Minor cycle: clark or hogbom (joined channels: Högbom).")
    ] = "clark",
    multiscale: Annotated[
        bool, typer.Option(help="Multi-scale CLEAN (Cornwell 2008), WSClean's scales.")
    ] = False,
    multiscale_scales: Annotated[
        str | None, typer.Option(help="Scales in pixels, e.g. 0,4,8,16 (default: WSClean's).")
    ] = None,
    multiscale_scale_bias: Annotated[
        float, typer.Option(help="Bias towards small scales (0, 1].")
    ] = 0.6,
    channels_out: Annotated[
        int, typer.Option(min=1, help="Output channels, cleaned jointly; adds MFS images.")
    ] = 1,
    fit_spectral_pol: Annotated[
        int | None,
        typer.Option(min=1, help="Fit components' spectra with this many polynomial terms."),
    ] = None,
    accuracy: Annotated[float, typer.Option(help="Gridding accuracy (ducc0 epsilon).")] = 1e-4,
    predict: Annotated[
        bool, typer.Option(help="Also write MODEL_DATA from the CLEAN model (for selfcal).")
    ] = False,
    *,
    runtime: RuntimeOptions,
) -> None:
    """Image DATASET."""
    from radiocloud.image.pipeline import ImageConfig, robust_rms, run

    scheme, robust = _weighting(weight)
    if not 0 < gain <= 1 or not 0 < mgain <= 1:
        raise OptionError("--gain and --mgain must lie in (0, 1]")
    if minor not in ("clark", "hogbom"):
        raise OptionError(f"--minor {minor}: choose clark or hogbom")
    cfg = ImageConfig(
        dataset=dataset,
        prefix=prefix,
        size=_size(size),
        scale=parse_angle(scale),
        column=column.upper(),
        field=field,
        spws=_ints(spw, "--spw"),
        channels=_channels(channels, "--channels"),
        interval=_channels(interval, "--interval") if interval else None,
        weight=scheme,
        robust=robust,
        taper=parse_angle(taper_gaussian) if taper_gaussian else None,
        uv_range=(minuv_l, maxuv_l),
        niter=niter,
        gain=gain,
        mgain=mgain,
        threshold=threshold,
        auto_threshold=auto_threshold,
        auto_mask=auto_mask,
        fits_mask=fits_mask,
        minor=minor,
        channels_out=channels_out,
        multiscale=multiscale,
        scales=_floats(multiscale_scales, "--multiscale-scales"),
        scale_bias=multiscale_scale_bias,
        fit_spectral_pol=fit_spectral_pol,
        accuracy=accuracy,
        predict=predict,
    )
    summary = RunSummary("rc-image", read=f"{cfg.column} of {dataset}")
    with dask_runtime(runtime):
        out = run(cfg, memory_budget=runtime.memory_budget, threads=runtime.nthreads)
    if predict:
        _predict(cfg, runtime)
    summary.written = f"{prefix}-*.fits, {prefix}-sources.txt" + (", MODEL_DATA" if predict else "")
    main = out.main
    summary.details.append(
        f"{out.iterations} components in {out.major_cycles} major cycles; peak "
        f"{main.image.max():.4g} Jy/beam, residual rms {robust_rms(main.residual):.3g} "
        "Jy/beam"
    )
    summary.print()


def _predict(cfg, runtime: RuntimeOptions) -> None:
    """MODEL_DATA from PREFIX-model.fits (with output channels, the cube of their models,
    interpolated in frequency), by rc-predict's degridder: the selfcal step."""
    from radiocloud.predict.config import PredictConfig
    from radiocloud.predict.pipeline import run as predict

    model = f"{cfg.prefix}-model" + ("-cube" if cfg.channels_out > 1 else "") + ".fits"
    pcfg = PredictConfig(dataset=cfg.dataset, model=model)
    predict(pcfg, memory_budget=runtime.memory_budget, threads=runtime.nthreads)


def wsclean_style(argv: list[str]) -> list[str]:
    """``--weight briggs 0`` (WSClean's two words) as the one value ``--weight 'briggs 0'``."""
    out, k = [], 0
    while k < len(argv):
        out.append(argv[k])
        if argv[k] == "--weight" and k + 2 < len(argv) and argv[k + 1].lower() == "briggs":
            try:
                float(argv[k + 2])
            except ValueError:
                pass
            else:
                out.append(f"briggs {argv[k + 2]}")
                k += 3
                continue
        k += 1
    return out


def cli(argv: list[str]) -> int:
    return run_cli(app, "rc-image", wsclean_style([str(a) for a in argv]))


def main() -> None:
    raise SystemExit(cli(sys.argv[1:]))
