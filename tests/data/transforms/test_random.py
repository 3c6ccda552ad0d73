"""The random-number helpers behind the transforms, against torch.distributions and closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cnnkit.data.transforms._random import beta, gamma, integers_below, sample_boxes

CPU = torch.device("cpu")


def _ks_statistic(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    grid = torch.linspace(0, 1, 2001, dtype=torch.float64)
    cdf_a = torch.searchsorted(a.double().sort().values, grid, right=True) / len(a)
    cdf_b = torch.searchsorted(b.double().sort().values, grid, right=True) / len(b)
    return float((cdf_a - cdf_b).abs().max())


@pytest.mark.parametrize("alpha", [0.2, 2.5])  # both gamma branches (alpha < 1, >= 1)
def test_beta_matches_torch_distributions(alpha):
    count = 40_000
    ours = beta(alpha, count, torch.Generator().manual_seed(1), CPU)
    torch.manual_seed(2)
    oracle = torch.distributions.Beta(alpha, alpha).sample((count,))
    # KS critical value for n = m = 40,000 at significance 1e-6: 2.7 * sqrt(2 / n) = 0.019
    assert _ks_statistic(ours, oracle) < 0.019
    assert float(ours.mean()) == pytest.approx(0.5, abs=0.01)  # 4 standard errors
    assert float(ours.var()) == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.03)
    assert float(ours.min()) >= 0.0 and float(ours.max()) <= 1.0


def test_gamma_mean_and_variance_equal_the_concentration():
    concentration = torch.tensor([0.3, 1.0, 4.0], dtype=torch.float64).repeat(40_000, 1)
    samples = gamma(concentration, torch.Generator().manual_seed(3))
    # 4 standard errors: mean sqrt(a / n) / a; variance sqrt((6 / a + 2) / n) relative
    assert samples.mean(0).tolist() == pytest.approx([0.3, 1.0, 4.0], rel=0.04)
    assert samples.var(0).tolist() == pytest.approx([0.3, 1.0, 4.0], rel=0.1)


@given(highs=st.lists(st.integers(1, 50), min_size=1, max_size=40), seed=st.integers(0, 99))
def test_integers_below_stay_in_range(highs, seed):
    highs = torch.tensor(highs)
    values = integers_below(highs, torch.Generator().manual_seed(seed))
    assert bool(((values >= 0) & (values < highs)).all())


def test_integers_below_are_uniform():
    values = integers_below(torch.full((60_000,), 6), torch.Generator().manual_seed(0))
    counts = torch.bincount(values, minlength=6).double()
    assert float((counts - 10_000).abs().max()) < 5 * math.sqrt(10_000)


def test_box_sides_follow_area_and_ratio():
    generator = torch.Generator().manual_seed(0)
    top, left, height, width, found = sample_boxes(
        50, 200, 200, (0.5, 0.5), (2.0, 2.0), generator, CPU
    )
    # area 20000 with w/h = 2: w = round(sqrt(40000)) = 200, h = round(sqrt(10000)) = 100
    assert bool(found.all()) and set(width.tolist()) == {200} and set(height.tolist()) == {100}
    assert set(left.tolist()) == {0} and len(set(top.tolist())) > 10


@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    low=st.floats(0.01, 1.0),
    seed=st.integers(0, 99),
    strict=st.booleans(),
)
def test_boxes_lie_inside_the_image(height, width, low, seed, strict):
    top, left, box_height, box_width, found = sample_boxes(
        30, height, width, (low, 1.0), (0.5, 2.0), torch.Generator().manual_seed(seed), CPU,
        strict=strict,
    )  # fmt: skip
    assert bool((box_height >= 1).all() and (box_width >= 1).all())
    assert bool(((top + box_height <= height) & (left + box_width <= width)).all())
    assert bool((top >= 0).all() and (left >= 0).all())
    if strict:
        fitted = found.nonzero().squeeze(1)
        assert bool((box_height[fitted] < height).all() and (box_width[fitted] < width).all())
