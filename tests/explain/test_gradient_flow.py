"""Gradient flow against the gradients and an SGD step computed directly."""

from __future__ import annotations

import csv

import pytest
import torch

from cnnkit.explain.gradient_flow import GradientFlowRecorder, gradient_flow
from tests.explain.tiny import tiny
from tests.model_guard import model_left_as_found


def _backward(model, seed=0):
    x = torch.randn(4, 2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    model(x).logsumexp(1).sum().backward()


def test_norms_and_the_update_ratio_of_one_sgd_step():
    model = tiny()
    _backward(model)
    with model_left_as_found(model):
        before = gradient_flow(model)
    assert before.layers == ("features.0", "features.2", "head.1")
    for name, grad_norm, weight_norm in zip(
        before.layers, before.grad_norms, before.weight_norms, strict=True
    ):
        params = list(model.get_submodule(name).parameters())
        expected = torch.cat([p.grad.flatten() for p in params]).norm()
        assert grad_norm == pytest.approx(float(expected), rel=1e-12)
        assert weight_norm == pytest.approx(
            float(torch.cat([p.detach().flatten() for p in params]).norm())
        )
    lr = 0.1
    torch.optim.SGD(model.parameters(), lr=lr).step()
    after = gradient_flow(model, before.snapshot)
    # one plain SGD step moves each layer by lr ||g||
    for ratio, grad_norm, weight_norm in zip(
        after.update_ratios, before.grad_norms, after.weight_norms, strict=True
    ):
        assert ratio == pytest.approx(lr * grad_norm / weight_norm, rel=1e-9)


def test_recorder_writes_csv_and_png_every_n_steps(tmp_path):
    model = tiny()
    recorder = GradientFlowRecorder(tmp_path, every=2, tensorboard=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for step in range(5):
        optimizer.zero_grad()
        _backward(model, seed=step)
        recorder.after_backward(model, step=step, epoch=1 + step // 3)
        optimizer.step()
    recorder.close()
    rows = list(csv.DictReader((tmp_path / "grad_flow.csv").open()))
    assert sorted({int(r["step"]) for r in rows}) == [0, 2, 4]
    assert len(rows) == 9 and rows[0]["update_ratio"] == "" and rows[-1]["update_ratio"] != ""
    assert (tmp_path / "grad_flow.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logged = EventAccumulator(str(tmp_path / "tensorboard"))
    logged.Reload()
    scalars = logged.Scalars("grad_flow/features.0")
    assert [event.step for event in scalars] == [0, 2, 4]
    first = next(r for r in rows if r["layer"] == "features.0")
    assert scalars[0].value == pytest.approx(float(first["grad_norm"]), rel=1e-5)
