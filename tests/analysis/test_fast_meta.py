"""The shortcut meta kernels make exactly the tensors the real meta kernels make."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.analysis._fast_meta import FAST, UNARY, fast_outputs
from tests.analysis.meta_tensors import meta_tensor

aten = torch.ops.aten
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def _same(fast, real) -> None:
    fast = tuple(fast) if isinstance(fast, tuple | list) else (fast,)
    real = tuple(real) if isinstance(real, tuple | list) else (real,)
    assert len(fast) == len(real)
    for a, b in zip(fast, real, strict=True):
        assert (a.shape, a.stride(), a.dtype, a.device) == (b.shape, b.stride(), b.dtype, b.device)


shapes = st.lists(st.integers(1, 5), min_size=1, max_size=5).map(tuple)
layouts = st.sampled_from(["contiguous", "channels_last", "transposed"])


def _check(func, args, kwargs=None) -> bool:
    kwargs = kwargs or {}
    fast = fast_outputs(func, args, kwargs)
    try:
        real = func(*args, **kwargs)
    except Exception:
        assert fast is None  # the shortcut never hides an error
        return False
    if fast is not None:
        _same(fast, real)
    return fast is not None


@settings(max_examples=60)
@given(shape=shapes, dtype=st.sampled_from(DTYPES), layout=layouts, name=st.sampled_from(UNARY))
def test_unary_activations(shape, dtype, layout, name):
    x = meta_tensor(shape, dtype, layout)
    _check(getattr(aten, name).default, (x,))
    inplace = getattr(aten, name + "_").default
    if fast_outputs(inplace, (x,), {}) is not None:
        assert fast_outputs(inplace, (x,), {}) is x


@settings(max_examples=80)
@given(
    shape=st.lists(st.integers(1, 5), min_size=2, max_size=5).map(tuple),
    dtype=st.sampled_from(DTYPES),
    layout=layouts,
    training=st.booleans(),
    affine=st.booleans(),
    stats=st.booleans(),
    wrong=st.booleans(),
)
def test_batch_norm(shape, dtype, layout, training, affine, stats, wrong):
    x = meta_tensor(shape, dtype, layout)
    channels = x.shape[1] + (1 if wrong else 0)
    vector = torch.empty(channels, dtype=dtype, device="meta")
    weight = vector if affine else None
    running = vector if stats else None
    _check(
        aten.native_batch_norm.default, (x, weight, weight, running, running, training, 0.1, 1e-5)
    )


@settings(max_examples=60)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple),
    count=st.integers(1, 3),
    dtype=st.sampled_from(DTYPES),
    layout=layouts,
    affine=st.booleans(),
)
def test_layer_norm(shape, count, dtype, layout, affine):
    x = meta_tensor(shape, dtype, layout)
    normalized = list(x.shape[-min(count, x.dim()) :])
    weight = torch.empty(normalized, dtype=dtype, device="meta") if affine else None
    _check(aten.native_layer_norm.default, (x, normalized, weight, weight, 1e-5))


@settings(max_examples=60)
@given(
    m=st.integers(1, 6),
    k=st.integers(1, 6),
    n=st.integers(1, 6),
    k2=st.integers(1, 6),
    dtype=st.sampled_from(DTYPES),
    bias=st.sampled_from(["none", "row", "full", "column"]),
    transposed=st.booleans(),
)
def test_matrix_products(m, k, n, k2, dtype, bias, transposed):
    a = torch.empty(m, k, dtype=dtype, device="meta")
    b = (
        torch.empty(n, k2, dtype=dtype, device="meta").t()
        if transposed
        else torch.empty(k2, n, dtype=dtype, device="meta")
    )
    _check(aten.mm.default, (a, b))
    bias_shape = {"none": (), "row": (n,), "full": (m, n), "column": (m, 1)}[bias]
    _check(aten.addmm.default, (torch.empty(bias_shape, dtype=dtype, device="meta"), a, b))
    _check(aten.bmm.default, (a.expand(3, m, k), b.expand(3, *b.shape)))


@settings(max_examples=150)
@given(
    ndim=st.integers(1, 3),
    batch=st.integers(1, 2),
    groups=st.integers(1, 3),
    channels=st.integers(1, 3),
    out_per_group=st.integers(1, 3),
    size=st.integers(1, 9),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 3),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 3),
    bias=st.booleans(),
    transposed=st.booleans(),
    layout=layouts,
    dtype=st.sampled_from(DTYPES),
)
def test_convolution(
    ndim, batch, groups, channels, out_per_group, size, kernel, stride, padding, dilation,
    bias, transposed, layout, dtype,
):  # fmt: skip
    x = meta_tensor(
        (batch, channels * groups, *[size] * ndim), dtype, layout if ndim == 2 else "contiguous"
    )
    out_channels = out_per_group * groups
    shape = (channels * groups, out_per_group) if transposed else (out_channels, channels)
    weight = torch.empty(*shape, *[kernel] * ndim, dtype=dtype, device="meta")
    b = torch.empty(out_channels, dtype=dtype, device="meta") if bias else None
    args = (x, weight, b, [stride] * ndim, [padding] * ndim, [dilation] * ndim, transposed,
            [0] * ndim, groups)  # fmt: skip
    _check(aten.convolution.default, args)


@settings(max_examples=80)
@given(
    shapes,
    st.lists(st.booleans(), min_size=5, max_size=5),
    st.integers(0, 4),
    st.sampled_from(DTYPES),
    st.sampled_from(DTYPES),
    layouts,
    layouts,
    st.sampled_from(["add", "sub", "mul", "div"]),
    st.sampled_from(["tensor", "int", "float", "0-d"]),
)
def test_binary_arithmetic(shape, ones, drop, dtype, other_dtype, layout, other_layout, name, kind):
    """Broadcast shapes (size-1 dims, fewer dims), mixed dtypes and layouts, Python numbers."""
    x = meta_tensor(shape, dtype, layout)
    other_shape = tuple(1 if one else n for n, one in zip(shape, ones, strict=False))[drop:]
    other = {
        "tensor": meta_tensor(other_shape or (1,), other_dtype, other_layout),
        "int": 3,
        "float": 0.5,
        "0-d": torch.empty((), dtype=other_dtype, device="meta"),
    }[kind]
    func = getattr(aten, name).Tensor
    _check(func, (x, other))
    if kind == "tensor":
        _check(func, (other, x))
    if name == "div":  # ``x // other`` and ``torch.div(x, other, rounding_mode=...)``
        for mode in ("floor", "trunc", None):
            _check(aten.div.Tensor_mode, (x, other), {"rounding_mode": mode})
            if kind == "tensor":
                _check(aten.div.Tensor_mode, (other, x), {"rounding_mode": mode})


@settings(max_examples=80)
@given(
    shape=st.lists(st.integers(0, 4), min_size=3, max_size=5).map(tuple),
    size=st.lists(st.integers(-1, 9), min_size=1, max_size=3),
    dtype=st.sampled_from(DTYPES),
    layout=layouts,
    mode=st.sampled_from(["bilinear", "bicubic"]),
    align=st.booleans(),
)
def test_upsample(shape, size, dtype, layout, mode, align):
    """Resizing to any size (empty and negative sizes, wrong ranks refused as PyTorch does)."""
    x = meta_tensor(shape, dtype, layout)
    func = getattr(aten, f"upsample_{mode}2d").default
    _check(func, (x, size, align, None, None))
    _check(func, (x, size, align))


def test_each_shortcut_is_taken_on_ordinary_inputs():
    x = torch.empty(2, 4, 6, 6, device="meta")
    vector = torch.empty(4, device="meta")
    cases = {
        aten.native_batch_norm.default: (x, vector, vector, vector, vector, False, 0.1, 1e-5),
        aten.native_layer_norm.default: (x, [6], None, None, 1e-5),
        aten.mm.default: (x[0, 0], x[0, 1]),
        aten.addmm.default: (x[0, 0, 0], x[0, 0], x[0, 1]),
        aten.bmm.default: (x[0], x[1]),
        aten.convolution.default: (x, x[:3], None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1),
        aten.upsample_bilinear2d.default: (x, [9, 5], False, None, None),
        aten.upsample_bicubic2d.default: (x, [9, 5], True),
    }
    for name in ("add", "sub", "mul", "div"):
        cases[getattr(aten, name).Tensor] = (x, torch.empty(1, 4, 1, 6, device="meta"))
    cases[aten.div.Tensor_mode] = (x, 2)
    for name in UNARY:
        cases[getattr(aten, name).default] = (x,)
        cases[getattr(aten, name + "_").default] = (x,)
    cases.update(_views(x[0, 0], 1, 2, [-1]))
    assert set(cases) == set(FAST)
    for func, args in cases.items():
        kwargs = {"rounding_mode": "floor"} if func is aten.div.Tensor_mode else {}
        assert _check(func, args, kwargs), func


def test_integer_inputs_and_real_devices_run_the_real_kernel():
    assert (
        fast_outputs(aten.relu.default, (torch.empty(3, dtype=torch.int64, device="meta"),), {})
        is None
    )
    assert fast_outputs(aten.relu.default, (torch.empty(3),), {}) is None
    with pytest.raises(RuntimeError):
        aten.mm.default(torch.empty(2, 3, device="meta"), torch.empty(4, 5, device="meta"))


ENDS = (0, 2, 5, 2**63 + 2)  # minus 3: before the start, inside, past the end, INT64_MAX


def _views(x, a, b, size):
    """Each view op with arguments drawn for ``x`` (some of them refused by PyTorch)."""
    rank = x.dim()
    order = list(range(rank))[::-1] if a % 2 else list(range(rank))
    return {
        aten.view.default: (x, size),
        aten._unsafe_view.default: (x, size),
        aten.expand.default: (x, [2, *x.shape] if b % 2 else [-1] * rank),
        aten.t.default: (x,),
        aten.permute.default: (x, order),
        aten.transpose.int: (x, a % (rank + 1) - rank, b % rank),
        aten.unsqueeze.default: (x, a % (rank + 2) - 1),
        aten.squeeze.dim: (x, b % rank),
        aten.select.int: (x, a % rank, b - 1),
        aten.slice.Tensor: (x, b % rank - 1, a - 4, None if b % 3 == 0 else ENDS[b % 4] - 3, a % 4),
        aten.split.Tensor: (x, a % 3 + 1, b % rank),
        aten.split_with_sizes.default: (x, [1, x.shape[a % rank] - 1], a % rank),
        aten.unbind.int: (x, -1 - b % rank),
    }


@settings(max_examples=150)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple),
    dtype=st.sampled_from(DTYPES),
    layout=st.sampled_from(["contiguous", "channels_last", "transposed", "expanded"]),
    a=st.integers(0, 7),
    b=st.integers(0, 7),
    flat=st.booleans(),
)
def test_views_are_the_kernels_own_views(shape, dtype, layout, a, b, flat):
    from cnnkit.analysis._fast_meta import VIEWS
    from cnnkit.analysis._tensors import storage_key

    x = meta_tensor(shape, dtype, layout)
    size = [-1] if flat else [*x.shape[:-1], 1, x.shape[-1]]
    cases = _views(x, a, b, size)
    assert set(cases) == set(VIEWS)
    for func, args in cases.items():
        fast = fast_outputs(func, args, {})
        try:
            real = func(*args)
        except Exception:
            assert fast is None  # the shortcut never hides an error
            continue
        assert fast is not None, func
        assert type(fast) is type(real), func  # several views: a list, as the op returns
        fast, real = (fast, real) if isinstance(real, list) else ([fast], [real])
        assert len(fast) == len(real)
        for mine, theirs in zip(fast, real, strict=True):
            assert mine.storage_offset() == theirs.storage_offset()
            assert storage_key(mine) == storage_key(theirs) == storage_key(x)  # a view of x
            _same(mine, theirs)


def test_views_of_real_tensors_and_keywords_are_left_to_the_kernel():
    x = torch.ones(2, 3)
    assert fast_outputs(aten.view.default, (x, [6]), {}) is None
    meta = torch.empty(2, 3, device="meta")
    assert fast_outputs(aten.expand.default, (meta, [2, 3]), {"implicit": True}) is None


class _ViewFlags(torch.nn.Module):
    """Records, for each view op of its forward, whether autograd sees a view of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.flags: dict[str, list] = {}

    def forward(self, x):
        outputs = [
            aten._unsafe_view.default(x, [-1]),
            x.view(-1),
            x.expand(2, -1, -1, -1),
            x.t() if x.dim() == 2 else x.transpose(1, 2),
            x.permute(2, 0, 1),
            x[:, 1:],
            x[..., ::2],
            x.select(1, 0),
            x.unsqueeze(0),
            x.squeeze(0),
            *x.split(1, 1),
            *x.unbind(2),
        ]
        self.flags[x.device.type] = [(o._is_view(), o._base is x, o.shape) for o in outputs]
        return outputs[0]


def test_the_shortcut_views_are_tracked_as_the_kernels_views_are():
    """A model can look at what its views are (``_is_view``, ``_base``): the same in the
    capture as in a real forward (``_unsafe_view`` is no view to autograd, the others are)."""
    from cnnkit.analysis import summarize

    model = _ViewFlags()
    with torch.no_grad():
        model(torch.randn(1, 3, 4))
    summarize(model, (3, 4))
    assert model.flags["meta"] == model.flags["cpu"]
    assert model.flags["cpu"][0][:2] == (False, False)
