"""Per-channel mean and standard deviation of a dataset, computed exactly (D3).

Seed 003 types ``Normalize((0.2860,), (0.3530,))`` for Fashion-MNIST; cnnkit computes the figures
instead. Pixels are uint8, so a 256-bin histogram per channel gives the exact integer sums
``S1 = sum(v)`` and ``S2 = sum(v^2)``; only the final division happens in float64.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cnnkit.data._checks import require_dataset
from cnnkit.errors import DataError

if TYPE_CHECKING:
    from cnnkit.data.dataset import ImageDataset


def channel_stats(dataset: ImageDataset) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) of the pixel values scaled to [0, 1].

    Over the ``M = N * H * W`` pixels of a channel with integer values ``v`` in 0..255:
    ``mean = S1 / (255 M)`` and ``std = sqrt(S2 / M - (S1 / M)^2) / 255`` (population standard
    deviation, ddof = 0, as ``torch.std(unbiased=False)``). Fashion-MNIST's train split gives
    0.2860 and 0.3530 (reference-figures.md; the values seed 003 types).
    """
    import torch

    require_dataset("channel_stats", "dataset", dataset)
    images = dataset.images
    if len(dataset) == 0:
        raise DataError(f"{dataset.name}: cannot compute statistics of an empty dataset")
    means, stds = [], []
    values = torch.arange(256, dtype=torch.float64)
    for channel in range(images.shape[1]):
        # bincount straight on uint8 is exact and copies nothing (an int64 copy is 8x the data).
        counts = torch.bincount(images[:, channel].reshape(-1), minlength=256)
        counts = counts.to(torch.float64)  # counts < 2^53: exact
        total = float(counts.sum())
        first = float((counts * values).sum())  # exact: integers below 2^53
        second = float((counts * values * values).sum())
        mean = first / total
        variance = max(second / total - mean * mean, 0.0)
        means.append(mean / 255.0)
        stds.append(math.sqrt(variance) / 255.0)
    return tuple(means), tuple(stds)
