"""The weight average against its closed form: ema_k = d^k w_0 + (1 - d) sum_i d^(k-i) w_i."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from cnnkit.train.ema import WeightAverage


@given(decay=st.floats(0.5, 0.999), updates=st.integers(1, 8), seed=st.integers(0, 1000))
def test_average_matches_closed_form(decay, updates, seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)).double()
    average = WeightAverage(model, decay)
    history = [model[0].weight.detach().clone()]
    for _ in range(updates):
        with torch.no_grad():
            model[0].weight.add_(torch.randn_like(model[0].weight))
        model(torch.randn(4, 3, dtype=torch.float64))  # changes BN running stats and counter
        average.update(model)
        history.append(model[0].weight.detach().clone())
    expected = decay**updates * history[0]
    for i in range(1, updates + 1):
        expected = expected + (1 - decay) * decay ** (updates - i) * history[i]
    torch.testing.assert_close(average.module[0].weight, expected, rtol=1e-10, atol=1e-12)
    # integer buffers are copied, not averaged
    assert int(average.module[1].num_batches_tracked) == updates
    assert not any(p.requires_grad for p in average.module.parameters())
