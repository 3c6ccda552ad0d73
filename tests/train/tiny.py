"""Tiny models and a tiny learnable dataset, so trainer tests run in about a second each; the
quiet settings every trainer test shares, and a run stopped from outside after an epoch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnkit.data import ImageDataset
from cnnkit.train import TrainConfig
from cnnkit.train.log import RunLog

if TYPE_CHECKING:  # only for a type: the module is also imported as a model by `cnnkit train`
    import pytest

# fp32 on the CPU in the default memory format, with no progress bar, TensorBoard or plots: fast,
# exact, and nothing written that a test does not read
QUIET = dict(
    precision="off",
    channels_last=False,
    device="cpu",
    progress=False,
    tensorboard=False,
    plots=False,
)


def quiet_config(out_dir: Any, **flat: Any) -> TrainConfig:
    """``TrainConfig.from_flat(**QUIET, **flat)`` writing into ``out_dir`` (``None``: no folder)."""
    return TrainConfig.from_flat(
        **{**QUIET, **flat, "out_dir": None if out_dir is None else str(out_dir)}
    )


def stop_after_epoch(
    patch: pytest.MonkeyPatch, epoch: int, error: type[BaseException] = KeyboardInterrupt
) -> None:
    """Make the run raise ``error`` once epoch ``epoch`` is logged, its checkpoints saved: a run
    stopped from outside (Ctrl-C, a kill) between two epochs."""
    original = RunLog.end_epoch

    def end_epoch(self: RunLog, history: list[dict[str, Any]]) -> None:
        original(self, history)
        if history[-1]["epoch"] == epoch:
            raise error

    patch.setattr(RunLog, "end_epoch", end_epoch)


CLASSES = ["band 1", "band 2", "band 3", "band 4"]


def quadrant_dataset(count: int, seed: int, size: int = 12) -> ImageDataset:
    """Noise images with one brighter horizontal band; the label is the band (learnable quickly).

    The label does not change under a horizontal flip, so flip augmentation keeps it valid.
    """
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 120, (count, 1, size, size), generator=generator)
    labels = torch.randint(0, 4, (count,), generator=generator)
    band = size // 4
    for label in range(4):
        chosen = labels == label
        images[chosen, :, label * band : (label + 1) * band, :] += 120
    return ImageDataset(images.to(torch.uint8), labels, list(CLASSES), "bands", "train")


def tiny_cnn(num_classes: int = 4, in_channels: int = 1) -> nn.Module:
    """conv-BN-ReLU-pool-linear: BatchNorm makes running statistics part of what must resume."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.Linear(24, num_classes),
    )


def tiny_linear(num_classes: int = 4, in_channels: int = 1) -> nn.Module:
    """A linear classifier without BatchNorm (per-sample losses are independent of the batch)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 144, num_classes))


class Exploding(nn.Module):
    """A linear classifier whose logits become NaN from its ``fail_at``-th training forward."""

    fail_at = 5

    def __init__(self, num_classes: int = 4, in_channels: int = 1) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels * 144, num_classes)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc(x.flatten(1))
        if self.training:
            self.calls += 1
            if self.calls >= self.fail_at:
                logits = logits * float("nan")
        return logits
