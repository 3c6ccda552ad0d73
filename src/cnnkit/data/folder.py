"""Any ImageFolder tree: ``<root>/<class>/**/<image>``, read with Pillow into one uint8 tensor.

The layout is torchvision's ``ImageFolder``: class names are the sorted sub-folder names, label
``i`` is the ``i``-th name, images are found recursively in each class folder (sorted paths, so
the order is reproducible). Every image must decode and, unless ``size`` asks for resizing, all
must share one size; an error names the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cnnkit.data.dataset import ImageDataset
from cnnkit.errors import ConfigError, DataError

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
# Pillow modes that hold grey levels only (an alpha channel, if any, is dropped).
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F", "La"})


def image_folder(
    path: str | os.PathLike[str],
    split: str | None = None,
    *,
    size: int | tuple[int, int] | None = None,
) -> ImageDataset:
    """Read an ImageFolder tree into an :class:`ImageDataset`.

    Args:
        path: root folder. When ``<path>/<split>`` is a folder (``train/``, ``test/``, ``val/``),
            that folder is read; otherwise the root itself holds the class folders, which is
            allowed for ``split`` None or ``"train"`` only.
        split: which split to read (see ``path``).
        size: (height, width) or one int for square images to resize every image to (bilinear);
            ``None`` requires all images to share one size.

    Channels: 1 when every image is greyscale, else 3 (RGB; alpha dropped).
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    if split is not None and (root / split).is_dir():
        root = root / split
    elif split not in (None, "train"):
        raise DataError(f"{root}: no {split!r} sub-folder (an ImageFolder split is a sub-folder)")
    target = _target_size(size)
    classes = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    if not classes:
        raise DataError(f"{root}: no class sub-folders (expected <root>/<class>/<image>)")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = _images_under(root / name)
        if not found:
            raise DataError(f"{root / name}: class folder holds no images ({_extensions()})")
        files.extend(found)
        labels.extend([label] * len(found))
    images = _read_images(files, target)
    import torch

    return ImageDataset(
        images=torch.from_numpy(images),
        labels=torch.tensor(labels, dtype=torch.int64),
        classes=classes,
        name=f"folder:{path}",
        split=split or "train",
        source=str(root),
    )


def _target_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if height <= 0 or width <= 0:
        raise ConfigError(f"size: expected positive (height, width), got {size!r}")
    return int(height), int(width)


def _extensions() -> str:
    return ", ".join(sorted(IMAGE_EXTENSIONS))


def _images_under(folder: Path) -> list[Path]:
    found = []
    for directory, subdirs, names in os.walk(folder, followlinks=False):
        subdirs.sort()
        for name in sorted(names):
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(Path(directory) / name)
    return found


def _read_images(files: list[Path], target: tuple[int, int] | None) -> np.ndarray:
    """(N, C, H, W) uint8 array of ``files``: greyscale only if all are, one size for all."""
    from PIL import Image, UnidentifiedImageError

    modes, sizes = [], []
    for file in files:  # first pass reads headers only: decide channels and check sizes
        try:
            with Image.open(file) as image:
                modes.append(image.mode)
                sizes.append(image.size)
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{file}: cannot read image ({exc})") from None
    mode = "L" if all(m in GREY_MODES for m in modes) else "RGB"
    if target is None:
        for file, image_size in zip(files, sizes, strict=True):
            if image_size != sizes[0]:
                raise DataError(
                    f"{file}: {image_size[0]}x{image_size[1]} (WxH) differs from "
                    f"{sizes[0][0]}x{sizes[0][1]} of {files[0]}; pass size= to resize all"
                )
        height, width = sizes[0][1], sizes[0][0]
    else:
        height, width = target
    channels = 1 if mode == "L" else 3
    out = np.empty((len(files), channels, height, width), dtype=np.uint8)
    for index, file in enumerate(files):
        try:
            with Image.open(file) as image:
                image = image.convert(mode)
                if image.size != (width, height):
                    image = image.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(image, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataError(f"{file}: cannot decode image ({exc})") from None
        out[index] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return out
