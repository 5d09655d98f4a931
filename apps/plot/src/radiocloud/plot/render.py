"""Aggregated grids to PNG: density on a log scale, or categories blended by their counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from radiocloud.plot.axes import Axis

# saturated colours while they suffice, then pairs of shades (pale ones vanish on white)
CATEGORY_COLOURS = ("tab10", "tab20")


def render(path: str, grid: np.ndarray | None, ranges, x: Axis, y: Axis, *, title: str,
           size: tuple[int, int], categories: list[str] | None = None) -> None:  # fmt: skip
    """Write one plot. ``grid`` is (ny, nx) counts, or (ncat, ny, nx) with ``categories``;
    None (nothing to plot) gives an empty, labelled plot saying so."""
    width, height = size
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_xlabel(x.text)
    ax.set_ylabel(y.text)
    ax.set_title(title, fontsize="medium")
    if grid is None or not grid.any():
        ax.text(0.5, 0.5, "no unflagged data in the selection", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    elif categories is None:
        image = ax.imshow(np.ma.masked_equal(grid, 0), origin="lower", aspect="auto",
                          extent=ranges, norm=LogNorm(vmin=1, vmax=max(grid.max(), 1)),
                          cmap="viridis", interpolation="nearest")  # fmt: skip
        fig.colorbar(image, ax=ax, label="visibilities per pixel")
    else:
        ax.imshow(_blend(grid), origin="lower", aspect="auto", extent=ranges,
                  interpolation="nearest")  # fmt: skip
        _legend(ax, grid, categories)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def _colours(n: int) -> np.ndarray:
    from matplotlib import colormaps

    table = colormaps[CATEGORY_COLOURS[0] if n <= 10 else CATEGORY_COLOURS[1]].colors
    return np.array([table[i % len(table)][:3] for i in range(n)])


def _blend(grid: np.ndarray) -> np.ndarray:
    """(ny, nx, 4) RGBA: each pixel the count-weighted mean of its categories' colours,
    opacity rising with the log of its total count."""
    total = grid.sum(axis=0)
    rgb = np.einsum("cyx,ck->yxk", grid, _colours(len(grid))) / np.maximum(total, 1)[..., None]
    alpha = np.log1p(total) / max(np.log1p(total.max()), 1e-12)
    alpha = np.where(total > 0, 0.5 + 0.5 * alpha, 0.0)
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def _legend(ax, grid: np.ndarray, categories: list[str]) -> None:
    from matplotlib.patches import Patch

    present = [c for c in range(len(grid)) if grid[c].any()]
    colours = _colours(len(grid))
    shown = present[:20]
    handles = [Patch(color=colours[c], label=categories[c]) for c in shown]
    if len(present) > len(shown):
        handles.append(Patch(color="white", label=f"... {len(present) - len(shown)} more"))
    ax.legend(handles=handles, fontsize="x-small", loc="best", ncols=2 if len(handles) > 10 else 1)
