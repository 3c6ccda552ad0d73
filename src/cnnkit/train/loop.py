"""``fit``: the training loop, read top to bottom (airbench's and nanoGPT's style).

One loop, no callbacks: each step sets the learning rate from the schedule (a function of
progress, see schedules.py), runs forward under autocast, backward, optional clipping, the
optimiser step and the EMA update. Each epoch ends with validation, a metrics row, ``last.pt``
and (when validation improved) ``best.pt``. The test set is evaluated once, at the end.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from cnnkit import runtime
from cnnkit.errors import TrainingError
from cnnkit.train.checkpoint import (
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cnnkit.train.config import TrainConfig
from cnnkit.train.datasets import make_loader, prepare_data
from cnnkit.train.ema import WeightAverage
from cnnkit.train.evaluation import run_evaluation
from cnnkit.train.log import RunLog
from cnnkit.train.optim import make_optimizer, set_learning_rate
from cnnkit.train.report import finish_run, run_header
from cnnkit.train.schedules import learning_rate
from cnnkit.train.setup import Run, build_model, checkpoint_state, freeze_for_epoch, make_out_dir

if TYPE_CHECKING:
    from cnnkit.data import ImageDataset
    from cnnkit.train.metrics import Metrics


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

    @property
    def test_top1(self) -> float:
        return self.test.top1


def fit(
    config: TrainConfig | None = None,
    *,
    train_set: ImageDataset | None = None,
    test_set: ImageDataset | None = None,
    resume: str | Path | None = None,
) -> RunResult:
    """Train ``config`` (E1) and write the run folder; return the test metrics.

    ``out_dir`` receives ``config.json`` (the resolved config), ``metrics.csv`` (one row per
    epoch), ``last.pt`` (every epoch) and ``best.pt`` (best validation top-1), ``final.json``
    (``test_top1``/``test_top5`` in percent, ``test_loss``, ``epochs``, ``wall_seconds``,
    ``images_per_second``, ...) and PNG plots. ``resume`` is a run folder (or a ``last.pt``):
    the run continues from its last completed epoch with model, optimiser, schedule, EMA and
    RNG states restored; with ``deterministic=True`` it ends exactly as an uninterrupted run.
    ``train_set``/``test_set`` replace the configured dataset (e.g. a subset, or your own data).
    """
    saved = None
    if resume is not None:
        saved = load_checkpoint(resume)
        if config is None:
            config = TrainConfig.from_dict(saved["config"], source=f"{resume}")
    config = config if config is not None else TrainConfig()
    previous = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    try:
        return _fit(config, train_set, test_set, resume, saved)
    finally:
        runtime.set_deterministic(previous[0])
        torch.set_num_threads(previous[1])


def _fit(
    config: TrainConfig,
    train_set: ImageDataset | None,
    test_set: ImageDataset | None,
    resume: str | Path | None,
    saved: dict[str, Any] | None,
) -> RunResult:
    started = time.perf_counter()
    device = runtime.resolve_device(config.device)
    if device.type == "cpu":
        torch.set_num_threads(runtime.choose_threads(config.threads))
    runtime.set_deterministic(config.deterministic)
    runtime.seed_everything(config.seed)
    out_dir = make_out_dir(config, resume)
    data = prepare_data(config, train_set, test_set)
    config = dataclasses.replace(config, mean=list(data.mean), std=list(data.std))
    model, model_kwargs = build_model(config, data, device, initialise=saved is None)
    optimizer = make_optimizer(model, config)
    average = WeightAverage(model, config.ema) if config.ema is not None else None
    state = RunState()
    if saved is not None:
        load_model_state(model, saved["model"], Path(str(resume)))
        optimizer.load_state_dict(saved["optimizer"])
        if average is not None and saved.get("ema") is not None:
            average.load_state_dict(saved["ema"])
        state = RunState(**saved["progress"], history=list(saved["history"]))
        state.stopped = "completed"
        set_rng_state(saved["rng"])
    dtype = runtime.resolve_precision(config.precision, device)
    # fp16 needs loss scaling against gradient underflow; for bf16 and fp32 this is a no-op.
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    if saved is not None and saved.get("scaler"):
        scaler.load_state_dict(saved["scaler"])
    trained = torch.compile(model) if config.compile else model
    evaluated = average.module if average is not None else model
    class_weights = (
        torch.tensor(config.class_weights, device=device) if config.class_weights else None
    )
    from cnnkit._io import atomic_write_text

    atomic_write_text(out_dir / "config.json", _json(config.to_dict()))
    train_loader = make_loader(data.train, data, config, device, train=True)
    val_loader = make_loader(data.val, data, config, device, train=False) if data.val else None
    batches = len(train_loader)
    steps_per_epoch = math.ceil(batches / config.accumulation_steps)
    total_steps = (config.schedule_epochs or config.epochs) * steps_per_epoch
    log = RunLog(
        out_dir,
        config.epochs,
        progress=config.progress,
        tensorboard=config.tensorboard,
        budget=config.time_budget,
    )
    log.print(run_header(config, data, model, device, dtype))
    flow = None
    if config.grad_flow:
        from cnnkit.explain.gradient_flow import GradientFlowRecorder

        flow = GradientFlowRecorder(out_dir, config.grad_flow, tensorboard=config.tensorboard)
    session_start, elapsed_before = time.perf_counter(), state.elapsed
    budget = config.time_budget

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - session_start

    try:
        for epoch in range(state.epoch, config.epochs):
            # Batches, augmentation (the loader's generators) and dropout (the global RNG) are
            # seeded per epoch: a run resumed here draws exactly what an uninterrupted one drew.
            torch.manual_seed(runtime.epoch_seed(config.seed, epoch))
            train_loader.set_epoch(epoch)
            freeze_for_epoch(model, config, epoch)
            model.train()
            log.start_epoch(epoch + 1, batches)
            epoch_start, loss_sum, correct, seen = time.perf_counter(), 0.0, 0, 0
            epoch_progress = epoch / (config.schedule_epochs or config.epochs)
            if budget is not None:
                epoch_progress = max(epoch_progress, elapsed() / budget)
            for index, (images, targets) in enumerate(train_loader):
                if config.lr_per_epoch:  # a torch scheduler stepped once per epoch (003)
                    progress = epoch_progress
                else:
                    progress = state.step / total_steps
                    if budget is not None:
                        progress = max(progress, elapsed() / budget)
                rate = learning_rate(
                    progress,
                    peak=config.lr,
                    schedule=config.schedule,
                    warmup=config.warmup,
                    final=config.min_lr,
                )
                set_learning_rate(optimizer, rate)
                with runtime.autocast(device, dtype):
                    logits = trained(images)
                loss = F.cross_entropy(
                    logits.float(),
                    targets,
                    weight=class_weights,
                    label_smoothing=config.label_smoothing,
                )
                value = loss.item()
                if not math.isfinite(value):
                    raise TrainingError(_nan_message(value, state, epoch, index, out_dir))
                scaler.scale(loss / config.accumulation_steps).backward()
                if (index + 1) % config.accumulation_steps == 0 or index + 1 == batches:
                    if flow is not None:  # after backward, before clipping and the step
                        flow.after_backward(model, state.step, epoch + 1, scaler.get_scale())
                    if config.grad_clip is not None:
                        scaler.unscale_(optimizer)  # clip the true gradient, not the scaled one
                        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    state.step += 1
                    if average is not None:
                        average.update(model)
                count = len(images)
                seen += count
                loss_sum += value * count
                labels = targets if targets.dim() == 1 else targets.argmax(1)
                correct += int((logits.argmax(1) == labels).sum())
                log.advance(seen / (time.perf_counter() - epoch_start), value)
                if budget is not None and elapsed() >= budget:
                    state.stopped = "time_budget"
                    break
            train_seconds = time.perf_counter() - epoch_start
            val = None
            if val_loader is not None:
                val = run_evaluation(
                    evaluated, val_loader, num_classes=len(data.classes), dtype=dtype
                )
            state.epoch = epoch + 1
            state.train_seconds += train_seconds
            state.images += seen
            state.elapsed = elapsed()
            state.history.append(
                {
                    "epoch": epoch + 1,
                    "steps": state.step,
                    "lr": rate,
                    "train_loss": loss_sum / max(seen, 1),
                    "train_top1": 100.0 * correct / max(seen, 1),
                    "val_loss": val.loss if val else None,
                    "val_top1": val.top1 if val else None,
                    "val_top5": val.top5 if val else None,
                    "images_per_second": seen / max(train_seconds, 1e-9),
                    "epoch_seconds": time.perf_counter() - epoch_start,
                    "elapsed_seconds": state.elapsed,
                }
            )
            improved = val is not None and (state.best_top1 is None or val.top1 > state.best_top1)
            if improved:
                state.best_top1, state.best_epoch, state.stale_epochs = val.top1, epoch + 1, 0
            elif val is not None:
                state.stale_epochs += 1
            if config.patience is not None and state.stale_epochs >= config.patience:
                state.stopped = "early_stopping"
            common = checkpoint_state(config, model_kwargs, data, state.epoch)
            if improved:
                save_checkpoint(out_dir / "best.pt", {**common, "model": evaluated.state_dict()})
            resume_state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "ema": average.state_dict() if average is not None else None,
                "scheduler": {"step": state.step, "total_steps": total_steps},
                "scaler": scaler.state_dict(),
                "progress": {k: v for k, v in dataclasses.asdict(state).items() if k != "history"},
                "history": state.history,
                "rng": rng_state(),
            }
            save_checkpoint(out_dir / "last.pt", {**common, **resume_state})
            log.end_epoch(state.history)
            if state.stopped != "completed":
                break
    finally:
        log.close()
        if flow is not None:
            flow.close()
    run = Run(config, data, model, model_kwargs, evaluated, out_dir, device, dtype, started, log)
    return finish_run(run, state)


def _nan_message(value: float, state: RunState, epoch: int, index: int, out_dir: Path) -> str:
    where = f"step {state.step + 1} (epoch {epoch + 1}, batch {index + 1})"
    if state.epoch:
        kept = f"last good checkpoint: {out_dir / 'last.pt'} (epoch {state.epoch})"
    else:
        kept = "no checkpoint was written (the first epoch did not finish)"
    return f"loss is {value} at {where}; training stopped, {kept}"


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, indent=2, sort_keys=False) + "\n"
