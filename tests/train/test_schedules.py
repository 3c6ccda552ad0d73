"""Learning-rate schedules against torch.optim.lr_scheduler (the oracle)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cnnkit.train.schedules import learning_rate


def torch_rates(make_scheduler, steps: int, peak: float) -> list[float]:
    """The rate torch's scheduler gives at each of ``steps`` steps (read before stepping)."""
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=peak)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


@given(
    steps=st.integers(2, 300),
    peak=st.floats(1e-4, 10.0),
    final_fraction=st.floats(0.0, 0.5),
)
def test_cosine_matches_cosine_annealing_lr(steps, peak, final_fraction):
    final = peak * final_fraction
    expected = torch_rates(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=steps, eta_min=final),
        steps,
        peak,
    )
    ours = [
        learning_rate(s / steps, peak=peak, schedule="cosine", final=final) for s in range(steps)
    ]
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_seed003_per_epoch_cosine_matches_its_scheduler():
    # 003: CosineAnnealingLR(T_max=50, eta_min=1e-4) stepped once per epoch, lr read before step.
    expected = torch_rates(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=50, eta_min=1e-4), 50, 0.1
    )
    ours = [learning_rate(e / 50, peak=0.1, schedule="cosine", final=1e-4) for e in range(50)]
    assert ours == pytest.approx(expected, rel=1e-9)


@given(steps=st.integers(10, 200), warmup_steps=st.integers(1, 9), peak=st.floats(1e-3, 5.0))
def test_linear_warmup_then_linear_decay_matches_torch(steps, warmup_steps, peak):
    # torch: LinearLR(start 1e-12 -> 1 over warmup_steps) then LinearLR(1 -> ~0) for the rest
    rest = steps - warmup_steps
    expected = torch_rates(
        lambda o: torch.optim.lr_scheduler.SequentialLR(
            o,
            [
                torch.optim.lr_scheduler.LinearLR(o, 1e-12, 1.0, total_iters=warmup_steps),
                torch.optim.lr_scheduler.LinearLR(o, 1.0, 1e-12, total_iters=rest),
            ],
            milestones=[warmup_steps],
        ),
        steps,
        peak,
    )
    warmup = warmup_steps / steps
    ours = [
        learning_rate(s / steps, peak=peak, schedule="linear", warmup=warmup) for s in range(steps)
    ]
    assert ours == pytest.approx(expected, rel=1e-6, abs=1e-9 * peak)


def test_onecycle_has_torch_shape():
    # torch's OneCycleLR anneals over phase ends at (pct * T - 1) and (T - 1); with progress
    # s / (T - 1) and a warm-up fraction (pct * T - 1) / (T - 1) the two agree exactly.
    steps, pct, peak = 200, 0.3, 0.5
    expected = torch_rates(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=peak, total_steps=steps, pct_start=pct, anneal_strategy="cos"
        ),
        steps,
        peak,
    )
    warmup = (pct * steps - 1) / (steps - 1)
    ours = [
        learning_rate(s / (steps - 1), peak=peak, schedule="onecycle", warmup=warmup)
        for s in range(steps)
    ]
    assert ours == pytest.approx(expected, rel=1e-9)


@given(progress=st.floats(-1.0, 2.0), schedule=st.sampled_from(["cosine", "linear", "onecycle"]))
def test_rates_stay_between_zero_and_peak(progress, schedule):
    rate = learning_rate(progress, peak=0.3, schedule=schedule, warmup=0.2, final=0.0)
    assert 0.0 <= rate <= 0.3 + 1e-12
    assert math.isfinite(rate)


def test_constant_is_constant_after_warmup():
    assert learning_rate(0.05, peak=1.0, schedule="constant", warmup=0.1) == pytest.approx(0.5)
    assert learning_rate(0.7, peak=1.0, schedule="constant", warmup=0.1) == 1.0
