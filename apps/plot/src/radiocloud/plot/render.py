"""Aggregated grids to PNG: density on a log scale, or categories blended by their counts."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from radiocloud.plot.axes import Axis
from radiocloud.plot.products.common import save

# saturated colours while they suffice, then pairs of shades (pale ones vanish on white)
CATEGORY_COLOURS = ("tab10", "tab20")


def render(path: str, grid: np.ndarray | None, ranges, x: Axis, y: Axis, *, title: str,
           size: tuple[int, int], categories: list[str] | None = None,
           colour: Axis | None = None, colour_range=None) -> tuple[float, ...]:  # fmt: skip
    """Write one plot. ``grid`` is (ny, nx) counts; (ncat, ny, nx) with ``categories``;
    (2, ny, nx) sums and counts of the ``colour`` axis, drawn as each pixel's mean on the
    scale ``colour_range``. None (nothing to plot) gives an empty, labelled plot saying so.
    The file appears only once complete. Returns the data area's box in the image (left, top,
    right, bottom, in pixels from the top left), for an interactive page to map the cursor."""
    width, height = size
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_xlabel(x.text)
    ax.set_ylabel(y.text)
    ax.set_title(title, fontsize="medium")
    counts = None if grid is None else (grid[1] if colour is not None else grid)
    if counts is None or not counts.any():
        ax.text(0.5, 0.5, "no unflagged data in the selection", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    elif colour is not None:
        _mean_image(fig, ax, grid, ranges, colour, colour_range)
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
    save(fig, path)
    box = ax.get_window_extent()
    return box.x0, height - box.y1, box.x1, height - box.y0


def _mean_image(fig, ax, grid, ranges, colour: Axis, colour_range) -> None:
    sums, counts = grid
    mean = np.ma.masked_where(counts == 0, sums / np.maximum(counts, 1))
    if colour.name == "FLAG":
        lo, hi, label, cmap = 0.0, 1.0, "flagged fraction", "magma"
    else:
        lo, hi = colour_range
        label = f"mean {colour.text}"
        cmap = "twilight" if ":phase" in colour.name else "viridis"  # phase wraps: cyclic
    image = ax.imshow(mean, origin="lower", aspect="auto", extent=ranges, cmap=cmap,
                      vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")  # fmt: skip
    fig.colorbar(image, ax=ax, label=label)


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
