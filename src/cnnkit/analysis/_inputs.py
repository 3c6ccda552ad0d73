"""The inputs a model is traced with, as users bring them from torchinfo.

``input_size`` is one sample's shape without the batch, or a list of them (several inputs);
``input_data`` an example tensor, a tuple/list of them (positional inputs) or a dict (keyword
inputs), batch included; ``dtypes`` one dtype per shape (integer dtypes for token ids). The
result, :class:`ModelInputs`, holds every tensor as a :class:`TensorSpec` and makes the meta
copies (or real tensors, for a fallback pass) that the capture runs with.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from cnnkit.errors import ConfigError


@dataclass(frozen=True)
class TensorSpec:
    """One input tensor: its full shape (batch included), dtype and, when the user gave one,
    the example tensor itself (used as is, cloned, by a real pass)."""

    shape: tuple[int, ...]
    dtype: torch.dtype | None  # None: the model's first floating dtype
    example: torch.Tensor | None = None

    def make(self, meta: bool, device: torch.device, dtype: torch.dtype, seed: int) -> Any:
        dtype = self.dtype or dtype
        if meta:
            return torch.empty(self.shape, device="meta", dtype=dtype)
        if self.example is not None:  # cloned: a forward that writes its input in place
            return self.example.detach().to(device).clone()
        if dtype.is_floating_point or dtype.is_complex:
            generator = torch.Generator(device=device).manual_seed(seed)
            return torch.randn(self.shape, generator=generator, device=device, dtype=dtype)
        return torch.zeros(self.shape, device=device, dtype=dtype)  # valid indices, as torchinfo


@dataclass(frozen=True)
class ModelInputs:
    """Positional and keyword inputs; tensors are :class:`TensorSpec`, anything else is passed
    as given."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @property
    def specs(self) -> list[TensorSpec]:
        """Every tensor input in call order (positional first)."""
        values = [*self.args, *self.kwargs.values()]
        return [v for v in values if isinstance(v, TensorSpec)]

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(spec.shape for spec in self.specs)

    def make(
        self, meta: bool, device: torch.device, dtype: torch.dtype
    ) -> tuple[tuple[Any, ...], dict[str, Any], list[torch.Tensor]]:
        """The ``(args, kwargs)`` to call the model with, and their tensors in order."""
        made: list[torch.Tensor] = []

        def one(value: Any) -> Any:
            if not isinstance(value, TensorSpec):
                return value
            made.append(value.make(meta, device, dtype, seed=len(made)))
            return made[-1]

        args = tuple(one(v) for v in self.args)
        kwargs = {k: one(v) for k, v in self.kwargs.items()}
        return args, kwargs, made


def _shape(value: Any, name: str) -> tuple[int, ...]:
    """A shape of positive integers: bools, floats (``1.5``) and strings are refused, never
    truncated."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | torch.Size):
        raise ConfigError(f"{name} must be a shape such as (3, 224, 224), got {value!r}")
    sizes = []
    for v in value:
        if isinstance(v, bool):
            raise ConfigError(f"{name} must hold integers, got {v!r} in {tuple(value)}")
        try:
            sizes.append(operator.index(v))
        except TypeError:
            raise ConfigError(f"{name} must hold integers, got {v!r} in {tuple(value)}") from None
    if not sizes or any(v <= 0 for v in sizes):
        raise ConfigError(f"{name} must hold positive integers, got {tuple(sizes)}")
    return tuple(sizes)


def _is_shape(value: Any) -> bool:
    return isinstance(value, Sequence | torch.Size) and all(
        not isinstance(v, Sequence | torch.Size) for v in value
    )


def _dtypes(dtypes: Any, count: int) -> list[torch.dtype | None]:
    if dtypes is None:
        return [None] * count
    if isinstance(dtypes, torch.dtype):
        dtypes = [dtypes]
    if not isinstance(dtypes, Sequence) or not all(isinstance(d, torch.dtype) for d in dtypes):
        raise ConfigError(f"dtypes must be a list of torch dtypes, got {dtypes!r}")
    if len(dtypes) != count:
        raise ConfigError(f"dtypes must give one dtype per input ({count}), got {len(dtypes)}")
    return list(dtypes)


def model_inputs(
    input_size: Any, input_data: Any, dtypes: Any, batch_size: int
) -> tuple[ModelInputs, bool]:
    """Parse summarize's input arguments; also says whether ``input_size`` was one shape (the
    case where a batch written into it can be recognised)."""
    if input_size is not None and input_data is not None:
        raise ConfigError("give input_size or input_data, not both")
    if input_data is not None:
        if dtypes is not None:
            raise ConfigError("dtypes applies to input_size; input_data carries its own dtypes")
        if batch_size != 1:
            raise ConfigError("batch_size applies to input_size; input_data carries its batch")
        return _from_data(input_data), False
    if input_size is None:
        raise ConfigError(
            "input_size (one sample's shape, e.g. (3, 224, 224)) or input_data is required"
        )
    single = _is_shape(input_size)
    shapes = [input_size] if single else input_size
    if isinstance(shapes, str | bytes) or not isinstance(shapes, Sequence) or not shapes:
        raise ConfigError(f"input_size must be a shape or a list of shapes, got {input_size!r}")
    names = ["input_size"] if single else [f"input_size[{k}]" for k in range(len(shapes))]
    parsed = [_shape(s, n) for s, n in zip(shapes, names, strict=True)]
    kinds = _dtypes(dtypes, len(parsed))
    specs = tuple(
        TensorSpec((batch_size, *shape), dtype) for shape, dtype in zip(parsed, kinds, strict=True)
    )
    return ModelInputs(specs, {}), single


def _tensor(value: torch.Tensor, name: str) -> TensorSpec:
    if value.dim() == 0:
        raise ConfigError(f"{name} must have a batch dimension, got a 0-d tensor")
    return TensorSpec(tuple(value.shape), value.dtype, value)


def _from_data(data: Any) -> ModelInputs:
    if isinstance(data, torch.Tensor):
        return ModelInputs((_tensor(data, "input_data"),), {})
    if isinstance(data, Mapping):
        kwargs = {
            str(k): _tensor(v, f"input_data[{k!r}]") if isinstance(v, torch.Tensor) else v
            for k, v in data.items()
        }
        inputs = ModelInputs((), kwargs)
    elif isinstance(data, list | tuple):
        args = tuple(
            _tensor(v, f"input_data[{k}]") if isinstance(v, torch.Tensor) else v
            for k, v in enumerate(data)
        )
        inputs = ModelInputs(args, {})
    else:
        raise ConfigError(
            "input_data must be a tensor, a tuple/list of tensors or a dict of them, "
            f"got {type(data).__name__}"
        )
    if not inputs.specs:
        raise ConfigError("input_data holds no tensor")
    return inputs


def one_shape(shape: Sequence[int]) -> ModelInputs:
    """The inputs of ``capture(model, shape)``: one tensor of the full shape (batch included)."""
    return ModelInputs((TensorSpec(_shape(shape, "input shape"), None),), {})
