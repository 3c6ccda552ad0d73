"""Setting a run up: its folder, its model (with data-dependent init), checkpoint basics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cnnkit.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from cnnkit.train.config import TrainConfig
    from cnnkit.train.datasets import RunData
    from cnnkit.train.log import RunLog

RUN_FILES = ("config.json", "last.pt", "best.pt", "final.json", "metrics.csv")
WHITENING_IMAGES = 2000  # 1.35 M patches of 28x28 images: plenty for a 9x9 covariance


@dataclass
class Run:
    """The fixed parts of a run, set up once by ``fit`` (what changes lives in ``RunState``)."""

    config: TrainConfig
    data: RunData
    model: nn.Module  # the trained module (not compiled)
    model_kwargs: dict[str, Any]
    evaluated: nn.Module  # what validation and test see: the EMA copy, or ``model``
    out_dir: Path
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None for fp32
    started: float  # time.perf_counter() when fit began
    log: RunLog


def make_out_dir(config: TrainConfig, resume: str | Path | None) -> Path:
    """The run folder: ``resume``'s folder, ``--out``, or ``runs/<model>-<YYYYmmdd-HHMMSS>``.

    A folder that already holds a run is never overwritten: it must be resumed instead.
    """
    if resume is not None:
        path = Path(resume)
        return path.parent if path.is_file() else path
    if config.out_dir is not None:
        path = Path(config.out_dir)
        existing = [name for name in RUN_FILES if (path / name).exists()]
        if existing:
            raise ConfigError(
                f"--out {path}: already holds a run ({existing[0]}); continue it with "
                f"--resume {path} or choose another folder"
            )
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path("runs") / f"{config.model.replace(':', '-').replace('.', '-')}-{stamp}"
        path, suffix = base, 1
        while path.exists():
            suffix += 1
            path = base.with_name(f"{base.name}-{suffix}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_model(
    config: TrainConfig, data: RunData, device: torch.device, *, initialise: bool
) -> tuple[nn.Module, dict[str, Any]]:
    """The configured model for the data's channels and classes, on ``device``.

    An :class:`~cnnkit.models.airnet.AirNet` gets its whitening layer from the training images
    (``initialise``; a resumed run loads it from the checkpoint instead).
    """
    from cnnkit.models import resolve_model
    from cnnkit.models.airnet import AirNet, init_whitening
    from cnnkit.nn.matmul_grad import use_matmul_weight_grad

    channels = data.image_shape[0]
    kwargs = {"num_classes": len(data.classes), "in_channels": channels, **config.model_kwargs}
    if isinstance(kwargs.get("widths"), list):
        kwargs["widths"] = tuple(kwargs["widths"])
    model = resolve_model(config.model, **kwargs)
    if initialise and isinstance(model, AirNet):
        mean = torch.tensor(data.mean).view(1, -1, 1, 1)
        std = torch.tensor(data.std).view(1, -1, 1, 1)
        sample = data.train.images[:WHITENING_IMAGES].float().div(255).sub(mean).div(std)
        init_whitening(model, sample)
    if config.whiten_bias_epochs is not None and not isinstance(model, AirNet):
        raise ConfigError(
            f"--whiten-bias-epochs: only airnet has a whitening layer, not --model {config.model}"
        )
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if config.matmul_weight_grad and device.type == "cpu":
        use_matmul_weight_grad(model)
    return model, kwargs


def freeze_for_epoch(model: nn.Module, config: TrainConfig, epoch: int) -> None:
    """Freeze airnet's whitening bias from epoch ``whiten_bias_epochs`` on (0-based ``epoch``).

    airbench trains that bias for its first 3 of 10 epochs. Once it is frozen nothing before
    ``layer1`` needs a gradient, so backward skips the input gradient of ``layer1.conv1``
    (airnet's steps ran about 15% faster here, docs/benchmarks.md). A function of the epoch, so
    a resumed run freezes exactly where the uninterrupted one did.
    """
    from cnnkit.models.airnet import AirNet

    limit = config.whiten_bias_epochs
    if limit is not None and epoch >= limit and isinstance(model, AirNet):
        model.whiten.bias.requires_grad_(False)


def checkpoint_state(
    config: TrainConfig, model_kwargs: dict[str, Any], data: RunData, epoch: int
) -> dict[str, Any]:
    """The entries every checkpoint of a run shares (what is needed to rebuild and evaluate)."""
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in model_kwargs.items()}
    return {
        "model_name": config.model,
        "model_kwargs": kwargs,
        "config": config.to_dict(),
        "epoch": epoch,
        "classes": list(data.classes),
        "mean": list(data.mean),
        "std": list(data.std),
        "image_shape": list(data.image_shape),
        "dataset": data.train.name,
    }
