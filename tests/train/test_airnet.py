"""airnet: size, frozen whitening from data patches (checked by the whitened covariance)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import ConfigError, ShapeError
from cnnkit.models import create_model, model_info
from cnnkit.models.airnet import init_whitening


def test_default_size_is_about_0_29_million_parameters():
    model = create_model("airnet")
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(290_000, rel=0.02)
    assert model_info("airnet").default_input == (1, 28, 28)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@settings(max_examples=10)
@given(kernel=st.sampled_from([2, 3]), channels=st.sampled_from([1, 3]), seed=st.integers(0, 99))
def test_whitening_decorrelates_the_patches(kernel, channels, seed):
    generator = torch.Generator().manual_seed(seed)
    # correlated images: smoothed noise with a per-channel offset
    images = torch.randn(64, channels, 14, 14, generator=generator, dtype=torch.float64)
    images = torch.nn.functional.avg_pool2d(images, 3, 1, 1) + torch.arange(channels).view(
        1, -1, 1, 1
    )
    model = create_model("airnet", in_channels=channels, whitening_kernel_size=kernel).double()
    init_whitening(model, images, eps=1e-9)
    outputs = model.whiten(images)  # (N, 2d, H', W')
    d = channels * kernel * kernel
    first = outputs[:, :d].permute(0, 2, 3, 1).reshape(-1, d)
    covariance = torch.cov(first.T)
    torch.testing.assert_close(
        first.mean(0), torch.zeros(d, dtype=torch.float64), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(covariance, torch.eye(d, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(outputs[:, d:], -outputs[:, :d])
    assert not model.whiten.weight.requires_grad


def test_too_small_input_names_the_minimum():
    with pytest.raises(ShapeError, match="minimum 10x10"):
        create_model("airnet")(torch.randn(1, 1, 9, 9))


def test_width_option_changes_the_groups():
    model = create_model("airnet", widths=(16, 32, 64), num_classes=3)
    assert model.layer3.conv2.out_channels == 64 and model.fc.out_features == 3


@settings(max_examples=10)
@given(components=st.integers(1, 9), seed=st.integers(0, 99))
def test_fewer_whitening_components_keep_the_largest_variance_directions(components, seed):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(64, 1, 14, 14, generator=generator, dtype=torch.float64)
    images = torch.nn.functional.avg_pool2d(images, 3, 1, 1)
    full = create_model("airnet").double()
    kept = create_model("airnet", whitening_components=components).double()
    init_whitening(full, images, eps=1e-9)
    init_whitening(kept, images, eps=1e-9)
    assert kept.whiten.out_channels == 2 * components
    assert kept.layer1.conv1.in_channels == 2 * components
    # the same filters as the full whitening's first `components`, largest variance first
    torch.testing.assert_close(kept.whiten.weight[:components], full.whiten.weight[:components])
    torch.testing.assert_close(kept.whiten.weight[components:], -full.whiten.weight[:components])
    patches = torch.nn.functional.unfold(images, 3).transpose(1, 2).reshape(-1, 9)
    variance = torch.linalg.eigvalsh(torch.cov(patches.T)).flip(0)
    directions = kept.whiten.weight[:components].reshape(components, 9)
    # w_i = v_i / sqrt(l_i + eps): |w_i|^2 = 1 / (l_i + eps) for the i-th largest eigenvalue
    expected = 1 / (variance[:components] + 1e-9)
    torch.testing.assert_close(directions.pow(2).sum(1), expected, rtol=1e-4, atol=0)


def test_whitening_components_beyond_the_patch_size_name_the_limit():
    with pytest.raises(ConfigError, match=r"whitening_components must be in \[1, 9\]"):
        create_model("airnet", whitening_components=10)


def test_depth_two_keeps_the_checkpoint_names():
    keys = set(create_model("airnet").layer2.state_dict())
    assert {k.split(".")[0] for k in keys} == {"conv1", "bn1", "conv2", "bn2"}


@settings(max_examples=8, deadline=None)
@given(depth=st.integers(2, 4), width=st.sampled_from([4, 8]), seed=st.integers(0, 99))
def test_deeper_groups_compute_the_written_out_residual(depth, width, seed):
    torch.manual_seed(seed)
    model = create_model("airnet", widths=(width, 2 * width, 2 * width), depth=depth).eval()
    for module in model.modules():  # non-trivial BN statistics, so a wrong order shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.bias.data.uniform_(-0.5, 0.5)
    group = model.layer2
    x = torch.randn(2, width, 12, 12)
    gelu = torch.nn.functional.gelu
    first = gelu(group.bn1(torch.nn.functional.max_pool2d(group.conv1(x), 2)))

    def block(index: int, y: torch.Tensor) -> torch.Tensor:  # conv -> BN, no activation
        return getattr(group, f"bn{index}")(getattr(group, f"conv{index}")(y))

    # written out per depth (no loop, unlike the model): airbench94's group at 2, airbench96's
    # residual at 3, and the same residual over one more block at 4
    expected = {
        2: lambda: gelu(block(2, first)),
        3: lambda: gelu(block(3, gelu(block(2, first))) + first),
        4: lambda: gelu(block(4, gelu(block(3, gelu(block(2, first))))) + first),
    }[depth]()
    torch.testing.assert_close(group(x), expected)
    convs = [m for m in group.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == depth
    # each extra conv adds C*C*9 weights and its BN two vectors of C
    base = create_model("airnet", widths=(width, 2 * width, 2 * width))
    extra = (depth - 2) * sum(9 * c * c for c in (width, 2 * width, 2 * width))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model) - count(base) == extra + (depth - 2) * 2 * (5 * width)


def test_depth_below_two_is_refused():
    with pytest.raises(ConfigError, match=r"depth \(convs per group\) must be >= 2, got 1"):
        create_model("airnet", depth=1)
