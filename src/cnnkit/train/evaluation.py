"""Evaluation: a model over a loader, and ``evaluate(checkpoint)`` for a saved run (E2).

Test-time flip augmentation averages the logits of each image and its horizontal mirror
(airbench's ``tta_level=1``); it helps on datasets whose classes are mirror-symmetric, such as
Fashion-MNIST and CIFAR-10, and should be left off for digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cnnkit.errors import CheckpointError
from cnnkit.train.metrics import MetricAccumulator, Metrics
from cnnkit.train.runtime import autocast

if TYPE_CHECKING:
    from torch import nn


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    dtype: torch.dtype | None,
    tta: bool,
) -> torch.Tensor:
    """Float32 logits of ``model`` on a batch; with ``tta`` the mean over the image and its flip."""
    with autocast(images.device, dtype):
        logits = model(images).float()
        if tta:
            logits = (logits + model(images.flip(-1)).float()) / 2
    return logits


@torch.no_grad()
def run_evaluation(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    num_classes: int,
    classes: list[str] | None = None,
    dtype: torch.dtype | None = None,
    tta: bool = False,
    hardest: int = 0,
) -> Metrics:
    """Metrics of ``model`` (put in eval mode, restored afterwards) over ``batches``."""
    was_training = model.training
    model.eval()
    accumulator = MetricAccumulator(num_classes, hardest=hardest)
    try:
        for images, labels in batches:
            accumulator.add(predict_logits(model, images, dtype, tta), labels)
    finally:
        model.train(was_training)
    return accumulator.result(classes)


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate` measured, and on what."""

    checkpoint: str
    dataset: str
    split: str
    weights: str
    tta: bool
    metrics: Metrics

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "dataset": self.dataset,
            "split": self.split,
            "weights": self.weights,
            "tta": self.tta,
            **self.metrics.to_dict(),
        }


def model_from_checkpoint(checkpoint: dict[str, Any], path: Path, weights: str) -> nn.Module:
    """Rebuild the model a checkpoint names and load its ``model`` (or ``ema``) weights."""
    from cnnkit.models import resolve_model
    from cnnkit.train.checkpoint import load_model_state

    model = resolve_model(checkpoint["model_name"], **checkpoint["model_kwargs"])
    state = checkpoint.get(weights)
    if state is None:
        raise CheckpointError(f"{path}: holds no {weights!r} weights (run without --ema?)")
    load_model_state(model, state, path)
    return model


def evaluate(
    checkpoint: str | Path,
    *,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | None = None,
    tta: bool | None = None,
    weights: str = "model",
    batch_size: int = 1000,
    device: str = "auto",
    hardest: int = 16,
) -> EvalResult:
    """Evaluate a saved run's checkpoint (``best.pt``, ``last.pt``, or the run folder).

    The model, its normalisation (mean, std) and the dataset come from the checkpoint unless
    given. Returns top-1/top-5 (percent), mean cross-entropy, the confusion matrix, per-class
    accuracy and the hardest samples.

    Args:
        checkpoint: a checkpoint file, or a run folder (its ``best.pt``).
        dataset: dataset name; default: the one the run trained on.
        split: ``test`` or ``train``.
        tta: average with the horizontal flip; default: as the run was configured.
        weights: ``model`` or ``ema`` (the weight average, when the run kept one).
    """
    from cnnkit.data import DeviceLoader, load_dataset
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.runtime import resolve_device, resolve_precision

    path = Path(checkpoint)
    if path.is_dir():
        path = path / "best.pt"
    saved = load_checkpoint(path)
    config = saved["config"]
    name = dataset or config["dataset"]
    images = load_dataset(name, split, data_dir=data_dir or config.get("data_dir"))
    if tuple(images.image_shape) != tuple(saved["image_shape"]):
        raise CheckpointError(
            f"{path}: the model was trained on images {tuple(saved['image_shape'])}, "
            f"{name} {split} has {images.image_shape}"
        )
    use_tta = bool(config.get("tta", False)) if tta is None else tta
    target = resolve_device(device)
    model = model_from_checkpoint(saved, path, weights).to(target)
    if config.get("channels_last", False):
        model = model.to(memory_format=torch.channels_last)
    loader = DeviceLoader(
        images,
        batch_size,
        shuffle=False,
        drop_last=False,
        device=target,
        seed=0,
        transform=None,
        channels_last=bool(config.get("channels_last", False)),
        mean=tuple(saved["mean"]),
        std=tuple(saved["std"]),
    )
    dtype = resolve_precision(config.get("precision", "off"), target)
    metrics = run_evaluation(
        model,
        loader,
        num_classes=len(saved["classes"]),
        classes=list(saved["classes"]),
        dtype=dtype,
        tta=use_tta,
        hardest=hardest,
    )
    return EvalResult(str(path), name, split, weights, use_tta, metrics)
