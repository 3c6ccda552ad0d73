"""Who reads what on a captured graph: the consumer map that folding needs.

A stand-in, built only from the public :class:`~cnnkit.analysis.graph.Graph` data (each node's
input references name the node that produced them); ``cnnkit.analysis`` is getting its own
``consumers`` query, which replaces this when both land.
"""

from __future__ import annotations

from collections import defaultdict

from cnnkit.analysis.graph import Graph, Node

# Stands for "returned by the model" in a consumer list: a model output is a reader too.
MODEL_OUTPUT = -1


def consumer_map(graph: Graph) -> dict[int, list[int]]:
    """node index -> indices of the nodes that read any of its outputs (in execution order,
    each reader once), plus :data:`MODEL_OUTPUT` when the model returns one of its outputs."""
    readers: dict[int, list[int]] = defaultdict(list)
    for node in graph.nodes:
        seen: set[int] = set()
        for ref in node.inputs:
            if ref.producer is not None and ref.producer[0] not in seen:
                seen.add(ref.producer[0])
                readers[ref.producer[0]].append(node.index)
    root = graph.calls[0] if graph.calls else None
    for ref in root.outputs if root is not None else ():
        if ref.producer is not None and MODEL_OUTPUT not in readers[ref.producer[0]]:
            readers[ref.producer[0]].append(MODEL_OUTPUT)
    return dict(readers)


def describe(graph: Graph, node_index: int) -> str:
    """How a node reads in a message: ``layer1.0.conv1`` (a folding candidate),
    ``layer1.0.relu (ReLU)`` (another module), ``layer1.0.add`` (a function called in a
    forward, named as the summary names its row)."""
    if node_index == MODEL_OUTPUT:
        return "the model output"
    node: Node = graph.nodes[node_index]
    if node.index == 0:
        return "the model input"
    call = graph.calls[node.call]
    if node.module is not None:
        return call.name
    if call.kind == "module":
        return f"{call.name} ({call.type})" if call.depth > 0 else f"{node.name} in {call.type}"
    return call.name
