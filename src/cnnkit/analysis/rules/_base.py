"""The rule registry and what a rule returns.

A rule is a small function ``rule(node) -> OpFigures`` keyed by the aten op the capture records
(its overload packet, as torch's flop counter and fvcore key theirs), or by an ``nn.Module``
class for a module to be treated as one opaque leaf. It reads shapes from the :class:`Node`,
calls :mod:`cnnkit.arith` for every formula, and says how the op moves values along the
spatial axes (:mod:`cnnkit.analysis.spatial`) so that the receptive field can be propagated.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnkit._registry import Registry
from cnnkit.analysis.graph import Node
from cnnkit.analysis.spatial import POINTWISE, Spatial
from cnnkit.arith._axes import product
from cnnkit.errors import ConfigError


@dataclass(frozen=True, init=False)
class OpFigures:
    """What one op costs and how it moves values in space.

    Attributes:
        macs: multiply-accumulates of convolutions, linear layers and matrix products, exactly
            torch.utils.flop_counter's FLOPs / 2.
        other_flops: element-wise work (normalisation, activations, pooling, adds, bias adds,
            softmax), in FLOPs; conventions in docs/analysis.md.
        spatial: how the op maps input positions to output positions.
    """

    macs: int = 0
    other_flops: int = 0
    spatial: Spatial = POINTWISE

    def __init__(self, macs: int = 0, other_flops: int = 0, spatial: Spatial = POINTWISE) -> None:
        # the dataclass's own __init__, written out: a frozen dataclass's sets each field
        # with object.__setattr__ (slow), and every op of a trace makes one of these
        values = self.__dict__
        values["macs"] = macs
        values["other_flops"] = other_flops
        values["spatial"] = spatial


Rule = Callable[[Node], OpFigures]

RULES: Registry[Rule] = Registry("analysis rule")


def rule_key(key: Any) -> Any:
    """The registry key for an aten op (packet, overload or ``"aten.name"``) or a module class."""
    if isinstance(key, type):
        if not issubclass(key, nn.Module):
            raise ConfigError(f"a rule key class must be an nn.Module subclass, got {key.__name__}")
        return key
    if isinstance(key, torch._ops.OpOverload):
        return key.overloadpacket
    if isinstance(key, torch._ops.OpOverloadPacket):
        return key
    if isinstance(key, str):
        namespace, _, name = key.partition(".")
        packet = getattr(getattr(torch.ops, namespace, None), name, None) if name else None
        if isinstance(packet, torch._ops.OpOverloadPacket):
            return packet
    raise ConfigError(f"a rule key must be an aten op or an nn.Module class, got {key!r}")


def register_rule(*keys: Any, override: bool = False) -> Callable[[Rule], Rule]:
    """Decorator registering ``rule(node) -> OpFigures`` for aten ops or ``nn.Module`` classes.

    Example (one FLOP per output element of ``torch.erfinv``)::

        @register_rule(torch.ops.aten.erfinv)
        def erfinv(node):
            return OpFigures(other_flops=numel(node.output_shape))

    A second registration of the same key raises ``ValueError`` unless ``override=True``. To
    change a rule for one call only, pass ``rules={key: rule}`` to ``summarize``.
    """
    if not keys:
        raise ConfigError("register_rule needs at least one aten op or nn.Module class")
    resolved = [rule_key(key) for key in keys]

    def decorator(rule: Rule) -> Rule:
        for key in resolved:
            RULES.add(key, rule, override=override)
        return rule

    return decorator


def find_rule(key: Any, overrides: dict[Hashable, Rule] | None = None) -> Rule | None:
    """The rule for ``key`` (a per-call override first); module classes match through the MRO."""
    if overrides and key in overrides:
        return overrides[key]
    if key in RULES:
        return RULES.get(key)
    if isinstance(key, type):
        for base in key.__mro__[1:]:
            if base is nn.Module:
                break
            if overrides and base in overrides:
                return overrides[base]
            if base in RULES:
                return RULES.get(base)
    return None


def numel(shape: tuple[int, ...] | list[int]) -> int:
    """Number of elements of a tensor of ``shape``."""
    return product(tuple(shape))


def per_axis(value: object, ndim: int) -> tuple[int, ...]:
    """An op's int-list argument as one int per axis (a single value is repeated; ``[]`` and
    ``None`` give ``()``, as in PyTorch where an empty stride means "the kernel size")."""
    # isinstance with a tuple of types: a union's check is slower (rules call this per op)
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return ()
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    return tuple([int(v) for v in values]) * (ndim if len(values) == 1 else 1)


def normalize_dim(dim: int, rank: int) -> int:
    """A dim in [0, rank): negative dims count from the end, as in PyTorch."""
    return dim + rank if dim < 0 else dim


def normalize_dims(dims: Any, rank: int) -> tuple[int, ...]:
    """Reduction dims as a sorted tuple; ``None`` or ``[]`` mean every dim, as in PyTorch."""
    if dims is None or (isinstance(dims, list | tuple) and len(dims) == 0):
        return tuple(range(rank))
    if isinstance(dims, int):
        dims = [dims]
    return tuple(sorted({normalize_dim(int(d), max(rank, 1)) for d in dims}))
