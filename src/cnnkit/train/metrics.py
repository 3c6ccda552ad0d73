"""Classification metrics from logits: top-k accuracy, loss, confusion matrix, hardest samples.

All accuracies are percentages. The confusion matrix counts ``confusion[true, predicted]`` (rows
are the true classes, as scikit-learn's ``confusion_matrix``); per-class accuracy is a row's
diagonal over the row's sum (recall). The hardest samples are those with the largest
cross-entropy loss (001's error analysis).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class HardSample:
    """One misclassified-or-nearly sample: its index in the evaluated set, labels and loss."""

    index: int
    label: int
    predicted: int
    confidence: float  # softmax probability of the predicted class
    loss: float


@dataclass(frozen=True)
class ClassScore:
    """Precision, recall and F1 of one class (percent), from the confusion matrix.

    precision = C[k,k] / sum_i C[i,k] (column), recall = C[k,k] / sum_j C[k,j] (row),
    F1 = 2 C[k,k] / (row + column) = 2 P R / (P + R): scikit-learn's
    ``precision_recall_fscore_support`` with ``zero_division=nan`` (NaN where a denominator is
    0, written as null in JSON).
    """

    name: str
    precision: float
    recall: float
    f1: float
    support: int  # images of this class (row sum)
    predicted: int  # images predicted as this class (column sum)

    def to_dict(self) -> dict:
        return {
            "class": self.name,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
            "predicted": self.predicted,
        }


def class_scores(confusion: list[list[int]], classes: list[str]) -> list[ClassScore]:
    """One :class:`ClassScore` per class of ``confusion[true][predicted]``."""
    nan = float("nan")
    scores = []
    for k, row in enumerate(confusion):
        hits, support = row[k], sum(row)
        predicted = sum(other[k] for other in confusion)
        precision = 100.0 * hits / predicted if predicted else nan
        recall = 100.0 * hits / support if support else nan
        # 2 TP / (2 TP + FP + FN) = 2 P R / (P + R) where both exist; 0 without a hit
        f1 = 100.0 * 2 * hits / (support + predicted) if support + predicted else nan
        name = classes[k] if k < len(classes) else str(k)
        scores.append(ClassScore(name, precision, recall, f1, support, predicted))
    return scores


@dataclass(frozen=True)
class Metrics:
    """Metrics of one evaluation pass."""

    count: int
    loss: float
    top1: float
    top5: float
    confusion: list[list[int]]
    classes: list[str] = field(default_factory=list)
    hardest: list[HardSample] = field(default_factory=list)

    @property
    def per_class(self) -> list[float]:
        """Accuracy (percent) of each true class: diagonal over row sum (NaN for an empty row)."""
        result = []
        for row_index, row in enumerate(self.confusion):
            total = sum(row)
            result.append(100.0 * row[row_index] / total if total else float("nan"))
        return result

    @property
    def class_scores(self) -> list[ClassScore]:
        """Precision, recall and F1 of each class (:func:`class_scores`)."""
        return class_scores(self.confusion, list(self.classes))

    def to_dict(self) -> dict:
        return {
            "count": self.count,
            "loss": self.loss,
            "top1": self.top1,
            "top5": self.top5,
            "classes": list(self.classes),
            "per_class_top1": self.per_class,
            "confusion": self.confusion,
            "hardest": [vars(h) for h in self.hardest],
        }


class MetricAccumulator:
    """Accumulates batches of (logits, labels) and produces :class:`Metrics`.

    ``labels`` are class indices. Loss is the mean unsmoothed cross-entropy over all samples.
    """

    def __init__(self, num_classes: int, hardest: int = 0) -> None:
        self.num_classes = num_classes
        self.hardest = hardest
        self.count = 0
        self.loss_sum = 0.0
        self.correct1 = 0
        self.correct5 = 0
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self._losses: list[torch.Tensor] = []
        self._predicted: list[torch.Tensor] = []
        self._confidence: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    @torch.no_grad()
    def add(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        logits = logits.float().cpu()
        labels = labels.cpu()
        losses = F.cross_entropy(logits, labels, reduction="none")
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hits = top == labels[:, None]
        predicted = top[:, 0]
        self.count += len(labels)
        self.loss_sum += float(losses.double().sum())
        self.correct1 += int(hits[:, 0].sum())
        self.correct5 += int(hits.any(dim=1).sum())
        flat = labels * self.num_classes + predicted
        self.confusion += torch.bincount(flat, minlength=self.num_classes**2).view_as(
            self.confusion
        )
        if self.hardest:
            self._losses.append(losses)
            self._predicted.append(predicted)
            self._confidence.append(logits.softmax(1).gather(1, predicted[:, None])[:, 0])
            self._labels.append(labels)

    def merge(self, other: MetricAccumulator) -> None:
        """Add ``other``'s images after this one's (a distributed evaluation's shards, in rank
        order: the hardest samples' indices then count through both)."""
        self.count += other.count
        self.loss_sum += other.loss_sum
        self.correct1 += other.correct1
        self.correct5 += other.correct5
        self.confusion += other.confusion
        for mine, theirs in (
            (self._losses, other._losses),
            (self._predicted, other._predicted),
            (self._confidence, other._confidence),
            (self._labels, other._labels),
        ):
            mine.extend(theirs)

    def result(self, classes: list[str] | None = None) -> Metrics:
        count = max(self.count, 1)
        hardest: list[HardSample] = []
        if self.hardest and self._losses:
            losses = torch.cat(self._losses)
            order = losses.argsort(descending=True)[: self.hardest]
            labels, predicted = torch.cat(self._labels), torch.cat(self._predicted)
            confidence = torch.cat(self._confidence)
            hardest = [
                HardSample(
                    index=int(i),
                    label=int(labels[i]),
                    predicted=int(predicted[i]),
                    confidence=float(confidence[i]),
                    loss=float(losses[i]),
                )
                for i in order
            ]
        return Metrics(
            count=self.count,
            loss=self.loss_sum / count,
            top1=100.0 * self.correct1 / count,
            top5=100.0 * self.correct5 / count,
            confusion=self.confusion.tolist(),
            classes=list(classes or []),
            hardest=hardest,
        )
