"""Load weights from a local file into a model: torchvision checkpoints or cnnkit's own.

Files are read with ``torch.load(..., weights_only=True)`` only (no arbitrary pickles). Accepted
layouts: a plain state_dict (what torchvision publishes and ``torch.save(model.state_dict())``
writes), or a training checkpoint dict holding it under ``"model"`` (cnnkit's trainer) or
``"state_dict"`` (Lightning and others). Matching is strict: the first missing key, the first
unexpected key, or the first key whose shape differs is named in a one-line
:class:`~cnnkit.errors.CheckpointError`, before anything is copied into the model.

Conveniences, each what torchvision or PyTorch itself does at load time:
``module.`` (DataParallel) and ``_orig_mod.`` (``torch.compile``) prefixes are removed when every
key has them; DenseNet's legacy keys ``...denselayer1.norm.1.weight`` become ``norm1.weight``;
keys of an optional head the model was built without (GoogLeNet's ``aux1``/``aux2`` when it is
``None``) are dropped; a missing BatchNorm ``num_batches_tracked`` counter starts at 0.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnkit.errors import CheckpointError, first_line

_LEGACY_DENSENET = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def load_weights(
    model: nn.Module, path: str | os.PathLike[str], name: str | None = None
) -> nn.Module:
    """Copy the weights stored in ``path`` into ``model`` (strict) and return ``model``.

    Raises :class:`CheckpointError` naming the file when it is missing or not a PyTorch
    checkpoint, and naming the first missing/unexpected key, or a key with both shapes, when the
    file does not fit the model (called ``name`` in the message, else by its class).
    """
    state = read_state_dict(path)
    state = adapt_state_dict(model, state)
    load_state_strict(model, state, Path(path), name or type(model).__name__)
    return model


def load_state_strict(
    model: nn.Module, state: Mapping[str, Any], path: str | os.PathLike[str], model_name: str
) -> None:
    """``model.load_state_dict(state, strict=True)``, checked first: the one strict loader.

    Raises :class:`CheckpointError` naming ``path`` and ``model_name`` with the first missing
    and first unexpected key (and their counts), or the first key whose shape differs (both
    shapes), before anything is copied into the model. The zoo's ``--weights`` and the trainer's
    resume and evaluation all load through it.
    """
    _check_match(model, state, Path(path), model_name)
    model.load_state_dict(state, strict=True)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state_dict stored in ``path`` (plain, or under ``"model"`` / ``"state_dict"``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and torch errors all mean "not a checkpoint"
        reason = first_line(error)
        raise CheckpointError(
            f"{path}: not a loadable PyTorch checkpoint ({reason[:200]})"
        ) from None
    return _extract(payload, path)


def adapt_state_dict(model: nn.Module, state: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the load-time renames listed in the module docstring; returns a new dict."""
    state = dict(state)
    expected = model.state_dict()
    for prefix in _WRAPPER_PREFIXES:
        if (
            state
            and all(k.startswith(prefix) for k in state)
            and not any(k.startswith(prefix) for k in expected)
        ):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    renamed = {}
    for key, value in state.items():
        match = _LEGACY_DENSENET.match(key)
        new_key = match.group(1) + match.group(2) if match and key not in expected else key
        renamed[new_key] = value
    state = renamed
    for key in list(state):
        head = key.split(".", 1)[0]
        if key not in expected and head not in model._modules and getattr(model, head, 0) is None:
            del state[key]  # an optional head (e.g. GoogLeNet's aux1) the model was built without
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value, device="cpu")
    return state


def _extract(payload: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(payload, Mapping):
        for key in ("model", "state_dict"):
            inner = payload.get(key)
            if isinstance(inner, Mapping):
                payload = inner
                break
        if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            return dict(payload)
        keys = ", ".join(sorted(str(k) for k in payload)[:6])
        raise CheckpointError(
            f"{path}: holds a dict without a state_dict (keys: {keys or 'none'}); "
            "expected tensors, or a 'model' / 'state_dict' entry"
        )
    raise CheckpointError(f"{path}: holds a {type(payload).__name__}, not a state_dict")


def _check_match(model: nn.Module, state: Mapping[str, Any], path: Path, model_name: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            shape = tuple(expected[missing[0]].shape)
            parts.append(f"missing key {missing[0]!r} {shape} ({len(missing)} missing)")
        if unexpected:
            shape = tuple(getattr(state[unexpected[0]], "shape", ()))
            parts.append(f"unexpected key {unexpected[0]!r} {shape} ({len(unexpected)} unexpected)")
        raise CheckpointError(f"{path} does not fit {model_name}: " + "; ".join(parts))
    for key, target in expected.items():
        value = state[key]
        if tuple(value.shape) != tuple(target.shape):
            raise CheckpointError(
                f"{path} does not fit {model_name}: {key!r} has shape {tuple(value.shape)} in "
                f"the checkpoint and {tuple(target.shape)} in the model"
            )
