"""Views that move pixels between space and channels: space-to-depth, depth-to-space, a pixel
shuffle written by hand, patchify.

A view that cuts a whole axis of size m b into a coarse piece (m, outer) and a fine piece (b,
inner) in different dims is space-to-depth, whatever permutes and views follow: every element
at coarse position i reads pixel i b + j for some fine index j, so the positions of the map are
the coarse ones, each seeing a block of b pixels: a window of size b and stride b, exactly as
``pixel_unshuffle`` (and TResNet's stem, ViT's patchify). The fine piece becomes a plain factor
(channels, or positions inside a window). The reverse, a dim whose factors are one whole axis
(size m, outer) then plain factors of size r (inner), is depth-to-space: output o reads
position floor(o / r), a nearest upsampling by r, exactly as ``pixel_shuffle``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from cnnkit.analysis._axis_steps import _stepped, change_axis
from cnnkit.analysis.layout import AxisState, Dim, Factor, Layout
from cnnkit.arith.receptive_field import step, upsample_step


def regrid(before: Layout, after: Layout, spatial: int) -> Layout:
    """``after`` (the layout a view gives, from :func:`~cnnkit.analysis.layout.reshape_dims`)
    with space-to-depth and depth-to-space recognised, each axis's fields stepped."""
    if not moves_pixels(after.dims, spatial):
        return after
    return searched(before, after, spatial)


def searched(before: Layout, after: Layout, spatial: int) -> Layout:
    """:func:`regrid` without the first look: every axis and dim searched for the patterns."""
    dims = [list(factors) for factors in after.dims]
    fields, local = list(after.fields), list(after.local)
    changed = False
    for axis in range(spatial):
        pieces = [(d, k) for d, factors in enumerate(dims) for k, f in enumerate(factors)
                  if f.axis == axis]  # fmt: skip
        whole = [f for factors in before.dims for f in factors if f.axis == axis]
        if len(pieces) != 2 or len(whole) != 1 or not whole[0].clean or whole[0].reduced:
            continue
        (d0, k0), (d1, k1) = pieces
        if d0 == d1:
            continue
        coarse, fine = dims[d0][k0], dims[d1][k1]
        if coarse.size * fine.size != whole[0].size:
            continue
        dims[d0][k0] = Factor(axis, coarse.size, True)
        dims[d1][k1] = Factor(None, fine.size)
        block = fine.size
        change_axis(fields, local, axis, functools.partial(_stepped, step, block, block, 0))
        changed = True
    if len(dims) >= 2 + spatial:  # a map, not a flattened feature vector
        candidates = {d: _depth_to_space(factors) for d, factors in enumerate(dims)}
        found = {d: joined for d, joined in candidates.items() if joined is not None}
        held = {f.axis for factors in dims for f in factors if f.axis is not None}
        for d, (axis, size, factor) in found.items():
            if size == 1 and len(found) < len(held):  # a 1x1 map grows only where every
                # axis does (a pixel shuffle); one size-1 axis beside plain factors is a view
                # that put it there (halo attention's one window of offsets)
                continue
            if _axis_elsewhere(dims, d, axis):
                continue
            dims[d] = [Factor(axis, size * factor, True)]
            change_axis(fields, local, axis, functools.partial(_stepped, upsample_step, factor))
            changed = True
    if not changed:
        return after
    return Layout(tuple(tuple(f for f in factors) for factors in dims), _t(fields), _t(local))


def moves_pixels(dims: Sequence[Dim], spatial: int) -> bool:
    """Whether :func:`regrid` can find either pattern in a view's ``dims``. Most views move no
    pixel (a transformer splits heads, flattens tokens): this first look spares them the
    copies and searches."""
    held = [f.axis for factors in dims for f in factors if f.axis is not None]
    if any(held.count(axis) == 2 for axis in range(spatial)):  # an axis in two pieces
        return True
    return len(dims) >= 2 + spatial and any(
        len(factors) > 1 and _depth_to_space(factors) is not None for factors in dims
    )


def _depth_to_space(factors: Sequence[Factor]) -> tuple[int, int, int] | None:
    """(axis, its size, the plain factor r) when ``factors`` are one whole clean axis, then
    only plain factors (channels become the inner positions)."""
    if len(factors) < 2:
        return None
    head, rest = factors[0], factors[1:]
    if head.axis is None or not head.clean or head.reduced or head.size < 1:
        return None
    if any(f.axis is not None for f in rest):
        return None
    factor = 1
    for f in rest:
        factor *= f.size
    return (head.axis, head.size, factor) if factor > 1 else None


def _axis_elsewhere(dims: list[list[Factor]], d: int, axis: int) -> bool:
    return any(f.axis == axis for e, factors in enumerate(dims) if e != d for f in factors)


def _t(values: list[AxisState]) -> tuple[AxisState, ...]:
    return tuple(values)


Dims = tuple[Dim, ...]
