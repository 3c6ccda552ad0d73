"""Contracts every transform keeps: shapes, seeded reproducibility, per-sample randomness."""

from __future__ import annotations

import inspect

import pytest
import torch

from cnnkit.data import transforms as T
from cnnkit.errors import ConfigError, ShapeError

# One configured instance per exported transform class; the test below checks none is missing.
RANDOM = {
    "RandomCrop": lambda: T.RandomCrop(8, padding=2),
    "RandomHorizontalFlip": lambda: T.RandomHorizontalFlip(),
    "RandomVerticalFlip": lambda: T.RandomVerticalFlip(),
    "RandomRotation": lambda: T.RandomRotation(30),
    "RandomResizedCrop": lambda: T.RandomResizedCrop(8),
    "ColorJitter": lambda: T.ColorJitter(0.4, 0.4, 0.4, 0.1),
    "RandomErasing": lambda: T.RandomErasing(p=0.5),
    "CutMix": lambda: T.CutMix(1.0, num_classes=10),
    "MixUp": lambda: T.MixUp(0.4, num_classes=10),
    "RandomChoice": lambda: T.RandomChoice([T.CutMix(1.0, 10), T.MixUp(0.4, 10)]),
    "Compose": lambda: T.Compose([T.RandomCrop(8, padding=1), T.RandomHorizontalFlip()]),
}
DETERMINISTIC = {"Normalize": lambda: T.Normalize((0.5, 0.4, 0.3), (0.2, 0.2, 0.2))}


def images_and_labels(count=32):
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(count, 3, 8, 8, generator=generator)
    return images, torch.randint(0, 10, (count,), generator=generator)


def test_every_exported_transform_is_covered():
    exported = {
        name
        for name, obj in vars(T).items()
        if inspect.isclass(obj) and issubclass(obj, T.Transform) and obj is not T.Transform
    }
    assert exported == set(RANDOM) | set(DETERMINISTIC)


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_seeded_reproducible_and_seed_dependent(name):
    images, labels = images_and_labels()
    transform = RANDOM[name]()
    first = transform(images, labels, torch.Generator().manual_seed(1))
    again = transform(images, labels, torch.Generator().manual_seed(1))
    other = transform(images, labels, torch.Generator().manual_seed(2))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    assert first[0].shape == images.shape and first[0].dtype == images.dtype
    if transform.mixes_labels:
        assert first[1].shape == (32, 10)
    else:
        assert torch.equal(first[1], labels)


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_randomness_is_per_sample(name):
    images, labels = images_and_labels(1)
    images, labels = images.expand(32, -1, -1, -1).contiguous(), labels.expand(32).contiguous()
    if name in ("CutMix", "MixUp", "RandomChoice"):  # a mix of identical images is no change
        images = images * torch.linspace(0.2, 1.0, 32).view(-1, 1, 1, 1)
    out, _ = RANDOM[name]()(images, labels, torch.Generator().manual_seed(0))
    changed = [not torch.equal(o, i) for o, i in zip(out, images, strict=True)]
    distinct = {tuple(o.flatten()[:64].tolist()) for o in out}
    outcomes = 2 if "Flip" in name else 5  # a flip has only two possible results
    assert any(changed) and len(distinct) >= outcomes


def test_normalize_equals_the_closed_form():
    images, labels = images_and_labels()
    out, same = DETERMINISTIC["Normalize"]()(images, labels)
    mean, std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.2, 0.2])
    torch.testing.assert_close(out, (images - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
    assert same is labels
    with pytest.raises(ConfigError, match="std must be positive"):
        T.Normalize((0.5,), (0.0,))
    with pytest.raises(ShapeError, match="1 channel statistics for 3 channels"):
        T.Normalize((0.5,), (0.2,))(images, labels)


def test_transforms_refuse_uint8_batches():
    with pytest.raises(ShapeError, match="float"):
        T.RandomHorizontalFlip()(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2))


def test_works_without_a_generator():
    images, labels = images_and_labels()
    out, _ = T.Compose([T.RandomCrop(8, padding=1), T.ColorJitter(0.2)])(images, labels)
    assert out.shape == images.shape
