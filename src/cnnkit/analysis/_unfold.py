"""Windows cut out of a map and put back: ``Tensor.unfold``, ``F.unfold`` (im2col), ``F.fold``.

Overlapping windows (step < size: halo attention's key/value blocks) are exact in the same way
as a convolution: a window's elements are the ``k`` positions ``l s - p + a d`` of the axis, so
position ``l`` of the window grid sees arith's ``step(k, s, p, d)`` of the input's field; the
offsets ``a`` become a plain dim (channels of the window), as space-to-depth's fine piece does.
``F.fold`` is the reverse: output ``o`` sums the windows with ``o = l s - p + a d``, which is a
transposed convolution's geometry (arith's ``transpose_step``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from cnnkit.analysis import spatial as sp
from cnnkit.analysis._axis_steps import Change, _forget_both, _replaced, _stepped, change_axis
from cnnkit.analysis.layout import (
    Dim,
    Factor,
    Layout,
    axis_dim,
    global_axis,
    plain_dim,
    reduced_dim,
)
from cnnkit.arith.receptive_field import step, transpose_step


def unfold(
    kind: sp.Unfold, layout: Layout, shape: Sequence[int], out: Sequence[int], sizes: Sequence[int]
) -> Layout:
    """The layout after ``kind`` (its dims and both fields per axis)."""
    if kind.fold:
        return _fold(kind, layout, shape, out)
    dims, fields, local = list(layout.dims), list(layout.fields), list(layout.local)
    rank = len(shape)
    cut = [d + rank if d < 0 else d for d in kind.dims]
    grid: list[Factor] = []
    for i, d in enumerate(cut):
        count = _windows(shape[d], kind, i)
        axis = layout.clean_axis(d)
        if axis is None:
            fields, local = _forget_both(fields, local, layout.axes_in(d))
            factors = plain_dim(count)
        elif _one_window_over_all(kind, i, shape[d]):  # a mix over the whole axis
            change_axis(fields, local, axis, functools.partial(_replaced, global_axis(sizes[axis])))
            factors = reduced_dim((axis,))
        else:
            change_axis(fields, local, axis, _change(kind, i))
            factors = axis_dim(axis, count)
        dims[d] = factors
        grid.extend(factors)
    if not kind.flat:  # Tensor.unfold: the offsets in a new last dim
        dims.append(plain_dim(kind.kernel_size[0]))
        return Layout(tuple(dims), tuple(fields), tuple(local))
    channel = rank - len(cut) - 1  # (N, C, H, W) -> (N, C kh kw, Lh Lw)
    fields, local = _forget_both(fields, local, layout.axes_in(channel))
    result: list[Dim] = [*dims[:channel], plain_dim(out[channel]), tuple(grid)]
    return Layout(tuple(result), tuple(fields), tuple(local))


def _fold(kind: sp.Unfold, layout: Layout, shape: Sequence[int], out: Sequence[int]) -> Layout:
    """(N, C kh kw, Lh Lw) -> (N, C, H, W): the grid dim must hold the windows' positions of
    two axes in order (as im2col left them); anything else has no known field."""
    rank = len(shape)
    channel, flat = rank - 2, rank - 1
    dims, fields, local = list(layout.dims), list(layout.fields), list(layout.local)
    counts = [_windows(out[len(out) - 2 + i], kind, i) for i in range(2)]
    axes = _grid_axes(layout.dims[flat], counts)
    fields, local = _forget_both(fields, local, layout.axes_in(channel))
    if axes is None:
        fields, local = _forget_both(fields, local, layout.axes_in(flat))
    spatial: list[Dim] = []
    for i, size in enumerate(out[-2:]):
        if axes is None:
            spatial.append(plain_dim(size))
            continue
        change_axis(fields, local, axes[i], _change(kind, i))
        spatial.append(axis_dim(axes[i], size))
    result = [*dims[:channel], plain_dim(out[channel]), *spatial]
    return Layout(tuple(result), tuple(fields), tuple(local))


def _grid_axes(factors: Dim, counts: Sequence[int]) -> tuple[int, int] | None:
    """The two axes whose positions ``factors`` hold, one clean factor of ``counts[i]``
    positions each, in order."""
    moving = [f for f in factors if f.size != 1 or f.axis is not None]
    if len(moving) != 2:
        return None
    first, second = moving
    for f, count in zip(moving, counts, strict=True):
        if f.axis is None or not f.clean or f.reduced or f.size != count:
            return None
    if first.axis == second.axis:
        return None
    return first.axis, second.axis  # type: ignore[return-value]  # both axes were checked not None in the loop above


def _one_window_over_all(kind: sp.Unfold, i: int, size: int) -> bool:
    """One window that holds every position of the dim (halo attention on a map no larger than
    its block): each element of it sees the whole axis, as after a global pool."""
    k, p, d = kind.kernel_size[i], kind.padding[i], kind.dilation[i]
    return size > 1 and d == 1 and k >= size + p


def _windows(size: int, kind: sp.Unfold, i: int) -> int:
    """How many windows fit along a dim of ``size`` (PyTorch's conv output size)."""
    span = kind.dilation[i] * (kind.kernel_size[i] - 1) + 1
    return (size + 2 * kind.padding[i] - span) // kind.stride[i] + 1


def _change(kind: sp.Unfold, i: int) -> Change:
    """arith's step of window ``i`` (``transpose_step`` for fold)."""
    k, s, p, d = kind.kernel_size[i], kind.stride[i], kind.padding[i], kind.dilation[i]
    if kind.fold:
        return functools.partial(_stepped, transpose_step, k, s, p, d)
    return functools.partial(_stepped, step, k, s, ((p, p),), d)
