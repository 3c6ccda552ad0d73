"""Checkpoints that load with ``torch.load(weights_only=True)`` and resume a run exactly.

A checkpoint is a dict of plain values and tensors only (ecosystem-notes.md: the safe loader
rejects pickled objects such as an ``argparse.Namespace`` or NumPy RNG state):

``format``, ``model`` (state dict), ``model_name``, ``model_kwargs``, ``optimizer``,
``ema``, ``scaler``, ``rng`` (torch CPU/CUDA states as uint8 tensors, Python's ``random``
state as a tuple),
``epoch`` (epochs completed), ``config`` (the resolved TrainConfig as a dict), ``progress``
(steps and elapsed seconds, which the schedule is a function of; best metric, patience
counter), ``history`` (one dict per epoch), ``classes``, ``mean``,
``std``, ``image_shape``. The zoo's ``create_model(name, weights=path)`` reads the ``model`` key.
Files are written atomically (``cnnkit._io.atomic_torch_save``).
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import torch

from cnnkit._io import atomic_torch_save
from cnnkit.errors import CheckpointError, ConfigError

FORMAT = "cnnkit-checkpoint-1"
REQUIRED = (
    "model",
    "model_name",
    "model_kwargs",
    "config",
    "epoch",
    "classes",
    "mean",
    "std",
    "image_shape",
)
RESUME = ("optimizer", "progress", "history", "rng")  # what only last.pt holds
PROGRESS_KEYS = frozenset(
    {
        "epoch",
        "step",
        "elapsed",
        "train_seconds",
        "images",
        "best_top1",
        "best_epoch",
        "stale_epochs",
        "stopped",
    }
)


def rng_state() -> dict[str, Any]:
    """Every RNG the trainer draws from, as tensors and tuples (safe to ``weights_only`` load)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (a missing CUDA entry is left alone)."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` (plain dicts, lists and tensors) atomically to ``path``."""
    atomic_torch_save({"format": FORMAT, **checkpoint}, path)


def load_checkpoint(path: str | Path, *, resumable: bool = False) -> dict[str, Any]:
    """Load a cnnkit checkpoint with ``weights_only=True`` and validate its whole structure.

    A folder means its ``last.pt``. Every field cnnkit reads is checked here, once: its type, and
    the lengths that must agree (``mean``/``std``: one per channel of ``image_shape``;
    ``classes``: one per output, ``model_kwargs["num_classes"]`` when recorded); ``config`` must
    be a valid TrainConfig naming the same model. ``resumable``: the training state
    (optimizer, progress, history, RNG) must be there too (``last.pt``, not ``best.pt``).
    Every problem is one :class:`CheckpointError` line naming the file and the field.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    checkpoint = _read(path)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a cnnkit training checkpoint (no format {FORMAT!r}); "
            "plain state dicts load with create_model(name, weights=PATH)"
        )
    missing = [key for key in REQUIRED if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing[0]!r}")
    _validate(checkpoint, path)
    if resumable:
        lacking = [key for key in RESUME if key not in checkpoint]
        if lacking:
            raise CheckpointError(
                f"{path}: holds weights only, not the training state ({lacking[0]!r}) needed "
                f"to resume; resume the run folder or its last.pt: --resume {path.parent}"
            )
        _validate_resume(checkpoint, path)
    return checkpoint


def _read(path: Path) -> Any:
    """``torch.load(weights_only=True)``; a failure is one line that never advises unsafe loads."""
    import pickle
    import re
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about old pickle protocols on stderr
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except MemoryError:
        raise CheckpointError(f"{path}: not a cnnkit checkpoint (implausible sizes)") from None
    except Exception as exc:  # truncated, not a torch file, or an unsafe pickle
        text = str(exc)
        unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if unsafe:
            found = unsafe.group(1)
            reason = f"it holds a pickled Python object ({found}), which cnnkit never loads"
        elif isinstance(exc, EOFError) or "zip archive" in text or "central directory" in text:
            reason = "empty, truncated or not a PyTorch file"
        elif isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in text:
            reason = "not a PyTorch file of tensors and plain values"
        else:
            reason = type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from None


def _validate(checkpoint: dict[str, Any], path: Path) -> None:
    from cnnkit.train.config import TrainConfig, plain_json_problem

    def bad(field: str, expected: str) -> CheckpointError:
        value = checkpoint.get(field)
        shown = type(value).__name__ if not isinstance(value, int | float | str) else repr(value)
        return CheckpointError(f"{path}: field {field!r} must be {expected}, got {shown[:60]}")

    if not _tensor_dict(checkpoint["model"]):
        raise bad("model", "a state dict (names to tensors)")
    name = checkpoint["model_name"]
    if not isinstance(name, str) or not name:
        raise bad("model_name", "a model name")
    kwargs = checkpoint["model_kwargs"]
    problem = plain_json_problem(kwargs)
    if not isinstance(kwargs, dict) or problem:
        raise CheckpointError(
            f"{path}: field 'model_kwargs' must be a dict of plain JSON values"
            + (f" ({problem})" if problem else "")
        )
    if not isinstance(checkpoint["epoch"], int) or isinstance(checkpoint["epoch"], bool):
        raise bad("epoch", "an integer >= 0")
    if checkpoint["epoch"] < 0:
        raise bad("epoch", "an integer >= 0")
    shape = checkpoint["image_shape"]
    if not (
        isinstance(shape, list | tuple)
        and len(shape) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
    ):
        raise bad("image_shape", "[channels, height, width] of positive integers")
    classes = checkpoint["classes"]
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        raise bad("classes", "a non-empty list of class names")
    for field in ("mean", "std"):
        values = checkpoint[field]
        if not (
            isinstance(values, list | tuple)
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            and all(math.isfinite(v) for v in values)
        ):
            raise bad(field, "a list of finite numbers")
        if len(values) != shape[0]:
            raise CheckpointError(
                f"{path}: field {field!r} has {len(values)} values for {shape[0]}-channel images"
            )
    if any(v <= 0 for v in checkpoint["std"]):
        raise bad("std", "positive")
    num_classes = kwargs.get("num_classes")
    if num_classes is not None and num_classes != len(classes):
        raise CheckpointError(
            f"{path}: field 'classes' names {len(classes)} classes, the model has "
            f"num_classes={num_classes!r}"
        )
    if not isinstance(checkpoint["config"], dict):
        raise bad("config", "a dict of settings")
    try:
        config = TrainConfig.from_dict(checkpoint["config"], source="config")
    except ConfigError as exc:
        raise CheckpointError(f"{path}: field {exc}") from None
    if config.model.model != name:
        raise CheckpointError(
            f"{path}: field 'config' names model {config.model.model!r}, 'model_name' {name!r}"
        )
    if (
        "ema" in checkpoint
        and checkpoint["ema"] is not None
        and not _tensor_dict(checkpoint["ema"])
    ):
        raise bad("ema", "a state dict or None")


def _validate_resume(checkpoint: dict[str, Any], path: Path) -> None:
    """The training state a resume restores (written by ``fit`` into ``last.pt``)."""

    def bad(field: str, expected: str) -> CheckpointError:
        return CheckpointError(f"{path}: field {field!r} must be {expected}")

    optimizer = checkpoint["optimizer"]
    if not (
        isinstance(optimizer, dict)
        and isinstance(optimizer.get("state"), dict)
        and isinstance(optimizer.get("param_groups"), list)
    ):
        raise bad("optimizer", "an optimizer state dict")
    progress = checkpoint["progress"]
    numbers = {"epoch": int, "step": int, "elapsed": float, "train_seconds": float, "images": int}
    if not isinstance(progress, dict) or set(progress) - PROGRESS_KEYS:
        raise bad("progress", f"a dict of {', '.join(sorted(PROGRESS_KEYS))}")
    for key, kind in numbers.items():
        value = progress.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise bad(f"progress.{key}", "a number >= 0")
        if kind is int and not isinstance(value, int):
            raise bad(f"progress.{key}", "an integer >= 0")
    for key in ("best_top1", "best_epoch"):
        value = progress.get(key)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise bad(f"progress.{key}", "a number or None")
    if not isinstance(progress.get("stale_epochs", 0), int) or not isinstance(
        progress.get("stopped", ""), str
    ):
        raise bad("progress", "cnnkit's progress record")
    if progress["epoch"] != checkpoint["epoch"]:
        raise bad("progress.epoch", f"the checkpoint's epoch ({checkpoint['epoch']})")
    history = checkpoint["history"]
    if not (isinstance(history, list) and all(isinstance(row, dict) for row in history)):
        raise bad("history", "a list of dicts (one per epoch)")
    if len(history) != checkpoint["epoch"]:
        raise bad("history", f"one row per completed epoch ({checkpoint['epoch']})")
    rng = checkpoint["rng"]
    python = rng.get("python") if isinstance(rng, dict) else None
    if not (
        isinstance(rng, dict)
        and isinstance(rng.get("torch"), torch.Tensor)
        and rng["torch"].dtype == torch.uint8
        and isinstance(python, tuple | list)
        and len(python) == 3
        and isinstance(python[1], tuple | list)
        and all(isinstance(v, int) for v in python[1])
    ):
        raise bad("rng", "the RNG states cnnkit saves")
    if checkpoint.get("scaler") is not None and not isinstance(checkpoint["scaler"], dict):
        raise bad("scaler", "a dict")


def _tensor_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )
