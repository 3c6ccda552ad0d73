"""From-scratch reference operations, each forward beside its backward (B1-B4, B8).

Tensors in, tensors out, any float dtype, PyTorch's semantics. Every op is checked against
``torch.nn.functional`` and autograd in the tests; the backward passes use the formulas of seeds
000 and 002, not autograd. ``cnnkit.reference.autograd`` wraps the pairs as autograd Functions.
"""

from __future__ import annotations

from cnnkit.reference.activation import relu, relu_backward
from cnnkit.reference.conv import METHODS, conv2d, conv2d_backward, im2col
from cnnkit.reference.loss import softmax_cross_entropy, softmax_cross_entropy_backward
from cnnkit.reference.norm import (
    batch_norm2d,
    batch_norm2d_backward,
    batch_norm2d_eval,
    batch_norm2d_eval_backward,
)
from cnnkit.reference.pixel_shuffle import pixel_shuffle, pixel_shuffle_backward
from cnnkit.reference.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from cnnkit.reference.transposed import conv_transpose2d, conv_transpose2d_backward
from cnnkit.reference.winograd import MultiplyCount, winograd_multiply_count

__all__ = [
    "METHODS",
    "MultiplyCount",
    "avg_pool2d",
    "avg_pool2d_backward",
    "batch_norm2d",
    "batch_norm2d_backward",
    "batch_norm2d_eval",
    "batch_norm2d_eval_backward",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "im2col",
    "max_pool2d",
    "max_pool2d_backward",
    "pixel_shuffle",
    "pixel_shuffle_backward",
    "relu",
    "relu_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "winograd_multiply_count",
]
