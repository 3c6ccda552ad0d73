"""Faithfulness scores: a synthetic task whose answer depends on one known region."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.explain.compare import compare_methods
from cnnkit.explain.faithfulness import faithfulness, gaussian_blur, noisy_linear_impute
from tests.explain.tiny import tiny
from tests.model_guard import model_left_as_found


class RegionTask(nn.Module):
    """Class 1's logit is 10 x the match of the top-left 8x8 block with a checkerboard (a blur
    or a deletion removes it); class 0's is 5."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(5.0, dtype=torch.float64))
        self.register_buffer("pattern", checkerboard())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        region = (x[:, :, :8, :8] * self.pattern).mean(dim=(1, 2, 3)) * 10
        return torch.stack([self.bias.expand_as(region), region], dim=1)


def checkerboard() -> torch.Tensor:
    index = torch.arange(8)
    return ((index[:, None] + index[None, :]) % 2 * 2 - 1).to(torch.float64)


def test_true_region_map_is_far_more_faithful_than_a_random_map():
    model = RegionTask()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 16, 16, generator=generator, dtype=torch.float64)
    x[:, :, :8, :8] = checkerboard() * (0.8 + 0.4 * x[:, :, :8, :8].abs().clamp_max(1))
    truth = torch.zeros(6, 16, 16, dtype=torch.float64)
    truth[:, :8, :8] = 1 + 0.01 * torch.rand(6, 8, 8, generator=generator, dtype=torch.float64)
    random = torch.rand(6, 16, 16, generator=generator, dtype=torch.float64)
    with model_left_as_found(model):
        good = faithfulness(model, x, truth, sweeps=20)
        bad = faithfulness(model, x, random, sweeps=20)
    assert good.targets == (1,) * 6
    # the region is a quarter of the image: deleting it first kills class 1 after f = 1/4
    assert good.deletion_auc.max() < 0.2 < 0.4 < bad.deletion_auc.min()
    assert good.insertion_auc.min() > bad.insertion_auc.max()
    assert good.road_morf.mean() < bad.road_morf.mean() - 0.2
    assert good.road_lerf.mean() > bad.road_lerf.mean() + 0.2
    # curves start at the clean probability and deletion ends at the fully deleted image's
    assert torch.allclose(good.deletion_curve[:, 0], bad.deletion_curve[:, 0])
    assert torch.allclose(good.deletion_curve[:, -1], bad.deletion_curve[:, -1])


def test_imputation_solves_roads_linear_system():
    # oracle: every removed pixel equals the weighted mean of its neighbours, solved exactly
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, 6, 6, generator=generator, dtype=torch.float64)
    removed = torch.zeros(1, 6, 6, dtype=torch.bool)
    removed[0, 1:4, 2:5] = True
    removed[0, 5, 0] = True
    got = noisy_linear_impute(x, removed, sweeps=400, noise=0.0)
    cells = [tuple(p) for p in removed[0].nonzero().tolist()]
    index = {c: k for k, c in enumerate(cells)}
    a = torch.zeros(len(cells), len(cells), dtype=torch.float64)
    b = torch.zeros(len(cells), dtype=torch.float64)
    for (i, j), k in index.items():
        a[k, k] = 1
        neighbours = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)]
        present = [
            (i + di, j + dj, di, dj) for di, dj in neighbours if 0 <= i + di < 6 and 0 <= j + dj < 6
        ]
        total = sum(1 / 6 if di == 0 or dj == 0 else 1 / 12 for *_, di, dj in present)
        for p, q, di, dj in present:
            w = (1 / 6 if di == 0 or dj == 0 else 1 / 12) / total
            if (p, q) in index:
                a[k, index[(p, q)]] -= w
            else:
                b[k] += w * x[0, 0, p, q]
    solution = torch.linalg.solve(a, b)
    torch.testing.assert_close(got[0, 0][removed[0]], solution, rtol=0, atol=1e-9)
    assert torch.equal(got[0, 0][~removed[0]], x[0, 0][~removed[0]])


def test_blur_keeps_a_constant_image():
    x = torch.full((2, 3, 9, 9), 0.7, dtype=torch.float64)
    torch.testing.assert_close(gaussian_blur(x, 2.0), x)


def test_compare_ranks_every_method_next_to_random():
    model = tiny()
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with model_left_as_found(model):
        result = compare_methods(
            model, x, methods=["gradcam", "layercam"], layer="features.2", sweeps=5, steps=4
        )
    assert {row.method for row in result.rows} == {"gradcam", "layercam", "random"}
    assert sorted(row.mean_rank for row in result.rows) == [r.mean_rank for r in result.rows]
    assert result.to_dict()["layer"] == "features.2"


def test_mismatched_maps_are_refused():
    import pytest

    from cnnkit.errors import ConfigError

    model = RegionTask()
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    with model_left_as_found(model), pytest.raises(ConfigError, match="3 maps for 2 images"):
        faithfulness(model, x, torch.rand(3, 4, 4))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(2, 6), st.integers(0, 2**16))
def test_pixel_ranks_are_a_permutation_following_the_map(batch, side, seed):
    from cnnkit.explain.faithfulness import _ranks

    generator = torch.Generator().manual_seed(seed)
    maps = torch.randint(0, 4, (batch, side, side), generator=generator).double()  # with ties
    ranks = _ranks(maps, (side, side))
    flat = maps.flatten(1)
    for b in range(batch):
        assert sorted(ranks[b].tolist()) == list(range(side * side))
        order = ranks[b].argsort()
        values = flat[b][order]
        assert torch.all(values[:-1] >= values[1:])  # most relevant first
        for value in values.unique():  # ties keep raster order
            tied = order[values == value]
            assert torch.all(tied[:-1] < tied[1:])
