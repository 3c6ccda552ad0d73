"""Summary: the JSON contract, rows that add up to the totals, depth aggregation, edges, and
activation bytes against a measurement of the real forward pass."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cnnkit.analysis import summarize
from tests.analysis.models import TinyResNet

LAYER_KEYS = {
    "name", "type", "input_shapes", "output_shape", "params", "trainable_params", "macs",
    "other_flops", "activation_bytes", "rf", "jump", "start",
}  # fmt: skip
TOTAL_KEYS = {
    "params", "trainable_params", "macs", "flops", "other_flops", "param_bytes",
    "activation_bytes", "rf", "jump", "start",
}  # fmt: skip


def test_json_contract_of_the_architecture_doc():
    data = json.loads(json.dumps(summarize(TinyResNet(), (3, 16, 16), batch_size=2).to_dict()))
    assert {"model", "input_shape", "layers", "total"} <= set(data)
    assert data["model"] == "TinyResNet" and data["input_shape"] == [2, 3, 16, 16]
    for layer in data["layers"]:
        assert set(layer) >= LAYER_KEYS
        assert all(isinstance(v, int) for v in layer["output_shape"])
        assert len(layer["rf"]) == len(layer["jump"]) == len(layer["start"]) == 2
    total = data["total"]
    assert set(total) >= TOTAL_KEYS
    assert total["flops"] == 2 * total["macs"]
    # seed 002 by hand: stem 3x3 -> 3; layer1 -> 5, 7; layer2 3x3/2 -> 9 (jump 2), 3x3 -> 13;
    # every padding is (k - 1)/2, so the start stays at the first pixel's centre
    assert total["rf"] == [13, 13] and total["jump"] == [2, 2] and total["start"] == [0.5, 0.5]


def test_rows_add_up_to_the_totals_at_every_depth():
    model = TinyResNet()
    summary = summarize(model, (3, 16, 16))
    for depth in (None, 0, 1, 2, 3):
        rows = summary.at_depth(depth).layers
        assert sum(r.macs for r in rows) == summary.total.macs
        assert sum(r.other_flops for r in rows) == summary.total.other_flops
        assert sum(r.params for r in rows) == summary.total.params
        assert sum(r.activation_bytes for r in rows) == summary.total.activation_bytes
    assert summary.total.params == sum(p.numel() for p in model.parameters())
    assert summary.total.param_bytes == 4 * summary.total.params


def test_depth_aggregates_a_module_call_and_everything_inside_it():
    summary = summarize(TinyResNet(), (3, 16, 16))
    top = summary.at_depth(1)
    assert [r.name for r in top.layers] == ["stem", "layer1", "layer2", "pool", "flatten", "fc"]
    for row in top.layers:
        inside = [r for r in summary.layers if r.name.startswith(row.name + ".")]
        if inside:
            assert row.macs == sum(r.macs for r in inside)
            assert row.params == sum(r.params for r in inside)
            assert row.output_shape == inside[-1].output_shape
    layer2 = next(r for r in top.layers if r.name == "layer2")
    assert layer2.input_shapes == ((1, 8, 16, 16),) and layer2.output_shape == (1, 16, 8, 8)
    assert summarize(TinyResNet(), (3, 16, 16), depth=1).layers == top.layers


def test_edges_follow_the_tensors_through_residual_adds():
    summary = summarize(TinyResNet(), (3, 16, 16))
    names = [row.name for row in summary.layers]
    add = summary.layers[names.index("layer1.add")]
    assert {names[i] for i in add.inputs} == {"stem.2", "layer1.bn2"}
    assert summary.layers[0].inputs == (-1,)
    down = summary.layers[names.index("layer2.downsample.0")]
    assert [names[i] for i in down.inputs] == ["layer1.relu"]
    top = summary.at_depth(1)
    assert [list(r.inputs) for r in top.layers] == [[-1], [0], [1], [2], [3], [4]]


def _measured_output_bytes(model: nn.Module, shape: tuple[int, ...]) -> dict[str, int]:
    """Bytes of each leaf's output from a real forward; 0 when it is the input's storage."""
    sizes: dict[str, int] = {}

    def hook(name):
        def record(module, inputs, output):
            shares = output.untyped_storage().data_ptr() == inputs[0].untyped_storage().data_ptr()
            sizes.setdefault(name, 0 if shares else output.numel() * output.element_size())

        return record

    for name, module in model.named_modules():
        if not list(module.children()):
            module.register_forward_hook(hook(name))
    model(torch.randn(shape, dtype=next(model.parameters()).dtype))
    return sizes


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_activation_bytes_equal_the_outputs_a_real_forward_allocates(dtype):
    model = TinyResNet().to(dtype).eval()
    summary = summarize(model, (3, 12, 10), batch_size=3)
    measured = _measured_output_bytes(model, (3, 3, 12, 10))
    measured = {k: v for k, v in measured.items()}
    for row in summary.layers:
        if row.name in measured:
            assert row.activation_bytes == measured[row.name], row.name
    assert summary.total.training_activation_bytes == 2 * summary.total.activation_bytes


def test_eval_is_the_default_and_train_mode_counts_batch_statistics():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    eval_flops = summarize(model, (3, 8, 8)).total.other_flops
    train_flops = summarize(model, (3, 8, 8), mode="train").total.other_flops
    elements = 4 * 6 * 6
    # + 1 in training: BN counts its batches (num_batches_tracked += 1)
    assert (eval_flops, train_flops) == (2 * elements + elements, 6 * elements + elements + 1)


def _call_consumers(graph, call: int) -> list[int]:
    """The row calls that read an output of call ``call``, from the graph's nodes: an oracle of
    the summary's row edges (``LayerRow.inputs``) read the other way."""
    found = []
    for other in graph.calls:
        if not other.is_row or other.index == call:
            continue
        own = set(other.nodes)
        reads = any(ref.is_data and ref.source_call == call for ref in other.inputs) or any(
            ref.source_call == call and ref.producer is not None and ref.producer[0] not in own
            for index in other.nodes
            for ref in graph.nodes[index].data_inputs
        )
        if reads:
            found.append(other.index)
    return found


def test_consumers_are_the_row_edges_and_node_edges_reversed():
    from cnnkit.analysis.graph import INPUT_CALL

    summary = summarize(TinyResNet(), (3, 16, 16))
    graph = summary.graph
    rows = [call for call in graph.calls if call.is_row]
    position = {call.index: i for i, call in enumerate(rows)}
    for call in [None, *rows]:
        index = INPUT_CALL if call is None else call.index
        mine = -1 if call is None else position[index]
        readers = [position[c] for c in _call_consumers(graph, index)]
        assert readers == [i for i, row in enumerate(summary.layers) if mine in row.inputs]
    for node in graph.nodes:
        for reader in graph.consumers(node.index):
            assert any(
                ref.producer is not None and ref.producer[0] == node.index
                for ref in graph.nodes[reader].inputs
            )
    assert graph.consumers(0)  # the model input is read
