"""The in-memory dataset every reader returns, and the seeded train/val split.

A dataset is small enough to hold whole: Fashion-MNIST's 60,000 images are 47 MB as uint8 (CIFAR-10
150 MB). Keeping uint8 (4x smaller than float32) is what lets the loader put it all on the device
(airbench's trick); conversion to float happens per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from cnnkit.data._checks import require_dataset, require_seed
from cnnkit.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, eq=False)  # eq on tensors would be ambiguous; compare fields yourself
class ImageDataset:
    """A labelled image dataset held in memory.

    Attributes:
        images: (N, C, H, W) uint8 CPU tensor, pixel values 0-255.
        labels: (N,) int64 tensor of class indices into ``classes``.
        classes: class names; ``labels`` index this list.
        name: registry name (``"fashion_mnist"``) or ``"folder:<path>"``.
        split: ``"train"``, ``"test"``, or what :meth:`subset` / :func:`train_val_split` made.
        source: where the files were found (a folder or archive path), for ``cnnkit data info``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    split: str = "train"
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        import torch

        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(
                f"{self.name}: images must be an (N, C, H, W) uint8 tensor, "
                f"got {self.images.dtype} of shape {tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise DataError(
                f"{self.name}: labels must be an int64 tensor of shape ({self.images.shape[0]},), "
                f"got {self.labels.dtype} of shape {tuple(self.labels.shape)}"
            )
        if len(self.labels) and (
            int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)
        ):
            raise DataError(
                f"{self.name}: labels range {int(self.labels.min())}..{int(self.labels.max())} "
                f"does not fit {len(self.classes)} classes"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        _, channels, height, width = self.images.shape
        return int(channels), int(height), int(width)

    def subset(
        self, indices: Sequence[int] | torch.Tensor, split: str | None = None
    ) -> ImageDataset:
        """The images at ``indices`` (in that order), as a new dataset sharing classes and name."""
        import torch

        index: torch.Tensor | None
        try:
            index = torch.as_tensor(indices)
        except (TypeError, ValueError, RuntimeError) as exc:
            index, reason = None, " ".join(str(exc).split())
        if index is not None:
            reason = f"got {index.dtype}"
            if index.numel() == 0:  # torch.as_tensor([]) is float32
                index = index.to(torch.int64)
        if (
            index is None
            or index.dtype.is_floating_point
            or index.dtype.is_complex
            or (index.dtype == torch.bool)
        ):  # a float index would be truncated silently
            raise ConfigError(
                f"{self.name}: subset indices must be integers, got {type(indices).__name__} "
                f"({reason})"
            )
        index = index.to(torch.int64)
        if index.dim() != 1:
            raise ConfigError(f"{self.name}: subset indices must be one-dimensional")
        if len(index) and (int(index.min()) < -len(self) or int(index.max()) >= len(self)):
            raise ConfigError(f"{self.name}: subset index out of range for {len(self)} images")
        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            split=split if split is not None else self.split,
        )


def train_val_split(
    dataset: ImageDataset, val_size: int | float, seed: int = 42
) -> tuple[ImageDataset, ImageDataset]:
    """Split ``dataset`` into (train, val) by a seeded random permutation.

    The permutation is ``torch.randperm(N, generator=torch.Generator().manual_seed(seed))``; the
    first ``N - val_size`` indices are train, the rest val. That is exactly what seed 003's
    ``random_split(full_train, [54000, 6000], generator=torch.Generator().manual_seed(42))``
    does, so the same seed gives the same 6,000 validation images as 003's recipe.

    Args:
        dataset: the dataset to split.
        val_size: number of validation images, or a fraction in (0, 1) of ``len(dataset)``
            (rounded to the nearest integer).
        seed: seed of the permutation; the split is a pure function of (dataset, val_size, seed).
    """
    import torch

    require_dataset("train_val_split", "dataset", dataset)
    require_seed("train_val_split", "seed", seed)
    if isinstance(val_size, bool) or not isinstance(val_size, int | float):
        raise ConfigError(
            f"train_val_split: val_size must be an int count or a float fraction, "
            f"got {type(val_size).__name__} {val_size!r}"
        )
    total = len(dataset)
    if isinstance(val_size, float) and not isinstance(val_size, bool):
        if not 0.0 < val_size < 1.0:
            raise ConfigError(f"val_size: a fraction must be in (0, 1), got {val_size}")
        val_size = round(total * val_size)
    if not isinstance(val_size, int) or not 0 < val_size < total:
        raise ConfigError(
            f"val_size: need 0 < val_size < {total} (the size of {dataset.name}), got {val_size}"
        )
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    train = dataset.subset(order[: total - val_size], split="train")
    val = dataset.subset(order[total - val_size :], split="val")
    return train, val
