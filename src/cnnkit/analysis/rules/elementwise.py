"""Element-wise ops: activations, arithmetic, comparisons, residual adds, SE multiplies.

Cost convention (fvcore's ``elementwise_flop_counter`` idea): ``flops_per_element`` FLOPs per
OUTPUT element, 1 for activations and binary arithmetic (an activation is counted as one
operation whatever its formula), 2 for fused multiply-add forms. Positions are kept: the output
at a position depends on the inputs at the same position, after broadcasting (an SE scale of
shape (N, C, 1, 1) broadcast over the map carries its global field into the product).
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import ops

from cnnkit.analysis.graph import Node
from cnnkit.analysis.rules._base import RULES, OpFigures, Rule, numel
from cnnkit.analysis.spatial import POINTWISE

aten = ops.aten


def elementwise_rule(flops_per_element: int) -> Rule:
    """A rule costing ``flops_per_element`` FLOPs per output element, position by position."""

    def rule(node: Node) -> OpFigures:
        flops = flops_per_element * numel(node.output_shape)
        return OpFigures(other_flops=flops, spatial=POINTWISE)

    rule.__doc__ = f"{flops_per_element} FLOP(s) per output element, position by position."
    rule.__name__ = f"elementwise_{flops_per_element}"
    return rule


def _register_all(names: Iterable[str], rule: Rule) -> None:
    for name in names:
        packet = getattr(aten, name, None)
        if packet is not None:  # an op this torch build does not have is simply not covered
            RULES.add(packet, rule)


ACTIVATIONS = (
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "rrelu_with_noise", "_prelu_kernel",
    "prelu", "elu", "elu_", "selu", "selu_", "celu", "celu_", "gelu", "gelu_", "silu", "silu_",
    "mish", "mish_", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardtanh", "hardtanh_",
    "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_", "hardshrink", "softshrink",
    "softplus", "log_sigmoid_forward", "threshold", "threshold_", "logit", "glu",
)  # fmt: skip
UNARY = (
    "neg", "neg_", "abs", "abs_", "exp", "exp_", "exp2", "expm1", "log", "log_", "log2", "log10",
    "log1p", "sqrt", "sqrt_", "rsqrt", "rsqrt_", "reciprocal", "reciprocal_", "square", "sin",
    "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "erf", "erfc", "erfinv", "sign", "sgn",
    "floor", "ceil", "round", "trunc", "frac", "clamp", "clamp_", "clamp_min", "clamp_min_",
    "clamp_max", "clamp_max_", "nan_to_num", "logical_not", "bitwise_not", "isnan", "isinf",
    "isfinite", "signbit", "positive",
)  # fmt: skip
BINARY = (
    "add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "true_divide",
    "floor_divide", "remainder", "fmod", "pow", "pow_", "maximum", "minimum", "fmax", "fmin",
    "atan2", "hypot", "eq", "ne", "lt", "le", "gt", "ge", "eq_", "ne_", "logical_and",
    "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "where",
    "masked_fill", "masked_fill_", "xlogy", "copysign", "heaviside", "native_dropout",
    "_masked_scale",
)  # fmt: skip
FUSED = ("addcmul", "addcmul_", "addcdiv", "addcdiv_", "lerp", "lerp_")

_register_all(ACTIVATIONS + UNARY + BINARY, elementwise_rule(1))
_register_all(FUSED, elementwise_rule(2))
