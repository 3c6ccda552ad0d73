"""DeviceLoader: coverage of every sample, normalisation, seeded epochs, exact resume."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cnnkit.data import DeviceLoader, ImageDataset
from cnnkit.data import transforms as T
from cnnkit.errors import ConfigError


def dataset(count=50, channels=1, size=4):
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, channels, size, size), generator=generator)
    # label = index, so every batch says which samples it holds
    return ImageDataset(
        images.to(torch.uint8), torch.arange(count), [str(i) for i in range(count)], "toy"
    )


@given(
    count=st.integers(1, 60),
    batch_size=st.integers(1, 20),
    drop_last=st.booleans(),
    shuffle=st.booleans(),
)
def test_an_epoch_yields_every_sample_once(count, batch_size, drop_last, shuffle):
    data = dataset(count)
    if drop_last and batch_size > count:
        with pytest.raises(ConfigError, match="no batch would be produced"):
            DeviceLoader(data, batch_size, drop_last=drop_last)
        return
    loader = DeviceLoader(data, batch_size, shuffle=shuffle, drop_last=drop_last)
    batches = list(loader)
    expected_len = count // batch_size if drop_last else math.ceil(count / batch_size)
    assert len(batches) == len(loader) == expected_len
    seen = torch.cat([targets for _, targets in batches])
    assert len(set(seen.tolist())) == len(seen)
    assert len(seen) == (expected_len * batch_size if drop_last else count)
    if not shuffle:
        assert seen.tolist() == list(range(len(seen)))


def test_images_are_scaled_and_normalised_exactly():
    data = dataset(10, channels=3)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    images, labels = next(iter(DeviceLoader(data, 10, shuffle=False, mean=mean, std=std)))
    expected = (
        data.images.double() / 255 - torch.tensor(mean).view(1, 3, 1, 1).double()
    ) / torch.tensor(std).view(1, 3, 1, 1).double()
    torch.testing.assert_close(images.double(), expected, atol=1e-6, rtol=0)
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
    raw, _ = next(iter(DeviceLoader(data, 10, shuffle=False)))
    torch.testing.assert_close(raw, data.images.float() / 255)


def test_epochs_differ_and_are_reproducible():
    loader = DeviceLoader(dataset(), 50, seed=3)
    first = next(iter(loader))[1]
    second = next(iter(loader))[1]  # a new iteration restarts the unfinished epoch 0
    assert torch.equal(first, second)
    loader.set_epoch(1)
    epoch_one = [targets for _, targets in loader]
    epoch_one = epoch_one[0]
    assert not torch.equal(first, epoch_one)
    assert loader.epoch == 2  # a completed pass moves to the next epoch
    fresh = DeviceLoader(dataset(), 50, seed=3)
    fresh.set_epoch(1)
    replayed = [targets for _, targets in fresh]
    assert torch.equal(replayed[0], epoch_one)
    other_seed = DeviceLoader(dataset(), 50, seed=4)
    assert not torch.equal(next(iter(other_seed))[1], first)


def test_mixing_transform_gives_probabilities_and_channels_last():
    loader = DeviceLoader(
        dataset(20, channels=3), 5, transform=T.CutMix(1.0, num_classes=20), channels_last=True
    )
    images, targets = next(iter(loader))
    assert loader.targets_are_probabilities
    assert targets.shape == (5, 20) and targets.dtype == torch.float32
    torch.testing.assert_close(targets.sum(1), torch.ones(5))
    assert images.is_contiguous(memory_format=torch.channels_last)


def test_the_dataset_lives_on_the_device_as_uint8():
    loader = DeviceLoader(dataset(), 10)
    assert loader.images.dtype == torch.uint8 and loader.images.device.type == "cpu"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 4, "mean": (0.5,), "std": None}, "one value per channel"),
        ({"batch_size": 4, "mean": (0.5, 0.5), "std": (1.0, 1.0)}, "one value per channel"),
        ({"batch_size": 4, "mean": (0.5,), "std": (0.0,)}, "std must be positive"),
        ({"batch_size": 4, "device": "no-such-device"}, "no-such-device"),
    ],
)
def test_bad_arguments_name_the_cause(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DeviceLoader(dataset(), **kwargs)
