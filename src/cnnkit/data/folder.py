"""Any ImageFolder tree: ``<root>/<class>/**/<image>``, read with Pillow into one uint8 tensor.

The layout is torchvision's ``ImageFolder``: class names are the sorted sub-folder names, label
``i`` is the ``i``-th name, images are found recursively in each class folder (sorted paths, so
the order is reproducible). Every image must decode and, unless ``size`` asks for resizing, all
must share one size; an error names the file. Entries that are not regular files (a FIFO, a
device, a broken link) are skipped without being opened, so a listing never blocks. When the root
holds several split folders (``train/``, ``val/``, ``test/``), their class lists must be equal:
label ``i`` must mean the same class in every split.

Pixels become uint8 by a fixed conversion per Pillow mode:

- ``L``: as is; ``1``: 0 or 255; ``LA``/``La``: the grey level, alpha dropped;
- ``I;16`` (16-bit greyscale PNG), ``I;16B``/``I;16L``/``I;16N`` and ``I`` (how Pillow opens
  16-bit greyscale in some formats): values clipped to 0..65535 and scaled by 255/65535, rounded
  (65535 -> 255, 257 -> 1), never clipped to 255;
- ``F`` (32-bit float): values clipped to [0, 1] and scaled by 255, rounded (NaN -> 0);
- ``RGB`` as is; ``RGBA``, ``P``/``PA`` (palette), ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` and the
  rest: Pillow's conversion to RGB (alpha dropped, not composited).

A dataset is greyscale (one channel) when every image's mode is a grey one, else RGB (grey images
repeated in three channels).
"""

from __future__ import annotations

import contextlib
import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from cnnkit.arith.limits import check_fits_in_memory
from cnnkit.data._checks import require_path, require_str
from cnnkit.data.dataset import ImageDataset
from cnnkit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from PIL import Image as PILImage

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
# Pillow modes read as 16-bit grey levels, and every mode that holds grey levels only (an alpha
# channel, if any, is dropped). See the module docstring for the conversion.
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
GREY_MODES = frozenset({"1", "L", "LA", "La", "F", *SIXTEEN_BIT_MODES})
SPLITS = ("train", "val", "test")


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
    require_path("image_folder", "path", path, optional=False)
    if split is not None:
        require_str("image_folder", "split", split)
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    if split is not None and (root / split).is_dir():
        root = root / split
    elif split not in (None, "train"):
        raise DataError(f"{root}: no {split!r} sub-folder (an ImageFolder split is a sub-folder)")
    target = _target_size(size)
    classes = _class_names(root)
    if not classes:
        raise DataError(f"{root}: no class sub-folders (expected <root>/<class>/<image>)")
    if root != Path(path):
        _check_same_classes(Path(path), root.name, classes)
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


def _class_names(root: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    except OSError as exc:
        raise DataError(f"{root}: cannot list the class folders ({exc.strerror or exc})") from None


def _check_same_classes(parent: Path, split: str, classes: list[str]) -> None:
    """Refuse split folders whose class lists differ: label ``i`` would mean different classes
    (a test image of a class the model never saw would be scored as another class)."""
    for other in SPLITS:
        if other == split or not (parent / other).is_dir():
            continue
        theirs = _class_names(parent / other)
        if theirs != classes:
            only_here = sorted(set(classes) - set(theirs))
            only_there = sorted(set(theirs) - set(classes))
            differences = [
                f"only in {name}: {', '.join(names)}"
                for name, names in ((split, only_here), (other, only_there))
                if names
            ] or ["same names, different order"]
            raise DataError(
                f"{parent}: the class folders of {split}/ and {other}/ differ "
                f"({'; '.join(differences)}); every split needs the same classes"
            )


def _target_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, tuple, list)):
        raise ConfigError(f"size: expected an int or (height, width), got {size!r}")
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (height, width)):
        raise ConfigError(f"size: expected integer (height, width), got {size!r}")
    if height <= 0 or width <= 0:
        raise ConfigError(f"size: expected positive (height, width), got {size!r}")
    return int(height), int(width)


def _extensions() -> str:
    return ", ".join(sorted(IMAGE_EXTENSIONS))


def _is_regular_file(path: Path) -> bool:
    """True for a regular file (or a link to one); a FIFO, device or broken link is False."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _images_under(folder: Path) -> list[Path]:
    found = []
    for directory, subdirs, names in os.walk(folder, followlinks=False):
        subdirs.sort()
        for name in sorted(names):
            path = Path(directory) / name
            if path.suffix.lower() in IMAGE_EXTENSIONS and _is_regular_file(path):
                found.append(path)
    return found


def _open_regular(file: Path) -> IO[bytes]:
    """``file`` opened for reading without blocking: a FIFO put in place of a listed file
    would otherwise block ``open`` until a writer appears."""
    try:
        descriptor = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise DataError(f"{file}: cannot read image ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise DataError(f"{file}: not a regular file")
    return os.fdopen(descriptor, "rb")


@contextlib.contextmanager
def _open_image(file: Path) -> Iterator[PILImage.Image]:
    """``file`` opened with Pillow, refusing images over Pillow's decompression-bomb limit."""
    from PIL import Image

    with _open_regular(file) as handle:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(handle)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DataError(
                f"{file}: refused as a possible decompression bomb ({_one_line(exc)}); raise "
                "PIL.Image.MAX_IMAGE_PIXELS to allow larger images"
            ) from None
        except Exception as exc:  # Pillow raises many types for a file that is not an image
            raise DataError(
                f"{file}: cannot read image ({type(exc).__name__}: {_one_line(exc)})"
            ) from None
        with image:
            yield image


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _eight_bit(image: PILImage.Image) -> PILImage.Image:
    """16-bit and float modes scaled to 8-bit grey (module docstring); others unchanged."""
    from PIL import Image

    if image.mode in SIXTEEN_BIT_MODES:
        values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L")
    if image.mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
        return Image.fromarray(np.round(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8), "L")
    return image


def _read_images(files: list[Path], target: tuple[int, int] | None) -> np.ndarray:
    """(N, C, H, W) uint8 array of ``files``: greyscale only if all are, one size for all."""
    from PIL import Image

    modes, sizes = [], []
    for file in files:  # first pass reads headers only: decide channels and check sizes
        with _open_image(file) as image:
            modes.append(image.mode)
            sizes.append(image.size)
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
    check_fits_in_memory(
        len(files) * channels * height * width,
        f"{files[0].parent.parent}: {len(files)} images of {channels}x{height}x{width} uint8",
        DataError,
    )
    out = np.empty((len(files), channels, height, width), dtype=np.uint8)
    for index, file in enumerate(files):
        with _open_image(file) as image:
            try:
                converted = _eight_bit(image).convert(mode)
                if converted.size != (width, height):
                    converted = converted.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(converted, dtype=np.uint8)
            except Exception as exc:  # a truncated or corrupt image body: Pillow's many types
                raise DataError(
                    f"{file}: cannot decode image ({type(exc).__name__}: {_one_line(exc)})"
                ) from None
        out[index] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return out
