"""CutMix and MixUp: the label weights are exactly the pixel mixing weights, rows sum to 1."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.data.transforms import Compose, CutMix, MixUp, RandomChoice, RandomHorizontalFlip
from cnnkit.errors import ConfigError


def constant_images(count: int, channels: int = 1, size: int = 12) -> torch.Tensor:
    """Image i is filled with (i + 1) / count: each pixel tells which image it came from."""
    values = (torch.arange(count, dtype=torch.float64) + 1) / count
    return values.view(-1, 1, 1, 1).expand(count, channels, size, size).contiguous()


@settings(max_examples=25)
@given(seed=st.integers(0, 10_000), alpha=st.sampled_from([0.2, 1.0, 3.0]))
def test_mixup_image_weights_equal_the_label_weights(seed, alpha):
    count = 16
    images = constant_images(count)
    out, targets = MixUp(alpha, num_classes=count)(
        images, torch.arange(count), torch.Generator().manual_seed(seed)
    )
    assert targets.shape == (count, count) and bool((targets >= 0).all())
    torch.testing.assert_close(targets.sum(1), torch.ones(count, dtype=targets.dtype))
    # labels are distinct, so target weights are weights over source images
    expected = targets.double() @ images[:, 0, 0, 0]
    torch.testing.assert_close(out[:, 0, 0, 0], expected, atol=1e-6, rtol=0)
    assert torch.equal(out, out[:, :, :1, :1].expand_as(out))  # blended, not pasted


@settings(max_examples=20)  # each example checks 16 samples one by one
@given(seed=st.integers(0, 10_000), alpha=st.sampled_from([0.5, 1.0, 2.0]))
def test_cutmix_label_weight_equals_the_pasted_area_fraction(seed, alpha):
    count, size = 16, 12
    images = constant_images(count, channels=2, size=size)
    out, targets = CutMix(alpha, num_classes=count)(
        images, torch.arange(count), torch.Generator().manual_seed(seed)
    )
    torch.testing.assert_close(targets.sum(1), torch.ones(count, dtype=targets.dtype))
    for i in range(count):
        pixels = out[i, 0]
        sources = torch.round(pixels * count).long() - 1  # which image each pixel came from
        assert torch.equal(out[i, 0], out[i, 1])  # the same box in every channel
        fractions = torch.bincount(sources.flatten(), minlength=count).double() / size**2
        torch.testing.assert_close(targets[i].double(), fractions, atol=1e-6, rtol=0)
        pasted = sources != i
        if pasted.any():  # the pasted pixels form one rectangle
            rows, cols = pasted.any(1).nonzero(), pasted.any(0).nonzero()
            area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            assert int(pasted.sum()) == int(area)


def test_lambda_is_drawn_per_sample_from_beta():
    count = 2000
    _, targets = MixUp(0.4, num_classes=count)(
        constant_images(count, size=1), torch.arange(count), torch.Generator().manual_seed(0)
    )
    lam = targets.diagonal().double()  # own-label weight (1 when paired with itself)
    mixed = lam < 1
    assert int(mixed.sum()) > count - 10  # a few samples draw themselves as partner
    # Beta(0.4, 0.4): mean 0.5, variance 1 / (4 (2 alpha + 1)) = 0.1389
    # 4 standard errors: mean sqrt(0.139 / 2000) = 0.0083; variance about 2.4 % relative
    assert float(lam[mixed].mean()) == pytest.approx(0.5, abs=0.034)
    assert float(lam[mixed].var()) == pytest.approx(1 / (4 * 1.8), rel=0.1)


def test_probability_targets_are_mixed_again():
    images = constant_images(8)
    soft = torch.full((8, 3), 1 / 3)
    _, targets = CutMix(1.0, num_classes=3)(images, soft, torch.Generator().manual_seed(0))
    torch.testing.assert_close(targets, soft)


def test_random_choice_is_per_sample():
    count = 64
    images = constant_images(count)
    choice = RandomChoice([CutMix(1.0, count), MixUp(1.0, count)])
    out, targets = choice(images, torch.arange(count), torch.Generator().manual_seed(3))
    assert choice.mixes_labels and targets.shape == (count, count)
    blended = [bool(torch.all(o == o[0, 0, 0])) for o in out]
    assert 10 < sum(blended) < count - 10  # both kinds in one batch
    torch.testing.assert_close(targets.sum(1), torch.ones(count))


def test_random_choice_with_a_plain_transform_turns_labels_into_probabilities():
    choice = RandomChoice([RandomHorizontalFlip(1.0), MixUp(1.0, 5)], p=[0.5, 0.5])
    _, targets = choice(constant_images(20), torch.arange(20) % 5, torch.Generator().manual_seed(0))
    assert targets.shape == (20, 5)
    torch.testing.assert_close(targets.sum(1), torch.ones(20))


def test_compose_reports_label_mixing():
    assert Compose([RandomHorizontalFlip(), CutMix(1.0, 10)]).mixes_labels
    assert not Compose([RandomHorizontalFlip()]).mixes_labels


@pytest.mark.parametrize("make", [lambda: MixUp(0.0, 10), lambda: CutMix(1.0, 0)])
def test_invalid_arguments(make):
    with pytest.raises(ConfigError):
        make()


def test_label_outside_num_classes():
    with pytest.raises(ConfigError, match="does not fit num_classes=3"):
        MixUp(1.0, 3)(constant_images(4), torch.tensor([0, 1, 2, 3]))
