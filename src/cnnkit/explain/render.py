"""Pictures of the explain results (PNG). Renderers only draw what the results hold.

matplotlib's object API (``matplotlib.figure.Figure`` on an Agg canvas): no ``pyplot``, no global
backend switch; each PNG is written atomically.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit._io import atomic_write_bytes

if TYPE_CHECKING:
    import torch

    from cnnkit.explain.cam import CamResult
    from cnnkit.explain.erf import ErfResult
    from cnnkit.explain.features import LayerMaps
    from cnnkit.explain.filters import Filters


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=80)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: str | Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def _show(axes: Any, image: Any, **kwargs: Any) -> None:
    axes.imshow(image, **kwargs)
    axes.set_xticks([])
    axes.set_yticks([])


def _picture(image: torch.Tensor) -> Any:
    """(C, H, W) in [0, 1] -> what imshow takes: (H, W) grey or (H, W, 3) colour."""
    array = image.detach().float().clamp(0, 1).cpu().numpy()
    return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)


def feature_grid_png(
    layer: LayerMaps, path: str | Path, *, images: int = 4, channels: int = 16
) -> Path:
    """One row per image, one column per channel (the first ``channels``), each map scaled
    on its own; titles give the channel's mean and zero fraction over the batch."""
    rows = min(images, layer.maps.shape[0])
    cols = min(channels, layer.maps.shape[1])
    figure = _figure(1.3 * cols, 1.3 * rows + 0.6)
    grid = figure.subplots(rows, cols, squeeze=False)
    for i in range(rows):
        for c in range(cols):
            _show(grid[i][c], layer.maps[i, c].numpy(), cmap="viridis")
            if i == 0:
                title = f"{c}: {layer.stats.mean[c]:.2g}\n0s {layer.stats.zero_fraction[c]:.0%}"
                grid[i][c].set_title(title, fontsize=7)
    figure.suptitle(f"{layer.name} {tuple(layer.maps.shape[1:])}", fontsize=9)
    return _save(figure, path)


def filters_png(filters: Filters, path: str | Path, *, limit: int = 64) -> Path:
    """Left: the first conv's kernels (each min-max scaled on its own; 3 input channels as
    RGB, otherwise the mean over input channels); right: per-filter norms of every conv layer."""
    kernels = filters.kernels[:limit]
    count = kernels.shape[0]
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    figure = _figure(2 * cols * 0.6 + 6, max(3.5, rows * 0.6))
    left, right = figure.subfigures(1, 2, width_ratios=[1, 1.4])
    grid = left.subplots(rows, cols, squeeze=False)
    for index in range(rows * cols):
        axes = grid[index // cols][index % cols]
        axes.axis("off")
        if index >= count:
            continue
        kernel = kernels[index] if kernels.shape[1] == 3 else kernels[index].mean(0, keepdim=True)
        low, high = kernel.min(), kernel.max()
        scaled = (kernel - low) / (high - low) if high > low else kernel * 0
        axes.imshow(_picture(scaled), cmap="gray", interpolation="nearest")
    left.suptitle(f"{filters.first_layer} {tuple(filters.kernels.shape)}", fontsize=9)
    axes = right.subplots()
    for name, norms in filters.norms.items():
        values = norms.sort(descending=True).values.numpy()
        positions = [(i + 0.5) / len(values) for i in range(len(values))]
        axes.plot(positions, values, label=name, linewidth=1)
    axes.set(xlabel="filter (sorted, share of the layer)", ylabel="||W||_2", yscale="log")
    axes.set_title("per-filter weight norms", fontsize=9)
    if len(filters.norms) <= 12:
        axes.legend(fontsize=6)
    axes.grid(alpha=0.3)
    return _save(figure, path)


def cam_overlay_png(
    pictures: torch.Tensor,
    results: Sequence[CamResult],
    path: str | Path,
    *,
    labels: Sequence[str] | None = None,
) -> Path:
    """Rows: images; columns: the image, then each method's map over it (``upsampled()``).

    ``pictures``: (B, C, H, W) in [0, 1] for display (de-normalised by the caller).
    """
    rows = pictures.shape[0]
    cols = 1 + len(results)
    figure = _figure(1.6 * cols, 1.6 * rows + 0.3)
    grid = figure.subplots(rows, cols, squeeze=False)
    ups = [result.upsampled(tuple(pictures.shape[-2:])).numpy() for result in results]
    for i in range(rows):
        picture = _picture(pictures[i])
        _show(grid[i][0], picture, cmap="gray")
        if labels is not None:
            grid[i][0].set_ylabel(labels[i], fontsize=7)
        for j, result in enumerate(results, 1):
            _show(grid[i][j], picture, cmap="gray")
            grid[i][j].imshow(ups[j - 1][i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            if i == 0:
                grid[i][j].set_title(result.method, fontsize=8)
    grid[0][0].set_title("image", fontsize=8)
    return _save(figure, path)


def erf_png(results: Mapping[str, ErfResult], path: str | Path) -> Path:
    """Each ERF map (log colour scale), with its 50/90/99% circles and the theoretical field
    (the dashed square of side ``theoretical_rf`` around the centre)."""
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Circle, Rectangle

    figure = _figure(4 * len(results), 4.2)
    grid = figure.subplots(1, len(results), squeeze=False)[0]
    for axes, (label, result) in zip(grid, results.items(), strict=True):
        values = result.map.numpy()
        floor = max(values.max() * 1e-6, 1e-300)
        axes.imshow(values.clip(floor), cmap="magma", norm=LogNorm(vmin=floor, vmax=values.max()))
        row, col = result.centre
        for level, style in zip(sorted(result.radii), ("-", "--", ":"), strict=False):
            radius = result.radii[level]
            axes.add_patch(Circle((col, row), radius, fill=False, color="cyan", ls=style, lw=1))
        rf = result.theoretical_rf
        if rf is not None and rf[0] is not None and rf[1] is not None:
            height, width = rf[0], rf[1]
            axes.add_patch(
                Rectangle(
                    (col - width / 2, row - height / 2),
                    width,
                    height,
                    fill=False,
                    color="tab:blue",
                    ls="--",
                    lw=1.2,
                )
            )
            # show the whole theoretical square even where it is larger than the input
            size_y, size_x = values.shape
            axes.set_xlim(min(-0.5, col - width / 2 - 1), max(size_x - 0.5, col + width / 2 + 1))
            axes.set_ylim(max(size_y - 0.5, row + height / 2 + 1), min(-0.5, row - height / 2 - 1))
        radii = ", ".join(f"{int(k * 100)}%: {v:.1f}" for k, v in sorted(result.radii.items()))
        axes.set_title(f"{label}\n{result.layer}, radii {radii}\ntheoretical {rf}", fontsize=8)
        axes.set_xticks([])
        axes.set_yticks([])
    return _save(figure, path)


def grad_flow_png(
    layers: Sequence[str], norms_by_label: Mapping[str, Sequence[float]], path: str | Path
) -> Path:
    """Gradient norm per parameterised layer (x, forward order) on a log y axis, one line
    per label (an epoch, or a step)."""
    figure = _figure(max(6, 0.25 * len(layers) + 2), 4)
    axes = figure.subplots()
    for label, norms in norms_by_label.items():
        axes.plot(range(len(layers)), [max(n, 1e-30) for n in norms], marker=".", label=label)
    axes.set_xticks(range(len(layers)))
    axes.set_xticklabels(layers, rotation=90, fontsize=6)
    axes.set(yscale="log", ylabel="||grad||_2", title="gradient flow")
    axes.grid(alpha=0.3)
    if len(norms_by_label) <= 12:
        axes.legend(fontsize=7)
    return _save(figure, path)
