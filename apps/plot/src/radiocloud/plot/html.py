"""One self-contained HTML page of the plots: each PNG embedded, with its grid, so that the
cursor reads out the data coordinates and what the pixel under it holds (the number of
points, and the mean of the colour axis). No script or style is fetched from anywhere."""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Panel:
    png: str  # the plot's file
    title: str
    box: tuple[float, ...]  # the data area in the image: left, top, right, bottom (pixels)
    ranges: tuple[float, float, float, float] | None  # x0, x1, y0, y1
    counts: np.ndarray | None  # (ny, nx) points per pixel
    mean: np.ndarray | None = None  # (ny, nx) the colour axis's mean, NaN where empty
    x: str = ""
    y: str = ""
    value: str = ""  # what ``mean`` is


def _b64(a: np.ndarray, dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode()


def _panel(p: Panel) -> str:
    image = base64.b64encode(Path(p.png).read_bytes()).decode()
    meta = {"box": p.box, "ranges": p.ranges, "x": p.x, "y": p.y, "value": p.value}
    if p.counts is not None:
        meta["shape"] = list(p.counts.shape)
        meta["counts"] = _b64(np.minimum(p.counts, 2**32 - 1), "<u4")
        if p.mean is not None:
            meta["mean"] = _b64(p.mean, "<f4")
    return (
        f'<figure><img src="data:image/png;base64,{image}" data-meta="'
        f'{html.escape(json.dumps(meta))}"><figcaption>{html.escape(p.title)}'
        '</figcaption><div class="readout">&nbsp;</div></figure>'
    )


_SCRIPT = """
function decode(text, Type) {
  const bytes = Uint8Array.from(atob(text), c => c.charCodeAt(0));
  return new Type(bytes.buffer);
}
for (const img of document.querySelectorAll("img[data-meta]")) {
  const m = JSON.parse(img.dataset.meta);
  const out = img.parentElement.querySelector(".readout");
  if (!m.ranges) continue;
  const counts = m.counts ? decode(m.counts, Uint32Array) : null;
  const mean = m.mean ? decode(m.mean, Float32Array) : null;
  img.addEventListener("mousemove", ev => {
    const s = img.naturalWidth / img.clientWidth;
    const px = ev.offsetX * s, py = ev.offsetY * s;
    const [l, t, r, b] = m.box, [x0, x1, y0, y1] = m.ranges;
    if (px < l || px > r || py < t || py > b) { out.innerHTML = "&nbsp;"; return; }
    const x = x0 + (px - l) / (r - l) * (x1 - x0), y = y1 - (py - t) / (b - t) * (y1 - y0);
    let text = `${m.x} ${x.toPrecision(6)}, ${m.y} ${y.toPrecision(6)}`;
    if (counts) {
      const [ny, nx] = m.shape;
      const i = Math.min(nx - 1, Math.floor((x - x0) / (x1 - x0) * nx));
      const j = Math.min(ny - 1, Math.floor((y - y0) / (y1 - y0) * ny));
      const n = counts[j * nx + i];
      text += `: ${n} point${n == 1 ? "" : "s"}`;
      if (mean && n) text += `, ${m.value} ${mean[j * nx + i].toPrecision(4)}`;
    }
    out.textContent = text;
  });
  img.addEventListener("mouseleave", () => { out.innerHTML = "&nbsp;"; });
}
"""

_STYLE = """
body { font-family: sans-serif; margin: 1em; }
figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; }
img { max-width: 100%; cursor: crosshair; }
.readout { font-family: monospace; min-height: 1.2em; }
"""


def write_html(path: str, title: str, panels: list[Panel]) -> str:
    """Write the page to ``path`` (through a temporary file) and return it."""
    body = "\n".join(_panel(p) for p in panels)
    page = (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{_STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1>\n"
        f"<p>Move the cursor over a plot to read its coordinates and pixel.</p>\n{body}\n"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.part")
    part.write_text(page)
    os.replace(part, out)
    return str(out)
