"""The effective receptive field against the analytic oracle of stacked box filters (Luo et al.)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.explain.erf import effective_receptive_field, mass_radii
from tests.model_guard import model_left_as_found


def box_stack(n: int) -> nn.Sequential:
    convs = [nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(n)]
    for conv in convs:
        nn.init.constant_(conv.weight, 1 / 9)
    return nn.Sequential(*convs)


def box_power(n: int, size: int) -> torch.Tensor:
    """The n-fold convolution of the 3x3 box, centred in a size x size grid."""
    grid = torch.zeros(1, 1, size, size, dtype=torch.float64)
    grid[0, 0, size // 2, size // 2] = 1
    box = torch.full((1, 1, 3, 3), 1 / 9, dtype=torch.float64)
    for _ in range(n):
        grid = F.conv2d(grid, box, padding=1)
    return grid[0, 0] / grid.sum()


@pytest.mark.parametrize("n", [1, 3, 6])
def test_stacked_boxes_give_the_n_fold_box_convolution(n):
    model = box_stack(n)
    size = 2 * n + 7
    with model_left_as_found(model):
        result = effective_receptive_field(model, (1, size, size), samples=2)
    torch.testing.assert_close(result.map, box_power(n, size), rtol=0, atol=1e-12)
    assert result.theoretical_rf == (2 * n + 1, 2 * n + 1)
    assert result.centre == pytest.approx((size // 2, size // 2))
    assert result.map.sum().item() == pytest.approx(1.0)


def test_the_99_percent_radius_grows_like_sqrt_n():
    radii = {}
    for n in (4, 16, 36):
        size = 4 * n + 9
        radii[n] = effective_receptive_field(box_stack(n), (1, size, size), samples=1).radii[0.99]
    # the box has variance 2/3 per axis: n-fold, a Gaussian of std sqrt(2n/3); its 99% disc
    # has radius sqrt(2 ln 100) std
    for n, r in radii.items():
        assert r == pytest.approx(math.sqrt(2 * math.log(100)) * math.sqrt(2 * n / 3), rel=0.15)
    assert radii[16] / radii[4] == pytest.approx(2, rel=0.15)
    assert radii[36] / radii[4] == pytest.approx(3, rel=0.15)


def test_radii_of_a_single_pixel_and_of_a_ring():
    mass = torch.zeros(5, 5, dtype=torch.float64)
    mass[2, 2] = 1
    assert mass_radii(mass)[1] == {0.5: 0.0, 0.9: 0.0, 0.99: 0.0}
    mass[2, 2] = 0.5
    mass[2, 3] = mass[2, 1] = 0.25
    centre, radii = mass_radii(mass)
    assert centre == (2.0, 2.0) and radii == {0.5: 0.0, 0.9: 1.0, 0.99: 1.0}


def test_a_layer_without_spatial_output_is_refused_and_the_model_kept():
    from cnnkit.errors import ShapeError
    from tests.explain.tiny import tiny

    model = tiny()
    model.train()
    with model_left_as_found(model), pytest.raises(ShapeError, match=r"head\.1"):
        effective_receptive_field(model, (2, 6, 6), layer="head.1", samples=1)
    with model_left_as_found(model):
        result = effective_receptive_field(model, (2, 6, 6), samples=1)
    assert result.layer == "features" and result.map.shape == (6, 6)
