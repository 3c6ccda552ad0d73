"""The receptive-field propagation's shortcuts (issue 15) give exactly what the plain path gives.

- ``regrid``'s first look (``moves_pixels``) skips a view only where the full search of every
  axis and dim finds no space-to-depth or depth-to-space either;
- the plans that a propagation works out once per (kind, operands' dims, shapes) and reuses
  for later nodes give every node the layout that a fresh plan, made for it alone, gives.

Whole models' figures before and after are compared by ``tools/summary_snapshot.py``.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.analysis import spatial as sp
from cnnkit.analysis._inputs import model_inputs
from cnnkit.analysis._regrid import regrid, searched
from cnnkit.analysis.capture import capture
from cnnkit.analysis.layout import Layout, input_layout, reshape_dims
from cnnkit.analysis.receptive_field import _apply, layout_of, propagate
from cnnkit.analysis.rules import find_rule
from cnnkit.analysis.summary import _figures
from tests.analysis.timm_corpus import create
from tests.model_guard import model_left_as_found


@st.composite
def regrouped(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A view of ``shape``: each size cut in two by one of its divisors, then neighbouring
    pieces joined at random (space-to-depth cuts, flattening joins)."""
    pieces: list[int] = []
    for size in shape:
        cut = draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0]))
        pieces += [cut, size // cut]
    result = [pieces[0]]
    for piece in pieces[1:]:
        if draw(st.booleans()):
            result[-1] *= piece
        else:
            result.append(piece)
    return tuple(result)


@st.composite
def view_chains(draw: st.DrawFn) -> list[tuple[Layout, Layout]]:
    """(before, after) pairs that a chain of views and permutes of an (N, C, H, W) map gives
    ``regrid``: pixel shuffles and patchifies written by hand among them."""
    sizes = st.sampled_from([1, 2, 3, 4, 6, 8])
    shape = (1, draw(st.sampled_from([1, 2, 4, 8, 9])), draw(sizes), draw(sizes))
    layout = input_layout(shape)
    pairs = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            order = draw(st.permutations(range(len(layout.dims))))
            layout = Layout(tuple(layout.dims[d] for d in order), layout.fields, layout.local)
            continue
        dims = reshape_dims(layout.dims, draw(regrouped(layout.shape)))
        if dims is None:
            break
        after = Layout(dims, layout.fields, layout.local)
        pairs.append((layout, after))
        layout = searched(layout, after, 2)
    return pairs


@settings(max_examples=300, deadline=None)
@given(view_chains())
def test_the_first_look_skips_only_views_the_full_search_leaves_alone(pairs):
    for before, after in pairs:
        assert regrid(before, after, 2) == searched(before, after, 2)


def _layouts(name: str) -> tuple:
    model = create(name)
    shape = tuple(model.pretrained_cfg["input_size"])
    inputs, _ = model_inputs(shape, None, None, 1)
    with model_left_as_found(model), torch.no_grad():
        graph = capture(model, inputs, module_rule=lambda m: find_rule(type(m), {}))
    figures, _ = _figures(graph, {})
    spatial = [sp.UNKNOWN if f is None else f.spatial for f in figures]
    return graph, spatial, propagate(graph, spatial)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["levit_128", "xcit_nano_12_p16_224"])
def test_plans_reused_across_nodes_give_what_a_fresh_plan_gives(name):
    """Each node's layout, from the propagation's shared plans, against ``_apply`` run again on
    the same inputs with no plan kept (a fresh one made for the node alone)."""
    graph, spatial, layouts = _layouts(name)
    sizes = tuple(graph.input_shape[2:])
    checked = 0
    for node in graph.nodes[1:]:
        kind = spatial[node.index]
        if isinstance(kind, sp.Constant | sp.Split):
            continue
        lays = [layout_of(ref, layouts, sizes) for ref in node.inputs]
        data = [(ref, lay) for ref, lay in zip(node.inputs, lays, strict=True) if lay is not None]
        if not data:
            continue
        assert _apply(kind, node, lays, data, sizes) == layouts[node.index][0], node.name
        checked += 1
    assert checked > 500  # views, products, norms and adds of every block
