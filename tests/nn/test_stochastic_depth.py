"""Stochastic depth: identity in eval, survivors scaled by 1/(1-p), expectation preserved.

Oracles: the identity, a binomial bound on the empirical mean and drop rate, and torchvision's
``stochastic_depth`` (same random stream, same output).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import ConfigError
from cnnkit.nn import StochasticDepth, stochastic_depth
from tests.oracles import torchvision_models

probabilities = st.floats(0.0, 1.0, allow_nan=False)


@settings(max_examples=30)
@given(p=probabilities, mode=st.sampled_from(["row", "batch"]))
def test_eval_mode_is_the_identity(p, mode):
    layer = StochasticDepth(p, mode).eval()
    x = torch.randn(4, 3, 2, 2)
    assert torch.equal(layer(x), x)


@settings(max_examples=30)
@given(p=st.floats(0.0, 0.95), seed=st.integers(0, 2**16))
def test_each_row_is_dropped_or_scaled_by_one_over_survival(p, seed):
    torch.manual_seed(seed)
    x = torch.rand(16, 3, 2, 2) + 0.5
    out = stochastic_depth(x, p, "row", training=True)
    for row_in, row_out in zip(x, out, strict=True):
        dropped = torch.equal(row_out, torch.zeros_like(row_out))
        assert dropped or torch.allclose(row_out, row_in / (1 - p))


def test_batch_mode_drops_or_keeps_the_whole_batch():
    torch.manual_seed(0)
    x = torch.ones(8, 4)
    outcomes = {stochastic_depth(x, 0.5, "batch").unique().tolist()[0] for _ in range(50)}
    assert outcomes == {0.0, 2.0}


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_training_mode_preserves_the_expectation(p):
    torch.manual_seed(0)
    rows = 40_000
    out = StochasticDepth(p, "row").train()(torch.ones(rows, 1))
    # each row is Bernoulli(1-p) / (1-p): mean 1, std sqrt(p / (1-p)); allow 5 standard errors
    standard_error = math.sqrt(p / (1 - p) / rows)
    assert abs(out.mean().item() - 1.0) < 5 * standard_error
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / rows)


def test_p_zero_is_the_identity_and_p_one_drops_everything():
    x = torch.randn(5, 3)
    assert torch.equal(stochastic_depth(x, 0.0, "row"), x)
    assert torch.equal(stochastic_depth(x, 1.0, "row"), torch.zeros_like(x))


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_same_random_stream_gives_torchvision_output(mode):
    torchvision_models()  # skips when the oracle is not installed
    from torchvision.ops import stochastic_depth as theirs

    x = torch.randn(32, 3, 2, 2)
    torch.manual_seed(7)
    expected = theirs(x, 0.3, mode, training=True)
    torch.manual_seed(7)
    assert torch.equal(stochastic_depth(x, 0.3, mode, training=True), expected)


@pytest.mark.parametrize(
    ("p", "mode", "named"), [(-0.1, "row", "p must"), (1.5, "row", "p must"), (0.1, "rows", "mode")]
)
def test_bad_arguments_are_config_errors(p, mode, named):
    with pytest.raises(ConfigError, match=named):
        StochasticDepth(p, mode)
    with pytest.raises(ConfigError, match=named):
        stochastic_depth(torch.ones(2), p, mode)
