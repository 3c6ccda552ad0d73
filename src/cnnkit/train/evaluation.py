"""Evaluation: a model over a loader, and ``evaluate(checkpoint)`` for a saved run (E2).

Test-time augmentation is one level (``--tta``). Level 1 averages the logits of each image and
its horizontal mirror (airbench's ``tta_level=1``); it helps on datasets whose classes are
mirror-symmetric, such as Fashion-MNIST and CIFAR-10, and should be left off for digits. Level
``1 + s`` adds airbench's ``tta_level=2`` (s = 1): the mean over the image shifted by ``s``
pixels up-left and down-right (reflect padding), each with its flip, weighted equally with the
unshifted pair.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from cnnkit.errors import CheckpointError, ConfigError
from cnnkit.runtime import autocast
from cnnkit.train.config import tta_shift_of
from cnnkit.train.metrics import MetricAccumulator, Metrics

if TYPE_CHECKING:
    from torch import nn

    from cnnkit.data import ImageDataset
    from cnnkit.train.config import DataConfig
    from cnnkit.train.provenance import Environment


def shifted_views(images: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` moved by ``shift`` pixels down-right and up-left, reflect-padded at the edges.

    View one is ``pad(x)[..., 0:H, 0:W]`` (content moves down-right), view two
    ``pad(x)[..., 2s:H+2s, 2s:W+2s]`` (up-left), with ``pad`` the reflect padding by ``s``.
    """
    height, width = images.shape[-2:]
    if not 0 < shift < min(height, width):
        raise ConfigError(
            f"--tta: a shift must be between 1 and {min(height, width) - 1} pixels for "
            f"{height}x{width} images, got {shift} (level {shift + 1})"
        )
    padded = F.pad(images, (shift,) * 4, mode="reflect")
    end = 2 * shift
    return (
        padded[..., :height, :width],
        padded[..., end : end + height, end : end + width],
    )


def tta_label(tta: int) -> str:
    """Reports name the TTA level: ``""``, ``"flip TTA"`` or ``"flip + 1 px TTA"``."""
    if not tta:
        return ""
    shift = tta_shift_of(tta)
    return f"flip + {shift} px TTA" if shift > 0 else "flip TTA"


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    dtype: torch.dtype | None,
    tta: int = 0,
) -> torch.Tensor:
    """Float32 logits of ``model`` on a batch, with test-time augmentation at level ``tta``.

    Level 1: ``(f(x) + f(flip x)) / 2``. Level ``1 + s``: that mean is averaged half and half
    with the mean of ``f`` over the two views of :func:`shifted_views` by ``s`` pixels and their
    flips (airbench's ``tta_level=2`` is level 2, s = 1).
    """
    with autocast(images.device, dtype):
        if not tta:
            return model(images).float()

        def mirrored(x: torch.Tensor) -> torch.Tensor:
            return (model(x).float() + model(x.flip(-1)).float()) / 2

        logits = mirrored(images)
        if tta_shift_of(tta) > 0:
            first, second = shifted_views(images, tta_shift_of(tta))
            logits = logits / 2 + (mirrored(first) + mirrored(second)) / 4
    return logits


# inference_mode rather than no_grad: no version counters or views to track, which made airnet's
# evaluation about 1.5x faster here (with batches of 500, docs/benchmarks.md).
@torch.inference_mode()
def run_evaluation(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    num_classes: int,
    classes: list[str] | None = None,
    dtype: torch.dtype | None = None,
    tta: int = 0,
    hardest: int = 0,
    on_batch: Callable[[int], None] | None = None,
    reduce: Callable[[MetricAccumulator], MetricAccumulator] | None = None,
) -> Metrics:
    """Metrics of ``model`` (put in eval mode, restored afterwards) over ``batches``.

    ``on_batch(n)`` is called after each batch with its number of images (a progress bar).
    ``reduce`` combines the accumulator with those of the other processes of a distributed run
    (each evaluated its own shard; ``Distributed.reduce_metrics``).
    """
    was_training = model.training
    model.eval()
    accumulator = MetricAccumulator(num_classes, hardest=hardest)
    try:
        for images, labels in batches:
            accumulator.add(predict_logits(model, images, dtype, tta), labels)
            if on_batch is not None:
                on_batch(len(labels))
    finally:
        model.train(was_training)
    if reduce is not None:
        accumulator = reduce(accumulator)
    return accumulator.result(classes)


SPLITS = ("test", "val", "train")


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate` measured, and on what.

    ``run_environment`` is the environment the run was trained in (its environment.json),
    when the checkpoint's folder holds one.
    """

    checkpoint: str
    dataset: str
    split: str
    weights: str
    tta: int  # the level (0: off)
    metrics: Metrics
    run_environment: Environment | None = None

    def to_dict(self) -> dict[str, Any]:
        """The names of final.json, prefixed by the split: ``test_top1``, ``val_loss``, ..."""
        metrics, split = self.metrics, self.split
        return {
            "checkpoint": self.checkpoint,
            "dataset": self.dataset,
            "split": split,
            "weights": self.weights,
            "tta": self.tta,
            f"{split}_top1": metrics.top1,
            f"{split}_top5": metrics.top5,
            f"{split}_loss": metrics.loss,
            f"{split}_images": metrics.count,
            "classes": list(metrics.classes),
            "per_class_top1": dict(zip(metrics.classes, metrics.per_class, strict=True)),
            "per_class": [score.to_dict() for score in metrics.class_scores],
            "confusion": metrics.confusion,
            "hardest": [vars(h) for h in metrics.hardest],
            "run_environment": (
                self.run_environment.to_dict() if self.run_environment is not None else None
            ),
        }


def model_from_checkpoint(
    checkpoint: dict[str, Any],
    path: Path,
    weights: str,
    model: str | Callable[..., nn.Module] | nn.Module | None = None,
) -> nn.Module:
    """Rebuild the model a checkpoint names and load its ``model`` (or ``ema``) weights.

    The one safe rebuild: a checkpoint is data, so only a zoo name recorded in it is built
    (with its plain-JSON ``model_kwargs``, checked by ``load_checkpoint``). A recorded
    ``module:callable`` is refused unless the caller names the code itself with ``model``
    (a spec, a factory, or a module), which is then built with the recorded keyword arguments.
    """
    from cnnkit.models import instantiate
    from cnnkit.models.weights import load_state_strict
    from cnnkit.train.config import refuse_recorded_model

    if weights not in ("model", "ema"):
        raise ConfigError(f"--weights: must be model or ema, got {weights!r}")
    state = checkpoint.get(weights)
    if state is None:
        raise CheckpointError(f"{path}: holds no {weights!r} weights (run without --ema?)")
    if model is None:
        refuse_recorded_model(checkpoint["model_name"], str(path), CheckpointError)
        model = checkpoint["model_name"]
    kwargs = dict(checkpoint["model_kwargs"])
    if isinstance(kwargs.get("widths"), list):  # JSON keeps airnet's tuple as a list
        kwargs["widths"] = tuple(kwargs["widths"])
    built, _ = instantiate(model, kwargs if not isinstance(model, torch.nn.Module) else {})
    name = model if isinstance(model, str) else type(built).__name__
    load_state_strict(built, state, path, name)
    return built


def evaluate(
    checkpoint: str | Path,
    *,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | None = None,
    tta: int | None = None,
    weights: str = "model",
    batch_size: int | None = None,
    device: str = "auto",
    hardest: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    model: str | Callable[..., nn.Module] | nn.Module | None = None,
) -> EvalResult:
    """Evaluate a saved run's checkpoint (``best.pt``, ``last.pt``, or the run folder).

    The model, its normalisation (mean, std), the dataset and the evaluation settings come from
    the run's own config (rebuilt as a :class:`TrainConfig` from the checkpoint) unless given.
    Returns top-1/top-5 (percent), mean cross-entropy, the confusion matrix, per-class
    accuracy, precision, recall and F1, and the hardest samples.

    Args:
        checkpoint: a checkpoint file, or a run folder (its ``best.pt``).
        dataset: dataset name; default: the one the run trained on.
        split: ``test``; ``val``, the run's own validation split, rebuilt from the train
            split with the run's ``val_size`` and ``split_seed`` exactly as ``fit`` made it;
            or ``train`` (the whole train split).
        tta: test-time augmentation level (0 off, 1 flip, 2 flip and 1-pixel shifts, ...);
            default: as the run was configured.
        weights: ``model`` or ``ema`` (the weight average, when the run kept one).
        batch_size, hardest: default: the run's ``eval_batch_size`` and ``hardest``.
        progress: called as ``progress(done, total)`` images after each batch.
        model: the code to build when the run's model is ``module:callable`` (a checkpoint
            never selects code itself): the same spec, or the factory or module.
    """
    from cnnkit.data import DeviceLoader
    from cnnkit.runtime import resolve_device, resolve_precision, to_memory_format
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.config import saved_config
    from cnnkit.train.provenance import read_environment

    if not isinstance(checkpoint, str | Path):
        raise ConfigError(f"checkpoint: expected a path, got {type(checkpoint).__name__}")
    if split not in SPLITS:
        raise ConfigError(f"--split: must be one of {', '.join(SPLITS)}, got {split!r}")
    path = Path(checkpoint)
    if path.is_dir():
        path = path / "best.pt"
    saved = load_checkpoint(path)
    # the model first: a checkpoint that names code is refused before any data is touched
    target = resolve_device(device)
    network = model_from_checkpoint(saved, path, weights, model).to(target)
    config = saved_config(saved, str(path))
    settings = config.evaluation
    batch_size = settings.eval_batch_size if batch_size is None else batch_size
    hardest = settings.hardest if hardest is None else hardest
    level = settings.tta if tta is None else int(tta)  # True/False: the flip on or off
    if batch_size < 1:
        raise ConfigError(f"--batch-size: must be >= 1, got {batch_size}")
    if hardest < 0:
        raise ConfigError(f"--hardest: must be >= 0, got {hardest}")
    if level < 0:
        raise ConfigError(f"--tta: must be >= 0, got {level}")
    name = dataset or config.data.dataset
    images = _split_images(path, config.data, name, split, data_dir or config.data.data_dir)
    if tuple(images.image_shape) != tuple(saved["image_shape"]):
        raise CheckpointError(
            f"{path}: the model was trained on images {tuple(saved['image_shape'])}, "
            f"{name} {split} has {images.image_shape}"
        )
    if list(images.classes) != list(saved["classes"]):  # scores would name the wrong classes
        raise CheckpointError(
            f"{path}: the model was trained on {len(saved['classes'])} classes "
            f"({', '.join(saved['classes'][:3])}, ...), {name} {split} has "
            f"{len(images.classes)} ({', '.join(list(images.classes)[:3])}, ...)"
        )
    channels_last = config.runtime.channels_last
    if channels_last:
        network = to_memory_format(network, channels_last=True)
    loader = DeviceLoader(
        images,
        batch_size,
        shuffle=False,
        drop_last=False,
        device=target,
        seed=0,
        transform=None,
        channels_last=channels_last,
        mean=tuple(saved["mean"]),
        std=tuple(saved["std"]),
    )
    dtype = resolve_precision(config.runtime.precision, target)
    done, total = 0, len(images)

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    metrics = run_evaluation(
        network,
        loader,
        num_classes=len(saved["classes"]),
        classes=list(saved["classes"]),
        dtype=dtype,
        tta=level,
        hardest=hardest,
        on_batch=advance,
    )
    environment = read_environment(path.parent)
    return EvalResult(str(path), name, split, weights, level, metrics, environment)


def _split_images(
    path: Path, data: DataConfig, name: str, split: str, data_dir: str | None
) -> ImageDataset:
    """The images of ``split``; ``val`` is rebuilt as ``prepare_data`` made it for the run."""
    from cnnkit.data import load_dataset
    from cnnkit.train.datasets import split_validation

    if split != "val":
        return load_dataset(name, split, data_dir=data_dir)
    if not data.val_size:
        raise ConfigError(
            f"--split val: {path} was trained without a validation split (val_size 0); "
            "use --split test"
        )
    train = load_dataset(name, "train", data_dir=data_dir)
    _, val = split_validation(train, data.val_size, data.split_seed)
    assert val is not None  # val_size > 0
    return val
