"""Receptive fields measured: the gradient of one output w.r.t. the input of a test stack.

Every layer has positive weights (average pools stand in for max pools, which would only pass
the argmax) and runs in float64, so the input pixels with a non-zero gradient are exactly the ones
the output sees.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from cnnkit.arith import Field
from tests.arith.strategies import per_axis

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d}
AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d}


def apply(layer: dict, x: torch.Tensor) -> torch.Tensor:
    """One layer of a test stack with positive weights, as PyTorch runs it."""
    ndim = x.dim() - 2
    kind = layer.get("kind", "conv")
    if kind == "upsample":
        return F.interpolate(x, scale_factor=layer["scale_factor"], mode="nearest")
    kernel = layer["kernel_size"]
    stride = layer.get("stride", kernel if kind == "pool" else 1)
    padding = layer.get("padding", 0)
    dilation = layer.get("dilation", 1)
    if kind == "pool" and dilation == 1 and isinstance(padding, int) and ndim in AVG_POOL:
        return AVG_POOL[ndim](x, kernel, stride, padding)
    weight = torch.rand(1, 1, *_tuple(kernel, ndim), dtype=torch.float64) + 0.1
    if kind == "transpose":
        return CONV_TRANSPOSE[ndim](x, weight, None, stride, padding, 0, 1, dilation)
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        x = F.pad(x, [v for pair in reversed(padding) for v in pair])
        padding = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'same' with an even kernel warns about a padded copy
        return CONV[ndim](x, weight, None, stride, padding, dilation)


def _tuple(value, ndim):
    return tuple(value) if isinstance(value, tuple) else (value,) * ndim


def forward(layers: list[dict], sizes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.zeros(1, 1, *sizes, dtype=torch.float64, requires_grad=True)
    y = x
    for layer in layers:
        y = apply(layer, y)
    return x, y


def measured_bounds(x: torch.Tensor, y: torch.Tensor, position) -> list[tuple[int, int]] | None:
    """Per axis [first, last + 1) of the input pixels whose gradient is non-zero."""
    (gradient,) = torch.autograd.grad(y[(0, 0, *position)], x, retain_graph=True)
    seen = gradient[0, 0] != 0
    if not seen.any():
        return None
    bounds = []
    for axis in range(seen.dim()):
        others = [d for d in range(seen.dim()) if d != axis]
        along = seen.any(dim=others) if others else seen
        indices = along.nonzero().flatten()
        bounds.append((int(indices[0]), int(indices[-1]) + 1))
    return bounds


def input_sizes_for(field: Field) -> tuple[int, ...]:
    """An input large enough that the central outputs see no padding."""
    columns = zip(field.rf, field.jump, field.start, strict=True)
    return tuple(int(2 * r + 8 * j + 2 * abs(a)) + 8 for r, j, a in columns)


def interior(field: Field, position, sizes) -> bool:
    bounds = zip(field.bounds(position), sizes, strict=True)
    return all(left >= 0 and right <= n for (left, right), n in bounds)


@st.composite
def sequential_layers(draw, ndim: int, depth: int):
    layers = []
    for _ in range(draw(st.integers(1, depth))):
        kind = draw(st.sampled_from(["conv", "conv", "pool"]))
        kernel = per_axis(draw, ndim, 1, 5)
        stride = per_axis(draw, ndim, 1, 3)
        layer = {"kind": kind, "kernel_size": kernel, "stride": stride}
        if kind == "pool":
            layer["padding"] = tuple(draw(st.integers(0, k // 2)) for k in kernel)
        else:
            layer["dilation"] = per_axis(draw, ndim, 1, 3)
            padding = draw(st.sampled_from(["ints", "pairs", "same"]))
            if padding == "same" and stride == (1,) * ndim:
                layer["padding"] = "same"
            elif padding == "pairs":
                layer["padding"] = tuple(
                    (draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(ndim)
                )
            else:
                layer["padding"] = per_axis(draw, ndim, 0, 3)
        layers.append(layer)
    return layers
