"""The evidence a rule reads: the captured graph (with consumer links), the model, and
optionally a config, datasets and a probe's measurements.

The graph is :mod:`cnnkit.analysis`'s public data (:class:`~cnnkit.analysis.graph.Graph`:
nodes = aten ops with their arguments, calls = module/function calls); what the capture does
not hold directly (who reads an op's output, which row a node sits in, whether a tensor would
be viewable under channels_last) is derived here, so the analysis stays as it is.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from cnnkit.analysis import Summary
    from cnnkit.analysis.graph import Call, Graph, Node
    from cnnkit.data import ImageDataset
    from cnnkit.doctor.probe import ProbeResult
    from cnnkit.train.config import TrainConfig

# Ops that only reshape, copy or alias a tensor: transparent when following data.
SHAPE_OPS = frozenset(
    {
        "view",
        "_unsafe_view",
        "reshape",
        "t",
        "transpose",
        "permute",
        "clone",
        "contiguous",
        "expand",
        "squeeze",
        "unsqueeze",
        "flatten",
        "alias",
        "detach",
        "_to_copy",
        "slice",
        "select",
        "unbind",
        "split",
        "split_with_sizes",
        "chunk",
        "lift_fresh",
    }
)
BATCH_NORM_OPS = frozenset(
    {
        "native_batch_norm",
        "_native_batch_norm_legit",
        "_native_batch_norm_legit_no_training",
        "batch_norm",
        "cudnn_batch_norm",
        "miopen_batch_norm",
        "_batch_norm_with_update",
        "_batch_norm_no_update",
    }
)
NORM_OPS = BATCH_NORM_OPS | {"native_layer_norm", "native_group_norm", "layer_norm", "group_norm"}
MATMUL_OPS = frozenset({"addmm", "mm", "bmm", "baddbmm", "matmul", "linear"})
DROPOUT_OPS = frozenset({"native_dropout", "bernoulli", "bernoulli_", "dropout", "feature_dropout"})


@dataclass
class DataEvidence:
    """Datasets for the data rules: the training set, optionally the test set, and the
    normalisation (mean, std) the model expects (a checkpoint's or a config's)."""

    train: ImageDataset
    test: ImageDataset | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


@dataclass
class Context:
    """Everything the rules of one :func:`~cnnkit.doctor.examine` call may read."""

    model: nn.Module
    input_shape: tuple[int, ...]  # batch included
    summary: Summary | None = None
    config: TrainConfig | None = None
    data: DataEvidence | None = None
    probe: ProbeResult | None = None
    object_size: int | None = None
    rf_share: float = 0.5
    flags_before: dict[str, bool] = field(default_factory=dict)

    @property
    def graph(self) -> Graph:
        assert self.summary is not None and self.summary.graph is not None
        return self.summary.graph

    # -- the graph, derived -----------------------------------------------------------------
    @functools.cached_property
    def consumers(self) -> dict[int, list[int]]:
        """node index -> indices of the nodes that read one of its outputs (in order)."""
        readers: dict[int, list[int]] = {}
        for node in self.graph.nodes:
            seen = set()
            for ref in node.inputs:
                if ref.producer is not None and ref.producer[0] not in seen:
                    seen.add(ref.producer[0])
                    readers.setdefault(ref.producer[0], []).append(node.index)
        return readers

    @functools.cached_property
    def output_nodes(self) -> set[int]:
        """Nodes that produced the model's outputs."""
        root = self.graph.calls[0] if self.graph.calls else None
        if root is None:
            return set()
        return {ref.producer[0] for ref in root.outputs if ref.producer is not None}

    def nodes(self, *names: str) -> Iterator[Node]:
        """The data-dependent nodes whose op is one of ``names``, in execution order."""
        wanted = set(names)
        for node in self.graph.nodes[1:]:
            if node.is_data and node.name in wanted:
                yield node

    def where(self, node: Node) -> str:
        """The dotted name of the row a node belongs to (``layer1.0.conv1``, ``layer1.0.add``)."""
        return self.call_of(node).name

    def call_of(self, node: Node) -> Call:
        return self.graph.calls[node.call]

    def ancestors(self, call: Call) -> Iterator[Call]:
        """The call and its enclosing calls, innermost first."""
        current: Call | None = call
        while current is not None:
            yield current
            current = None if current.parent is None else self.graph.calls[current.parent]

    def downstream(self, start: int, through: Iterable[str]) -> tuple[list[Node], bool]:
        """The first readers of node ``start``'s outputs that are not ops in ``through``
        (followed transitively), and whether the model output is reached through them only."""
        passing = frozenset(through)
        found: list[Node] = []
        reaches_output = False
        stack, seen = [start], {start}
        while stack:
            index = stack.pop()
            if index in self.output_nodes:
                reaches_output = True
            for reader in self.consumers.get(index, ()):
                if reader in seen:
                    continue
                seen.add(reader)
                node = self.graph.nodes[reader]
                if node.name in passing:
                    stack.append(reader)
                else:
                    found.append(node)
        found.sort(key=lambda n: n.index)
        return found, reaches_output


def spatial(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The spatial extents of an (N, C, *spatial) shape."""
    return tuple(shape[2:])


def conv_geometry(node: Node) -> dict[str, Any]:
    """An ``aten.convolution`` node's arguments: kernel from the weight's shape, the rest as
    recorded (stride, padding, dilation, transposed, output_padding, groups)."""
    weight = node.arg("weight")
    ndim = len(weight.shape) - 2
    return {
        "weight": weight,
        "bias": node.arg("bias"),
        "kernel": tuple(weight.shape[2:]),
        "stride": _per_axis(node.arg("stride"), ndim, 1),
        "padding": _per_axis(node.arg("padding"), ndim, 0),
        "dilation": _per_axis(node.arg("dilation"), ndim, 1),
        "transposed": bool(node.arg("transposed")),
        "groups": int(node.arg("groups") or 1),
        "in_channels": node.arg("input").shape[1],
        "out_channels": node.output_shape[1] if len(node.output_shape) > 1 else 0,
        "ndim": ndim,
    }


def _per_axis(value: Any, ndim: int, default: int) -> tuple[int, ...]:
    if value is None:
        return (default,) * ndim
    if isinstance(value, int):
        return (value,) * ndim
    values = tuple(int(v) for v in value)
    return values * ndim if len(values) == 1 else values
