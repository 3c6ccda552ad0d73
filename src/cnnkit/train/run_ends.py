"""The ends of a run: the header line and environment.json at its start; the test evaluation with
final.json at its end (named apart from the `report/` package, the run report)."""

from __future__ import annotations

import json
import platform
import time
from typing import TYPE_CHECKING, Any

import torch

from cnnkit._io import atomic_write_text
from cnnkit.train.jsonio import dumps
from cnnkit.train.provenance import ENVIRONMENT_FILE
from cnnkit.train.run_types import Run, RunResult, RunState

if TYPE_CHECKING:
    from pathlib import Path

    from torch import nn

    from cnnkit.train.config import DataConfig, TrainConfig
    from cnnkit.train.datasets import RunData
    from cnnkit.train.provenance import Environment


def run_header(
    config: TrainConfig, data: RunData, model: nn.Module, device: torch.device, dtype: Any
) -> str:
    """Two lines: what trains on what, and how (parameters, device, precision, schedule); a
    third when a recipe's budget rule changed settings, naming them."""
    channels, height, width = data.image_shape
    val = f" / {len(data.val):,} val" if data.val is not None else ""
    params = sum(p.numel() for p in model.parameters())
    precision = precision_name(dtype)
    threads = torch.get_num_threads()
    where = (
        f"cpu ({threads} thread{'s' if threads != 1 else ''})"
        if device.type == "cpu"
        else str(device)
    )
    schedule, optimisation = config.schedule, config.optimisation
    if schedule.time_budget is None:
        length = f"up to {schedule.epochs} epochs"
    else:  # the epoch bound of a budgeted recipe (1000) says nothing; a real bound is shown
        bound = f", at most {schedule.epochs} epochs" if schedule.epochs < 1000 else ""
        length = f"time budget {schedule.time_budget:g} s{bound}"
    return (
        f"{config.model.model} on {data.train.name}: {len(data.train):,} train{val} / "
        f"{len(data.test):,} test images {channels}x{height}x{width}, {len(data.classes)} classes\n"
        f"{params:,} parameters, {where}, {precision}"
        f"{', channels_last' if config.runtime.channels_last else ''}, "
        f"batch {optimisation.batch_size}, "
        f"{optimisation.optimizer} lr {schedule.lr:g} {schedule.schedule}, "
        f"{length}" + budget_line(config.budget_changes, schedule.time_budget)
    )


def budget_line(changes: dict[str, Any], budget: float | None) -> str:
    """``\nbudget rule for 225 s: model_kwargs.depth 3`` (empty when the rule changed nothing)."""
    if not changes:
        return ""
    shown = ", ".join(f"{name} {json.dumps(value)}" for name, value in changes.items())
    return f"\nbudget rule for {budget:g} s: {shown}"


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32`` (no autocast), ``bf16`` or ``fp16``."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def record_environment(
    out_dir: Path, config: DataConfig, data: RunData, device: torch.device, dtype: Any
) -> Environment:
    """Collect the run's :class:`~cnnkit.train.provenance.Environment`; write environment.json."""
    from cnnkit.train.provenance import collect_environment, write_environment

    environment = collect_environment(
        device=device,
        precision=precision_name(dtype),
        datasets=[data.train, data.test],
        data_dir=config.data_dir,
    )
    write_environment(out_dir, environment)
    return environment


def finish_run(run: Run, state: RunState) -> RunResult:
    """Evaluate the chosen weights on the test set once; write final.json and the plots."""
    from cnnkit.train.checkpoint import load_checkpoint, save_checkpoint
    from cnnkit.train.datasets import evaluation_loader
    from cnnkit.train.evaluation import run_evaluation, tta_label
    from cnnkit.train.setup import checkpoint_state

    config, data, model, evaluated, out_dir = (
        run.config,
        run.data,
        run.model,
        run.evaluated,
        run.out_dir,
    )
    distributed = run.distributed
    distributed.barrier()  # every rank reads the best.pt that rank 0 has finished writing
    best_path = out_dir / "best.pt"
    weights = "last"
    settings = config.evaluation
    if settings.eval_weights == "best" and state.best_epoch is not None and best_path.exists():
        evaluated.load_state_dict(load_checkpoint(best_path)["model"])
        weights = f"best (epoch {state.best_epoch})"
    elif not best_path.exists() and distributed.is_main:
        # No validation split: the final weights are the best we know of.
        common = checkpoint_state(config, run.model_kwargs, data, state.epoch)
        save_checkpoint(best_path, {**common, "model": evaluated.state_dict()})
    if evaluated is not model:
        weights += " EMA"
    # each rank evaluates its shard of the test set; the metrics are merged (E7)
    test_loader = evaluation_loader(distributed.eval_shard(data.test), data, config, run.device)
    test = run_evaluation(
        evaluated,
        test_loader,
        num_classes=len(data.classes),
        classes=data.classes,
        dtype=run.dtype,
        tta=settings.tta,
        hardest=settings.hardest,
        reduce=distributed.reduce_metrics,
    )
    final: dict[str, Any] = {
        "test_top1": test.top1,
        "test_top5": test.top5,
        "test_loss": test.loss,
        "epochs": state.epoch,
        # a time budget may stop the last epoch part-way (also in metrics.csv and curves.png)
        "last_epoch_fraction": state.history[-1].get("epoch_fraction", 1.0)
        if state.history
        else None,
        "wall_seconds": time.perf_counter() - run.started,
        "images_per_second": state.images / max(state.train_seconds, 1e-9),
        "train_seconds": state.train_seconds,
        "steps": state.step,
        "stopped": state.stopped,
        "evaluated_weights": weights,
        "tta": settings.tta,
        "best_val_top1": state.best_top1,
        "best_epoch": state.best_epoch,
        "model": config.model.model,
        "parameters": sum(p.numel() for p in model.parameters()),
        "dataset": data.train.name,
        "train_images": len(data.train),
        "val_images": len(data.val) if data.val is not None else 0,
        "test_images": len(data.test),
        "device": str(run.device),
        "threads": torch.get_num_threads(),
        "processes": distributed.world_size,
        "precision": precision_name(run.dtype),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "environment": ENVIRONMENT_FILE,
        "per_class_top1": dict(zip(test.classes, test.per_class, strict=True)),
        "confusion": test.confusion,
        "classes": test.classes,
        "hardest": [vars(h) for h in test.hardest],
    }
    if run.transfer is not None:  # only a fine-tuning run has the key (docs/transfer.md)
        final["transfer"] = run.transfer.to_dict()
    if distributed.is_main:
        atomic_write_text(out_dir / "final.json", dumps(final) + "\n")
    if config.output.plots and distributed.is_main:
        from cnnkit.train.plots import plot_confusion, plot_curves, plot_hardest

        plot_curves(state.history, out_dir / "curves.png")
        plot_confusion(test.confusion, test.classes, out_dir / "confusion.png")
        plot_hardest(data.test.images, test.hardest, test.classes, out_dir / "hardest.png")
    tta = tta_label(settings.tta)
    tta = f", {tta}" if tta else ""
    run.log.print(
        f"test: top-1 {test.top1:.2f}%  top-5 {test.top5:.2f}%  loss {test.loss:.4f}  "
        f"({weights} weights{tta}, {test.count:,} images)"
    )
    fraction = final["last_epoch_fraction"]
    done = f"{state.epoch}" if fraction in (None, 1.0) else f"{state.epoch - 1 + fraction:.2f}"
    run.log.print(
        f"{done} epochs in {final['wall_seconds']:.1f} s "
        f"({final['images_per_second']:.0f} train images/s, stopped: {state.stopped}); "
        f"run files: {out_dir}"
    )
    return RunResult(out_dir, config, final, state.history, test, model=evaluated)
