"""Pictures of a run: loss/accuracy curves, the confusion matrix, the hardest test samples.

matplotlib's Figure API with the Agg canvas (no display, no pyplot state); each figure is
written atomically, in the format its file suffix names (``.png``, ``.svg``, ``.pdf``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit._io import atomic_save_figure

if TYPE_CHECKING:
    import torch

    from cnnkit.train.metrics import HardSample


def _figure(width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    return figure, figure.subplots


def _save(figure: Any, path: Path) -> None:
    atomic_save_figure(figure, path, bbox_inches="tight")


def plot_curves(history: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Loss (left) and top-1 accuracy (right) per epoch, train and validation."""
    figure, subplots = _figure(10, 4)
    loss_axes, accuracy_axes = subplots(1, 2)
    # x is epochs trained: a last epoch cut short by a time budget sits at its fraction
    epochs = [row["epoch"] - 1 + row.get("epoch_fraction", 1.0) for row in history]
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        values = [row.get(key) for row in history]
        if any(v is not None for v in values):
            loss_axes.plot(epochs, values, marker="o", label=label)
    for key, label in (("train_top1", "train"), ("val_top1", "validation")):
        values = [row.get(key) for row in history]
        if any(v is not None for v in values):
            accuracy_axes.plot(epochs, values, marker="o", label=label)
    loss_axes.set(xlabel="epoch", ylabel="loss", title="loss")
    accuracy_axes.set(xlabel="epoch", ylabel="top-1 (%)", title="accuracy")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    _save(figure, Path(path))


def plot_confusion(
    confusion: Sequence[Sequence[int]],
    classes: Sequence[str],
    path: str | Path,
    title: str = "confusion matrix (test)",
) -> None:
    """The confusion matrix (rows: true class, columns: predicted), counts in each cell."""
    size = len(classes)
    figure, subplots = _figure(1.0 + 0.6 * size, 0.8 + 0.6 * size)
    axes = subplots()
    image = axes.imshow(confusion, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    peak = max((max(row) for row in confusion), default=0)
    for row in range(size):
        for column in range(size):
            value = confusion[row][column]
            colour = "white" if value > peak / 2 else "black"
            axes.text(column, row, str(value), ha="center", va="center", fontsize=7, color=colour)
    axes.set_xticks(range(size), classes, rotation=45, ha="right")
    axes.set_yticks(range(size), classes)
    axes.set(xlabel="predicted", ylabel="true", title=title)
    _save(figure, Path(path))


def plot_hardest(
    images: torch.Tensor,
    samples: Sequence[HardSample],
    classes: Sequence[str],
    path: str | Path,
) -> None:
    """A grid of the hardest samples: each titled 'true -> predicted (confidence)'."""
    if not samples:
        return
    columns = min(8, len(samples))
    rows = (len(samples) + columns - 1) // columns
    figure, subplots = _figure(1.6 * columns, 1.9 * rows)
    grid = subplots(rows, columns, squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    for axes, sample in zip(grid.flat, samples, strict=False):
        picture = images[sample.index]
        if picture.shape[0] == 1:
            axes.imshow(picture[0].numpy(), cmap="gray")
        else:
            axes.imshow(picture.permute(1, 2, 0).numpy())
        true, predicted = classes[sample.label], classes[sample.predicted]
        axes.set_title(f"{true}\n-> {predicted} {sample.confidence:.0%}", fontsize=7)
    _save(figure, Path(path))
