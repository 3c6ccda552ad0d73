"""The report's pictures as data URIs: curves (SVG), test images and CAM overlays (PNG).

matplotlib's Figure API only (no pyplot, no ``matplotlib.use``): a ``Figure`` saves itself
through the Agg/SVG canvases. One style for the page: Okabe and Ito's colour-blind-safe palette
for lines (Okabe & Ito 2008, "Color Universal Design"), line styles that differ as well as
colours, and the perceptually uniform ``cividis`` map (Nuñez et al. 2018, readable with
deuteranopia) for heat maps and CAM overlays.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# Okabe-Ito: blue, vermillion, bluish green, orange, reddish purple, sky blue, yellow, black.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
LINESTYLES = ("-", "--", ":", "-.")
HEAT_MAP = "cividis"
FONT_SIZE = 10


@dataclass(frozen=True)
class Series:
    """One line of a plot: its label, x and y (``None`` values are gaps)."""

    label: str
    x: Sequence[float]
    y: Sequence[float | None]


def data_uri(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def line_plot(title: str, ylabel: str, series: Sequence[Series], *, log_y: bool = False) -> str:
    """An SVG line plot as a data URI: one colour and line style per series, markers at points."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(4.6, 3.2), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    drawn = 0
    epochs: set[float] = set()
    for index, line in enumerate(series):
        points = [(x, y) for x, y in zip(line.x, line.y, strict=True) if y is not None]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        epochs.update(xs)
        axes.plot(
            xs,
            ys,
            label=line.label,
            color=PALETTE[index % len(PALETTE)],
            linestyle=LINESTYLES[index % len(LINESTYLES)],
            marker="o",
            markersize=3.5,
            linewidth=1.8,
        )
        drawn += 1
    if log_y and drawn:
        axes.set_yscale("log")
    axes.set_title(title, fontsize=FONT_SIZE + 1)
    axes.set_xlabel("epoch", fontsize=FONT_SIZE)
    axes.set_ylabel(ylabel, fontsize=FONT_SIZE)
    axes.tick_params(labelsize=FONT_SIZE - 1)
    axes.grid(alpha=0.3)
    if 0 < len(epochs) <= 12:  # few epochs: a tick at each, no fractional epochs
        axes.set_xticks(sorted(epochs))
    else:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if drawn:
        axes.legend(fontsize=FONT_SIZE - 1, frameon=False)
    else:
        axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return data_uri(buffer.getvalue(), "image/svg+xml")


def png(array: np.ndarray) -> bytes:
    """PNG bytes of a (H, W) grey or (H, W, 3) RGB uint8 array."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def image_uri(image: torch.Tensor, max_side: int = 112) -> str:
    """A (C, H, W) uint8 test image as a PNG data URI (grey for one channel), shrunk to at most
    ``max_side`` pixels a side (the page shows none larger; keeps big images' pages small)."""
    from PIL import Image

    array = image.permute(1, 2, 0).numpy()
    array = array[..., 0] if array.shape[2] == 1 else array
    if max(array.shape[:2]) > max_side:
        picture = Image.fromarray(array)
        picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        array = np.asarray(picture)
    return data_uri(png(array), "image/png")


def cam_overlay_uri(image: torch.Tensor, heat: np.ndarray, alpha: float = 0.5) -> str:
    """The image in grey blended with ``heat`` ((H, W) in [0, 1]) through the heat colour map:
    ``(1 - alpha) * grey + alpha * cividis(heat)``."""
    from matplotlib import colormaps

    grey = image.float().mean(0).numpy() / 255
    colours = colormaps[HEAT_MAP](np.clip(heat, 0, 1))[..., :3]
    blended = (1 - alpha) * grey[..., None] + alpha * colours
    return data_uri(png((blended * 255).round().astype(np.uint8)), "image/png")


def heat_levels(values: Sequence[Sequence[int]], levels: int = 8) -> list[list[int]]:
    """Each count's shade 0..levels-1 on a square-root scale of the largest off-diagonal count,
    so that the few errors show beside a large diagonal; diagonal cells get the top level."""
    size = len(values)
    peak = max(
        (values[i][j] for i in range(size) for j in range(size) if i != j and values[i][j]),
        default=1,
    )
    result = []
    for i in range(size):
        row = []
        for j in range(size):
            if i == j:
                row.append(levels - 1 if values[i][j] else 0)
            else:
                fraction = min(1.0, (values[i][j] / peak) ** 0.5)
                row.append(0 if values[i][j] == 0 else max(1, round(fraction * (levels - 2))))
        result.append(row)
    return result


def heat_colours(levels: int = 8) -> list[tuple[str, str]]:
    """(background, text colour) per level from the heat map, text dark or light for contrast."""
    from matplotlib import colormaps

    cmap = colormaps[HEAT_MAP]
    result = []
    for level in range(levels):
        # Level 0 (zero) is white; the others run from light to dark along the reversed map.
        if level == 0:
            result.append(("#ffffff", "#222222"))
            continue
        r, g, b, _ = cmap(1.0 - level / (levels - 1) * 0.9)
        luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
        hex_colour = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
        result.append((hex_colour, "#111111" if luminance > 0.45 else "#ffffff"))
    return result
