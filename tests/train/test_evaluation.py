"""Evaluation with and without flip TTA against the same computation written out in torch."""

from __future__ import annotations

import pytest
import torch

from cnnkit.train.evaluation import run_evaluation


@pytest.mark.parametrize("tta", [False, True])
def test_tta_averages_the_logits_of_each_image_and_its_mirror(tta):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 5 * 7, 3)).double()
    images = torch.randn(20, 2, 5, 7, dtype=torch.float64)
    labels = torch.randint(0, 3, (20,))
    batches = [(images[:8], labels[:8]), (images[8:], labels[8:])]
    metrics = run_evaluation(model, batches, num_classes=3, tta=tta, hardest=2)
    with torch.no_grad():
        logits = model(images)
        if tta:
            logits = (logits + model(torch.flip(images, dims=[3]))) / 2
    expected_loss = torch.nn.functional.cross_entropy(logits, labels).item()
    assert metrics.loss == pytest.approx(expected_loss, rel=1e-6)
    assert metrics.top1 == pytest.approx(
        100.0 * (logits.argmax(1) == labels).double().mean().item()
    )
    assert model.training  # restored


def test_evaluation_restores_eval_mode_too():
    model = torch.nn.Linear(3, 2).eval()
    run_evaluation(model, [(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))], num_classes=2)
    assert not model.training
