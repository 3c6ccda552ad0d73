"""Linear layers and matrix products: mm, addmm, bmm, baddbmm, mv, dot (seed 000 §2.2).

``nn.Linear`` reaches the dispatcher as ``t`` + ``addmm`` (2-D input) or ``view`` + ``mm``/
``addmm`` + ``view`` (more dims): rows = every input dim but the last, so a Linear applied per
position (ConvNeXt) counts rows x in x out, not params x batch.
"""

from __future__ import annotations

from torch import ops

from cnnkit.analysis.graph import Node
from cnnkit.analysis.rules._base import OpFigures, numel, register_rule
from cnnkit.analysis.spatial import MatMul
from cnnkit.arith.linear import linear_macs

aten = ops.aten


def _product_macs(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """MACs of a @ b for a (B, M, K) or (M, K) and b (B, K, N) or (K, N): B M K N (arith.linear).

    mm/bmm/baddbmm take equal batch sizes (no broadcasting); 1-D operands are vectors.
    """
    if len(a) == 1:
        a = (1, *a)
    if len(b) == 1:
        b = (*b, 1)
    rows = numel(a[:-1])
    if a[-1] == 0 or b[-1] == 0:  # an empty product: nothing to multiply
        return 0
    return linear_macs(a[-1], b[-1], rows=rows)


@register_rule(aten.mm, aten.bmm, aten.mv, aten.dot, aten.vdot)
def matrix_product(node: Node) -> OpFigures:
    """MACs = prod(batch) M K N; flop_counter's mm/bmm count / 2 (it has no formula for mv/dot,
    which cnnkit counts the same way)."""
    a, b = node.inputs[0].shape, node.inputs[1].shape
    return OpFigures(macs=_product_macs(a, b), spatial=_FIRST_TWO)


_FIRST_TWO = MatMul((0, 1))  # one object for every plain product (a frozen descriptor)


_OPERANDS = {"addmm": ("mat1", "mat2"), "baddbmm": ("batch1", "batch2"), "addmv": ("mat", "vec")}


@register_rule(aten.addmm, aten.baddbmm, aten.addmv)
def matrix_product_plus_bias(node: Node) -> OpFigures:
    """``bias + a @ b``: the product's MACs, and one FLOP per output element for the bias add."""
    first, second = _OPERANDS[node.name]
    a, b = node.arg(first), node.arg(second)
    inputs = node.inputs
    operands = (inputs.index(a), len(inputs) - 1 - inputs[::-1].index(b))
    return OpFigures(
        macs=_product_macs(a.shape, b.shape),
        other_flops=numel(node.output_shape),
        spatial=MatMul(operands),
    )
