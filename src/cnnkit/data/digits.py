"""scikit-learn's handwritten digits: 1,797 real 8x8 images (UCI "Optical Recognition of
Handwritten Digits", test part), bundled with scikit-learn, so available offline.

Two sources read the same images (``sklearn.datasets.load_digits``):

- ``digits``: upsampled to 28x28, so that every Fashion-MNIST / MNIST model and recipe applies;
- ``digits_8x8``: the original 8x8 images.

Values: scikit-learn's are counts 0-16 (the number of set pixels in each 4x4 block of the
original 32x32 bitmap); they become uint8 as ``round(v * 255 / 16)`` (halves up, so 16 -> 255,
8 -> 128). Upsampling: bilinear on the 0-255 values with half-pixel centres
(``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``, no antialiasing,
which only matters when shrinking), then rounded to the nearest integer.

The split is fixed, seeded and stratified (scikit-learn publishes none): within each class the
indices are shuffled by ``torch.randperm`` with a generator seeded with ``SPLIT_SEED`` (0) and
the first ``round(TEST_FRACTION * n_class)`` (20%) go to the test split; each split keeps the
original order. That gives 1,438 training and 359 test images, the classes in the same
proportion in both (at most one image off). The 1,797 images and labels are checked against
the SHA-256 recorded from scikit-learn 1.9 (``DIGITS_SHA256``), so a changed copy is refused
rather than silently giving other figures.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.data.sources import DATASETS, DatasetSource, Found, RemoteFile
from cnnkit.errors import ChecksumError, DataError

if TYPE_CHECKING:
    import torch

    from cnnkit.data.dataset import ImageDataset

SPLIT_SEED = 0
TEST_FRACTION = 0.2
UPSAMPLED_SIZE = 28
# SHA-256 of load_digits().images as uint8 (1797x8x8, C order) followed by .target as int64
# little-endian (scikit-learn 1.9.1; the data has not changed since it was added)
DIGITS_SHA256 = "65e5b4619795efb40c1082f4c350c049e4ad552200d369b6ae99e21eef5e72c5"
DIGITS_FILE = RemoteFile("digits.csv.gz", "9b335364a7bfd63947c7480a5bd51f2d")  # as sklearn ships it
VERIFIED = "sha256 of the 1,797 images and labels matches scikit-learn's (recorded from 1.9)"


@dataclass(frozen=True)
class DigitsSource(DatasetSource):
    """scikit-learn's digits at ``size`` x ``size`` pixels (8: as published; 28: upsampled)."""

    size: int = UPSAMPLED_SIZE

    def find_in(self, folder: Path, split: str) -> Found | None:
        return None  # never in a data folder: the file ships inside scikit-learn

    def bundled(self, split: str) -> Found | None:
        """scikit-learn's ``digits.csv.gz``; a one-line error when scikit-learn is missing."""
        self.check_split(split)
        path = Path(_load_digits_module().__file__).parent / "data" / DIGITS_FILE.name
        return Found(path.parent, (path,)) if path.is_file() else None

    def read(self, found: Found, split: str) -> tuple[ImageDataset, dict[str, str]]:
        import torch

        from cnnkit.data.dataset import ImageDataset

        images, labels = digits_arrays()
        test = held_out_mask(labels)
        chosen = test if split == "test" else ~test
        pixels = scale_to_uint8(images[chosen])
        tensor = torch.from_numpy(pixels)[:, None]
        if self.size != pixels.shape[-1]:
            tensor = upsample(tensor, self.size)
        dataset = ImageDataset(
            images=tensor.contiguous(),
            labels=torch.from_numpy(labels[chosen].astype(np.int64)),
            classes=list(self.classes),
            name=self.name,
            split=split,
            source=str(found.files[0]),
        )
        return dataset, {found.files[0].name: VERIFIED}


def _load_digits_module():
    try:
        import sklearn.datasets as module
    except ImportError:
        raise DataError(
            "digits: needs scikit-learn, which ships the 1,797 images "
            "(pip install scikit-learn, or cnnkit[digits])"
        ) from None
    return module


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8) uint8 with values 0-16, labels (1797,) int64), as scikit-learn's
    ``load_digits`` gives them, checked against ``DIGITS_SHA256``."""
    bunch = _load_digits_module().load_digits()
    images = np.asarray(bunch.images)
    if not np.array_equal(images, np.round(images)) or images.min() < 0 or images.max() > 16:
        raise DataError("digits: scikit-learn's images are not counts 0-16 (a changed copy?)")
    images = images.astype(np.uint8)
    labels = np.asarray(bunch.target).astype(np.int64)
    got = hashlib.sha256(images.tobytes() + labels.astype("<i8").tobytes()).hexdigest()
    if got != DIGITS_SHA256:
        raise ChecksumError(
            f"digits: sha256 of scikit-learn's images and labels is {got}, expected {DIGITS_SHA256}"
        )
    return images, labels


def held_out_mask(labels: np.ndarray, seed: int = SPLIT_SEED) -> np.ndarray:
    """Boolean mask of the test images: per class, the first ``round(TEST_FRACTION * n)`` of a
    ``torch.randperm`` of its indices (generator seeded with ``seed``; classes in order)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        indices = np.flatnonzero(labels == label)
        order = torch.randperm(len(indices), generator=generator).numpy()
        mask[indices[order[: round(TEST_FRACTION * len(indices))]]] = True
    return mask


def scale_to_uint8(counts: np.ndarray) -> np.ndarray:
    """Counts 0-16 as uint8 0-255: ``round(v * 255 / 16)`` with halves up, in integers."""
    return ((counts.astype(np.int32) * 255 + 8) // 16).astype(np.uint8)


def upsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 1, h, w) uint8 -> (N, 1, size, size) uint8: bilinear, half-pixel centres, rounded."""
    import torch
    import torch.nn.functional as F

    resized = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8)


_CLASSES = tuple(str(digit) for digit in range(10))
_COMMON: dict[str, Any] = dict(
    classes=_CLASSES,
    splits={"train": (DIGITS_FILE,), "test": (DIGITS_FILE,)},
    mirrors=(),
    folders=(),
    system_folder=None,
    reference="https://archive.ics.uci.edu/dataset/80 (as bundled by sklearn.datasets.load_digits)",
)
DIGITS = DigitsSource(
    name="digits", title="scikit-learn digits (upsampled to 28x28)", size=28, **_COMMON
)
DIGITS_8X8 = DigitsSource(name="digits_8x8", title="scikit-learn digits (8x8)", size=8, **_COMMON)

for _source in (DIGITS, DIGITS_8X8):
    DATASETS.add(_source.name, _source)
