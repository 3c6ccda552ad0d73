"""How an op moves values along the input's spatial axes: what a rule tells the RF propagation.

A rule returns one of these descriptors with its figures; :mod:`cnnkit.analysis.receptive_field`
interprets it over the tensor's dimensions (it knows which dimension holds which input axis,
through views, permutes and flattening) and applies :mod:`cnnkit.arith.receptive_field`'s steps.
Dimensions are those of the op's first data input unless said otherwise; negative dims count
from the end.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pointwise:
    """Each output element depends on the same position of every input (broadcasting allowed)."""


@dataclass(frozen=True)
class Window:
    """A sliding window over the last ``len(kernel_size)`` dims: convolution or pooling.

    ``padding`` holds one (before, after) pair per windowed dim. ``transposed`` marks a
    transposed convolution (its padding is symmetric and crops the output). Adaptive pools use
    ``global_dims`` (an output of size 1 sees the whole axis) and ``unknown_dims`` (windows of
    varying size: no single field), as indices into the windowed dims.
    """

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    transposed: bool = False
    global_dims: tuple[int, ...] = ()
    unknown_dims: tuple[int, ...] = ()


@dataclass(frozen=True)
class Unfold:
    """Windows cut along ``dims``: one every ``stride`` positions, each of ``kernel_size``
    positions ``dilation`` apart, after ``padding`` zeros on both sides.

    ``Tensor.unfold(dim, size, step)``: one dim, which keeps one position per window, and the
    offsets inside a window in a new last dim. ``flat`` (``F.unfold``, im2col): the last two
    dims, (C, H, W) -> (C kh kw, Lh Lw), the windows' grid flattened into the last dim.
    ``fold`` (``F.fold``, col2im): the reverse, (C kh kw, Lh Lw) -> (C, H, W), every output
    position the sum of the windows that cover it: a transposed window.
    """

    dims: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...] = (0, 0)
    dilation: tuple[int, ...] = (1, 1)
    flat: bool = False
    fold: bool = False


@dataclass(frozen=True)
class Resample:
    """Upsampling of the last ``len(output_size)`` dims to ``output_size``.

    ``taps``: ``"nearest"`` (one input per output), ``"linear"`` (two per axis, half-pixel
    centres), or ``"other"`` (bicubic, align_corners: no closed form, the field is unknown).
    """

    output_size: tuple[int, ...]
    taps: str = "nearest"


@dataclass(frozen=True)
class Mix:
    """Every output element depends on all positions along ``dims`` (reductions, softmax, norms).

    The output keeps the input's rank (``keepdim``, softmax, ``index_select``) or drops
    ``dims``. ``exact=False`` marks ops that rearrange positions along ``dims`` in a way the
    field cannot follow (``repeat``, gathers): a spatial axis among them becomes unknown
    instead of global. ``statistics=True`` marks ops whose output at a position is the input at
    that position combined with statistics of the whole ``dims`` broadcast back (normalisation,
    softmax): the exact field becomes global, the local field (which cuts broadcasts) is kept.
    """

    dims: tuple[int, ...]
    exact: bool = True
    statistics: bool = False


@dataclass(frozen=True)
class MatMul:
    """A matrix product ``a @ b`` of the inputs at ``operands`` (batch dims broadcast)."""

    operands: tuple[int, int] = (0, 1)


@dataclass(frozen=True)
class Reshape:
    """A view with another shape (view, reshape, flatten, squeeze, unsqueeze)."""


@dataclass(frozen=True)
class Permute:
    """The input's dims reordered: output dim i is input dim ``dims[i]``."""

    dims: tuple[int, ...]


@dataclass(frozen=True)
class Slice:
    """Every ``step``-th position from ``start`` along ``dim`` (``x[..., start::step]``)."""

    dim: int
    start: int
    step: int = 1


@dataclass(frozen=True)
class Select:
    """One position ``index`` along ``dim``, which disappears from the output."""

    dim: int
    index: int


@dataclass(frozen=True)
class Concat:
    """Inputs joined along ``dim`` (``stack``: a new dim inserted at ``dim``)."""

    dim: int
    new_dim: bool = False


@dataclass(frozen=True)
class Split:
    """The input cut along ``dim`` into consecutive pieces, one per output (``unbind``: pieces
    of size 1 whose ``dim`` disappears)."""

    dim: int
    removes_dim: bool = False


@dataclass(frozen=True)
class Pad:
    """Padding of the last dims: ``pairs[0]`` is the LAST dim's (before, after), as in F.pad.

    Negative values crop.
    """

    pairs: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Constant:
    """The output's values do not depend on the input's values (``zeros_like``, ``bernoulli_``)."""


@dataclass(frozen=True)
class Global:
    """Every output element depends on the whole input (e.g. a gather by data-dependent index)."""


@dataclass(frozen=True)
class Unknown:
    """No closed form: the receptive field after this op is reported as unknown (null)."""


Spatial = (
    Pointwise
    | Window
    | Unfold
    | Resample
    | Mix
    | MatMul
    | Reshape
    | Permute
    | Slice
    | Select
    | Concat
    | Split
    | Pad
    | Constant
    | Global
    | Unknown
)

POINTWISE = Pointwise()
RESHAPE = Reshape()
CONSTANT = Constant()
GLOBAL = Global()
UNKNOWN = Unknown()
