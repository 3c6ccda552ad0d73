"""The types of a run, in one module: its fixed parts, its progress, and its result.

``Run`` is set up once by ``fit``; ``RunState`` is what a checkpoint restores; ``RunResult``
is what ``fit`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cnnkit.train.distributed import Distributed

if TYPE_CHECKING:
    from torch import nn

    from cnnkit.train.config import TrainConfig
    from cnnkit.train.datasets import RunData
    from cnnkit.train.log import RunLog
    from cnnkit.train.metrics import Metrics
    from cnnkit.train.transfer import TransferPlan


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
    distributed: Distributed = field(default_factory=Distributed)  # E7: rank, world size
    transfer: TransferPlan | None = None  # E4: the parameter-group table of a fine-tuning run


@dataclass
class RunState:
    """Everything about a run's progress that a checkpoint must restore."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps taken
    elapsed: float = 0.0  # seconds of training so far (all sessions)
    train_seconds: float = 0.0  # seconds inside training steps (throughput)
    images: int = 0  # training images seen
    best_top1: float | None = None
    best_epoch: int | None = None
    stale_epochs: int = 0
    stopped: str = "completed"
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunResult:
    """What :func:`fit` produced: the run folder, the final metrics and the per-epoch history."""

    out_dir: Path
    config: TrainConfig
    final: dict[str, Any]
    history: list[dict[str, Any]]
    test: Metrics
    model: torch.nn.Module | None = None  # the trained module, with the weights tested

    @property
    def test_top1(self) -> float:
        return self.test.top1
