"""Accuracy of a checkpoint under corrupted test images, mCE, and the half-resolution trade (E5).

:func:`evaluate_robustness` rebuilds a run's model as ``cnnkit eval`` does and measures top-1 on
the whole test split under each corruption of :mod:`cnnkit.data.corruptions` at each severity.
Severity 0 is the clean test set through the same batches, normalisation, precision and TTA as
:func:`cnnkit.train.evaluate`, so it reproduces ``cnnkit eval``'s top-1 exactly.

Mean corruption error (Hendrycks & Dietterich 2019, ImageNet-C, section 3): with E_{s,c} the
top-1 error at severity s of corruption c,

    CE_c = sum_s E_{s,c}(model) / sum_s E_{s,c}(baseline),          mCE = mean_c CE_c
    relative CE_c = sum_s (E_{s,c} - E_clean)(model) / sum_s (E_{s,c} - E_clean)(baseline)

(ImageNet-C's baseline is AlexNet; here it is any checkpoint the user names), in percent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from cnnkit.errors import CheckpointError, ConfigError, ShapeError
from cnnkit.train.config import flatten_settings

if TYPE_CHECKING:
    from torch import nn

    from cnnkit.data import ImageDataset


@dataclass(frozen=True)
class ResolutionResult:
    """Top-1 and inference speed at full size and with images halved (``factor`` of the side)."""

    factor: float
    full_size: tuple[int, int]
    reduced_size: tuple[int, int]
    full_top1: float
    full_images_per_second: float
    upsampled_top1: float
    native_top1: float | None  # None when the model does not accept the small size
    native_images_per_second: float | None
    native_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "full_size": list(self.full_size),
            "reduced_size": list(self.reduced_size),
            "full_top1": self.full_top1,
            "full_images_per_second": self.full_images_per_second,
            "upsampled_top1": self.upsampled_top1,
            "native_top1": self.native_top1,
            "native_images_per_second": self.native_images_per_second,
            "native_error": self.native_error,
        }


@dataclass(frozen=True)
class RobustnessResult:
    """Top-1 (percent) per corruption and severity; ``clean_top1`` is severity 0."""

    checkpoint: str
    dataset: str
    images: int
    tta: int  # the run's test-time augmentation level (0: off)
    seed: int
    severities: tuple[int, ...]
    clean_top1: float
    top1: dict[str, tuple[float, ...]]  # corruption -> top-1 at each of ``severities``
    table_version: int
    seconds: float
    baseline: RobustnessResult | None = None
    resolution: ResolutionResult | None = None
    grid_path: str | None = None
    parameters: dict[str, list[float]] = field(default_factory=dict)

    @property
    def mean_accuracy(self) -> float:
        """Top-1 averaged over every corruption and severity."""
        values = [v for row in self.top1.values() for v in row]
        return sum(values) / len(values)

    def ce(self) -> dict[str, float] | None:
        """CE_c in percent against the baseline (None without one)."""
        if self.baseline is None:
            return None
        out = {}
        for name, row in self.top1.items():
            base = self.baseline.top1[name]
            errors = sum(100.0 - v for v in row)
            base_errors = sum(100.0 - v for v in base)
            out[name] = 100.0 * errors / base_errors if base_errors > 0 else float("inf")
        return out

    def relative_ce(self) -> dict[str, float] | None:
        """Relative CE_c in percent: the degradation from clean, against the baseline's."""
        if self.baseline is None:
            return None
        out = {}
        for name, row in self.top1.items():
            drop = sum(self.clean_top1 - v for v in row)
            base_drop = sum(self.baseline.clean_top1 - v for v in self.baseline.top1[name])
            out[name] = 100.0 * drop / base_drop if base_drop != 0 else float("nan")
        return out

    @property
    def mce(self) -> float | None:
        """mCE: the mean of CE_c over the corruptions (percent)."""
        ce = self.ce()
        return None if ce is None else sum(ce.values()) / len(ce)

    @property
    def relative_mce(self) -> float | None:
        ce = self.relative_ce()
        return None if ce is None else sum(ce.values()) / len(ce)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "dataset": self.dataset,
            "images": self.images,
            "tta": self.tta,
            "seed": self.seed,
            "severity_table_version": self.table_version,
            "severities": list(self.severities),
            "clean_top1": self.clean_top1,
            "top1": {name: list(row) for name, row in self.top1.items()},
            "mean_top1": self.mean_accuracy,
            "parameters": self.parameters,
            "seconds": self.seconds,
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "ce": self.ce(),
            "mce": self.mce,
            "relative_ce": self.relative_ce(),
            "relative_mce": self.relative_mce,
            "resolution": None if self.resolution is None else self.resolution.to_dict(),
            "grid": self.grid_path,
        }


def parse_severities(text: str) -> tuple[int, ...]:
    """``"1-5"``, ``"1,3,5"`` or ``"2"`` -> sorted distinct severities in 1..5."""
    from cnnkit.data.corruptions import MAX_SEVERITY

    values: set[int] = set()
    try:
        for part in text.replace(" ", "").split(","):
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                if low > high:
                    raise ValueError
                values.update(range(low, high + 1))
            else:
                values.add(int(part))
    except ValueError:
        raise ConfigError(
            f"--severities: expected a range like 1-5 or a list like 1,3,5, got {text!r}"
        ) from None
    if not values or min(values) < 1 or max(values) > MAX_SEVERITY:
        raise ConfigError(f"--severities: each must be between 1 and {MAX_SEVERITY}, got {text!r}")
    return tuple(sorted(values))


@dataclass
class _Setup:
    path: Path
    saved: dict[str, Any]
    model: nn.Module
    dataset: ImageDataset
    device: torch.device
    dtype: torch.dtype | None
    tta: int
    channels_last: bool
    mean: torch.Tensor
    std: torch.Tensor


def _setup(
    checkpoint: str | Path, data_dir: str | None, device: str, weights: str, limit: int | None
) -> _Setup:
    """The model, test split and evaluation settings exactly as :func:`evaluate` builds them."""
    from cnnkit.data import load_dataset
    from cnnkit.runtime import resolve_device, resolve_precision, to_memory_format
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.config import saved_config
    from cnnkit.train.evaluation import model_from_checkpoint

    path = Path(checkpoint)
    if path.is_dir():
        path = path / "best.pt"
    saved = load_checkpoint(path)
    config = saved_config(saved, str(path))
    name = config.data.dataset
    dataset = load_dataset(name, "test", data_dir=data_dir or config.data.data_dir)
    trained_on = saved.get("dataset")
    if trained_on is not None and trained_on != dataset.name:  # fit(train_set=...) of tensors
        raise CheckpointError(
            f"{path}: the run trained on {trained_on}, images given in Python, not on a dataset "
            f"cnnkit loads by name; its config names {name}, whose test set is not what it "
            "learnt (evaluate it in Python, or train with --dataset)"
        )
    if tuple(dataset.image_shape) != tuple(saved["image_shape"]):
        raise CheckpointError(
            f"{path}: the model was trained on images {tuple(saved['image_shape'])}, "
            f"{name} test has {dataset.image_shape}"
        )
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--limit: must be >= 1, got {limit}")
        dataset = dataset.subset(torch.arange(min(limit, len(dataset))))
    target = resolve_device(device)
    channels_last = config.runtime.channels_last
    model = model_from_checkpoint(saved, path, weights).to(target)
    if channels_last:
        model = to_memory_format(model, channels_last=True)
    shape = (1, len(saved["mean"]), 1, 1)
    return _Setup(
        path=path,
        saved=saved,
        model=model,
        dataset=dataset,
        device=target,
        dtype=resolve_precision(config.runtime.precision, target),
        tta=config.evaluation.tta,
        channels_last=channels_last,
        mean=torch.tensor(saved["mean"], dtype=torch.float32).view(shape).to(target),
        std=torch.tensor(saved["std"], dtype=torch.float32).view(shape).to(target),
    )


def _batches(
    setup: _Setup,
    batch_size: int,
    corruption: str | None,
    severity: int,
    seed: int,
    pixels: Callable[[torch.Tensor], torch.Tensor] | None = None,
    table_version: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Test batches as :class:`~cnnkit.data.DeviceLoader` makes them, corrupted before the
    normalisation (the corruptions work on pixels in [0, 1]), then passed through ``pixels``."""
    from cnnkit.data.corruptions import SEVERITY_TABLE_VERSION, corrupt

    version = SEVERITY_TABLE_VERSION if table_version is None else table_version
    images = setup.dataset.images.to(setup.device)
    labels = setup.dataset.labels.to(setup.device)
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size].to(torch.float32).div_(255.0)
        if corruption is not None and severity > 0:
            indices = torch.arange(start, start + batch.shape[0])
            batch = corrupt(
                batch, corruption, severity, seed=seed, indices=indices, table_version=version
            )
        if pixels is not None:
            batch = pixels(batch)
        batch = (batch - setup.mean) / setup.std
        if setup.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        yield batch, labels[start : start + batch_size]


def _top1(setup: _Setup, batches: Iterator[tuple[torch.Tensor, torch.Tensor]]) -> float:
    from cnnkit.train.evaluation import run_evaluation

    metrics = run_evaluation(
        setup.model,
        batches,
        num_classes=len(setup.saved["classes"]),
        classes=list(setup.saved["classes"]),
        dtype=setup.dtype,
        tta=setup.tta,
        hardest=0,
    )
    return float(metrics.top1)


def _timed_top1(
    setup: _Setup,
    batch_size: int,
    pixels: Callable[[torch.Tensor], torch.Tensor] | None,
    repeats: int = 3,
) -> tuple[float, float]:
    """Top-1 and images per second of the forward passes (data preparation excluded), from the
    fastest of ``repeats`` passes (the one least disturbed by other work on the machine)."""
    prepared = list(_batches(setup, batch_size, None, 0, 0, pixels))
    fastest = float("inf")
    top1 = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        top1 = _top1(setup, iter(prepared))
        fastest = min(fastest, time.perf_counter() - start)
    return top1, len(setup.dataset) / fastest


def check_resolution(factor: float) -> None:
    """``--resolution``: a side factor strictly between 0 and 1."""
    if not 0 < factor < 1:
        raise ConfigError(f"--resolution: must be between 0 and 1 (exclusive), got {factor}")


def _test_set_of(checkpoint: str | Path) -> tuple[str, str]:
    """The dataset a checkpoint's run was trained on: (its config's name, the data's name)."""
    from cnnkit.train.checkpoint import load_checkpoint

    path = Path(checkpoint)
    saved = load_checkpoint(path / "best.pt" if path.is_dir() else path)
    name = str(flatten_settings(saved["config"])["dataset"])
    return name, str(saved.get("dataset", name))


def measure_resolution(setup: _Setup, factor: float, batch_size: int) -> ResolutionResult:
    """001's review question: top-1 with the image sides reduced by ``factor`` (antialiased
    bilinear), fed at the reduced size where the model accepts it, or upsampled back (bilinear)
    to the trained size; and the inference speed at each size (images/s of the forward passes,
    the fastest of three passes)."""
    check_resolution(factor)
    height, width = (int(v) for v in setup.dataset.image_shape[1:])
    reduced = (max(1, round(height * factor)), max(1, round(width * factor)))

    def down(batch: torch.Tensor) -> torch.Tensor:
        return F.interpolate(batch, size=reduced, mode="bilinear", antialias=True)

    def down_up(batch: torch.Tensor) -> torch.Tensor:
        return F.interpolate(down(batch), size=(height, width), mode="bilinear")

    full_top1, full_speed = _timed_top1(setup, batch_size, None)
    upsampled_top1 = _top1(setup, _batches(setup, batch_size, None, 0, 0, down_up))
    native_top1 = native_speed = native_error = None
    try:
        native_top1, native_speed = _timed_top1(setup, batch_size, down)
    except (RuntimeError, ShapeError) as exc:  # the model's layers do not fit the smaller image
        native_error = str(exc).strip().splitlines()[0][:200]
    return ResolutionResult(
        factor,
        (height, width),
        reduced,
        full_top1,
        full_speed,
        upsampled_top1,
        native_top1,
        native_speed,
        native_error,
    )


def evaluate_robustness(
    checkpoint: str | Path,
    *,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    baseline: str | Path | None = None,
    resolution: float | None = None,
    grid: str | Path | None = None,
    grid_index: int = 0,
    seed: int = 0,
    batch_size: int = 500,
    data_dir: str | None = None,
    device: str = "auto",
    weights: str = "model",
    limit: int | None = None,
    table_version: int | None = None,
) -> RobustnessResult:
    """Top-1 of a saved run under every corruption at every severity, on its whole test split.

    Args:
        checkpoint: a checkpoint file, or a run folder (its ``best.pt``).
        corruptions: names from :data:`cnnkit.data.corruptions.CORRUPTIONS` (default: all).
        severities: among 1-5; severity 0 (clean) is always measured.
        baseline: a second checkpoint: measured the same way, for CE and mCE.
        resolution: a side factor (0.5): top-1 and speed with images reduced by it.
        grid: a PNG path: one test image (``grid_index``) under every corruption and severity.
        seed: with each image's index, fixes the random corruptions.
        limit: only the first ``limit`` test images (a quick look; not the published number).
        table_version: the severity table (docs/robustness.md); default: the current one.
    """
    from cnnkit.data.corruptions import (
        CORRUPTIONS,
        SEVERITY_TABLE_VERSION,
        check_table_version,
        corruption_names,
    )

    version = SEVERITY_TABLE_VERSION if table_version is None else table_version
    check_table_version(version)

    names = list(corruptions) if corruptions else corruption_names()
    for name in names:
        CORRUPTIONS.get(name)  # an unknown name lists the close ones
    severities = tuple(sorted(set(int(s) for s in severities)))
    if not severities or min(severities) < 1 or max(severities) > 5:
        raise ConfigError(f"severities: each must be between 1 and 5, got {list(severities)}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size: must be >= 1, got {batch_size}")
    if resolution is not None:
        check_resolution(resolution)
    if baseline is not None:  # before any evaluation: mCE compares errors on one test set
        ours, theirs = _test_set_of(checkpoint), _test_set_of(baseline)
        if ours != theirs:
            raise ConfigError(
                f"--baseline {baseline}: trained on {theirs[1]}, the checkpoint on {ours[1]}; "
                "CE and mCE compare errors on the same test set"
            )
    start = time.perf_counter()
    setup = _setup(checkpoint, data_dir, device, weights, limit)
    if grid is not None and not 0 <= grid_index < len(setup.dataset):
        raise ConfigError(
            f"--grid-index: must be between 0 and {len(setup.dataset) - 1}, got {grid_index}"
        )
    base_result = None
    if baseline is not None:
        base_result = evaluate_robustness(
            baseline,
            corruptions=names,
            severities=severities,
            seed=seed,
            batch_size=batch_size,
            data_dir=data_dir,
            device=device,
            limit=limit,
            table_version=version,
        )
    clean = _top1(setup, _batches(setup, batch_size, None, 0, seed))
    top1 = {
        name: tuple(
            _top1(setup, _batches(setup, batch_size, name, s, seed, table_version=version))
            for s in severities
        )
        for name in names
    }
    resolution_result = (
        measure_resolution(setup, resolution, batch_size) if resolution is not None else None
    )
    grid_path = None
    if grid is not None:
        from cnnkit.train.robustness_plot import plot_corruption_grid

        Path(grid).parent.mkdir(parents=True, exist_ok=True)
        plot_corruption_grid(setup.dataset, grid_index, names, seed, grid, version)
        grid_path = str(grid)
    return RobustnessResult(
        checkpoint=str(setup.path),
        dataset=str(flatten_settings(setup.saved["config"])["dataset"]),
        images=len(setup.dataset),
        tta=setup.tta,
        seed=seed,
        severities=severities,
        clean_top1=clean,
        top1=top1,
        table_version=version,
        seconds=time.perf_counter() - start,
        baseline=base_result,
        resolution=resolution_result,
        grid_path=grid_path,
        parameters={name: list(CORRUPTIONS.get(name).levels_for(version)) for name in names},
    )
