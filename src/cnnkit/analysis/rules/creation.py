"""Ops that make tensors whose values do not depend on the input: factories, random fills,
scalar reads. They cost nothing and carry no receptive field."""

from __future__ import annotations

from torch import ops

from cnnkit.analysis.graph import Node
from cnnkit.analysis.rules._base import RULES, OpFigures
from cnnkit.analysis.spatial import CONSTANT

aten = ops.aten

CREATION = (
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros",
    "zeros_like", "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like", "new_full",
    "fill", "fill_", "zero_", "arange", "linspace", "logspace", "eye", "scalar_tensor",
    "lift_fresh", "rand", "rand_like", "randn", "randn_like", "randint", "randint_like",
    "randperm", "bernoulli", "bernoulli_", "normal", "normal_", "uniform_", "exponential_",
    "_local_scalar_dense", "sym_size", "sym_numel", "sym_stride", "is_nonzero", "equal",
    "_assert_async", "_assert_scalar", "resize_", "set_", "_fused_dropout",
)  # fmt: skip


def constant(node: Node) -> OpFigures:
    """Free: 0 FLOPs, and the output carries no receptive field."""
    return OpFigures(spatial=CONSTANT)


for _name in CREATION:
    _packet = getattr(aten, _name, None)
    if _packet is not None:
        RULES.add(_packet, constant)
