"""Upsampling and pixel (un)shuffle (seed 000 §2.1 UpSample; seed 002 "Pixel Shuffle").

Cost convention: nearest neighbour copies (0 FLOPs); linear interpolation costs 2 FLOPs per
tap and output element (2 taps per axis: 4 for 1-D, 8 for bilinear, 16 for trilinear; bicubic
has 4 taps per axis).
"""

from __future__ import annotations

from torch import ops

from cnnkit.analysis.graph import Node
from cnnkit.analysis.rules._base import OpFigures, numel, register_rule
from cnnkit.analysis.spatial import Resample, Window

aten = ops.aten

FLOPS_PER_TAP = 2


def _spatial_sizes(node: Node, ndim: int) -> tuple[int, ...]:
    return tuple(node.output_shape[-ndim:])


@register_rule(
    aten.upsample_nearest1d,
    aten.upsample_nearest2d,
    aten.upsample_nearest3d,
    aten._upsample_nearest_exact1d,
    aten._upsample_nearest_exact2d,
    aten._upsample_nearest_exact3d,
)
def nearest(node: Node) -> OpFigures:
    """Output o copies input floor(o/f) ('nearest-exact': floor((o + 1/2)/f), the same input
    for an integer factor f): 0 FLOPs."""
    ndim = len(node.inputs[0].shape) - 2
    return OpFigures(spatial=Resample(_spatial_sizes(node, ndim), "nearest"))


@register_rule(
    aten.upsample_linear1d,
    aten.upsample_bilinear2d,
    aten.upsample_trilinear3d,
    aten._upsample_bilinear2d_aa,
    aten.upsample_bicubic2d,
    aten._upsample_bicubic2d_aa,
)
def interpolate(node: Node) -> OpFigures:
    """(Bi/tri)linear: 2 taps per axis, half-pixel centres; bicubic: 4 taps per axis.

    With align_corners=True, antialiasing or bicubic taps the field has no closed form here.
    """
    ndim = len(node.inputs[0].shape) - 2
    cubic = "bicubic" in node.name
    taps = (4 if cubic else 2) ** ndim
    plain = not cubic and not node.arg("align_corners", False) and "_aa" not in node.name
    spatial = Resample(_spatial_sizes(node, ndim), "linear" if plain else "other")
    return OpFigures(other_flops=FLOPS_PER_TAP * taps * numel(node.output_shape), spatial=spatial)


@register_rule(aten.pixel_shuffle)
def pixel_shuffle(node: Node) -> OpFigures:
    """(C r^2, H, W) -> (C, H r, W r): output o comes from input position floor(o/r), like a
    nearest upsampling (channels rearranged): 0 FLOPs."""
    return OpFigures(spatial=Resample(_spatial_sizes(node, 2), "nearest"))


@register_rule(aten.pixel_unshuffle)
def pixel_unshuffle(node: Node) -> OpFigures:
    """(C, H r, W r) -> (C r^2, H, W): each output position gathers an r x r block, a window of
    size r and stride r: 0 FLOPs."""
    factor = int(node.arg("downscale_factor"))
    return OpFigures(spatial=Window((factor, factor), (factor, factor), ((0, 0), (0, 0)), (1, 1)))
