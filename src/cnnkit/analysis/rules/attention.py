"""Fused scaled-dot-product attention kernels (seen on a real CPU/GPU forward; on the meta
device attention decomposes into bmm and softmax, which other rules count)."""

from __future__ import annotations

from torch import ops

from cnnkit.analysis.graph import Node
from cnnkit.analysis.rules._base import OpFigures, numel, register_rule
from cnnkit.analysis.rules.pool import SOFTMAX_FLOPS
from cnnkit.analysis.spatial import Mix
from cnnkit.arith.linear import linear_macs

aten = ops.aten


@register_rule(
    aten._scaled_dot_product_flash_attention_for_cpu,
    aten._scaled_dot_product_flash_attention,
    aten._scaled_dot_product_efficient_attention,
    aten._scaled_dot_product_cudnn_attention,
)
def scaled_dot_product_attention(node: Node) -> OpFigures:
    """softmax(q k^T scale) v for q (B, H, Lq, E), k (B, H, Lk, E), v (B, H, Lk, Ev).

    MACs = B H Lq Lk E + B H Lq Lk Ev (flop_counter's sdpa formula / 2); the softmax costs
    3 FLOPs per score. Each query sees every key: the token dim mixes.
    """
    query, key, value = node.inputs[:3]
    batch_heads = numel(query.shape[:-2])
    queries, keys = query.shape[-2], key.shape[-2]
    macs = linear_macs(query.shape[-1], keys, rows=batch_heads * queries) + linear_macs(
        keys, value.shape[-1], rows=batch_heads * queries
    )
    scores = batch_heads * queries * keys
    return OpFigures(macs=macs, other_flops=SOFTMAX_FLOPS * scores, spatial=Mix((-2,)))
