"""Remembered meta outputs are exactly what the real meta kernel makes, every time."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.analysis._meta_cache import (
    MetaCache,
    _plan,
    clear_shared_meta_cache,
    shared_meta_cache,
)
from cnnkit.analysis._tensors import storage_key
from tests.analysis.meta_tensors import meta_tensor

aten = torch.ops.aten
DTYPES = [torch.float32, torch.float16, torch.int64, torch.bool]


# op -> arguments from two tensors (the second broadcastable to the first, or not)
CASES = {
    aten.add.Tensor: lambda x, y: ((x, y), {"alpha": 2}),
    aten.mul.Scalar: lambda x, y: ((x, 2.0), {}),
    aten.div.Tensor_mode: lambda x, y: ((x, y), {"rounding_mode": "floor"}),
    aten.clamp_min.default: lambda x, y: ((x, 0.5), {}),
    aten.neg.default: lambda x, y: ((x,), {}),
    aten._softmax.default: lambda x, y: ((x, -1, False), {}),
    aten._safe_softmax.default: lambda x, y: ((x, -1), {}),
    aten.linalg_vector_norm.default: lambda x, y: ((x, 2, [-1], True), {}),
    aten.mean.dim: lambda x, y: ((x, [0], False), {}),
    aten.cat.default: lambda x, y: (([x, y], 0), {}),
    aten.stack.default: lambda x, y: (([x, y],), {}),
    aten.native_layer_norm.default: lambda x, y: ((x, list(x.shape[-1:]), None, None, 1e-5), {}),
    aten.hardtanh_.default: lambda x, y: ((x, -1.0, 1.0), {}),
    aten.add_.Tensor: lambda x, y: ((x, y), {}),
    aten.clone.default: lambda x, y: ((x,), {"memory_format": torch.preserve_format}),
    aten._unsafe_view.default: lambda x, y: ((x, [-1]), {}),
}


def _outcome(func, args, kwargs):
    try:
        out = func(*args, **kwargs)
    except Exception as error:
        return type(error)
    outputs = out if isinstance(out, tuple) else (out,)
    return tuple((o.shape, o.stride(), o.storage_offset(), o.dtype, o.device) for o in outputs)


@settings(max_examples=200, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple),
    ones=st.lists(st.booleans(), min_size=4, max_size=4),
    dtypes=st.tuples(st.sampled_from(DTYPES), st.sampled_from(DTYPES)),
    layouts=st.tuples(
        *[st.sampled_from(["contiguous", "channels_last", "transposed", "expanded"])] * 2
    ),
    func=st.sampled_from(sorted(CASES, key=str)),
)
def test_second_call_matches_the_real_kernel(shape, ones, dtypes, layouts, func):
    x = meta_tensor(shape, dtypes[0], layouts[0])
    y = meta_tensor(
        tuple(1 if one else n for n, one in zip(shape, ones, strict=False)), *dtypes[1:], layouts[1]
    )
    args, kwargs = CASES[func](x, y)
    expected = _outcome(func, args, kwargs)
    cache = MetaCache()
    for _ in range(3):  # a miss, then hits
        if isinstance(expected, type):  # PyTorch refuses it: so does every later call
            with pytest.raises(expected):
                cache.run(func, args, kwargs)
            continue
        out = cache.run(func, args, kwargs)
        assert _outcome(lambda out=out: out, (), {}) == expected
        outputs = out if isinstance(out, tuple) else (out,)
        inputs = {storage_key(t) for t in (x, y)}
        if func is aten.hardtanh_.default or func is aten.add_.Tensor:
            assert out is x  # the argument written in place, itself
        elif func is aten._unsafe_view.default:
            assert storage_key(out) == storage_key(x)  # a view despite its schema: never cached
        else:
            assert all(storage_key(o) not in inputs for o in outputs)


def test_ops_that_change_metadata_in_place_always_run():
    x = torch.empty(2, 3, device="meta")
    cache = MetaCache()
    for _ in range(2):
        cache.run(aten.unsqueeze_.default, (x, 0), {})
    assert x.shape == (1, 1, 2, 3)
    for func in (aten.unsqueeze_.default, aten.resize_.default, aten.view.default,
                 aten.split.Tensor, aten.native_dropout.default, aten.nonzero.default):  # fmt: skip
        assert _plan(func) is None, func


def test_numbers_of_different_types_are_different_signatures():
    x = torch.empty(3, dtype=torch.int64, device="meta")
    cache = MetaCache()
    assert cache.run(aten.mul.Scalar, (x, 2), {}).dtype == torch.int64
    assert cache.run(aten.mul.Scalar, (x, 2.0), {}).dtype == torch.float32
    assert cache.run(aten.mul.Scalar, (x, True), {}).dtype == torch.int64
    assert cache.run(aten.mul.Scalar, (x, 2.0), {}).dtype == torch.float32


def test_real_tensors_are_never_cached():
    x = torch.ones(3)
    cache = MetaCache()
    out = cache.run(aten.mul.Scalar, (x, 2.0), {})
    assert out.tolist() == [2.0, 2.0, 2.0] and not cache.entries


def test_an_op_whose_outputs_broke_a_check_is_run_every_time_after(monkeypatch):
    from cnnkit.analysis._fast_meta import _FAST_BY_ID

    # _unsafe_view is annotated as fresh but returns a view (its shortcut is a view already)
    monkeypatch.delitem(_FAST_BY_ID, id(aten._unsafe_view.default))
    cache = MetaCache()
    for shape in ((2, 3), (4, 5), (2, 3)):
        x = torch.empty(shape, device="meta")
        out = cache.run(aten._unsafe_view.default, (x, [-1]), {})
        assert out.shape == (x.numel(),) and storage_key(out) == storage_key(x)
        assert id(aten._unsafe_view.default) in cache.unkeyed
    assert len(cache.entries) == 1  # only the first signature was ever keyed
    assert not MetaCache().unkeyed  # per capture: a new cache starts without it


def _misses(monkeypatch) -> list:
    """Spy: the signatures each capture runs the real meta kernel for, to remember them."""
    seen: list = []
    kernel = MetaCache.kernel

    def spy(self, func, args, kwargs):
        if self._pending is not None:
            seen.append(self._pending[1])
        return kernel(self, func, args, kwargs)

    monkeypatch.setattr(MetaCache, "kernel", spy)
    return seen


def test_a_second_capture_runs_no_kernel_the_first_remembered(monkeypatch):
    from cnnkit.analysis import summarize

    clear_shared_meta_cache()
    block = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(), torch.nn.LayerNorm(8))
    model = torch.nn.Sequential(block, torch.nn.Softmax(-1))
    misses = _misses(monkeypatch)
    first = summarize(model, (4, 8))
    remembered = len(misses)
    assert remembered > 0
    second = summarize(model, (4, 8))
    assert len(misses) == remembered  # every signature of the second pass was known
    assert second.to_dict() == first.to_dict()
    summarize(model, (5, 8))  # a new shape is a new signature
    assert len(misses) > remembered


def test_the_shared_store_is_per_default_dtype():
    x = torch.empty(3, dtype=torch.int64, device="meta")
    clear_shared_meta_cache()
    assert shared_meta_cache().run(aten.div.Tensor, (x, x), {}).dtype == torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:  # int / int makes the default dtype: a float32 entry must not answer for it
        assert shared_meta_cache().run(aten.div.Tensor, (x, x), {}).dtype == torch.float64
        assert shared_meta_cache().run(aten.div.Tensor, (x, x), {}).dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)
    assert shared_meta_cache().run(aten.div.Tensor, (x, x), {}).dtype == torch.float32


def test_two_captures_over_one_store_remember_their_own_misses():
    """Interleaved as two threads could be: each capture's pending miss is its own."""
    entries: dict = {}
    first, second = MetaCache(entries, set()), MetaCache(entries, set())
    a, b = torch.empty(2, 3, device="meta"), torch.empty(4, 5, device="meta")
    assert first.outputs(aten.neg.default, (a,), {}) is None
    assert second.outputs(aten.neg.default, (b,), {}) is None
    assert first.kernel(aten.neg.default, (a,), {}).shape == (2, 3)
    assert second.kernel(aten.neg.default, (b,), {}).shape == (4, 5)
    for x in (a, b):
        assert MetaCache(entries, set()).run(aten.neg.default, (x,), {}).shape == x.shape
    assert len(entries) == 2


def test_the_shared_store_is_emptied_at_its_limit(monkeypatch):
    import cnnkit.analysis._meta_cache as meta_cache

    clear_shared_meta_cache()
    monkeypatch.setattr(meta_cache, "SHARED_LIMIT", 2)
    sizes = []
    for n in (1, 2, 3):
        cache = shared_meta_cache()  # the third finds 2 signatures: emptied, then fills again
        cache.run(aten.neg.default, (torch.empty(n, device="meta"),), {})
        sizes.append(len(cache.entries))
    assert sizes == [1, 2, 1]
