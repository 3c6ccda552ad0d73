"""The outputs of a few slow meta kernels, made directly: same shapes, strides and dtypes.

On the meta device PyTorch computes many ops' outputs through Python reference code; batch norm
costs about 2 ms per call that way (85% of a ResNet-50's meta forward), layer norm, matrix
products and GELU about 1-2 ms. The capture only needs empty tensors of the right shape, stride
and dtype, so for these ops it makes them directly. Each function returns ``None`` for anything
it does not recognise (an unusual layout or dtype, mismatched shapes) and the real meta kernel
runs instead, so errors are PyTorch's own. tests/analysis/test_fast_meta.py checks every output
against the real meta kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

aten = torch.ops.aten
# one device object: torch.empty parses a device string on every call (~1 us of ~3)
META = torch.device("meta")
_REDUCED = (torch.float16, torch.bfloat16)

FastKernel = Callable[[tuple[Any, ...], dict[str, Any]], Any]


def _strides(shape: torch.Size, memory_format: torch.memory_format) -> tuple[int, ...]:
    """The strides PyTorch gives a new tensor of ``shape`` in ``memory_format`` (remembered:
    a meta tensor made only to read them costs ~2 us, and a capture asks ~1,000 times)."""
    key = (tuple(shape), memory_format)
    strides = _STRIDES.get(key)
    if strides is None:
        strides = _STRIDES[key] = torch.empty(
            shape, device=META, memory_format=memory_format
        ).stride()
    return strides


_STRIDES: dict[tuple[tuple[int, ...], torch.memory_format], tuple[int, ...]] = {}


def _dense_format(x: torch.Tensor) -> torch.memory_format | None:
    """The memory format whose canonical strides ``x`` has exactly (contiguous, or channels_last
    for 4-D), else ``None``: odd strides of size-1 dims are left to the real kernel."""
    key = (x.shape, x.stride())  # remembered per shape and strides: asked for most ops
    known = _FORMATS.get(key, _UNSEEN)
    if known is _UNSEEN:
        if len(_FORMATS) >= _LIMIT:
            _FORMATS.clear()
        known = _FORMATS[key] = _format_of(*key)
    return known  # type: ignore[return-value]  # _UNSEEN was replaced above


def _format_of(shape: torch.Size, stride: tuple[int, ...]) -> torch.memory_format | None:
    if stride == _strides(shape, torch.contiguous_format):
        return torch.contiguous_format
    if len(shape) == 4 and stride == _strides(shape, torch.channels_last):
        return torch.channels_last
    return None


_UNSEEN = object()
_LIMIT = 100_000  # remembered layouts before the memo is emptied
_FORMATS: dict[tuple[torch.Size, tuple[int, ...]], torch.memory_format | None] = {}


def _meta_floats(*tensors: Any) -> bool:
    """All given tensors (``None`` allowed) are meta tensors of the first one's float dtype."""
    first = tensors[0]
    if not isinstance(first, torch.Tensor) or not first.is_floating_point():
        return False
    dtype = first.dtype
    for t in tensors:  # a loop, not all(<generator>): this runs for most ops of a capture
        if t is not None and not (isinstance(t, torch.Tensor) and t.is_meta and t.dtype == dtype):
            return False
    return True


def _unary(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x = args[0]
    layout = _dense_format(x) if _meta_floats(x) else None
    if layout is None:
        return None
    return torch.empty(x.shape, dtype=x.dtype, device=META, memory_format=layout)


def _unary_inplace(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x = args[0]
    return x if _meta_floats(x) else None


def _statistics_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _REDUCED else dtype


def _batch_norm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 8 or kwargs:
        return None
    x, weight, bias, running_mean, running_var = args[:5]
    if not _meta_floats(x, weight, bias, running_mean, running_var) or x.dim() < 2:
        return None
    if not args[5] and (running_mean is None or running_var is None):
        return None  # eval without running statistics: PyTorch refuses it
    if args[5] and x.numel() <= x.shape[1]:
        return None  # training on one value per channel: PyTorch refuses it
    channels = x.shape[1]
    if any(t is not None and t.shape != (channels,) for t in args[1:5]):
        return None
    layout = _dense_format(x)
    if layout is None:
        return None
    stats = _statistics_dtype(x.dtype)
    return (
        torch.empty(x.shape, dtype=x.dtype, device=META, memory_format=layout),
        torch.empty(channels, dtype=stats, device=META),
        torch.empty(channels, dtype=stats, device=META),
    )


def _layer_norm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 5 or kwargs:
        return None
    x, normalized_shape, weight, bias, _ = args
    count = len(normalized_shape)
    shape = tuple(normalized_shape)
    if not _meta_floats(x, weight, bias) or count == 0 or tuple(x.shape[-count:]) != shape:
        return None
    if any(t is not None and tuple(t.shape) != shape for t in (weight, bias)):
        return None
    stats_shape = (*x.shape[:-count], *([1] * count))
    stats = _statistics_dtype(x.dtype)
    # layer norm works on input.contiguous(): a fresh contiguous tensor, or x itself (whose odd
    # strides of size-1 dims are then left to the real kernel)
    if x.is_contiguous() and _dense_format(x) is not torch.contiguous_format:
        return None
    out = torch.empty(x.shape, dtype=x.dtype, device=META)
    return (
        out,
        torch.empty(stats_shape, dtype=stats, device=META),
        torch.empty(stats_shape, dtype=stats, device=META),
    )


def _mm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 2 or kwargs:
        return None
    a, b = args
    if not _meta_floats(a, b) or a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
        return None
    return torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device=META)


def _addmm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 3 or set(kwargs) - {"beta", "alpha"}:
        return None
    bias, a, b = args
    out = _mm((a, b), {})
    if out is None or not _meta_floats(a, bias) or bias.dim() > 2:
        return None
    for size, target in zip(reversed(bias.shape), reversed(out.shape), strict=False):
        if size not in (1, target):
            return None
    return out


def _bmm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 2 or kwargs:
        return None
    a, b = args
    if not _meta_floats(a, b) or a.dim() != 3 or b.dim() != 3:
        return None
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        return None
    return torch.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=a.dtype, device=META)


def _convolution(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A regular (not transposed) convolution of contiguous tensors: out = floor((n + 2p -
    d(k - 1) - 1)/s) + 1 per axis, contiguous. Anything PyTorch might refuse is left to it."""
    if len(args) != 9 or kwargs:
        return None
    x, weight, bias, stride, padding, dilation, transposed, _, groups = args
    if transposed or not _meta_floats(x, weight, bias):
        return None
    ndim = weight.dim() - 2
    if x.dim() != weight.dim() or ndim not in (1, 2, 3) or x.shape[0] < 1:
        return None
    if not (len(stride) == len(padding) == len(dilation) == ndim) or groups < 1:
        return None
    if x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        return None
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        return None
    if _dense_format(x) is not torch.contiguous_format:
        return None
    if _dense_format(weight) is not torch.contiguous_format:
        return None
    sizes = []
    for n, k, s, p, d in zip(x.shape[2:], weight.shape[2:], stride, padding, dilation, strict=True):
        if s < 1 or d < 1 or p < 0 or k < 1:
            return None
        out = (n + 2 * p - d * (k - 1) - 1) // s + 1
        if out < 1:
            return None  # an input too small: PyTorch's own error names the sizes
        sizes.append(out)
    return torch.empty((x.shape[0], weight.shape[0], *sizes), dtype=x.dtype, device=META)


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """NumPy broadcasting of two shapes, or ``None`` when they do not broadcast."""
    if a == b:
        return a
    result = []
    for x, y in zip(
        reversed((1,) * (len(b) - len(a)) + a), reversed((1,) * (len(a) - len(b)) + b), strict=True
    ):
        if x != y and 1 not in (x, y):
            return None
        result.append(y if x == 1 else x)
    return tuple(reversed(result))


def _binary(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``add``/``sub``/``mul``/``div`` of two contiguous meta tensors of one float dtype (or a
    tensor and a Python number): a contiguous tensor of the broadcast shape. Any other layout
    (channels_last, a transposed view), an ``alpha``/``rounding_mode``, mixed dtypes, or a 0-d
    tensor operand is left to PyTorch."""
    if len(args) != 2 or kwargs:
        return None
    a, b = args
    if not (isinstance(a, torch.Tensor) and _meta_floats(a) and a.dim() > 0):
        return None
    if isinstance(b, torch.Tensor):
        if (
            not _meta_floats(a, b)
            or b.dim() == 0
            or _dense_format(b) is not torch.contiguous_format
        ):
            return None
        shape = _broadcast(tuple(a.shape), tuple(b.shape))
    elif isinstance(b, int | float) and not isinstance(b, bool):
        shape = tuple(a.shape)
    else:
        return None
    if shape is None or _dense_format(a) is not torch.contiguous_format:
        return None
    return torch.empty(shape, dtype=a.dtype, device=META)


def _div_rounding(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``div(a, b, rounding_mode="floor" | "trunc")`` (``a // b``) of what :func:`_binary`
    takes (float tensors of one dtype, or a float tensor and a Python number): the same
    output, as rounding keeps a float dtype. Its Python reference costs ~3 ms a call on meta
    (XCiT's Fourier position encoding calls it once per forward)."""
    if set(kwargs) != {"rounding_mode"} or kwargs["rounding_mode"] not in ("floor", "trunc"):
        return None
    return _binary(args, {})


def _upsample_2d(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Bilinear and bicubic resizing of a contiguous (N, C, H, W) tensor to ``output_size``:
    a contiguous (N, C, *output_size). PyTorch has no meta kernel for bicubic (its Python
    decomposition interpolates on meta tensors: ~40 ms a call)."""
    if not 3 <= len(args) <= 5 or kwargs:
        return None
    x, size = args[0], args[1]
    if not _meta_floats(x) or x.dim() != 4 or min(x.shape) < 1:
        return None
    if not isinstance(size, list | tuple) or len(size) != 2:
        return None
    if not all(type(n) is int and n > 0 for n in size):
        return None
    if _dense_format(x) is not torch.contiguous_format:
        return None
    return torch.empty((x.shape[0], x.shape[1], *size), dtype=x.dtype, device=META)


def _view_method(method: Callable[..., Any], arity: tuple[int, ...]) -> FastKernel:
    """A view op (``view``, ``expand``, ``permute``...) through the tensor's own method: the
    same C++ kernel without ``OpOverload.__call__`` (~4 us of Python a call) and, in the
    capture, without a second round trip through its torch function mode. Runs only on a
    plain meta tensor with the schema's positional arguments; anything PyTorch refuses returns
    ``None`` so that the real kernel runs and raises its own error."""

    def kernel(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if len(args) not in arity or kwargs:
            return None
        x = args[0]
        if type(x) is not torch.Tensor or not x.is_meta:
            return None
        try:
            return method(*args)
        except (RuntimeError, IndexError, TypeError, ValueError):
            return None

    return kernel


def _listed(method: Callable[..., Any]) -> Callable[..., Any]:
    """A method returning several views, as the list that the aten op returns."""
    return lambda *args: list(method(*args))


def _slice(x: torch.Tensor, dim: int = 0, start: Any = None, end: Any = None, step: int = 1) -> Any:
    """``aten.slice`` as ``narrow`` (step 1) or ``as_strided`` (a larger step), once start and
    end are clamped into the axis as slice clamps them (None: the whole axis; negative: from
    the end): ``(last - first + step - 1) // step`` elements, ``step`` times the stride,
    starting ``first`` elements in. ``None`` (the real kernel runs) for any other step or a
    symbolic bound."""
    if type(step) is not int or step < 1:
        return None
    if not all(v is None or type(v) is int for v in (start, end)):
        return None
    size = x.shape[dim]
    first = 0 if start is None else (start + size if start < 0 else start)
    last = size if end is None else (end + size if end < 0 else end)
    first = min(max(first, 0), size)
    last = min(max(last, first), size)
    if step == 1:
        return x.narrow(dim, first, last - first)
    axis = dim % x.dim()
    sizes, strides = list(x.shape), list(x.stride())
    sizes[axis] = (last - first + step - 1) // step
    offset = x.storage_offset() + first * strides[axis]
    strides[axis] *= step
    return x.as_strided(sizes, strides, offset)


# _unsafe_view is view_impl without autograd's view tracking: the same shape, strides, storage
VIEWS: dict[Any, tuple[Callable[..., Any], tuple[int, ...]]] = {
    aten.view.default: (torch.Tensor.view, (2,)),
    aten._unsafe_view.default: (torch.Tensor.view, (2,)),
    aten.expand.default: (torch.Tensor.expand, (2,)),
    aten.t.default: (torch.Tensor.t, (1,)),
    aten.permute.default: (torch.Tensor.permute, (2,)),
    aten.transpose.int: (torch.Tensor.transpose, (3,)),
    aten.unsqueeze.default: (torch.Tensor.unsqueeze, (2,)),
    aten.squeeze.dim: (torch.Tensor.squeeze, (2,)),
    aten.select.int: (torch.Tensor.select, (3,)),
    aten.slice.Tensor: (_slice, (1, 2, 3, 4, 5)),
    aten.split.Tensor: (_listed(torch._C.TensorBase.split), (2, 3)),
    aten.split_with_sizes.default: (_listed(torch.Tensor.split_with_sizes), (2, 3)),
    aten.unbind.int: (_listed(torch.Tensor.unbind), (1, 2)),
}

UNARY = (
    "relu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "hardswish",
    "hardsigmoid",
    "mish",
    "elu",
    "hardtanh",  # ReLU6 (MobileNetV2): ~1 ms a call through the Python reference
    "leaky_relu",
)
FAST: dict[Any, FastKernel] = {
    aten.native_batch_norm.default: _batch_norm,
    aten.native_layer_norm.default: _layer_norm,
    aten.mm.default: _mm,
    aten.addmm.default: _addmm,
    aten.bmm.default: _bmm,
    aten.convolution.default: _convolution,
    aten.upsample_bilinear2d.default: _upsample_2d,
    aten.upsample_bicubic2d.default: _upsample_2d,
}
for _name in ("add", "sub", "mul", "div"):
    FAST[getattr(aten, _name).Tensor] = _binary
FAST[aten.div.Tensor_mode] = _div_rounding
for _func, (_method, _arity) in VIEWS.items():
    FAST[_func] = _view_method(_method, _arity)
for _name in UNARY:
    FAST[getattr(aten, _name).default] = _unary
    FAST[getattr(aten, _name + "_").default] = _unary_inplace


# by id: an overload's __hash__ is Python code (slow); FAST holds the overloads, so ids stay theirs
_FAST_BY_ID = {id(func): kernel for func, kernel in FAST.items()}


def fast_outputs(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any | None:
    """The outputs of ``func(*args, **kwargs)`` on meta tensors, or ``None`` to run it."""
    kernel = _FAST_BY_ID.get(id(func))
    return None if kernel is None else kernel(args, kwargs)
