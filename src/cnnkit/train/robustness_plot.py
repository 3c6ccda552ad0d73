"""The corruption grid: one test image under every corruption (rows) and severity 0-5 (columns).

matplotlib's Figure API on an explicit Agg canvas (no pyplot, no global backend switch); the PNG
bytes are written atomically.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from cnnkit._io import atomic_write_bytes

if TYPE_CHECKING:
    from cnnkit.data import ImageDataset


def corruption_grid(
    dataset: ImageDataset,
    index: int,
    names: Sequence[str],
    seed: int,
    table_version: int | None = None,
) -> torch.Tensor:
    """(len(names), 6, C, H, W): image ``index`` at severities 0-5 of each corruption."""
    from cnnkit.data.corruptions import MAX_SEVERITY, SEVERITY_TABLE_VERSION, corrupt

    version = SEVERITY_TABLE_VERSION if table_version is None else table_version
    image = dataset.images[index : index + 1].to(torch.float32) / 255.0
    position = torch.tensor([index])
    rows = [
        torch.cat(
            [
                corrupt(image, name, severity, seed=seed, indices=position, table_version=version)
                for severity in range(MAX_SEVERITY + 1)
            ]
        )
        for name in names
    ]
    return torch.stack(rows)


def plot_corruption_grid(
    dataset: ImageDataset,
    index: int,
    names: Sequence[str],
    seed: int,
    path: str | Path,
    table_version: int | None = None,
) -> None:
    """Write the grid of :func:`corruption_grid` as a PNG, rows labelled by corruption."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    grid = corruption_grid(dataset, index, names, seed, table_version)
    rows, columns = grid.shape[:2]
    figure = Figure(figsize=(1.2 * columns + 1.4, 1.2 * rows + 0.4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    label = dataset.classes[int(dataset.labels[index])]
    figure.suptitle(f"{dataset.name} test #{index} ({label}) under each corruption", fontsize=9)
    for row, name in enumerate(names):
        for column in range(columns):
            picture = grid[row, column]
            ax = axes[row, column]
            if picture.shape[0] == 1:
                ax.imshow(picture[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(picture.permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"severity {column}", fontsize=8)
        axes[row, 0].set_ylabel(name, fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    atomic_write_bytes(Path(path), buffer.getvalue())
