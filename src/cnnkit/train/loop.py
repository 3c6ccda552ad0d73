"""``fit``: the training loop, read top to bottom (airbench's and nanoGPT's style).

One loop, no callbacks: each step sets the learning rate from the schedule (a function of
progress, see schedules.py), runs forward under autocast, backward, optional clipping, the
optimiser step and the EMA update. Each epoch ends with validation, a metrics row, ``last.pt``
and (when validation improved) ``best.pt``. The test set is evaluated once, at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from cnnkit import runtime
from cnnkit.errors import CheckpointError, ConfigError, TrainingError
from cnnkit.train.checkpoint import (
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cnnkit.train.config import TrainConfig, resume_config
from cnnkit.train.datasets import make_loader, prepare_data
from cnnkit.train.ema import WeightAverage
from cnnkit.train.evaluation import run_evaluation
from cnnkit.train.log import RunLog
from cnnkit.train.optim import make_optimizer, set_learning_rate
from cnnkit.train.report import finish_run, record_environment, run_header
from cnnkit.train.schedules import learning_rate
from cnnkit.train.setup import (
    Run,
    build_model,
    checkpoint_state,
    clean_stale_temporaries,
    freeze_for_epoch,
    lock_run_folder,
    make_out_dir,
)

if TYPE_CHECKING:
    from cnnkit.data import ImageDataset
    from cnnkit.train.metrics import Metrics

# called as before_training(config, image_shape, num_classes) when a new run is ready to train
BeforeTraining = Callable[[TrainConfig, tuple[int, ...], int], object]


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
    model: str | None = None,
    before_training: BeforeTraining | None = None,
) -> RunResult:
    """Train ``config`` (E1) and write the run folder; return the test metrics.

    ``out_dir`` receives ``config.json`` (the resolved config), ``metrics.csv`` (one row per
    epoch), ``last.pt`` (every epoch) and ``best.pt`` (best validation top-1), ``final.json``
    (``test_top1``/``test_top5`` in percent, ``test_loss``, ``epochs``, ``wall_seconds``,
    ``images_per_second``, ...) and PNG plots. ``resume`` is a run folder (or a ``last.pt``):
    the run continues from its last completed epoch with model, optimiser, schedule, EMA and
    RNG states restored; with ``deterministic=True`` it ends exactly as an uninterrupted run.
    ``train_set``/``test_set`` replace the configured dataset (e.g. a subset, or your own data).
    ``model`` replaces ``config.model``; a run whose model is ``package.module:callable``
    resumes only when it is named here again (a checkpoint never selects code to run).
    A run folder is locked while it trains: a second ``fit`` into it is refused.
    ``before_training(config, image_shape, num_classes)`` is called once a new run is set up
    (settings checked, data and model ready), before its first step; ``cnnkit train`` runs the
    doctor's static and config rules there, so their findings never precede a refusal.
    """
    _check_arguments(config, train_set, test_set, resume, model)
    saved = None
    if resume is not None:
        saved = load_checkpoint(resume, resumable=True)
        if config is None:
            config = resume_config(saved, str(resume), {"model": model} if model else None)
        else:
            config = dataclasses.replace(config, model=model) if model else config
            if config.model != saved["model_name"]:
                raise ConfigError(
                    f"model {config.model!r}: the run in {resume} trained "
                    f"{saved['model_name']!r}; a resumed run keeps its model"
                )
        _refuse_complete_run(saved, config, resume)
    config = config if config is not None else TrainConfig()
    if model is not None and saved is None:
        config = dataclasses.replace(config, model=model)
    previous = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    try:
        with contextlib.ExitStack() as cleanup:
            return _fit(config, train_set, test_set, resume, saved, cleanup, before_training)
    finally:
        runtime.set_deterministic(previous[0])
        torch.set_num_threads(previous[1])


def _check_arguments(config: Any, train_set: Any, test_set: Any, resume: Any, model: Any) -> None:
    """Wrong argument types to ``fit`` are one :class:`ConfigError` naming the parameter."""
    from cnnkit.data import ImageDataset

    expected = (
        ("config", config, TrainConfig, "a TrainConfig"),
        ("train_set", train_set, ImageDataset, "an ImageDataset"),
        ("test_set", test_set, ImageDataset, "an ImageDataset"),
        ("resume", resume, str | Path, "a run folder or checkpoint path"),
        ("model", model, str, "a model name or package.module:callable"),
    )
    for name, value, kind, text in expected:
        if value is not None and not isinstance(value, kind):
            raise ConfigError(f"fit: {name} must be {text}, got {type(value).__name__}")


def _refuse_complete_run(saved: dict[str, Any], config: TrainConfig, resume: Any) -> None:
    """A resumed run with nothing left to train is refused before anything is written."""
    progress = saved["progress"]
    done = None
    if progress["epoch"] >= config.epochs:
        done = f"{progress['epoch']} of {config.epochs} epochs done; a larger --epochs"
    elif config.time_budget is not None and progress["elapsed"] >= config.time_budget:
        done = f"its {config.time_budget:g} s time budget is used; a larger --time-budget"
    elif (
        progress.get("stopped") == "early_stopping"
        and config.patience is not None
        and progress.get("stale_epochs", 0) >= config.patience
    ):
        done = f"stopped early after {config.patience} epochs without improvement; --patience"
    if done is not None:
        reason, how = done.split("; ")
        raise ConfigError(
            f"--resume {resume}: the run is complete ({reason}); nothing was changed "
            f"(to train on, resume with {how})"
        )


def _fit(
    config: TrainConfig,
    train_set: ImageDataset | None,
    test_set: ImageDataset | None,
    resume: str | Path | None,
    saved: dict[str, Any] | None,
    cleanup: contextlib.ExitStack,
    before_training: BeforeTraining | None = None,
) -> RunResult:
    started = time.perf_counter()
    device = runtime.resolve_device(config.device)
    cores = os.cpu_count() or 1
    if config.threads is not None and config.threads > cores:  # torch crashes on absurd counts
        raise ConfigError(f"--threads: {config.threads} is more than the {cores} CPU cores here")
    if device.type == "cpu":
        torch.set_num_threads(runtime.choose_threads(config.threads))
    runtime.set_deterministic(config.deterministic)
    runtime.seed_everything(config.seed)
    out_dir = make_out_dir(config, resume, create=False)  # checked now, created once ready
    data = prepare_data(config, train_set, test_set)
    config = dataclasses.replace(config, mean=list(data.mean), std=list(data.std))
    model, model_kwargs = build_model(config, data, device, initialise=saved is None)
    make_out_dir(dataclasses.replace(config, out_dir=str(out_dir)), resume)
    cleanup.enter_context(lock_run_folder(out_dir))
    clean_stale_temporaries(out_dir)
    optimizer = make_optimizer(model, config)
    average = WeightAverage(model, config.ema) if config.ema is not None else None
    state = RunState()
    if saved is not None:
        load_model_state(model, saved["model"], Path(str(resume)))
        state = RunState(**saved["progress"], history=list(saved["history"]))
        state.stopped = "completed"
    dtype = runtime.resolve_precision(config.precision, device)
    # fp16 needs loss scaling against gradient underflow; for bf16 and fp32 this is a no-op.
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    if saved is not None:
        _restore_training_state(saved, resume, optimizer, average, scaler)
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
    log.print(record_environment(out_dir, config, data, device, dtype).line())
    if saved is not None:
        if config.time_budget is None:
            where = f"{state.epoch} of {config.epochs}"
        else:
            where = f"{state.epoch} ({state.elapsed:.0f} of {config.time_budget:g} s used)"
        log.print(f"resuming from epoch {where}: {out_dir}")
    warning = warmup_warning(config, steps_per_epoch)
    if warning:
        print(f"cnnkit: warning: {warning}", file=sys.stderr)
    if before_training is not None and saved is None:
        before_training(config, tuple(data.image_shape), len(data.classes))
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
            index = -1
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
            # under a budget the last epoch may stop part-way: record how much of it ran
            fraction = (index + 1) / batches if batches else 1.0
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
                    "epoch_fraction": round(fraction, 4),
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


def _restore_training_state(
    saved: dict[str, Any],
    resume: Any,
    optimizer: torch.optim.Optimizer,
    average: WeightAverage | None,
    scaler: torch.amp.GradScaler,
) -> None:
    """Optimiser, EMA, loss scaler and RNG states of a resumed run; a misfit is one line."""
    try:
        optimizer.load_state_dict(saved["optimizer"])
        if average is not None and saved.get("ema") is not None:
            average.load_state_dict(saved["ema"])
        if saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        set_rng_state(saved["rng"])
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{resume}: its training state does not fit this configuration ({text}); "
            "resume with the run's own settings"
        ) from None


def warmup_warning(config: TrainConfig, steps_per_epoch: int) -> str | None:
    """Why the run's learning rate never leaves its warm-up, if it does not.

    Step ``k`` of a schedule of ``T`` steps runs at progress ``k / T``; with a warm-up fraction
    ``w`` it is warming up while ``k / T < w`` (the first step always has rate 0). A run of
    ``n`` steps whose last step ``n - 1`` is still below ``w T`` never reaches ``--lr``. Under a
    time budget progress follows the clock, so nothing is known in advance.
    """
    if config.warmup <= 0 or config.time_budget is not None or config.schedule == "onecycle":
        return None
    total = (config.schedule_epochs or config.epochs) * steps_per_epoch
    steps = config.epochs * steps_per_epoch
    if (steps - 1) / total >= config.warmup:
        return None
    return (
        f"--warmup {config.warmup:g}: the run's {steps} optimiser step(s) all fall in the "
        f"warm-up of {config.warmup * total:g} steps, so the learning rate never reaches "
        f"--lr {config.lr:g} (the first step's is 0)"
    )


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
