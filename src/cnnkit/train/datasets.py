"""The data side of a run: load, split, normalisation statistics, augmentation, loaders.

Everything here calls :mod:`cnnkit.data` (the device-resident loader and the batched transforms);
the trainer only decides which pieces a :class:`~cnnkit.train.config.TrainConfig` asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnnkit.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

    from cnnkit.data import ImageDataset
    from cnnkit.train.config import AugmentationConfig, DataConfig, TrainConfig


@dataclass
class RunData:
    """The three splits of a run and how their images are normalised."""

    train: ImageDataset
    val: ImageDataset | None
    test: ImageDataset
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def classes(self) -> list[str]:
        return list(self.train.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape


def prepare_data(
    config: DataConfig,
    train_set: ImageDataset | None = None,
    test_set: ImageDataset | None = None,
) -> RunData:
    """Load (or take) the train and test sets, split off validation, fix mean and std.

    Validation is ``val_size`` images of the train split, chosen by ``train_val_split`` with
    ``split_seed`` (003: 54000/6000 with seed 42). Mean and std are computed on the training
    part (after the split, so validation stays unseen) unless the config gives them.
    """
    from cnnkit.data import channel_stats, load_dataset

    if train_set is None:
        train_set = load_dataset(config.dataset, "train", data_dir=config.data_dir)
    if test_set is None:
        test_set = load_dataset(config.dataset, "test", data_dir=config.data_dir)
    if train_set.image_shape[0] != test_set.image_shape[0]:
        raise ConfigError(
            f"--dataset {config.dataset}: train images have {train_set.image_shape[0]} channels, "
            f"test images {test_set.image_shape[0]}"
        )
    train, val = split_validation(train_set, config.val_size, config.split_seed)
    if config.train_subset is not None and config.train_subset < len(train):
        train = train.subset(range(config.train_subset))
    channels = train.image_shape[0]
    if config.mean is not None and config.std is not None:
        mean, std = tuple(config.mean), tuple(config.std)
    else:
        mean, std = channel_stats(train)
        mean = tuple(config.mean) if config.mean is not None else mean
        if config.std is None:
            constant = [c for c, value in enumerate(std) if value == 0]
            if constant:  # the user never passed --std: blame the data, not the flag
                raise DataError(
                    f"{train.name}: channel {constant[0]} of the training images is constant "
                    f"(every pixel {mean[constant[0]] * 255:g}/255), so normalising by its "
                    "standard deviation divides by 0; give the scale yourself with --std"
                )
        std = tuple(config.std) if config.std is not None else std
    if len(mean) != channels or len(std) != channels:
        raise ConfigError(
            f"--mean/--std: {len(mean)} values for {channels}-channel images of {train.name}"
        )
    return RunData(train=train, val=val, test=test_set, mean=mean, std=std)


def check_settings_fit_data(config: TrainConfig, data: RunData) -> None:
    """Settings outside the data section that must fit the data: one weight per class, and a
    crop padding and a TTA shift that fit the images."""
    from cnnkit.train.config import tta_shift_of

    train = data.train
    weights = config.optimisation.class_weights
    if weights is not None and len(weights) != len(train.classes):
        raise ConfigError(
            f"--class-weights: {len(weights)} weights for "
            f"{len(train.classes)} classes of {train.name}"
        )
    height, width = train.image_shape[1:]
    padding = config.augmentation.crop_padding
    if padding > min(height, width):  # more only pads zeros (and costs memory)
        raise ConfigError(
            f"--crop-padding: must be at most {min(height, width)} for {height}x{width} images "
            f"of {train.name}, got {padding}"
        )
    shift = tta_shift_of(config.evaluation.tta)
    if shift and not shift < min(height, width):
        raise ConfigError(
            f"--tta: level {config.evaluation.tta} shifts by {shift} pixels, which must be less "
            f"than {min(height, width)} for {height}x{width} images of {train.name}"
        )


def user_data(data: Any) -> tuple[ImageDataset, ImageDataset]:
    """``fit(data=(train, test))``: each an ``ImageDataset`` or an ``(images, labels)`` pair.

    Tensor pairs become ``ImageDataset("tensors")`` with classes ``"0" .. "k-1"``, ``k`` one
    more than the largest label of either split (the dataset checks dtypes and shapes).
    """
    import torch

    from cnnkit.data import ImageDataset

    def is_pair(part: Any) -> bool:
        return (
            isinstance(part, tuple | list)
            and len(part) == 2
            and all(isinstance(t, torch.Tensor) for t in part)
        )

    parts = list(data) if isinstance(data, tuple | list) and len(data) == 2 else None
    if parts is None or not all(isinstance(p, ImageDataset) or is_pair(p) for p in parts):
        raise ConfigError(
            "fit: data must be a (train, test) pair, each an ImageDataset or an "
            "(images, labels) pair of tensors"
        )
    labels = [p[1] for p in parts if is_pair(p) and p[1].numel()]
    count = max((int(t.max()) + 1 for t in labels), default=0)
    classes = [str(c) for c in range(count)]
    train, test = (
        p if isinstance(p, ImageDataset) else ImageDataset(p[0], p[1], classes, "tensors", split)
        for p, split in zip(parts, ("train", "test"), strict=True)
    )
    return train, test


def split_validation(
    train_set: ImageDataset, val_size: int, split_seed: int
) -> tuple[ImageDataset, ImageDataset | None]:
    """(train, validation): ``val_size`` images held out by ``train_val_split`` with
    ``split_seed``; (``train_set``, None) for ``val_size`` 0. ``cnnkit eval --split val``
    rebuilds a run's validation split with this same function."""
    from cnnkit.data import train_val_split

    if not val_size:
        return train_set, None
    if val_size >= len(train_set):
        raise ConfigError(
            f"--val-size: {val_size} is not less than the {len(train_set)} "
            f"training images of {train_set.name}"
        )
    return train_val_split(train_set, val_size, seed=split_seed)


def train_transform(config: AugmentationConfig, data: RunData) -> Any:
    """The batched augmentation the config asks for (``None`` when it asks for none)."""
    from cnnkit.data import transforms as T

    channels, height, width = data.image_shape
    steps: list[Any] = []
    if config.resized_crop:
        steps.append(T.RandomResizedCrop((height, width), scale=(config.resized_crop, 1.0)))
    if config.crop_padding:
        steps.append(T.RandomCrop((height, width), padding=config.crop_padding))
    if config.flip:
        steps.append(T.RandomHorizontalFlip())
    if config.rotation:
        steps.append(T.RandomRotation(config.rotation))
    if config.color_jitter:
        strength = config.color_jitter
        saturation = strength if channels == 3 else 0.0  # saturation needs colour
        steps.append(T.ColorJitter(strength, strength, saturation))
    if config.erasing:
        steps.append(T.RandomErasing(p=config.erasing))
    num_classes = len(data.classes)
    mixing: list[T.Transform] = []
    if config.mixup:
        mixing.append(T.MixUp(alpha=config.mixup, num_classes=num_classes))
    if config.cutmix:
        mixing.append(T.CutMix(alpha=config.cutmix, num_classes=num_classes))
    # MixUp then CutMix would mix each image twice; timm's recipe picks one of them instead.
    if mixing:
        steps.append(mixing[0] if len(mixing) == 1 else T.RandomChoice(mixing))
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else T.Compose(steps)


def make_loader(
    dataset: ImageDataset,
    data: RunData,
    device: torch.device,
    *,
    batch_size: int,
    channels_last: bool,
    shuffle: bool = False,
    drop_last: bool = False,
    seed: int = 0,
    transform: Any = None,
) -> Any:
    """A :class:`cnnkit.data.DeviceLoader` over ``dataset``, normalised by ``data``'s mean and
    std; a shuffled loader is seeded by ``seed`` and ``set_epoch(e)`` then fixes epoch e's
    order and augmentation."""
    from cnnkit.data import DeviceLoader

    return DeviceLoader(
        dataset,
        batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        device=device,
        seed=seed,
        transform=transform,
        channels_last=channels_last,
        mean=data.mean,
        std=data.std,
    )


def training_loader(
    dataset: ImageDataset, data: RunData, config: TrainConfig, device: torch.device
) -> Any:
    """The training loader a run's sections ask for: shuffled, augmented, seeded by ``seed``."""
    batch_size = config.optimisation.batch_size
    return make_loader(
        dataset,
        data,
        device,
        batch_size=batch_size,
        channels_last=config.runtime.channels_last,
        shuffle=True,
        drop_last=config.optimisation.drop_last and len(dataset) >= batch_size,
        seed=config.runtime.seed,
        transform=train_transform(config.augmentation, data),
    )


def evaluation_loader(
    dataset: ImageDataset, data: RunData, config: TrainConfig, device: torch.device
) -> Any:
    """A loader for validation or the test: in order, ``eval_batch_size`` images a batch."""
    return make_loader(
        dataset,
        data,
        device,
        batch_size=config.evaluation.eval_batch_size,
        channels_last=config.runtime.channels_last,
        seed=config.runtime.seed,
    )
