"""Checkpoints that load with ``torch.load(weights_only=True)`` and resume a run exactly.

A checkpoint is a dict of plain values and tensors only (ecosystem-notes.md: the safe loader
rejects pickled objects such as an ``argparse.Namespace`` or NumPy RNG state):

``format``, ``model`` (state dict), ``model_name``, ``model_kwargs``, ``optimizer``,
``scheduler`` (the step and elapsed seconds the schedule is a function of), ``ema``,
``rng`` (torch CPU/CUDA states as uint8 tensors, Python's ``random`` state as a tuple),
``epoch`` (epochs completed), ``config`` (the resolved TrainConfig as a dict), ``progress``
(best metric, patience counter), ``history`` (one dict per epoch), ``classes``, ``mean``,
``std``, ``image_shape``. The zoo's ``create_model(name, weights=path)`` reads the ``model`` key.
Files are written atomically (``cnnkit._io.atomic_torch_save``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from cnnkit._io import atomic_torch_save
from cnnkit.errors import CheckpointError

FORMAT = "cnnkit-checkpoint-1"
REQUIRED = ("model", "model_name", "model_kwargs", "config", "epoch")


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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a cnnkit checkpoint with ``weights_only=True``; errors name the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, unsafe pickle
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot load checkpoint ({message})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a cnnkit training checkpoint (no format {FORMAT!r}); "
            "plain state dicts load with create_model(name, weights=PATH)"
        )
    missing = [key for key in REQUIRED if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing[0]!r}")
    return checkpoint


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """``load_state_dict(strict=True)``, naming the first missing, unexpected or mis-shaped key."""
    own = model.state_dict()
    for key, value in state.items():
        if key not in own:
            raise CheckpointError(f"{path}: unexpected key {key!r} for the model")
        if own[key].shape != value.shape:
            raise CheckpointError(
                f"{path}: {key} has shape {tuple(value.shape)}, the model expects "
                f"{tuple(own[key].shape)}"
            )
    for key in own:
        if key not in state:
            raise CheckpointError(f"{path}: missing key {key!r} for the model")
    model.load_state_dict(state)
