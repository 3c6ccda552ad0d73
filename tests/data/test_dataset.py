"""ImageDataset, the seeded split and the exact statistics, against PyTorch and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cnnkit.data import ImageDataset, channel_stats, train_val_split
from cnnkit.errors import ConfigError, DataError


def make(count: int = 20, channels: int = 1, size: int = 4, seed: int = 0) -> ImageDataset:
    generator = torch.Generator().manual_seed(seed)
    return ImageDataset(
        images=torch.randint(0, 256, (count, channels, size, size), generator=generator).to(
            torch.uint8
        ),
        labels=torch.randint(0, 3, (count,), generator=generator),
        classes=["a", "b", "c"],
        name="made",
    )


def test_validates_dtype_shape_and_label_range():
    good = make()
    with pytest.raises(DataError, match="uint8"):
        ImageDataset(good.images.float(), good.labels, good.classes, "x")
    with pytest.raises(DataError, match="labels must be an int64"):
        ImageDataset(good.images, good.labels[:-1], good.classes, "x")
    with pytest.raises(DataError, match="does not fit 2 classes"):
        ImageDataset(good.images, good.labels, ["a", "b"], "x")


def test_subset_keeps_order_and_metadata():
    dataset = make()
    part = dataset.subset([5, 2, 7])
    assert len(part) == 3 and part.classes == dataset.classes and part.name == dataset.name
    assert torch.equal(part.images, dataset.images[[5, 2, 7]])
    with pytest.raises(ConfigError, match="out of range"):
        dataset.subset([20])


@given(
    count=st.integers(2, 300),
    data=st.data(),
    seed=st.integers(0, 2**31 - 1),
)
def test_split_equals_torch_random_split(count, data, seed):
    val_size = data.draw(st.integers(1, count - 1))
    dataset = make(count)
    train, val = train_val_split(dataset, val_size, seed)
    oracle_train, oracle_val = torch.utils.data.random_split(
        range(count), [count - val_size, val_size], generator=torch.Generator().manual_seed(seed)
    )
    assert torch.equal(train.images, dataset.images[oracle_train.indices])
    assert torch.equal(val.labels, dataset.labels[oracle_val.indices])
    assert (train.split, val.split) == ("train", "val")


def test_split_is_deterministic_and_seed_dependent():
    dataset = make(200)
    first = train_val_split(dataset, 0.1, seed=42)[1]
    assert len(first) == 20
    assert torch.equal(first.images, train_val_split(dataset, 20, seed=42)[1].images)
    assert not torch.equal(first.images, train_val_split(dataset, 20, seed=43)[1].images)


@pytest.mark.parametrize("bad", [0, 20, -1, 1.0, 0.0, "3"])
def test_split_rejects_impossible_sizes(bad):
    with pytest.raises(ConfigError, match="val_size"):
        train_val_split(make(20), bad, 0)


@given(
    count=st.integers(1, 8),
    channels=st.sampled_from([1, 3]),
    size=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_channel_stats_equal_numpy_float64(count, channels, size, seed):
    dataset = make(count, channels, size, seed)
    mean, std = channel_stats(dataset)
    values = dataset.images.numpy().astype(np.float64) / 255.0
    np.testing.assert_allclose(mean, values.mean(axis=(0, 2, 3)), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(std, values.std(axis=(0, 2, 3)), rtol=1e-9, atol=1e-12)


def test_channel_stats_of_constant_and_extreme_images():
    images = torch.zeros(4, 2, 3, 3, dtype=torch.uint8)
    images[:, 1] = 255
    dataset = ImageDataset(images, torch.zeros(4, dtype=torch.int64), ["only"], "flat")
    assert channel_stats(dataset) == ((0.0, 1.0), (0.0, 0.0))
