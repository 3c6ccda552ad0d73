"""The training augmentation a config asks for: each setting adds its transform, and what the
batches look like afterwards (ranges, shapes, label mixing) is what the setting promises."""

from __future__ import annotations

import torch

from cnnkit.data import transforms as T
from cnnkit.train.config import AugmentationConfig, TrainConfig
from cnnkit.train.datasets import RunData, train_transform
from tests.train.tiny import quadrant_dataset


def run_data(count: int = 64) -> RunData:
    train = quadrant_dataset(count, seed=0)
    return RunData(train=train, val=None, test=train, mean=(0.5,), std=(0.25,))


def kinds(transform) -> list[str]:
    """The class names of a pipeline's steps, with RandomChoice's options in brackets."""
    steps = transform.transforms if isinstance(transform, T.Compose) else [transform]
    names = []
    for step in steps:
        if isinstance(step, T.RandomChoice):
            names.append(
                "RandomChoice[" + ",".join(type(t).__name__ for t in step.transforms) + "]"
            )
        else:
            names.append(type(step).__name__)
    return names


def augmentation(**flat) -> AugmentationConfig:
    return TrainConfig.from_flat(**flat).augmentation


def test_no_augmentation_is_no_transform():
    assert train_transform(augmentation(flip=False), run_data()) is None


def test_each_setting_adds_its_transform_in_order():
    config = TrainConfig.from_flat(
        resized_crop=0.5, crop_padding=2, flip=True, rotation=10, color_jitter=0.4, erasing=0.25
    )
    assert kinds(train_transform(config.augmentation, run_data())) == [
        "RandomResizedCrop",
        "RandomCrop",
        "RandomHorizontalFlip",
        "RandomRotation",
        "ColorJitter",
        "RandomErasing",
    ]


def test_mixup_with_cutmix_gives_each_sample_one_of_them():
    """Both set: every image is mixed once (by one of the two), and its target sums to 1 with at
    most two classes, as one mix of two images gives (MixUp then CutMix could give four)."""
    config = TrainConfig.from_flat(flip=False, mixup=0.4, cutmix=1.0)
    transform = train_transform(config.augmentation, run_data())
    assert kinds(transform) == ["RandomChoice[MixUp,CutMix]"]
    data = quadrant_dataset(256, seed=1)
    images = data.images.float() / 255
    mixed, targets = transform(images, data.labels, torch.Generator().manual_seed(0))
    assert mixed.shape == images.shape and targets.shape == (256, 4)
    torch.testing.assert_close(targets.sum(1), torch.ones(256))
    assert int((targets > 0).sum(1).max()) <= 2
    assert bool(((targets > 0).sum(1) == 2).any())  # some samples were actually mixed


def test_grey_images_get_brightness_and_contrast_jitter_only():
    """Saturation needs colour: a 1-channel dataset gets brightness and contrast, and the
    batch stays in [0, 1] with the same shape."""
    transform = train_transform(augmentation(flip=False, color_jitter=0.5), run_data())
    assert transform.saturation is None
    assert transform.brightness and transform.contrast
    data = quadrant_dataset(32, seed=2)
    images = data.images.float() / 255
    out, targets = transform(images, data.labels, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and torch.equal(targets, data.labels)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, images)


def test_resized_crop_keeps_the_image_size():
    transform = train_transform(augmentation(flip=False, resized_crop=0.3), run_data())
    data = quadrant_dataset(16, seed=3)
    images = data.images.float() / 255
    out, _ = transform(images, data.labels, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    assert not torch.equal(out, images)
