"""Test-set predictions of a run, recomputed from its checkpoint, and what follows from them.

The report never trusts a stored matrix for what it draws: the confusion matrix, the per-class
table, the hardest samples and the confusion examples all come from one :class:`Predictions`
(one row per test image), so they agree with each other by construction and with a recount.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from cnnkit.errors import CheckpointError, DataError

if TYPE_CHECKING:
    from pathlib import Path

    from torch import nn

    from cnnkit.data import ImageDataset
    from cnnkit.report.run import RunSummary


@dataclass(frozen=True)
class ClassStats:
    """One class: precision = TP / (TP + FP), recall = TP / (TP + FN) (the class's accuracy,
    as final.json's ``per_class_top1``), F1 = 2 P R / (P + R); NaN where a denominator is 0."""

    index: int
    name: str
    precision: float
    recall: float
    f1: float
    support: int
    errors: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Predictions:
    """Per test image: true label, predicted label, the softmax probability of the prediction,
    the cross-entropy loss, and whether the label is among the top 5."""

    labels: torch.Tensor
    predicted: torch.Tensor
    confidence: torch.Tensor
    loss: torch.Tensor
    top5_hit: torch.Tensor
    classes: list[str]
    source: str

    @property
    def count(self) -> int:
        return int(self.labels.numel())

    @property
    def top1(self) -> float:
        return 100.0 * float((self.predicted == self.labels).double().mean())

    @property
    def top5(self) -> float:
        return 100.0 * float(self.top5_hit.double().mean())

    def confusion(self) -> list[list[int]]:
        """``confusion[true][predicted]`` counts (rows: true class), by one bincount."""
        size = len(self.classes)
        flat = self.labels * size + self.predicted
        return torch.bincount(flat, minlength=size * size).view(size, size).tolist()

    def class_stats(self) -> list[ClassStats]:
        """Precision, recall and F1 per class, in class order."""
        matrix = self.confusion()
        result = []
        for index, name in enumerate(self.classes):
            hits = matrix[index][index]
            support = sum(matrix[index])
            predicted = sum(row[index] for row in matrix)
            precision = hits / predicted if predicted else math.nan
            recall = hits / support if support else math.nan
            if math.isnan(precision) or math.isnan(recall):
                f1 = math.nan
            else:
                f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            result.append(ClassStats(index, name, precision, recall, f1, support, support - hits))
        return result

    def hardest(self, count: int) -> list[int]:
        """Indices of the ``count`` test images with the largest loss, largest first."""
        return self.loss.argsort(descending=True, stable=True)[:count].tolist()

    def cell_examples(self, true: int, predicted: int, count: int) -> list[int]:
        """Up to ``count`` images of true class ``true`` predicted as ``predicted``, most
        confident first."""
        where = ((self.labels == true) & (self.predicted == predicted)).nonzero()[:, 0]
        order = self.confidence[where].argsort(descending=True, stable=True)
        return where[order][:count].tolist()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "count": self.count,
            "top1": self.top1,
            "top5": self.top5,
            "classes": list(self.classes),
            "labels": self.labels.tolist(),
            "predicted": self.predicted.tolist(),
            "confidence": self.confidence.tolist(),
            "loss": self.loss.tolist(),
        }


@dataclass
class TestRun:
    """What recomputing needs and the CAM section reuses: the rebuilt model (eval mode, CPU,
    fp32), the raw test images (uint8) and the normalisation."""

    model: nn.Module
    images: ImageDataset
    mean: tuple[float, ...]
    std: tuple[float, ...]
    predictions: Predictions

    def normalised(self, indices: list[int]) -> torch.Tensor:
        """``(x / 255 - mean) / std`` of the chosen test images, float32 (B, C, H, W)."""
        x = self.images.images[indices].float() / 255
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return (x - mean) / std


def load_evaluated_model(run: RunSummary) -> tuple[nn.Module, dict[str, Any], Path, str]:
    """The model final.json's test metrics were measured with, rebuilt from the run's
    checkpoint in eval mode: ``(model, checkpoint, its path, weights key)``.

    Raises a CnnkitError naming what is missing (no checkpoint, a model outside the zoo).
    """
    from cnnkit.models import list_models
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.evaluation import model_from_checkpoint

    chosen = run.evaluated_checkpoint()
    if chosen is None:
        raise CheckpointError(f"{run.path}: no best.pt or last.pt to rebuild the model from")
    path, weights = chosen
    saved = load_checkpoint(path)
    # A run folder must not choose code to import: only zoo names are rebuilt.
    if saved["model_name"] not in list_models():
        raise CheckpointError(
            f"{path}: model {saved['model_name']!r} is not in cnnkit's zoo; the report rebuilds "
            "zoo models only"
        )
    return model_from_checkpoint(saved, path, weights).eval(), saved, path, weights


def recompute(run: RunSummary, *, batch_size: int = 500) -> TestRun:
    """Predict the run's test set with the weights final.json was measured with.

    Batched, in ``torch.inference_mode``, with the run's normalisation, precision and test-time
    augmentation (``cnnkit.train.evaluation.predict_logits``), on the CPU. Raises a CnnkitError
    naming what is missing (no checkpoint, a model outside the zoo, the dataset not found).
    """
    from cnnkit.data import DeviceLoader, load_dataset
    from cnnkit.runtime import resolve_precision, to_memory_format
    from cnnkit.train.config import saved_config
    from cnnkit.train.evaluation import predict_logits, tta_label

    model, saved, path, weights = load_evaluated_model(run)
    lacking = [key for key in ("classes", "mean", "std", "image_shape") if key not in saved]
    if lacking:
        raise CheckpointError(f"{path}: checkpoint lacks {lacking[0]!r}")
    config = saved_config(saved, str(path))
    name = config.data.dataset
    # Never download from a report: a dataset that is not here is said to be missing.
    dataset = load_dataset(name, "test", data_dir=config.data.data_dir, download=False)
    if tuple(dataset.image_shape) != tuple(saved["image_shape"]):
        raise DataError(
            f"{path}: the model was trained on images {tuple(saved['image_shape'])}, "
            f"{name} test has {tuple(dataset.image_shape)}"
        )
    device = torch.device("cpu")
    dtype = resolve_precision(config.runtime.precision, device)
    channels_last = config.runtime.channels_last
    if channels_last:
        model = to_memory_format(model, channels_last=True)
    tta = config.evaluation.tta
    mean, std = tuple(saved["mean"]), tuple(saved["std"])
    loader = DeviceLoader(
        dataset,
        batch_size,
        shuffle=False,
        drop_last=False,
        device=device,
        seed=0,
        transform=None,
        channels_last=channels_last,
        mean=mean,
        std=std,
    )
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("pred", "conf", "loss", "top5")}
    with torch.inference_mode():
        for images, labels in loader:
            logits = predict_logits(model, images, dtype, tta)
            probabilities = logits.softmax(1)
            confidence, predicted = probabilities.max(1)
            k = min(5, logits.shape[1])
            parts["pred"].append(predicted)
            parts["conf"].append(confidence)
            parts["loss"].append(F.cross_entropy(logits, labels, reduction="none"))
            parts["top5"].append((logits.topk(k, 1).indices == labels[:, None]).any(1))
    model = to_memory_format(model, channels_last=False)
    described = ", ".join(
        part for part in (f"{weights} weights", tta_label(tta), _precision_name(dtype)) if part
    )
    predictions = Predictions(
        labels=dataset.labels.clone(),
        predicted=torch.cat(parts["pred"]),
        confidence=torch.cat(parts["conf"]),
        loss=torch.cat(parts["loss"]),
        top5_hit=torch.cat(parts["top5"]),
        classes=list(saved["classes"]),
        source=f"recomputed from {path.name} ({described}) on {len(dataset):,} test images",
    )
    return TestRun(model, dataset, mean, std, predictions)


def _precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))
