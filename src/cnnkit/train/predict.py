"""``predict(checkpoint, images)``: the top-k classes of image files, as the run would see them.

The design follows timm's ``inference.py`` (a checkpoint, a list of images, the top-k classes
with their names and probabilities, a table or JSON), with the preprocessing of the run itself:
each image is decoded by Pillow (any format it reads), converted to the checkpoint's channel
count (greyscale by Pillow's ITU-R 601-2 luma, colour by replicating grey), resized bilinearly to
the run's image size when it differs (as ``cnnkit.data.image_folder`` resizes), scaled to [0, 1]
and normalised with the run's mean and std; the logits come from the same function as
``cnnkit eval``'s (same test-time augmentation and autocast precision by default), so an image
gets the probabilities that ``cnnkit eval`` computes for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnkit.errors import ConfigError, DataError

# Pillow modes of one grey channel; 16- and 32-bit integer modes are scaled to 8 bits.
GREY_MODES = frozenset({"1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N"})
WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})


@dataclass(frozen=True)
class ClassProbability:
    """One of an image's top classes: index, name and softmax probability (0 to 1)."""

    index: int
    name: str
    probability: float

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "class": self.name, "probability": self.probability}


@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one image file, most probable first."""

    image: str
    top: list[ClassProbability]

    @property
    def label(self) -> str:
        """The predicted class's name (top-1)."""
        return self.top[0].name

    @property
    def probability(self) -> float:
        """The top-1 probability."""
        return self.top[0].probability

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "top": [entry.to_dict() for entry in self.top]}


def read_image(path: str | Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """``path`` as a (channels, height, width) uint8 array, converted and resized as above.

    16-bit greyscale (``I;16``) is scaled by 255/65535 (rounded), not clipped. An image whose
    channels cannot become ``channels`` (a 4-band CMYK for a 2-channel model) is refused.
    Every error is a :class:`DataError` naming the file.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not an image")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    height, width = size
    try:
        with Image.open(path) as image:
            image.load()
            pixels = _converted(image, channels, path)
            if pixels.size != (width, height):
                pixels = pixels.resize((width, height), Image.Resampling.BILINEAR)
            array = np.asarray(pixels, dtype=np.uint8)
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image (Pillow cannot identify its format)") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: refused, image too large ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
        raise DataError(f"{path}: cannot decode the image ({exc})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy()


def _converted(image: Any, channels: int, path: Path) -> Any:
    """A Pillow image with ``channels`` bands of 8 bits."""
    from PIL import Image

    mode = image.mode
    if mode in WIDE_GREY_MODES:
        # 16-bit values as 0..65535 (``I`` holds them too): scale, rounding to nearest
        wide = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.rint(wide * 255.0 / 65535.0), 0, 255).astype(np.uint8))
        mode = "L"
    if mode == "F":
        raise DataError(f"{path}: 32-bit floating-point images are not supported")
    if channels == 1:
        return image.convert("L")
    if channels == 3:
        if mode == "P":  # palette with transparency: through RGBA, alpha then dropped
            image = image.convert("RGBA")
        return image.convert("RGB")
    bands = len(image.getbands())
    if bands != channels:
        raise DataError(
            f"{path}: a {mode} image has {bands} channel{'s' if bands != 1 else ''}; the "
            f"model takes {channels}, and there is no conversion between them"
        )
    return image


def predict(
    checkpoint: str | Path,
    images: Sequence[str | Path],
    top_k: int = 5,
    *,
    weights: str = "model",
    device: str = "auto",
    tta: int | None = None,
    batch_size: int | None = None,
) -> list[Prediction]:
    """The ``top_k`` most probable classes of each image file for a saved run's model.

    Probabilities are ``softmax(logits)`` of the logits :func:`predict_logits` gives (the
    run's test-time augmentation level and precision unless ``tta`` says otherwise).

    Args:
        checkpoint: a checkpoint file, or a run folder (its ``best.pt``).
        images: image files in any format Pillow reads.
        top_k: classes per image (at most the number of classes).
        weights: ``model`` or ``ema``.
        batch_size: images per forward pass; default: the run's ``eval_batch_size``.
    """
    from cnnkit.runtime import resolve_device, resolve_precision, to_memory_format
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.config import saved_config
    from cnnkit.train.evaluation import model_from_checkpoint, predict_logits

    if isinstance(images, str | Path):  # one file, not a sequence of characters
        images = [images]
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"--top-k: must be a positive integer, got {top_k!r}")
    if not images:
        raise ConfigError("images: give at least one image file")
    path = Path(checkpoint)
    if path.is_dir():
        path = path / "best.pt"
    saved = load_checkpoint(path)
    config = saved_config(saved, str(path))
    channels, height, width = (int(v) for v in saved["image_shape"])
    classes = [str(name) for name in saved["classes"]]
    pixels = np.stack([read_image(image, channels, (height, width)) for image in images])
    size = int(batch_size if batch_size is not None else config.evaluation.eval_batch_size)
    if size < 1:
        raise ConfigError(f"--batch-size: must be >= 1, got {size}")
    level = config.evaluation.tta if tta is None else int(tta)  # True/False: the flip on or off
    if level < 0:
        raise ConfigError(f"--tta: must be >= 0, got {level}")
    target = resolve_device(device)
    channels_last = config.runtime.channels_last
    model = model_from_checkpoint(saved, path, weights).to(target).eval()
    if channels_last:
        model = to_memory_format(model, channels_last=True)
    dtype = resolve_precision(config.runtime.precision, target)
    mean = torch.tensor(saved["mean"], dtype=torch.float32).view(1, -1, 1, 1).to(target)
    std = torch.tensor(saved["std"], dtype=torch.float32).view(1, -1, 1, 1).to(target)
    k = min(top_k, len(classes))
    predictions: list[Prediction] = []
    for start in range(0, len(pixels), size):
        # the DeviceLoader's arithmetic: (x / 255 - mean) / std in float32
        batch = torch.from_numpy(pixels[start : start + size]).to(target)
        batch = (batch.to(torch.float32).div_(255.0) - mean) / std
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        probabilities = predict_logits(model, batch, dtype, level).softmax(1).cpu()
        values, indices = probabilities.topk(k, dim=1)
        for offset, (row_values, row_indices) in enumerate(zip(values, indices, strict=True)):
            top = [
                ClassProbability(int(i), classes[int(i)], float(p))
                for p, i in zip(row_values, row_indices, strict=True)
            ]
            predictions.append(Prediction(str(images[start + offset]), top))
    return predictions
