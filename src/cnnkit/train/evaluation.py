"""Evaluation: a model over a loader, and ``evaluate(checkpoint)`` for a saved run (E2).

Test-time flip augmentation averages the logits of each image and its horizontal mirror
(airbench's ``tta_level=1``); it helps on datasets whose classes are mirror-symmetric, such as
Fashion-MNIST and CIFAR-10, and should be left off for digits. ``tta_shift`` adds airbench's
``tta_level=2``: the mean over the image shifted by ``s`` pixels up-left and down-right (reflect
padding), each with its flip, weighted equally with the unshifted pair.
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
from cnnkit.train.metrics import MetricAccumulator, Metrics

if TYPE_CHECKING:
    from torch import nn

    from cnnkit.data import ImageDataset
    from cnnkit.train.provenance import Environment


def shifted_views(images: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` moved by ``shift`` pixels down-right and up-left, reflect-padded at the edges.

    View one is ``pad(x)[..., 0:H, 0:W]`` (content moves down-right), view two
    ``pad(x)[..., 2s:H+2s, 2s:W+2s]`` (up-left), with ``pad`` the reflect padding by ``s``.
    """
    height, width = images.shape[-2:]
    if not 0 < shift < min(height, width):
        raise ConfigError(
            f"--tta-shift: must be between 1 and {min(height, width) - 1} for "
            f"{height}x{width} images, got {shift}"
        )
    padded = F.pad(images, (shift,) * 4, mode="reflect")
    end = 2 * shift
    return (
        padded[..., :height, :width],
        padded[..., end : end + height, end : end + width],
    )


def tta_label(tta: bool, tta_shift: int = 0) -> str:
    """Reports name the TTA: ``""``, ``"flip TTA"`` or ``"flip + 1 px TTA"``."""
    if not tta:
        return ""
    return f"flip + {tta_shift} px TTA" if tta_shift > 0 else "flip TTA"


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    dtype: torch.dtype | None,
    tta: bool,
    tta_shift: int = 0,
) -> torch.Tensor:
    """Float32 logits of ``model`` on a batch, with test-time augmentation when asked.

    ``tta``: ``(f(x) + f(flip x)) / 2``. ``tta_shift`` s > 0 as well: that mean is averaged
    half and half with the mean of ``f`` over the two views of :func:`shifted_views` and their
    flips (airbench's ``tta_level=2`` with s = 1).
    """
    with autocast(images.device, dtype):
        if not tta:
            return model(images).float()

        def mirrored(x: torch.Tensor) -> torch.Tensor:
            return (model(x).float() + model(x.flip(-1)).float()) / 2

        logits = mirrored(images)
        if tta_shift > 0:
            first, second = shifted_views(images, tta_shift)
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
    tta: bool = False,
    tta_shift: int = 0,
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
            accumulator.add(predict_logits(model, images, dtype, tta, tta_shift), labels)
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
    tta: bool
    metrics: Metrics
    tta_shift: int = 0
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
            "tta_shift": self.tta_shift,
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
    from cnnkit.train.checkpoint import load_model_state
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
    load_model_state(built, state, path)
    return built


def evaluate(
    checkpoint: str | Path,
    *,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | None = None,
    tta: bool | None = None,
    tta_shift: int | None = None,
    weights: str = "model",
    batch_size: int | None = None,
    device: str = "auto",
    hardest: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    model: str | Callable[..., nn.Module] | nn.Module | None = None,
) -> EvalResult:
    """Evaluate a saved run's checkpoint (``best.pt``, ``last.pt``, or the run folder).

    The model, its normalisation (mean, std) and the dataset come from the checkpoint unless
    given. Returns top-1/top-5 (percent), mean cross-entropy, the confusion matrix, per-class
    accuracy, precision, recall and F1, and the hardest samples.

    Args:
        checkpoint: a checkpoint file, or a run folder (its ``best.pt``).
        dataset: dataset name; default: the one the run trained on.
        split: ``test``; ``val``, the run's own validation split, rebuilt from the train
            split with the run's ``val_size`` and ``split_seed`` exactly as ``fit`` made it;
            or ``train`` (the whole train split).
        tta: average with the horizontal flip; default: as the run was configured.
        tta_shift: with ``tta``, also average over shifts by this many pixels (0: off);
            default: as the run was configured.
        weights: ``model`` or ``ema`` (the weight average, when the run kept one).
        batch_size, hardest: default: the run's ``eval_batch_size`` and ``hardest``.
        progress: called as ``progress(done, total)`` images after each batch.
        model: the code to build when the run's model is ``module:callable`` (a checkpoint
            never selects code itself): the same spec, or the factory or module.
    """
    from cnnkit.data import DeviceLoader
    from cnnkit.runtime import resolve_device, resolve_precision
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.config import TrainConfig
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
    config = saved["config"]
    defaults = TrainConfig.__dataclass_fields__
    if batch_size is None:
        batch_size = int(config.get("eval_batch_size", defaults["eval_batch_size"].default))
    if hardest is None:
        hardest = int(config.get("hardest", defaults["hardest"].default))
    if batch_size < 1:
        raise ConfigError(f"--batch-size: must be >= 1, got {batch_size}")
    if hardest < 0:
        raise ConfigError(f"--hardest: must be >= 0, got {hardest}")
    name = dataset or config["dataset"]
    images = _split_images(path, config, name, split, data_dir or config.get("data_dir"))
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
    use_tta = bool(config.get("tta", False)) if tta is None else tta
    shift = int(config.get("tta_shift", 0)) if tta_shift is None else tta_shift
    if shift < 0:
        raise ConfigError(f"--tta-shift: must be >= 0, got {shift}")
    shift = shift if use_tta else 0
    if config.get("channels_last", False):
        network = network.to(memory_format=torch.channels_last)
    loader = DeviceLoader(
        images,
        batch_size,
        shuffle=False,
        drop_last=False,
        device=target,
        seed=0,
        transform=None,
        channels_last=bool(config.get("channels_last", False)),
        mean=tuple(saved["mean"]),
        std=tuple(saved["std"]),
    )
    dtype = resolve_precision(config.get("precision", "off"), target)
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
        tta=use_tta,
        tta_shift=shift,
        hardest=hardest,
        on_batch=advance,
    )
    environment = read_environment(path.parent)
    return EvalResult(str(path), name, split, weights, use_tta, metrics, shift, environment)


def _split_images(
    path: Path, config: dict[str, Any], name: str, split: str, data_dir: str | None
) -> ImageDataset:
    """The images of ``split``; ``val`` is rebuilt as ``prepare_data`` made it for the run."""
    from cnnkit.data import load_dataset
    from cnnkit.train.datasets import split_validation

    if split != "val":
        return load_dataset(name, split, data_dir=data_dir)
    val_size = config.get("val_size", 0)
    if not val_size:
        raise ConfigError(
            f"--split val: {path} was trained without a validation split (val_size 0); "
            "use --split test"
        )
    train = load_dataset(name, "train", data_dir=data_dir)
    _, val = split_validation(train, int(val_size), int(config.get("split_seed", 42)))
    assert val is not None  # val_size > 0
    return val
