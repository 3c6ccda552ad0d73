"""DropBlock2d: the paper's gamma, whole blocks, exactly unbiased, identity in eval."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import ConfigError, ShapeError
from cnnkit.nn import DropBlock2d
from cnnkit.nn.drop_block import drop_block_gamma


def test_gamma_is_the_papers_formula():
    # Ghiasi et al. 2018, eq. 1: gamma = p / b^2 * HW / ((H - b + 1)(W - b + 1))
    assert drop_block_gamma(0.1, 7, 14, 14) == pytest.approx(0.1 / 49 * 196 / 64)
    assert drop_block_gamma(0.2, 1, 5, 9) == pytest.approx(0.2)


@given(h=st.integers(1, 9), w=st.integers(1, 9), size=st.integers(1, 5), p=st.floats(0.01, 0.9))
@settings(max_examples=40)
def test_dropped_units_form_whole_blocks(h, w, size, p):
    torch.manual_seed(0)
    block = DropBlock2d(p, size).train()
    out = block(torch.ones(2, 3, h, w))
    dropped = (out == 0).double()
    b = min(size, h, w)
    # every dropped unit lies in some fully dropped b x b square that fits in the map
    full = torch.nn.functional.avg_pool2d(dropped, b, stride=1) > 1 - 1e-9
    for n in range(2):
        for c in range(3):
            mask = torch.zeros(h, w, dtype=torch.bool)
            for i, j in full[n, c].nonzero().tolist():
                mask[i : i + b, j : j + b] = True
            assert torch.equal(mask, dropped[n, c].bool())


def test_eval_mode_and_zero_probability_are_the_identity():
    x = torch.randn(2, 3, 8, 8)
    assert DropBlock2d(0.5, 3).eval()(x) is x
    assert DropBlock2d(0.0, 3).train()(x) is x


def test_expectation_is_preserved_element_by_element():
    """Average of 20,000 independent masks (as channels) stays within 5 standard errors of
    the input at every position, borders included (the paper's batch rescaling does not)."""
    torch.manual_seed(0)
    h, w, size, p = 6, 7, 3, 0.3
    block = DropBlock2d(p, size).train()
    x = torch.ones(1, 20_000, h, w, dtype=torch.float64)
    out = block(x)[0]
    mean, error = out.mean(0), out.std(0) / 20_000**0.5
    assert torch.all((mean - 1).abs() < 5 * error + 1e-12)


def test_dropped_fraction_matches_the_coverage_count():
    """P(unit kept) = (1 - gamma)^m, m = seed positions whose block covers it (counted here
    by brute force), so the measured dropped fraction equals 1 - mean((1 - gamma)^m)."""
    torch.manual_seed(0)
    h = w = 8
    size, p = 3, 0.2
    gamma = drop_block_gamma(p, size, h, w)
    coverage = torch.zeros(h, w)
    for i in range(h - size + 1):
        for j in range(w - size + 1):
            coverage[i : i + size, j : j + size] += 1
    expected = 1 - ((1 - gamma) ** coverage).mean()
    out = DropBlock2d(p, size).train()(torch.ones(1, 50_000, h, w))
    measured = (out == 0).double().mean()
    assert abs(float(measured) - float(expected)) < 0.002


def test_bad_arguments_and_shapes():
    with pytest.raises(ConfigError, match="drop_prob"):
        DropBlock2d(1.0)
    with pytest.raises(ConfigError, match="block_size"):
        DropBlock2d(0.1, 0)
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        DropBlock2d(0.1, 3).train()(torch.ones(3, 8, 8))
