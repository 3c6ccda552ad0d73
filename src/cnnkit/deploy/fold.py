"""Conv-BN folding over a whole model's captured graph (capability G1, seed 002).

Pairs are found on the graph that :func:`cnnkit.analysis.capture` records from a real forward
pass, so functional ops, residual branches and Python loops are seen as they run, never guessed
from module order or names. Each fold is proven: the folded model is compared with the original
in float64 on random inputs (:attr:`FoldResult.max_error`).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from cnnkit.analysis.capture import capture
from cnnkit.analysis.graph import Graph, Node
from cnnkit.deploy._consumers import MODEL_OUTPUT, consumer_map, describe
from cnnkit.deploy.fold_math import (
    ConvModule,
    TransposedModule,
    bn_affine,
    fold_bn_into_input,
    fold_bn_into_output,
)
from cnnkit.errors import ConfigError, UnsupportedError

BatchNorm = nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d
# Exact classes only: a subclass may override forward, and its weights would not mean the same.
_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
           nn.ConvTranspose3d, nn.Linear)  # fmt: skip
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass(frozen=True)
class Skipped:
    """A batch norm (or conv) left as it was, and why."""

    name: str
    reason: str


@dataclass
class FoldResult:
    """What :func:`fold_batchnorm` did.

    Attributes:
        model: the folded model, a new module (the input model is untouched).
        folded: ``(first, second)`` dotted module names in data-flow order: ``(conv, bn)`` for a
            BN folded into the layer before it, ``(bn, conv)`` for one folded into the next.
        skipped: every batch norm not folded (and each functional one next to a conv), with why.
        max_error: max |folded − original| over the outputs, eval mode, float64, random input.
        input_shape: one sample's shape (no batch) the graph was captured with.
        batch_norms: BatchNorm modules the forward pass called (folded + skipped ones).
    """

    model: nn.Module
    folded: list[tuple[str, str]]
    skipped: list[Skipped]
    max_error: float
    input_shape: tuple[int, ...]
    batch_norms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "folded": [list(pair) for pair in self.folded],
            "skipped": [asdict(s) for s in self.skipped],
            "max_error": self.max_error,
            "input_shape": list(self.input_shape),
            "batch_norms": self.batch_norms,
        }


def _fold_rule(module: nn.Module) -> bool | None:
    """Record convs, linears and batch norms as one node each (their module is what we fold)."""
    return True if type(module) in _LAYERS or type(module) in _NORMS else None


def fold_batchnorm(
    model: nn.Module, input_shape: Sequence[int], *, seed: int = 0, batch_size: int = 2
) -> FoldResult:
    """Fold every eval-mode BatchNorm into the conv or linear layer next to it, where exact.

    Folds (s = γ/√(σ²+ε), t = β − μ s; seed 002): Conv1d/2d/3d (any groups, dilation,
    stride, padding mode, with or without bias), ConvTranspose1d/2d/3d (grouped too) and Linear
    followed by their BatchNorm: ``W' = s·W``, ``b' = s(b − μ) + β``; a BatchNorm followed by a
    Conv or Linear that reads no zero padding: ``W' = W·s`` per input channel,
    ``b' = b + Σ W t``. The BN becomes ``nn.Identity`` in the copy.

    Skips, with the reason: a layer whose output has another reader (a residual branch, the
    model output), a layer or BN module called more than once, a BN in training mode or without
    running statistics, a BN whose input is not one layer's output alone, a BN before a
    zero-padded conv or a transposed conv (the borders would not get the shift), a functional
    ``F.batch_norm`` (not a module: nothing to replace).

    Args:
        model: an ``nn.Module`` in eval mode (left exactly as found).
        input_shape: one sample's shape without the batch, e.g. ``(3, 224, 224)``.
        seed: seed of the random inputs of the float64 check.
        batch_size: batch of the float64 check.

    Raises:
        UnsupportedError: the model is in training mode (folding is for inference, 002).
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be an nn.Module, got {type(model).__name__}")
    if model.training:
        raise UnsupportedError(
            "fold_batchnorm: the model is in training mode; folding uses the running statistics "
            "and is for inference: call model.eval() first"
        )
    if any(t.device.type == "meta" for t in (*model.parameters(), *model.buffers())):
        raise UnsupportedError("fold_batchnorm: the model's weights are on the meta device")
    shape = tuple(int(v) for v in input_shape)
    graph = capture(model, (1, *shape), mode="same", module_rule=_fold_rule)
    plan = _Planner(model, graph)
    plan.run()
    memo: dict[int, Any] = {}
    folded_model = copy.deepcopy(model, memo)
    for first, second in plan.pairs:
        if isinstance(first, _NORMS):
            fold_bn_into_input(memo[id(first)], memo[id(second)])
        else:
            fold_bn_into_output(memo[id(first)], memo[id(second)])
    for bn in plan.folded_norms:
        for path in plan.paths[id(bn)]:
            _replace(folded_model, path, nn.Identity())
    error = _max_error(model, folded_model, shape, seed, batch_size)
    return FoldResult(
        model=folded_model,
        folded=[(plan.name(a), plan.name(b)) for a, b in plan.pairs],
        skipped=plan.skipped,
        max_error=error,
        input_shape=shape,
        batch_norms=plan.norm_count,
    )


class _Planner:
    """Decides the folds on the graph; touches no module."""

    def __init__(self, model: nn.Module, graph: Graph) -> None:
        self.graph = graph
        self.readers = consumer_map(graph)
        self.paths: dict[int, list[str]] = {}
        for path, module in model.named_modules(remove_duplicate=False):
            self.paths.setdefault(id(module), []).append(path)
        self.calls = Counter(id(n.module) for n in graph.nodes if n.module is not None)
        self.pairs: list[tuple[nn.Module, nn.Module]] = []
        self.folded_norms: list[nn.Module] = []
        self.skipped: list[Skipped] = []
        self.norm_count = 0
        self._input_folded: set[int] = set()

    def name(self, module: nn.Module) -> str:
        paths = self.paths.get(id(module))
        return paths[0] if paths else type(module).__name__

    def run(self) -> None:
        seen: set[int] = set()
        for node in self.graph.nodes:
            if node.module is not None and type(node.module) in _NORMS:
                if id(node.module) in seen:
                    continue
                seen.add(id(node.module))
                self.norm_count += 1
                self._plan_norm(node)
            elif node.module is None and "batch_norm" in node.name:
                self._note_functional(node)

    def _plan_norm(self, node: Node) -> None:
        bn = node.module
        assert bn is not None
        reason = self._norm_unusable(bn)
        if reason is None:
            before = self._fold_before(node)
            if before is None:
                return
            after = self._fold_after(node)
            if after is None:
                return
            reason = f"{before}; {after}"
        self.skipped.append(Skipped(self.name(bn), reason))

    def _norm_unusable(self, bn: nn.Module) -> str | None:
        if bn.training:
            return "in training mode (it normalises with batch statistics)"
        if bn.running_mean is None or bn.running_var is None:
            return "has no running statistics (track_running_stats=False)"
        if self.calls[id(bn)] > 1:
            return f"called {self.calls[id(bn)]} times: replacing it would change every call"
        if id(bn) not in self.paths:
            return "not registered as a submodule: it cannot be replaced by Identity"
        if _has_hooks(bn):
            return "has hooks, which would be lost with it"
        return None

    def _layer_unusable(self, layer: nn.Module) -> str | None:
        name = self.name(layer)
        if self.calls[id(layer)] > 1:
            return (
                f"{name} is called {self.calls[id(layer)]} times: folding would change every call"
            )
        if _has_hooks(layer):
            return f"{name} has hooks, which would see different values"
        return None

    def _single_data_input(self, node: Node) -> Node | None:
        data = node.data_inputs
        if len(data) != 1 or data[0].producer is None:
            return None
        return self.graph.nodes[data[0].producer[0]]

    def _fold_before(self, node: Node) -> str | None:
        """Fold into the producing layer; ``None`` when done, else why not.

        A max pool between them is looked through when every BN scale is positive: for
        ``s > 0``, ``max(s·a + t) = s·max(a) + t``, so the BN commutes with the pool.
        """
        bn = _norm_of(node)
        producer = self._single_data_input(node)
        pool = None
        if producer is not None and producer.module is None and _is_max_pool(producer):
            pool, producer = producer, self._single_data_input(producer)
        if producer is None or producer.module is None or type(producer.module) not in _LAYERS:
            source = pool if pool is not None else producer
            where = "several tensors" if source is None else describe(self.graph, source.index)
            return f"its input comes from {where}, not from a conv or linear output alone"
        layer = producer.module
        why = self._layer_unusable(layer)
        if why is not None:
            return why
        reader = node.index if pool is None else pool.index
        others = [r for r in self.readers.get(producer.index, []) if r != reader]
        if pool is not None:
            others += [r for r in self.readers.get(pool.index, []) if r != node.index]
        if others:
            names = ", ".join(describe(self.graph, r) for r in others[:3])
            return f"{self.name(layer)}'s output is also read by {names}"
        if not _channels_match(layer, node, bn):
            return f"{self.name(layer)}'s output channels are not the BN's dim 1"
        if pool is not None and not bool((bn_affine(bn)[0] > 0).all()):
            return (
                f"a max pool ({describe(self.graph, pool.index)}) lies between it and "
                f"{self.name(layer)}, and a BN scale is not positive: they do not commute"
            )
        self.pairs.append((layer, bn))
        self.folded_norms.append(bn)
        return None

    def _fold_after(self, node: Node) -> str | None:
        """Fold into the one layer that reads the BN's output; ``None`` when done."""
        bn = _norm_of(node)
        readers = self.readers.get(node.index, [])
        if len(readers) != 1 or readers[0] == MODEL_OUTPUT:
            names = ", ".join(describe(self.graph, r) for r in readers[:3]) or "nothing"
            return f"its output goes to {names}, not to one conv or linear"
        reader = self.graph.nodes[readers[0]]
        layer = reader.module
        if layer is None or type(layer) not in _LAYERS:
            return (
                f"its output goes to {describe(self.graph, reader.index)}, not to a conv or linear"
            )
        name = self.name(layer)
        if isinstance(layer, TransposedModule):
            return (
                f"followed by the transposed conv {name}: "
                "the shift would not be uniform at the borders"
            )
        why = self._layer_unusable(layer)
        if why is not None:
            return why
        if id(layer) in self._input_folded:
            return f"{name} already absorbs another BN"
        padding = _zero_padding(layer)
        if padding:
            return (
                f"followed by {name}, which reads zero padding {padding}: "
                "the BN's shift would not reach the border zeros, so folding is not exact"
            )
        if isinstance(layer, nn.Linear) and len(node.output_shape) != 2:
            return f"followed by {name} over the last dim of a {len(node.output_shape)}-D map"
        self._input_folded.add(id(layer))
        self.pairs.append((bn, layer))
        self.folded_norms.append(bn)
        return None

    def _note_functional(self, node: Node) -> None:
        producer = self._single_data_input(node)
        if producer is None or producer.module is None or type(producer.module) not in _LAYERS:
            return
        self.skipped.append(
            Skipped(
                describe(self.graph, node.index),
                f"a functional batch norm after {self.name(producer.module)}: not a module, so "
                "it cannot be replaced by Identity (use nn.BatchNorm to let it fold)",
            )
        )


def _is_max_pool(node: Node) -> bool:
    return node.name.startswith(("max_pool1d", "max_pool2d", "max_pool3d"))


def _has_hooks(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _norm_of(node: Node) -> nn.modules.batchnorm._BatchNorm:
    """The BatchNorm module of a node that _plan_norm was called for (planned BN nodes only)."""
    if not isinstance(node.module, nn.modules.batchnorm._BatchNorm):
        raise TypeError(f"fold: node {node.index} is not a BatchNorm module")
    return node.module


def _channels_match(layer: nn.Module, bn_node: Node, bn: nn.Module) -> bool:
    shape = bn_node.output_shape
    if len(shape) < 2 or shape[1] != bn.num_features:
        return False
    if isinstance(layer, nn.Linear):  # BN1d on (N, L, F) normalises L, not the features
        return len(shape) == 2 and layer.out_features == bn.num_features
    return bool(layer.out_channels == bn.num_features)


def _zero_padding(layer: nn.Module) -> tuple[int, ...] | str | None:
    """The zero padding a conv reads, or None (Linear; non-zero padding modes copy BN values,
    which the BN's affine map commutes with)."""
    if not isinstance(layer, ConvModule) or layer.padding_mode != "zeros":
        return None
    padding = layer.padding
    if padding == "valid":
        return None
    if padding == "same":
        needs = any((k - 1) * d for k, d in zip(layer.kernel_size, layer.dilation, strict=True))
        return "same" if needs else None
    return tuple(padding) if any(padding) else None  # type: ignore[arg-type]  # a str is handled above


def _replace(root: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, attr = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, attr, new)


def _max_error(
    original: nn.Module, folded: nn.Module, shape: tuple[int, ...], seed: int, batch: int
) -> float:
    """max |folded(x) − original(x)| in float64, eval mode, on seeded N(0, 1) inputs."""
    reference = copy.deepcopy(original).double().eval()
    candidate = copy.deepcopy(folded).double().eval()
    device = next((t.device for t in original.parameters()), torch.device("cpu"))
    generator = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn((batch, *shape), generator=generator, dtype=torch.float64, device=device)
    with torch.inference_mode():
        want, got = reference(x), candidate(x)
    worst = 0.0
    for a, b in zip(_tensors(want), _tensors(got), strict=True):
        if a.numel():
            worst = max(worst, float((a - b).abs().max()))
    return worst


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for item in value for t in _tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    return []
