"""What the product plots share: figures drawn without pyplot's global state, writing them,
and the one-line errors for inputs that are missing or are not what they claim to be."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from radiocloud.core.errors import (
    DatasetNotFoundError,
    NotADatasetError,
    OptionError,
    OutputNotWritableError,
)

DPI = 100


def new_figure(size: tuple[int, int]) -> Figure:
    """A figure of ``size`` (width, height) pixels, laid out by matplotlib's constrained
    layout (legends and colour bars outside the axes get room without changing the size)."""
    width, height = size
    if width < 1 or height < 1:
        raise OptionError(f"size {width}x{height}: both numbers must be positive")
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str) -> str:
    """Write ``fig`` to ``path`` (its format from the suffix, PNG by default) through a
    temporary file, so that an interrupted run leaves no half-written image; return it."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.part")
    fmt = out.suffix.lstrip(".").lower() or "png"
    try:
        fig.savefig(part, dpi=DPI, format=fmt)
        os.replace(part, out)
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write '{path}': {exc.strerror or exc}") from None
    except ValueError as exc:  # an image format matplotlib does not know
        raise OptionError(f"cannot write '{path}': {exc}") from None
    finally:
        part.unlink(missing_ok=True)
    return str(path)


def require_file(path: str, what: str) -> None:
    """Fail unless ``path`` exists (``what`` names what it should be, e.g. 'FITS image')."""
    if not os.path.exists(path):
        raise DatasetNotFoundError(f"{what} '{path}' does not exist")


def not_a(path: str, what: str, why: str) -> NotADatasetError:
    """The error for a file that exists but is not a ``what``."""
    return NotADatasetError(f"'{path}' is not a {what}: {' '.join(str(why).split())}")
