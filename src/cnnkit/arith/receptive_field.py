"""Receptive field, jump and start of a layer's outputs, per spatial axis (capability A5).

Seed 002's convention, in input-image coordinates where pixel i covers [i, i + 1) and has its
centre at i + 0.5:

- ``rf``: the width of the input interval that output position 0 (and any other) can see;
- ``jump``: the distance in the input between the centres of neighbouring outputs;
- ``start``: the centre of output position 0, so output i is centred at start + i * jump and sees
  [start + i jump - rf/2, start + i jump + rf/2].

The input itself is ``Field(rf=1, jump=1, start=0.5)`` on every axis. Values are exact: ints, or
:class:`fractions.Fraction` where they are not whole (transposed convolution and upsampling divide
the jump). Padding positions count: a field may extend beyond the image, as in seed 002.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from cnnkit.arith._axes import (
    IntOrSequence,
    as_tuple,
    exact,
    is_sequence,
    require_at_least,
    spatial_ndim,
)
from cnnkit.arith.conv import Padding, effective_kernel_size, padding_pairs
from cnnkit.errors import ConfigError, ShapeError

__all__ = [
    "Field",
    "global_field",
    "merge",
    "receptive_field_table",
    "shift",
    "step",
    "transpose_step",
    "upsample_step",
]

Number = int | Fraction


def _exact_tuple(values: Sequence[Number | float], name: str) -> tuple[Number, ...]:
    result = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float | Fraction):
            raise ConfigError(f"Field.{name} must hold numbers, got {value!r}")
        result.append(exact(Fraction(value)))
    return tuple(result)


@dataclass(frozen=True)
class Field:
    """Receptive field ``rf``, ``jump`` and ``start`` per spatial axis (seed 002's r, j, a)."""

    rf: tuple[Number, ...]
    jump: tuple[Number, ...]
    start: tuple[Number, ...]

    def __post_init__(self) -> None:
        for name in ("rf", "jump", "start"):
            value = getattr(self, name)
            values = tuple(value) if is_sequence(value) else (value,)
            object.__setattr__(self, name, _exact_tuple(values, name))
        if not len(self.rf) == len(self.jump) == len(self.start):
            raise ConfigError(
                f"Field needs one rf, jump and start per axis, got {self.rf}, {self.jump}, "
                f"{self.start}"
            )
        if any(r <= 0 for r in self.rf) or any(j <= 0 for j in self.jump):
            raise ConfigError(f"Field rf and jump must be positive, got {self.rf}, {self.jump}")

    @classmethod
    def input(cls, ndim: int = 2) -> Field:
        """The input image: rf = 1, jump = 1, start = 0.5 (centre of pixel 0) on each axis."""
        return cls(rf=(1,) * ndim, jump=(1,) * ndim, start=(Fraction(1, 2),) * ndim)

    @property
    def ndim(self) -> int:
        return len(self.rf)

    def centre(self, position: IntOrSequence = 0) -> tuple[Number, ...]:
        """Input coordinate of the centre of output ``position``: start + position * jump."""
        index = as_tuple(position, self.ndim, "position")
        return tuple(exact(a + i * j) for a, i, j in zip(self.start, index, self.jump, strict=True))

    def bounds(self, position: IntOrSequence = 0) -> tuple[tuple[Number, Number], ...]:
        """The input interval [left, right) seen by output ``position``, per axis."""
        half = [Fraction(r) / 2 for r in self.rf]
        return tuple(
            (exact(c - h), exact(c + h)) for c, h in zip(self.centre(position), half, strict=True)
        )


def _layer_tuples(
    field: Field, kernel_size: IntOrSequence, stride: IntOrSequence, dilation: IntOrSequence
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    kernel = as_tuple(kernel_size, field.ndim, "kernel_size")
    strides = as_tuple(stride, field.ndim, "stride")
    dilations = as_tuple(dilation, field.ndim, "dilation")
    require_at_least(strides, 1, "stride")
    return kernel, strides, effective_kernel_size(kernel, dilations)


def step(
    field: Field,
    kernel_size: IntOrSequence,
    stride: IntOrSequence = 1,
    padding: Padding = 0,
    dilation: IntOrSequence = 1,
) -> Field:
    """The field after a convolution or pooling layer (seed 002's recursion, per axis).

    j_l = j_{l-1} s_l
    r_l = r_{l-1} + (k_eff - 1) j_{l-1}
    a_l = a_{l-1} + ((k_eff - 1)/2 - p_l) j_{l-1},   k_eff = d_l (k_l - 1) + 1

    ``padding`` is an int, per-axis ints, per-axis (before, after) pairs, ``"same"`` or
    ``"valid"`` (as in :func:`~cnnkit.arith.conv.conv_output_size`); only the before side moves
    the start. Pools use the same step (their stride defaults to the kernel size in PyTorch: pass
    it). Seeds 000 §2.3, 003 §4.1 give the r and j parts.
    """
    kernel, strides, k_eff = _layer_tuples(field, kernel_size, stride, dilation)
    pairs = padding_pairs(padding, kernel, strides, as_tuple(dilation, field.ndim, "dilation"))
    return Field(
        rf=tuple(r + (k - 1) * j for r, k, j in zip(field.rf, k_eff, field.jump, strict=True)),
        jump=tuple(j * s for j, s in zip(field.jump, strides, strict=True)),
        start=tuple(
            a + (Fraction(k - 1, 2) - before) * j
            for a, k, (before, _), j in zip(field.start, k_eff, pairs, field.jump, strict=True)
        ),
    )


def shift(field: Field, offset: IntOrSequence) -> Field:
    """The field after dropping the first ``offset`` positions: ``x[..., offset:]`` per axis.

    a' = a + offset j,   r' = r,   j' = j

    Output 0 of the crop is input position ``offset``, whose centre is a + offset j (seed 002's
    convention); what each position sees does not change. A crop is seed 002's step with
    k = 1, s = 1 and padding p = -offset, which :func:`step` refuses (padding must be >= 0); a
    negative offset is padding before the axis and equals ``step(field, 1, 1, -offset)``.
    Strided slicing ``x[..., o::s]`` is ``step(shift(field, o), 1, s)``.

    >>> shift(Field.input(1), 2).start
    (Fraction(5, 2),)
    """
    offsets = as_tuple(offset, field.ndim, "offset")
    starts = tuple(a + o * j for a, o, j in zip(field.start, offsets, field.jump, strict=True))
    return Field(rf=field.rf, jump=field.jump, start=starts)


def transpose_step(
    field: Field,
    kernel_size: IntOrSequence,
    stride: IntOrSequence = 1,
    padding: IntOrSequence = 0,
    dilation: IntOrSequence = 1,
) -> Field:
    """The field after a transposed convolution (derived here; seed 002 defines the layer).

    Output o of ConvTranspose receives x[i] w[a] wherever o = i s - p + a d, so it depends on the
    inputs i with i s in [o + p - (k_eff - 1), o + p]: an interval of width (k_eff - 1)/s input
    positions centred on (o + p - (k_eff - 1)/2)/s. In input-image coordinates:

    j' = j / s
    r' = r + (k_eff - 1) j / s
    a' = a + (p - (k_eff - 1)/2) j / s

    This is the smallest interval that covers the field of every output position with one rule
    (it equals zero-insertion of s - 1 zeros followed by a stride-1 conv with padding
    k_eff - 1 - p). An output whose window ends fall between inputs (s does not divide the
    offsets) sees less: the uneven coverage behind checkerboard artefacts (seed 002).
    ``output_padding`` only adds positions at the end, so it does not change the field.
    """
    _, strides, k_eff = _layer_tuples(field, kernel_size, stride, dilation)
    if isinstance(padding, str):
        raise ConfigError(f"transposed convolution takes integer padding, got {padding!r}")
    pads = as_tuple(padding, field.ndim, "padding")
    require_at_least(pads, 0, "padding")
    jumps = tuple(Fraction(j) / s for j, s in zip(field.jump, strides, strict=True))
    return Field(
        rf=tuple(r + (k - 1) * j for r, k, j in zip(field.rf, k_eff, jumps, strict=True)),
        jump=jumps,
        start=tuple(
            a + (p - Fraction(k - 1, 2)) * j
            for a, k, p, j in zip(field.start, k_eff, pads, jumps, strict=True)
        ),
    )


def upsample_step(field: Field, scale_factor: IntOrSequence) -> Field:
    """The field after nearest-neighbour upsampling by an integer factor f per axis.

    Output o copies input floor(o / f): the transposed convolution with kernel f, stride f and
    padding 0, so j' = j/f, r' = r + (f - 1) j / f, a' = a - (f - 1) j / (2f)
    (:func:`transpose_step`). Seed 000 §2.1: UpSample(x2) gives H' = 2H.
    """
    factors = as_tuple(scale_factor, field.ndim, "scale_factor")
    require_at_least(factors, 1, "scale_factor")
    return transpose_step(field, factors, stride=factors)


def merge(fields: Sequence[Field]) -> Field:
    """The field of a node with several inputs (residual add, concatenation), per axis.

    The smallest interval covering every input's field of output position 0:
    left = min(a - r/2), right = max(a + r/2), r = right - left, a = (left + right)/2.
    The inputs' jumps must agree (they do whenever the tensors can be added or concatenated).
    """
    fields = list(fields)
    if not fields:
        raise ConfigError("merge needs at least one field")
    first = fields[0]
    for other in fields[1:]:
        if other.ndim != first.ndim:
            raise ShapeError(f"cannot merge fields of {first.ndim} and {other.ndim} spatial axes")
        if other.jump != first.jump:
            raise ShapeError(
                f"cannot merge receptive fields with different jumps {first.jump} and {other.jump}"
            )
    rf, start = [], []
    for axis in range(first.ndim):
        left = min(f.start[axis] - Fraction(f.rf[axis]) / 2 for f in fields)
        right = max(f.start[axis] + Fraction(f.rf[axis]) / 2 for f in fields)
        rf.append(right - left)
        start.append((left + right) / 2)
    return Field(rf=tuple(rf), jump=first.jump, start=tuple(start))


def global_field(input_size: IntOrSequence) -> Field:
    """The field of a global pooling output: the whole input image of size n on each axis.

    rf = n, start = n/2 (the image centre), jump = n (a global pool has one output per axis).
    """
    sizes = as_tuple(input_size, spatial_ndim(input_size), "input_size")
    require_at_least(sizes, 1, "input_size")
    return Field(rf=sizes, jump=sizes, start=tuple(Fraction(n, 2) for n in sizes))


_LAYER_KINDS = ("conv", "pool", "transpose", "upsample")
_LAYER_KEYS = {"kind", "kernel_size", "stride", "padding", "dilation", "scale_factor", "name"}


def receptive_field_table(
    layers: Sequence[Mapping[str, object]], ndim: int | None = None
) -> list[Field]:
    """The field after each layer of a sequential stack (seed 002's ``rf_table``).

    Each layer is a dict with ``kernel_size`` and optional ``stride`` (default 1; a ``pool``'s
    defaults to its kernel), ``padding`` (0), ``dilation`` (1) and ``kind``: ``"conv"`` (default),
    ``"pool"``, ``"transpose"`` or ``"upsample"`` (which takes ``scale_factor`` instead).
    ``ndim`` defaults to the longest per-axis value in the layers, else 1.

    >>> [f.rf[0] for f in receptive_field_table([{"kernel_size": 3}, {"kernel_size": 3}])]
    [3, 5]
    """
    if ndim is None:
        ndim = spatial_ndim(*(v for layer in layers for k, v in layer.items() if k != "name"))
    field = Field.input(ndim)
    table = []
    for index, layer in enumerate(layers):
        unknown = set(layer) - _LAYER_KEYS
        if unknown:
            raise ConfigError(
                f"layer {index}: unknown keys {sorted(unknown)}; known: {sorted(_LAYER_KEYS)}"
            )
        kind = layer.get("kind", "conv")
        if kind not in _LAYER_KINDS:
            raise ConfigError(f"layer {index}: kind must be one of {_LAYER_KINDS}, got {kind!r}")
        if kind == "upsample":
            field = upsample_step(field, layer.get("scale_factor", 2))  # type: ignore[arg-type]  # layer specs are validated by parse_layers before this point
            table.append(field)
            continue
        if "kernel_size" not in layer:
            raise ConfigError(f"layer {index}: kernel_size is required")
        kernel = layer["kernel_size"]
        default_stride = kernel if kind == "pool" else 1
        arguments = {
            "kernel_size": kernel,
            "stride": layer.get("stride", default_stride),
            "padding": layer.get("padding", 0),
            "dilation": layer.get("dilation", 1),
        }
        stepper = transpose_step if kind == "transpose" else step
        field = stepper(field, **arguments)  # type: ignore[arg-type]  # layer specs are validated by parse_layers before this point
        table.append(field)
    return table
