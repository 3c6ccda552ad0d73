"""Wrong argument types to the public data functions: a one-line ConfigError naming the
parameter, never a TypeError or AttributeError from inside."""

from __future__ import annotations

import pytest
import torch

from cnnkit.data import (
    DeviceLoader,
    ImageDataset,
    channel_stats,
    dataset_info,
    fetch_dataset,
    image_folder,
    load_dataset,
    train_val_split,
)
from cnnkit.errors import CnnkitError


def _dataset() -> ImageDataset:
    images = torch.arange(4 * 1 * 2 * 2, dtype=torch.uint8).reshape(4, 1, 2, 2)
    return ImageDataset(images, torch.tensor([0, 1, 0, 1]), ["a", "b"], "tiny")


CASES = [
    (load_dataset, dict(name=3), "load_dataset: name must be a str, got int 3"),
    (load_dataset, dict(name=None), "load_dataset: name must be a str"),
    (load_dataset, dict(name="mnist", split=0), "load_dataset: split must be a str"),
    (load_dataset, dict(name="mnist", data_dir=5), "load_dataset: data_dir must be a str or os"),
    (load_dataset, dict(name="mnist", download="no"), "load_dataset: download must be True or"),
    (fetch_dataset, dict(name=b"mnist"), "fetch_dataset: name must be a str"),
    (fetch_dataset, dict(name="mnist", mirrors="http://x/"), "fetch_dataset: mirrors must be"),
    (fetch_dataset, dict(name="mnist", mirrors=3), "fetch_dataset: mirrors must be"),
    (fetch_dataset, dict(name="mnist", report=1), "fetch_dataset: report must be a callable"),
    (dataset_info, dict(name=["mnist"]), "dataset_info: name must be a str"),
    (image_folder, dict(path=7), "image_folder: path must be a str or os.PathLike"),
    (image_folder, dict(path=".", split=1), "image_folder: split must be a str"),
    (image_folder, dict(path=".", size="28"), "size: expected an int or (height, width)"),
    (image_folder, dict(path=".", size=(2.5, 3)), "size: expected integer (height, width)"),
    (channel_stats, dict(dataset="fashion_mnist"), "channel_stats: dataset must be a cnnkit"),
    (channel_stats, dict(dataset=torch.zeros(2, 1, 2, 2)), "channel_stats: dataset must be"),
    (train_val_split, dict(dataset=[1, 2], val_size=1), "train_val_split: dataset must be"),
    (train_val_split, dict(dataset=_dataset(), val_size="1"), "val_size must be an int count"),
    (train_val_split, dict(dataset=_dataset(), val_size=True), "val_size must be an int count"),
    (train_val_split, dict(dataset=_dataset(), val_size=1, seed=1.5), "seed must be an int"),
    (train_val_split, dict(dataset=_dataset(), val_size=1, seed=2**70), "seed must be in"),
    (DeviceLoader, dict(dataset=None, batch_size=2), "DeviceLoader: dataset must be a cnnkit"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=True), "batch_size must be a positive"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=2.0), "batch_size must be a positive"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=2, shuffle="yes"), "shuffle must be"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=2, drop_last=1), "drop_last must be"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=2, seed="0"), "seed must be an int"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=2, seed=-(2**64)), "seed must be in"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=2, device=0.5), "device must be a str"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=2, device="gpu9"), "device 'gpu9' is"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=2, transform=3), "transform must be"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=2, mean=0.5, std=[0.2]), "mean must be"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=2, mean=["a"], std=[1]), "mean must hold"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=2, mean=[0.5], std=[float("nan")]),
     "std must be finite"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=2, mean=[float("inf")], std=[1]),
     "mean must be finite"),
    (DeviceLoader, dict(dataset=_dataset(), batch_size=2, channels_last=None), "channels_last"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("function", "arguments", "message"),
    CASES,
    ids=[f"{f.__name__}-{'-'.join(a)}-{i}" for i, (f, a, _) in enumerate(CASES)],
)
def test_wrong_argument_type_is_a_cnnkit_error_naming_the_parameter(function, arguments, message):
    with pytest.raises(CnnkitError) as info:
        function(**arguments)
    text = str(info.value)
    assert message in text and "\n" not in text, text


def test_statistics_accept_numpy_and_tensor_sequences():
    import numpy as np

    loader = DeviceLoader(_dataset(), 2, mean=np.array([0.5]), std=torch.tensor([0.25]))
    images, _ = next(iter(loader))
    assert images.dtype == torch.float32


@pytest.mark.parametrize("indices", [["a", "b"], [0.5], object()])
def test_subset_with_indices_that_are_not_integers_names_the_dataset(indices):
    with pytest.raises(CnnkitError, match="tiny: subset indices must be integers"):
        _dataset().subset(indices)
