"""The capture's fast paths over arguments find exactly what the general walks find."""

from __future__ import annotations

from collections import namedtuple

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._pytree import tree_leaves

from cnnkit.analysis._tensor_book import TensorBook, _tensor_positions
from cnnkit.analysis._tensors import tensors_in
from cnnkit.analysis.graph import Node

aten = torch.ops.aten
Pair = namedtuple("Pair", "a b")
TENSORS = [torch.empty(2, device="meta"), torch.empty(3, 1, device="meta")]

leaves = st.one_of(
    st.sampled_from(TENSORS), st.integers(), st.floats(allow_nan=False), st.none(), st.text()
)
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=2), inner, max_size=3),
        st.tuples(inner, inner).map(lambda t: Pair(*t)),
    ),
    max_leaves=8,
)


@settings(max_examples=150)
@given(trees)
def test_tensors_in_is_pytree_order(tree):
    expected = [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor)]
    found = tensors_in(tree)
    assert len(found) == len(expected) and all(a is b for a, b in zip(found, expected, strict=True))


def _book() -> TensorBook:
    return TensorBook([], {}, strong=True)


def _cases() -> list[tuple[object, tuple, dict]]:
    x = torch.empty(2, 3, 4, 4, device="meta")
    w = torch.empty(5, 3, 3, 3, device="meta")
    index = torch.zeros(2, dtype=torch.long, device="meta")
    return [
        (aten.convolution.default, (x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1), {}),
        (aten.cat.default, ([x, x], 1), {}),
        (aten.view.default, (x, [2, -1]), {}),
        (aten.index.Tensor, (x, [None, index]), {}),
        (aten.add.Tensor, (x, x), {"alpha": 2}),
        (aten.mul.Tensor, (x, 2.0), {}),  # a Python number where the schema takes a tensor
        (aten.add.out, (x, x), {"out": x}),
        (aten.native_batch_norm.default, (x, None, None, None, None, True, 0.1, 1e-5), {}),
        (aten.where.self, (x > 0, x, x), {}),
        (aten.clone.default, (x,), {"memory_format": torch.contiguous_format}),
    ]


def test_schema_positions_find_what_the_walk_finds():
    for func, args, kwargs in _cases():
        assert _tensor_positions(func) is not None, func
        book = _book()
        fast = book.op_refs(func, args, kwargs)
        walked = book._walked(args, kwargs)
        assert fast[0] == walked[0], func  # the arguments with references in place
        assert fast[1] == walked[1] and all(a is b for a, b in zip(fast[3], walked[3], strict=True))
        assert fast[2] == walked[2] and fast[4] == walked[4]


def test_a_container_unlike_its_schema_is_walked():
    x = torch.empty(2, device="meta")
    book = _book()
    refs, found, _, tensors, _ = book.op_refs(aten.add.Tensor, (x, [x]), {})  # a list as `other`
    assert refs == book._walked((x, [x]), {})[0] and len(found) == 2 and tensors[1] is x


def test_references_are_shared_until_a_write_changes_them():
    x = torch.empty(2, device="meta")
    book = _book()
    book.nodes.append(Node(0, "input", None, (), {}, (), -1, True))
    first = book.ref(x)
    assert book.ref(x) is first and first.producer is None
    book.produced(x, (0, 0), None)
    second = book.ref(x)
    assert second is not first and second.producer == (0, 0) and second.is_data
    book.owned(x, 7, second)
    assert book.ref(x).source_call == 7


def test_an_outputs_reference_is_the_one_its_readers_would_get():
    x = torch.empty(2, 3, device="meta")
    w = torch.empty(3, device="meta")
    book = TensorBook([], {id(w): "w"}, strong=True)
    book.nodes.append(Node(0, "input", None, (), {}, (), -1, True))
    book.produced(x, (0, 0), None)
    _, _, _, tensors, storages = book.op_refs(aten.add.Tensor, (x, w), {})
    out = x + w
    book.nodes.append(Node(1, aten.add, aten.add.Tensor, (), {}, (), 5, True))
    refs, fresh = book.made([out, w, x.view(6)], 1, True, 5, tensors, storages)
    assert fresh == (True, False, False)  # an argument, and a view of one, are not fresh
    assert book.ref(w) is not refs[1] and book.ref(w).parameter == "w"  # (written in place)
    assert book.ref(out) is refs[0]
    book.owned(out, 5, refs[0])  # returned by the row it names already: the same reference
    assert book.ref(out) is refs[0]
    assert book._new_ref(out, book.record(out)) == refs[0]  # what a read would make anew
    book.owned(out, 7, book.ref(out))  # returned by another row: readers see it come from it
    assert book.ref(out).source_call == 7 and book.ref(out).producer == (1, 0)
