"""Checks shared by the zoo's families: arguments, and inputs a model cannot take.

Arguments: :func:`check_positive` gives a one-line ``ConfigError`` naming the model and the
argument. Inputs: :func:`checked_forward` turns a shape failure in ``forward`` into a one-line
``ShapeError`` naming the layer, and :func:`flat_features` sizes a classifier for an input size.

PyTorch reports an input that is too small (or has the wrong channel count) as a
``RuntimeError`` from deep inside an op, without saying which layer. ``@checked_forward`` costs
nothing on success; on a ``RuntimeError`` it replays the forward on the ``meta`` device (no memory,
no time) with hooks that track which module is running, and raises
``ShapeError: <Model>: input (N, C, H, W) fails at features.20 (MaxPool2d): <torch's reason>``.
A failure that does not reproduce on ``meta`` (out of memory, a device error) is re-raised as is.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from cnnkit.errors import ConfigError, ShapeError, first_line, layer_label

Forward = TypeVar("Forward", bound=Callable[..., Any])


_replaying = threading.local()


def checked_forward(forward: Forward) -> Forward:
    """Decorate ``Model.forward(self, x)``: shape failures become a :class:`ShapeError`."""

    @functools.wraps(forward)
    def wrapper(self: nn.Module, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if getattr(_replaying, "active", False):
            return forward(self, x, *args, **kwargs)
        try:
            return forward(self, x, *args, **kwargs)
        except RuntimeError as error:
            failure = locate_failure(self, x, args, kwargs, reason=first_line(error))
            if failure is None:
                raise
            raise failure from error

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature; the checker sees a plain callable


def locate_failure(
    model: nn.Module,
    x: torch.Tensor,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    owner: str | None = None,
    prefix: str = "",
    reason: str | None = None,
) -> ShapeError | None:
    """Replay ``model(x)`` on ``meta``; a :class:`ShapeError` naming the innermost failing module.

    ``owner`` names the model in the message (default: its class); ``prefix`` is prepended to
    module names (``"features."`` when ``model`` is a part of a bigger model).

    Parameters and buffers are swapped for meta tensors of the same shapes
    (``torch.func.functional_call``), so nothing is copied and the model is left as it was.
    ``reason`` is the original error's message (PyTorch words some shape errors differently on
    ``meta``); by default the replay's. Returns ``None`` when the replay succeeds or fails only
    because it runs on ``meta`` (reading values): the original failure was about values, not
    shapes, and must not be misattributed.
    """
    names = {module: name for name, module in model.named_modules()}
    stack: list[nn.Module] = []

    def enter(module: nn.Module, _inputs: Any) -> None:
        stack.append(module)

    def leave(module: nn.Module, _inputs: Any, _output: Any) -> None:
        stack.pop()

    meta = _meta_state(model)
    handles = [model.register_forward_pre_hook(enter), model.register_forward_hook(leave)]
    for module in names:
        if module is not model:
            handles.append(module.register_forward_pre_hook(enter))
            handles.append(module.register_forward_hook(leave))
    meta_x = torch.empty(x.shape, dtype=x.dtype, device="meta")
    _replaying.active = True
    try:
        torch.func.functional_call(model, meta, (meta_x, *args), kwargs or {}, strict=False)
    except (RuntimeError, NotImplementedError) as error:
        replay_reason = first_line(error)
    else:
        return None
    finally:
        _replaying.active = False
        for handle in handles:
            handle.remove()
    if "meta" in replay_reason.lower():
        return None
    reason = reason or replay_reason
    culprit = stack[-1] if stack else model
    where = (prefix + names[culprit]).rstrip(".") if culprit in names else ""
    label = layer_label(where, type(culprit).__name__)
    owner = owner or type(model).__name__
    return ShapeError(f"{owner}: input {tuple(x.shape)} fails at {label}: {reason}")


def check_positive(model_name: str, **values: int) -> None:
    """``ConfigError`` naming ``model_name`` and the argument unless every value is an int >= 1."""
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{model_name}: {key} must be an integer >= 1, got {value!r}")


def input_hw(model_name: str, input_size: int | tuple[int, int]) -> tuple[int, int]:
    """``input_size`` as ``(H, W)``; an int means a square; each side must be >= 1."""
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2:
        raise ConfigError(f"{model_name}: input_size must be an int or (H, W), got {input_size!r}")
    check_positive(model_name, input_height=size[0], input_width=size[1])
    return size


def flat_features(
    features: nn.Module, input_shape: tuple[int, int, int], owner: str, prefix: str = "features."
) -> int:
    """Number of features ``features`` outputs for one ``(C, H, W)`` input, flattened.

    Runs ``features`` on the ``meta`` device (no memory, no time); an input too small for a
    layer raises a :class:`ShapeError` naming ``owner`` and that layer (``prefix`` + its name).
    """
    x = torch.empty(1, *input_shape, device="meta")
    try:
        out = torch.func.functional_call(features, _meta_state(features), (x,), strict=False)
    except RuntimeError as error:
        failure = locate_failure(features, x, owner=owner, prefix=prefix)
        raise (failure or ShapeError(f"{owner}: {error}".splitlines()[0])) from None
    return out[0].numel()


def _meta_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: torch.empty(t.shape, dtype=t.dtype, device="meta")
        for name, t in [*model.named_parameters(), *model.named_buffers()]
    }
