"""Metrics against direct computations: top-k by sorting, confusion by counting, loss by torch."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.train.metrics import MetricAccumulator


@given(
    count=st.integers(1, 60),
    classes=st.integers(2, 12),
    batch=st.integers(1, 25),
    seed=st.integers(0, 2**31 - 1),
)
def test_accumulated_metrics_equal_direct_computation(count, classes, batch, seed):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(count, classes, generator=generator, dtype=torch.float64).float()
    labels = torch.randint(0, classes, (count,), generator=generator)
    accumulator = MetricAccumulator(classes, hardest=3)
    for start in range(0, count, batch):  # batching must not change anything
        accumulator.add(logits[start : start + batch], labels[start : start + batch])
    metrics = accumulator.result()

    order = [sorted(range(classes), key=lambda c, r=row: -float(r[c])) for row in logits]
    top1 = sum(o[0] == int(y) for o, y in zip(order, labels, strict=True))
    top5 = sum(int(y) in o[:5] for o, y in zip(order, labels, strict=True))
    assert metrics.top1 == pytest.approx(100.0 * top1 / count)
    assert metrics.top5 == pytest.approx(100.0 * top5 / count)
    expected_loss = torch.nn.functional.cross_entropy(logits.double(), labels).item()
    assert metrics.loss == pytest.approx(expected_loss, rel=1e-5)
    confusion = [[0] * classes for _ in range(classes)]
    for o, y in zip(order, labels, strict=True):
        confusion[int(y)][o[0]] += 1
    assert metrics.confusion == confusion
    for c in range(classes):
        row = sum(confusion[c])
        if row:
            assert metrics.per_class[c] == pytest.approx(100.0 * confusion[c][c] / row)
    losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    expected_hardest = losses.argsort(descending=True)[:3].tolist()
    assert [h.loss for h in metrics.hardest] == pytest.approx(losses[expected_hardest].tolist())


def test_top5_with_fewer_than_five_classes_is_100_percent():
    accumulator = MetricAccumulator(3)
    accumulator.add(torch.randn(7, 3), torch.randint(0, 3, (7,)))
    assert accumulator.result().top5 == 100.0


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.lists(
            st.lists(st.integers(0, 5), min_size=n, max_size=n), min_size=n, max_size=n
        )
    )
)
def test_class_scores_equal_scikit_learn_s_precision_recall_f1(confusion):
    """Oracle: sklearn on the labels the matrix counts, zero_division=nan (NaN where undefined)."""
    import numpy as np
    from sklearn.metrics import precision_recall_fscore_support

    from cnnkit.train.metrics import class_scores

    size = len(confusion)
    true = [t for t in range(size) for p in range(size) for _ in range(confusion[t][p])]
    pred = [p for t in range(size) for p in range(size) for _ in range(confusion[t][p])]
    scores = class_scores(confusion, [f"c{k}" for k in range(size)])
    if not true:
        assert all(math.isnan(s.f1) for s in scores)
        return
    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=list(range(size)), zero_division=np.nan
    )
    for k, score in enumerate(scores):
        for mine, theirs in ((score.precision, precision[k]), (score.recall, recall[k])):
            assert (math.isnan(mine) and math.isnan(theirs)) or mine == pytest.approx(100 * theirs)
        assert (math.isnan(score.f1) and math.isnan(f1[k])) or score.f1 == pytest.approx(
            100 * f1[k]
        )
        assert score.support == support[k]
