"""``fit``: the training loop, read top to bottom (airbench's and nanoGPT's style).

One loop, no callbacks: each step sets the learning rate from the schedule (a function of
progress, see schedules.py), runs forward under autocast, backward, optional clipping, the
optimiser step and the EMA update. Each epoch ends with validation, a metrics row, ``last.pt``
and (when validation improved) ``best.pt``. The test set is evaluated once, at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import torch

from cnnkit import runtime
from cnnkit._io import atomic_write_text
from cnnkit.errors import CheckpointError, ConfigError, TrainingError
from cnnkit.models.weights import load_state_strict
from cnnkit.train.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cnnkit.train.config import (
    USER_MODEL_PREFIX,
    ScheduleConfig,
    TrainConfig,
    refuse_recorded_model,
    resume_config,
    user_model_name,
)
from cnnkit.train.datasets import (
    check_settings_fit_data,
    evaluation_loader,
    prepare_data,
    training_loader,
    user_data,
)
from cnnkit.train.distill import (
    TEACHER_KEY,
    Teacher,
    check_resumed_teacher,
    distillation_objective,
    load_teacher,
)
from cnnkit.train.distill_settings import distill_settings, teacher_changes
from cnnkit.train.distributed import (
    Distributed,
    distributed_settings,
    join_process_group,
    reporting_lost_peers,
)
from cnnkit.train.ema import WeightAverage
from cnnkit.train.evaluation import run_evaluation
from cnnkit.train.log import RunLog
from cnnkit.train.objective import Objective, class_weight_tensor, objective_for
from cnnkit.train.optim import make_optimizer, set_learning_rate
from cnnkit.train.run_ends import finish_run, record_environment, run_header
from cnnkit.train.run_types import Run, RunResult, RunState
from cnnkit.train.schedules import learning_rate
from cnnkit.train.setup import (
    build_model,
    checkpoint_state,
    clean_stale_temporaries,
    freeze_for_epoch,
    freeze_schedule,
    keep_pretrained_normalisation,
    lock_run_folder,
    make_out_dir,
    set_up_runtime,
    set_up_transfer,
)
from cnnkit.train.transfer import (
    TRANSFER_NOTES_KEY,
    format_plan,
    frozen_buffer_names,
    resumed_plan,
)

if TYPE_CHECKING:
    from cnnkit.data import ImageDataset

# called as before_training(config, image_shape, num_classes) when a new run is ready to train
BeforeTraining = Callable[[TrainConfig, tuple[int, ...], int], object]


# The after-backward seam: (model with unscaled gradients, index of the step about to be
# taken, 1-based epoch).
AfterBackward: TypeAlias = Callable[[torch.nn.Module, int, int], None]


def fit(
    config: TrainConfig | None = None,
    *,
    model: str | torch.nn.Module | None = None,
    data: Any = None,
    train_set: ImageDataset | None = None,
    test_set: ImageDataset | None = None,
    resume: str | Path | None = None,
    before_training: BeforeTraining | None = None,
    teacher: str | Path | torch.nn.Module | None = None,
) -> RunResult:
    """Train ``config`` (E1) and write the run folder; return the test metrics.

    ``out_dir`` receives ``config.json`` (the resolved config), ``metrics.csv`` (one row per
    epoch), ``last.pt`` (every epoch) and ``best.pt`` (best validation top-1), ``final.json``
    (``test_top1``/``test_top5`` in percent, ``test_loss``, ``epochs``, ``wall_seconds``,
    ``images_per_second``, ...) and PNG plots. ``resume`` is a run folder (or a ``last.pt``):
    the run continues from its last completed epoch with model, optimiser, schedule, EMA and
    RNG states restored; with ``deterministic=True`` it ends exactly as an uninterrupted run.

    ``model`` replaces ``config.model.model``: a zoo name, ``package.module:callable``, or your own
    ``nn.Module`` (a copy of it trains, returned as ``RunResult.model``; the run records
    ``user:<module>.<class>`` and resumes only when the module is given again). ``data`` is your
    own ``(train, test)`` pair, each an ``ImageDataset`` or an ``(images, labels)`` pair of
    tensors (uint8 ``(N, C, H, W)``, int64 ``(N,)``); ``train_set``/``test_set`` do the same
    one at a time. A checkpoint never selects code: a run whose model is
    ``package.module:callable`` resumes only when it is named here again.
    A run folder is locked while it trains: a second ``fit`` into it is refused.
    ``before_training(config, image_shape, num_classes)`` is called once a new run is set up
    (settings checked, data and model ready), before its first step; ``cnnkit train`` runs the
    doctor's static and config rules there, so their findings never precede a refusal.
    ``teacher`` (E6, knowledge distillation; docs/distillation.md) replaces
    ``config.distillation.teacher``: a cnnkit checkpoint, or your own trained ``nn.Module``
    (left as found; with a teacher checkpoint set, its code gets that checkpoint's weights).
    A resumed run needs the same teacher (its sha256 is checked).
    """
    if teacher is not None and not isinstance(teacher, str | Path | torch.nn.Module):
        raise ConfigError(
            f"fit: teacher must be a checkpoint path or an nn.Module, got {type(teacher).__name__}"
        )
    teaching = teacher_changes(teacher)
    teacher_module = teacher if isinstance(teacher, torch.nn.Module) else None
    module = model if isinstance(model, torch.nn.Module) else None
    name = user_model_name(module) if module is not None else model
    if data is not None:
        if train_set is not None or test_set is not None:
            raise ConfigError("fit: give data=(train, test) or train_set=/test_set=, not both")
        train_set, test_set = user_data(data)
    _check_arguments(config, train_set, test_set, resume, name)
    saved = None
    if resume is not None:
        saved = load_checkpoint(resume, resumable=True)
        recorded = saved["model_name"]
        if module is None and str(recorded).startswith(USER_MODEL_PREFIX):
            refuse_recorded_model(recorded, str(resume), ConfigError)
        if config is None:
            changes = {"model": name} if name else {}
            config = resume_config(saved, str(resume), {**changes, **teaching})
        else:
            config = config.replace(model=name) if name else config
            config = config.replace(**teaching)
            if config.model.model != recorded:
                raise ConfigError(
                    f"model {config.model.model!r}: the run in {resume} trained "
                    f"{recorded!r}; a resumed run keeps its model"
                )
        _refuse_complete_run(saved, config.schedule, resume)
    config = config if config is not None else TrainConfig()
    if name is not None and saved is None:
        config = config.replace(model=name)
    if saved is None:
        config = config.replace(**teaching)
    previous = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    try:
        with contextlib.ExitStack() as cleanup, reporting_lost_peers():
            return _fit(
                config, train_set, test_set, resume, saved, cleanup, module, before_training,
                teacher_module,
            )  # fmt: skip
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


def _refuse_complete_run(saved: dict[str, Any], schedule: ScheduleConfig, resume: Any) -> None:
    """A resumed run with nothing left to train is refused before anything is written."""
    progress = saved["progress"]
    done = None
    if progress["epoch"] >= schedule.epochs:
        done = f"{progress['epoch']} of {schedule.epochs} epochs done; a larger --epochs"
    elif schedule.time_budget is not None and progress["elapsed"] >= schedule.time_budget:
        done = f"its {schedule.time_budget:g} s time budget is used; a larger --time-budget"
    elif (
        progress.get("stopped") == "early_stopping"
        and schedule.patience is not None
        and progress.get("stale_epochs", 0) >= schedule.patience
    ):
        done = f"stopped early after {schedule.patience} epochs without improvement; --patience"
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
    module: torch.nn.Module | None,
    before_training: BeforeTraining | None = None,
    teacher_module: torch.nn.Module | None = None,
) -> RunResult:
    run, training, state = _set_up(
        config, train_set, test_set, resume, saved, cleanup, module, before_training,
        teacher_module=teacher_module,
    )  # fmt: skip
    with reporting_lost_peers(lambda: state.step):
        try:
            for epoch in range(state.epoch, run.config.schedule.epochs):
                outcome = _train_epoch(run, training, state, epoch)
                if _end_epoch(run, training, state, outcome):
                    break
        finally:
            run.log.close()
        result = finish_run(run, state)
        training.distributed.barrier()  # the ranks leave together, rank 0's files written
        return result


@dataclass
class Training:
    """What the epochs use, built once by :func:`_set_up`: the step's parts and its seams.

    The three seams: ``objective`` (``(model, images, targets) -> (loss, logits)``),
    ``after_backward`` (called at each accumulation boundary with the model, whose gradients
    are unscaled, the step about to be taken and the 1-based epoch; ``--grad-flow`` plugs in
    here) and ``distributed`` (rank and world size,
    which the loader, the log, the checkpoints and the stop decision consult).
    """

    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    average: WeightAverage | None
    stepped: torch.nn.Module  # what the step runs: the model, or its torch.compile wrapper
    train_loader: Any
    val_loader: Any
    total_steps: int  # the schedule's length in optimiser steps
    objective: Objective
    after_backward: list[AfterBackward]
    distributed: Distributed
    freeze: dict[str, int]  # parameter pattern -> epoch it is frozen from (the model's rules)
    keep_eval: list[torch.nn.Module]  # BatchNorms of frozen stages (fine-tuning): eval mode
    session_start: float  # perf_counter() when this session's training began
    elapsed_before: float  # seconds trained by earlier sessions (a resumed run)
    teacher: Teacher | None = None  # E6: the frozen teacher the objective consults

    def elapsed(self) -> float:
        """Seconds of training so far, over all sessions (what a time budget counts); in a
        distributed run the slowest rank's, so that every rank follows one clock."""
        seconds = self.elapsed_before + time.perf_counter() - self.session_start
        return self.distributed.agree_on_clock(seconds)


@dataclass
class EpochOutcome:
    """What one epoch's training measured, for :func:`_end_epoch`."""

    epoch: int  # 0-based
    seen: int  # training images
    loss_sum: float  # sum over images of the loss
    correct: int  # training images whose top logit is their label
    rate: float  # learning rate of the last step
    fraction: float  # the share of the epoch's batches that ran (< 1 when a budget ran out)
    started: float  # perf_counter() at the epoch's start
    train_seconds: float


def _set_up(
    config: TrainConfig,
    train_set: ImageDataset | None,
    test_set: ImageDataset | None,
    resume: str | Path | None,
    saved: dict[str, Any] | None,
    cleanup: contextlib.ExitStack,
    module: torch.nn.Module | None = None,
    before_training: BeforeTraining | None = None,
    distributed: Distributed | None = None,
    teacher_module: torch.nn.Module | None = None,
) -> tuple[Run, Training, RunState]:
    """Build the run once: runtime, data, model, folder, optimiser, resumed state, loaders, log."""
    started = time.perf_counter()
    if distributed is None:  # under torchrun / --nproc: join the other processes (E7)
        device = runtime.resolve_device(config.runtime.device)
        distributed = join_process_group(distributed_settings(config.runtime), device)
    device = set_up_runtime(config.runtime, distributed)
    name = config.model.model
    # checked now, created once the data and the model are ready; rank 0 names it for every rank
    out_dir = distributed.decide_on_main(
        lambda: make_out_dir(config.output, name, resume, create=False)
    )
    data = prepare_data(config.data, train_set, test_set)
    check_settings_fit_data(config, data)
    if saved is None:
        data = keep_pretrained_normalisation(config.transfer, config.data, data)
    config = config.replace(mean=list(data.mean), std=list(data.std))
    model, model_kwargs = build_model(
        config.model, data, device, config.runtime, initialise=saved is None, module=module
    )
    transfer = set_up_transfer(
        config.transfer,
        config.model.model,
        config.schedule.lr,
        data,
        model,
        saved is None,
        distributed,
    )
    distill = distill_settings(config.distillation)
    teacher = None
    if distill is not None:  # checked before anything is written into the run folder
        teacher = load_teacher(
            distill, data, device, channels_last=config.runtime.channels_last, module=teacher_module
        )
    if saved is not None:
        check_resumed_teacher(saved.get(TEACHER_KEY), teacher, resume)
    if saved is not None and transfer is not None:  # the notes on the weights the run began with
        transfer = (resumed_plan(transfer[0], saved.get(TRANSFER_NOTES_KEY)), transfer[1])
    frozen_norms = [n for n, m in model.named_modules() if transfer and m in transfer[1]]
    model = distributed.prepare(model)
    if transfer is not None:  # --sync-bn replaces BatchNorm modules (same names): the new ones
        transfer = (transfer[0], [model.get_submodule(name) for name in frozen_norms])

    def claim_run_folder() -> None:
        make_out_dir(dataclasses.replace(config.output, out_dir=str(out_dir)), name, resume)
        cleanup.enter_context(lock_run_folder(out_dir))
        clean_stale_temporaries(out_dir)

    distributed.decide_on_main(claim_run_folder)  # only rank 0 writes the run folder
    optimizer = make_optimizer(
        model,
        config.optimisation,
        lr=config.schedule.lr,
        name=name,
        lr_scales=transfer[0].lr_scales if transfer else None,
    )
    ema = config.optimisation.ema
    average = WeightAverage(model, ema) if ema is not None else None
    state = RunState()
    if saved is not None:
        load_state_strict(model, saved["model"], Path(str(resume)), saved["model_name"])
        state = RunState(**saved["progress"], history=list(saved["history"]))
        state.stopped = "completed"
    dtype = runtime.resolve_precision(config.runtime.precision, device)
    # fp16 needs loss scaling against gradient underflow; for bf16 and fp32 this is a no-op.
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    if saved is not None:
        _restore_training_state(saved, resume, optimizer, average, scaler)
    if teacher is not None and distill is not None:
        objective = distillation_objective(
            device,
            dtype,
            teacher,
            distill,
            class_weights=class_weight_tensor(config.optimisation, device),
            label_smoothing=config.optimisation.label_smoothing,
        )
    else:
        objective = objective_for(config.optimisation, device, dtype)
    if distributed.is_main:
        atomic_write_text(out_dir / "config.json", _json(config.to_dict()))
    train_loader = distributed.shard(training_loader(data.train, data, config, device))
    val_loader = (
        evaluation_loader(distributed.eval_shard(data.val), data, config, device)
        if data.val
        else None
    )
    steps_per_epoch = math.ceil(len(train_loader) / config.optimisation.accumulation_steps)
    log = RunLog(
        out_dir,
        config.schedule.epochs,
        progress=config.output.progress,
        tensorboard=config.output.tensorboard,
        budget=config.schedule.time_budget,
        main=distributed.is_main,
    )
    log.print(run_header(config, data, model, device, dtype))
    threads = torch.get_num_threads() if device.type == "cpu" else None
    parallel = distributed.describe(config.optimisation.batch_size, threads)
    if parallel is not None:
        log.print(parallel)
    if transfer is not None:
        log.print(format_plan(transfer[0]))
    if distributed.is_main:
        log.print(record_environment(out_dir, config.data, data, device, dtype).line())
    if teacher is not None and distill is not None:
        log.print(teacher.describe(distill))
    if saved is not None:
        if config.schedule.time_budget is None:
            where = f"{state.epoch} of {config.schedule.epochs}"
        else:
            used = f"{state.elapsed:.0f} of {config.schedule.time_budget:g} s used"
            where = f"{state.epoch} ({used})"
        log.print(f"resuming from epoch {where}: {out_dir}")
    warning = warmup_warning(config.schedule, steps_per_epoch)
    if warning and distributed.is_main:
        print(f"cnnkit: warning: {warning}", file=sys.stderr)
    if before_training is not None and saved is None and distributed.is_main:
        before_training(config, tuple(data.image_shape), len(data.classes))
    after_backward: list[AfterBackward] = []
    if config.output.grad_flow and distributed.is_main:
        # imported only when asked for: the cnnkit.explain package pulls in every CAM method
        from cnnkit.explain.gradient_flow import GradientFlowRecorder

        output = config.output
        flow = GradientFlowRecorder(out_dir, output.grad_flow, tensorboard=output.tensorboard)
        cleanup.callback(flow.close)
        # the seam's gradients are already unscaled: the recorder's scale stays 1
        after_backward.append(flow.after_backward)
    evaluated = average.module if average is not None else model
    run = Run(
        config, data, model, model_kwargs, evaluated, out_dir, device, dtype, started, log,
        distributed, transfer=transfer[0] if transfer else None,
    )  # fmt: skip
    training = Training(
        optimizer=optimizer,
        scaler=scaler,
        average=average,
        stepped=distributed.wrap(model, None, config.runtime.compile),
        train_loader=train_loader,
        val_loader=val_loader,
        total_steps=(config.schedule.schedule_epochs or config.schedule.epochs) * steps_per_epoch,
        objective=objective,
        after_backward=after_backward,
        distributed=distributed,
        freeze=freeze_schedule(model, config.model),
        keep_eval=transfer[1] if transfer else [],
        session_start=time.perf_counter(),
        elapsed_before=state.elapsed,
        teacher=teacher,
    )
    return run, training, state


def _train_epoch(run: Run, training: Training, state: RunState, epoch: int) -> EpochOutcome:
    """One epoch of steps: schedule, objective, backward, and at each boundary the update.

    The loss and accuracy sums stay on the device and are read once, at the epoch's end; each
    step reads only its loss, to stop before a non-finite loss reaches the weights.
    """
    model, optimizer, scaler = run.model, training.optimizer, training.scaler
    steps, clip = run.config.optimisation.accumulation_steps, run.config.optimisation.grad_clip
    # Batches, augmentation (the loader's generators) and dropout (the global RNG) are seeded
    # per epoch: a run resumed here draws exactly what an uninterrupted one drew.
    # (dropout differs per rank, as it differs per image in one process)
    settings, distributed = run.config.runtime, training.distributed
    torch.manual_seed(runtime.epoch_seed(settings.seed, epoch) + distributed.rank)
    training.train_loader.set_epoch(epoch)
    freeze_for_epoch(model, training.freeze, epoch)
    training.stepped = distributed.wrap(model, training.stepped, settings.compile)
    model.train()
    for norm in training.keep_eval:  # requires_grad=False does not stop running statistics
        norm.eval()
    batches = len(training.train_loader)
    run.log.start_epoch(epoch + 1, batches)
    started, seen, index, rate = time.perf_counter(), 0, -1, 0.0
    loss_sum = torch.zeros((), dtype=torch.float64, device=run.device)
    correct = torch.zeros((), dtype=torch.int64, device=run.device)
    for index, (images, targets) in enumerate(training.train_loader):
        rate = _learning_rate(run.config.schedule, training, state, epoch)
        set_learning_rate(optimizer, rate)
        loss, logits = training.objective(training.stepped, images, targets)
        value = loss.item()
        bad = training.distributed.first_nonfinite(value)  # every rank stops, naming the rank
        if bad is not None:
            raise TrainingError(
                _nan_message(bad[1], state, epoch, index, run.out_dir, bad[0], training.distributed)
            )
        # a rank's slice of an unevenly split global batch weighs by its size (DDP averages)
        share = getattr(training.train_loader, "share", 1.0)
        scaler.scale((loss * share if share != 1.0 else loss) / steps).backward()
        if (index + 1) % steps == 0 or index + 1 == batches:
            scaler.unscale_(optimizer)  # the seam and clipping see the true gradient
            for call in training.after_backward:
                call(model, state.step, epoch + 1)
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            if training.average is not None:
                training.average.update(model)
        seen += len(images)
        loss_sum += loss.detach().double() * len(images)
        labels = targets if targets.dim() == 1 else targets.argmax(1)
        correct += (logits.detach().argmax(1) == labels).sum()
        run.log.advance(seen / (time.perf_counter() - started), value)
        budget = run.config.schedule.time_budget
        if budget is not None and training.distributed.agree_to_stop(training.elapsed() >= budget):
            state.stopped = "time_budget"
            break
    # the whole global batch's figures: every rank's summed (one process: its own)
    total = training.distributed.sum(seen, float(loss_sum.item()), int(correct.item()))
    return EpochOutcome(
        epoch=epoch,
        seen=int(total[0]),
        loss_sum=total[1],
        correct=int(total[2]),
        rate=rate,
        # under a budget the last epoch may stop part-way: record how much of it ran
        fraction=(index + 1) / batches if batches else 1.0,
        started=started,
        train_seconds=time.perf_counter() - started,
    )


def _learning_rate(
    schedule: ScheduleConfig, training: Training, state: RunState, epoch: int
) -> float:
    """The schedule's rate at the run's progress: steps taken, or the clock under a budget."""
    budget = schedule.time_budget
    if schedule.lr_per_epoch:  # a torch scheduler stepped once per epoch (003)
        progress = epoch / (schedule.schedule_epochs or schedule.epochs)
    else:
        progress = state.step / training.total_steps
    if budget is not None:
        progress = max(progress, training.elapsed() / budget)
    return learning_rate(
        progress,
        peak=schedule.lr,
        schedule=schedule.schedule,
        warmup=schedule.warmup,
        final=schedule.min_lr,
    )


def _end_epoch(run: Run, training: Training, state: RunState, outcome: EpochOutcome) -> bool:
    """Validate, append the history row, decide on stopping, write checkpoints; True: stop."""
    seen = outcome.seen
    frozen = frozen_buffer_names(run.model, training.keep_eval)  # fine-tuning: left alone
    training.distributed.average_buffers(run.model, run.evaluated, keep=frozen)  # BN, E7
    val = None
    if training.val_loader is not None:
        classes = len(run.data.classes)
        val = run_evaluation(
            run.evaluated,
            training.val_loader,
            num_classes=classes,
            dtype=run.dtype,
            reduce=training.distributed.reduce_metrics,
        )
    state.epoch = outcome.epoch + 1
    state.train_seconds += outcome.train_seconds
    state.images += seen
    state.elapsed = training.elapsed()
    state.history.append(
        {
            "epoch": state.epoch,
            "steps": state.step,
            "lr": outcome.rate,
            "train_loss": outcome.loss_sum / max(seen, 1),
            "train_top1": 100.0 * outcome.correct / max(seen, 1),
            "val_loss": val.loss if val else None,
            "val_top1": val.top1 if val else None,
            "val_top5": val.top5 if val else None,
            "images_per_second": seen / max(outcome.train_seconds, 1e-9),
            "epoch_seconds": time.perf_counter() - outcome.started,
            "elapsed_seconds": state.elapsed,
            "epoch_fraction": round(outcome.fraction, 4),
        }
    )
    improved = False
    if val is not None:
        improved = state.best_top1 is None or val.top1 > state.best_top1
        if improved:
            state.best_top1, state.best_epoch, state.stale_epochs = val.top1, state.epoch, 0
        else:
            state.stale_epochs += 1
    patience = run.config.schedule.patience
    stale = patience is not None and state.stale_epochs >= patience
    if training.distributed.agree_to_stop(stale):
        state.stopped = "early_stopping"
    if training.distributed.is_main:
        _save_checkpoints(run, training, state, improved)
    run.log.end_epoch(state.history)
    return state.stopped != "completed"


def _save_checkpoints(run: Run, training: Training, state: RunState, improved: bool) -> None:
    """``best.pt`` (the evaluated weights) when validation improved; ``last.pt`` always."""
    common = checkpoint_state(run.config, run.model_kwargs, run.data, state.epoch)
    if training.teacher is not None:  # a resumed run checks that its teacher is the same
        common[TEACHER_KEY] = training.teacher.sha256
    if run.transfer is not None:  # a resumed run cannot reload its initial weights to say so
        common[TRANSFER_NOTES_KEY] = list(run.transfer.notes)
    if improved:
        save_checkpoint(run.out_dir / "best.pt", {**common, "model": run.evaluated.state_dict()})
    average = training.average
    resume_state = {
        "model": run.model.state_dict(),
        "optimizer": training.optimizer.state_dict(),
        "ema": average.state_dict() if average is not None else None,
        "scaler": training.scaler.state_dict(),
        "progress": {k: v for k, v in dataclasses.asdict(state).items() if k != "history"},
        "history": state.history,
        "rng": rng_state(),
    }
    save_checkpoint(run.out_dir / "last.pt", {**common, **resume_state})


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


def warmup_warning(schedule: ScheduleConfig, steps_per_epoch: int) -> str | None:
    """Why the run's learning rate never leaves its warm-up, if it does not.

    Step ``k`` of a schedule of ``T`` steps runs at progress ``k / T``; with a warm-up fraction
    ``w`` it is warming up while ``k / T < w`` (the first step always has rate 0). A run of
    ``n`` steps whose last step ``n - 1`` is still below ``w T`` never reaches ``--lr``. Under a
    time budget progress follows the clock, so nothing is known in advance.
    """
    if schedule.warmup <= 0 or schedule.time_budget is not None or schedule.schedule == "onecycle":
        return None
    total = (schedule.schedule_epochs or schedule.epochs) * steps_per_epoch
    steps = schedule.epochs * steps_per_epoch
    if (steps - 1) / total >= schedule.warmup:
        return None
    return (
        f"--warmup {schedule.warmup:g}: the run's {steps} optimiser step(s) all fall in the "
        f"warm-up of {schedule.warmup * total:g} steps, so the learning rate never reaches "
        f"--lr {schedule.lr:g} (the first step's is 0)"
    )


def _nan_message(
    value: float,
    state: RunState,
    epoch: int,
    index: int,
    out_dir: Path,
    rank: int = 0,
    distributed: Distributed | None = None,
) -> str:
    where = f"step {state.step + 1} (epoch {epoch + 1}, batch {index + 1})"
    if distributed is not None and distributed.world_size > 1:
        where += f" on rank {rank} of {distributed.world_size}"
    if state.epoch:
        kept = f"last good checkpoint: {out_dir / 'last.pt'} (epoch {state.epoch})"
    else:
        kept = "no checkpoint was written (the first epoch did not finish)"
    return f"loss is {value} at {where}; training stopped, {kept}"


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"
