"""Which layers to look at, decided from the analysis capture graph (never by guessing names).

The capture (:func:`cnnkit.analysis.capture`) records every aten op with the module call it
belongs to. A *layer* here is a module (hookable by its dotted name) whose output is a map over
the input's grid: the input's rank, batch and channel first. When a tensor is the output of
several nested modules (``layer4.1.relu``, ``layer4.1``, ``layer4``), the outermost one names it,
as the CAM papers and captum's examples do (``layer4`` of a ResNet, ``features`` of a VGG).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from cnnkit.errors import ShapeError, UnknownNameError


def _graph(model: nn.Module, input_shape: Sequence[int]):  # -> cnnkit.analysis.graph.Graph
    from cnnkit.analysis import capture

    return capture(model, tuple(input_shape), mode="eval")


def _is_spatial(shape: tuple[int, ...], rank: int) -> bool:
    return len(shape) == rank and rank >= 3


def _outermost(graph, call_index: int, rank: int) -> int:
    """The outermost non-root module call whose output is the same tensor as ``call_index``'s."""
    calls = graph.calls
    best = call_index
    producer = calls[call_index].outputs[0].producer if calls[call_index].outputs else None
    parent = calls[call_index].parent
    while parent is not None and calls[parent].parent is not None:
        outputs = calls[parent].outputs
        if len(outputs) != 1 or outputs[0].producer != producer:
            break
        if calls[parent].kind == "module":
            best = parent
        parent = calls[parent].parent
    return best


def _module_call(graph, call_index: int) -> int:
    """The nearest module call at or above ``call_index`` (a function row has no hook)."""
    calls = graph.calls
    while calls[call_index].kind != "module":
        call_index = calls[call_index].parent
    return call_index


def last_conv_layer(model: nn.Module, input_shape: Sequence[int]) -> str:
    """The dotted name of the last conv-like layer with a spatial output (the CAM default).

    The last convolution op of the forward pass is found in the capture graph; the layer is the
    outermost module containing it whose output is still a spatial map (for a ResNet: ``layer4``,
    whose output is the last block's post-ReLU sum; for a VGG: ``features``).
    """
    graph = _graph(model, input_shape)
    rank = len(graph.input_shape)
    convs = [node for node in graph.nodes if node.name in ("convolution", "convolution_")]
    if not convs:
        raise ShapeError(f"{type(model).__name__}: no convolution in the forward pass; pass layer=")
    calls = graph.calls
    call = _module_call(graph, convs[-1].call)
    if call == 0:
        raise ShapeError(
            f"{type(model).__name__}: its last convolution is called in the model's own forward, "
            "not in a submodule that can be hooked; pass layer="
        )
    chosen = call
    parent = calls[call].parent
    while parent is not None and calls[parent].parent is not None:
        outputs = calls[parent].outputs
        if len(outputs) != 1 or not _is_spatial(outputs[0].shape, rank):
            break
        if calls[parent].kind == "module":
            chosen = parent
        parent = calls[parent].parent
    if not calls[chosen].outputs or not _is_spatial(calls[chosen].outputs[0].shape, rank):
        raise ShapeError(f"{calls[chosen].name}: the last convolution has no spatial output")
    return calls[chosen].name


def stage_outputs(model: nn.Module, input_shape: Sequence[int]) -> list[str]:
    """The last layer of each conv stage: the last spatial output at each resolution.

    A stage is a run of spatial outputs at one resolution that contains a convolution; its last
    output is named by the outermost module producing it (``layer1`` of a ResNet).
    """
    graph = _graph(model, input_shape)
    rank = len(graph.input_shape)
    stages: list[tuple[tuple[int, ...], int, bool]] = []  # (size, last call, has conv)
    for node in graph.nodes[1:]:
        if not node.outputs:
            continue
        shape = node.outputs[0].shape
        if not _is_spatial(shape, rank) or not node.is_data:
            continue
        call = _module_call(graph, node.call)
        if call == 0:
            continue
        is_conv = node.name in ("convolution", "convolution_")
        size = tuple(shape[2:])
        pooling = "pool" in node.name or node.name in ("mean", "amax", "sum")
        if pooling and node.data_inputs and node.data_inputs[0].shape == shape:
            continue  # a pool that keeps the size (ResNet's avgpool of a 1x1 map) ends no stage
        if stages and stages[-1][0] == size:
            stages[-1] = (size, call, stages[-1][2] or is_conv)
        else:
            stages.append((size, call, is_conv))
    names: list[str] = []
    for _, call, has_conv in stages:
        if has_conv:
            name = graph.calls[_outermost(graph, call, rank)].name
            if name not in names:
                names.append(name)
    return names


def first_conv_layer(model: nn.Module, input_shape: Sequence[int]) -> str:
    """The dotted name of the module running the first convolution of the forward pass."""
    graph = _graph(model, input_shape)
    for node in graph.nodes:
        if node.name in ("convolution", "convolution_"):
            call = _module_call(graph, node.call)
            if call != 0:
                return graph.calls[call].name
    raise ShapeError(f"{type(model).__name__}: no convolution module in the forward pass")


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name``; an unknown name lists the closest layer names."""
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        known = [n for n in modules if n]
        raise UnknownNameError("layer", name, known)
    return modules[name]
