"""What PyTorch itself does, on tiny CPU tensors: the oracle for every arith size formula.

Each function returns the spatial output shape PyTorch produces, or ``None`` when PyTorch refuses
the configuration (any exception) or returns an empty tensor. The second case exists: CPU
``conv_transpose3d`` returns a (0, 4, 4) output for input 1, kernel (1, 4, 4), stride (2, 1, 1),
padding (1, 0, 0), output_padding (1, 0, 0), while every other path (1-D, 2-D, a zero on another
axis) refuses an empty output; arith refuses every empty output, as its contract says.
Tensors have batch 1 and one channel, so a call costs microseconds; they live on the CPU
rather than the meta device because meta kernels skip some of PyTorch's checks.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _shape(call: Callable[[], torch.Tensor]) -> tuple[int, ...] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 'same' with an even kernel warns about a copy
            shape = tuple(call().shape[2:])
    except Exception:  # PyTorch refused the configuration
        return None
    return None if 0 in shape else shape


def _input(sizes: Sequence[int]) -> torch.Tensor:
    return torch.zeros(1, 1, *sizes)


def conv_shape(sizes, kernel, stride, padding, dilation) -> tuple[int, ...] | None:
    """F.convNd; ``padding`` an int tuple, 'same'/'valid', or (before, after) pairs via F.pad."""
    ndim = len(sizes)
    weight = torch.zeros(1, 1, *kernel)
    if isinstance(padding, tuple) and padding and isinstance(padding[0], tuple):
        pad = [v for before, after in reversed(padding) for v in (before, after)]
        return _shape(
            lambda: CONV[ndim](F.pad(_input(sizes), pad), weight, None, stride, 0, dilation)
        )
    return _shape(lambda: CONV[ndim](_input(sizes), weight, None, stride, padding, dilation))


def conv_transpose_shape(sizes, kernel, stride, padding, output_padding, dilation):
    ndim = len(sizes)
    weight = torch.zeros(1, 1, *kernel)
    return _shape(
        lambda: CONV_TRANSPOSE[ndim](
            _input(sizes), weight, None, stride, padding, output_padding, 1, dilation
        )
    )


def max_pool_shape(sizes, kernel, stride, padding, dilation, ceil_mode):
    ndim = len(sizes)
    return _shape(
        lambda: MAX_POOL[ndim](_input(sizes), kernel, stride, padding, dilation, ceil_mode)
    )


def avg_pool_shape(sizes, kernel, stride, padding, ceil_mode):
    ndim = len(sizes)
    return _shape(lambda: AVG_POOL[ndim](_input(sizes), kernel, stride, padding, ceil_mode))
