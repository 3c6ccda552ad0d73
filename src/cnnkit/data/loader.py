"""DeviceLoader: the whole dataset on the device as uint8, batches cut by index (D2).

A 60,000-image Fashion-MNIST is 47 MB as uint8: it fits on any device once, so a batch is an
index gather, a conversion to float, the batched transforms and normalisation, with no worker
processes and no per-sample Python (airbench's loader). Shuffling uses a ``torch.Generator``
seeded from (seed, epoch), and augmentation another, so an epoch is a pure function of the seed
and the epoch number: a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch

from cnnkit.data._checks import finite_numbers, require_bool, require_dataset, require_seed
from cnnkit.data.dataset import ImageDataset
from cnnkit.data.transforms.base import Transform
from cnnkit.errors import ConfigError

_SHUFFLE_STREAM, _AUGMENT_STREAM = 1, 2


def _stream_seed(seed: int, epoch: int, stream: int) -> int:
    """A distinct 63-bit seed per (seed, epoch, stream): odd multipliers keep them apart."""
    return (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + stream) % (1 << 63)


class DeviceLoader:
    """Iterate over ``dataset`` in batches of float32 images on ``device``.

    Args:
        dataset: the images (uint8) and labels; copied to ``device`` once.
        batch_size: images per batch; the last batch is smaller unless ``drop_last``.
        shuffle: a new random order every epoch (else dataset order).
        drop_last: drop the incomplete last batch.
        device: where the data and the batches live (``"cpu"``, ``"cuda"``).
        seed: seeds shuffling and augmentation; with ``set_epoch`` it fixes every batch.
        transform: a batched transform (:mod:`cnnkit.data.transforms`) applied to each batch of
            images scaled to [0, 1], before normalisation.
        channels_last: yield images in ``torch.channels_last`` memory format.
        mean, std: per-channel statistics; batches are ``(x / 255 - mean) / std``. ``None``
            leaves images in [0, 1]. Use :func:`cnnkit.data.channel_stats` to compute them.

    Yields ``(images, targets)``: images (B, C, H, W) float32; targets (B,) int64 labels, or
    (B, num_classes) float32 probabilities when the transform mixes labels (CutMix, MixUp).
    """

    def __init__(
        self,
        dataset: ImageDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        device: str | torch.device = "cpu",
        seed: int = 0,
        transform: Transform | None = None,
        channels_last: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        require_dataset("DeviceLoader", "dataset", dataset)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(
                f"DeviceLoader: batch_size must be a positive int, got {batch_size!r}"
            )
        for parameter, flag in (("shuffle", shuffle), ("drop_last", drop_last),
                                ("channels_last", channels_last)):  # fmt: skip
            require_bool("DeviceLoader", parameter, flag)
        require_seed("DeviceLoader", "seed", seed)
        if transform is not None and not callable(transform):
            raise ConfigError(
                f"DeviceLoader: transform must be a batched transform (callable) or None, "
                f"got {type(transform).__name__}"
            )
        if not isinstance(device, str | torch.device):
            raise ConfigError(
                f"DeviceLoader: device must be a str or torch.device, got {type(device).__name__}"
            )
        if drop_last and batch_size > len(dataset):
            raise ConfigError(
                f"batch_size {batch_size} exceeds the {len(dataset)} images of {dataset.name} "
                "with drop_last: no batch would be produced"
            )
        try:
            self.device = torch.device(device)
            self.images = dataset.images.to(self.device)
            self.labels = dataset.labels.to(self.device)
        except (RuntimeError, AssertionError) as exc:  # an absent CUDA/MPS device, a bad name
            reason = " ".join(str(exc).split())
            raise ConfigError(f"device {str(device)!r} is not usable here ({reason})") from None
        self.dataset_name, self.num_classes = dataset.name, dataset.num_classes
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed, self.transform, self.channels_last = seed, transform, channels_last
        self.mean, self.std = self._statistics(mean, std, dataset.image_shape[0])
        self.epoch = 0

    def _statistics(
        self, mean: Sequence[float] | None, std: Sequence[float] | None, channels: int
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if mean is None and std is None:
            return None, None
        if mean is not None:
            mean = finite_numbers("DeviceLoader", "mean", mean)
        if std is not None:
            std = finite_numbers("DeviceLoader", "std", std)
        if mean is None or std is None or len(mean) != channels or len(std) != channels:
            raise ConfigError(
                f"mean and std need one value per channel ({channels}), got {mean} and {std}"
            )
        if any(s <= 0 for s in std):
            raise ConfigError(f"std must be positive, got {std}")
        shape = (1, channels, 1, 1)
        mean_tensor = torch.tensor(mean, dtype=torch.float32).view(shape).to(self.device)
        std_tensor = torch.tensor(std, dtype=torch.float32).view(shape).to(self.device)
        return mean_tensor, std_tensor

    @property
    def targets_are_probabilities(self) -> bool:
        """True when targets are (B, num_classes) probabilities (the transform mixes labels)."""
        return bool(getattr(self.transform, "mixes_labels", False))

    def __len__(self) -> int:
        count = self.images.shape[0]
        return count // self.batch_size if self.drop_last else math.ceil(count / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration produces."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> torch.Tensor:
        """The sample order of ``epoch``: ``randperm`` from a generator seeded by (seed, epoch)."""
        count = self.images.shape[0]
        if not self.shuffle:
            return torch.arange(count, device=self.device)
        generator = torch.Generator().manual_seed(_stream_seed(self.seed, epoch, _SHUFFLE_STREAM))
        return torch.randperm(count, generator=generator).to(self.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the current epoch from its start; a completed pass moves to the next
        epoch (a run resumes at an epoch boundary, so nothing mid-epoch is recorded)."""
        epoch = self.epoch
        order = self.order(epoch)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(_stream_seed(self.seed, epoch, _AUGMENT_STREAM))
        for batch in range(len(self)):
            index = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            images = self.images[index].to(torch.float32).div_(255.0)
            targets = self.labels[index]
            if self.transform is not None:
                images, targets = self.transform(images, targets, generator)
            if self.mean is not None and self.std is not None:  # both set, or neither
                images = (images - self.mean) / self.std
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, targets
        self.set_epoch(epoch + 1)
