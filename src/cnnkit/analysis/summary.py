"""``summarize(model, input_shape)``: capture -> rules -> receptive field -> :class:`Summary`.

The per-layer trace of capability A6: name, type, shapes, parameters (trainable and frozen),
MACs, other FLOPs, activation bytes and receptive field, plus totals. Conventions:

- ``macs``: multiply-accumulates of convolutions (incl. grouped, depthwise, transposed), linear
  layers and matrix products, exactly torch.utils.flop_counter's FLOPs / 2; ``flops = 2 macs``.
- ``other_flops``: everything element-wise (normalisation, activations, pooling, residual adds,
  SE multiplies, softmax, bias adds), with the per-op conventions of docs/analysis.md.
- ``activation_bytes``: bytes of the tensors a layer allocates for its output (a view or an
  inplace op allocates none); the total is seed 000's sum_l B H_l W_l C_l x bytes, and
  ``training_activation_bytes`` its x2 rule of thumb.
- ``rf``, ``jump``, ``start``: seed 002's receptive field, exact over the graph; ``None`` entries
  are unknown (an op with no closed form), and a field covering the whole input is global
  (``rf_global``; ``rf`` is then the input's extent n on that axis).
- ``local_rf``: the field through spatially varying paths only (every broadcast along the axis
  cut: SE gates, pooled contexts added back, normalisation statistics), as SE papers quote it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from cnnkit.analysis._inputs import ModelInputs, TensorSpec, model_inputs
from cnnkit.analysis._rows import (
    Axes,
    CallFigures,
    RowSums,
    call_sources,
    figures_and_sums,
    representative,
    selected_calls,
)
from cnnkit.analysis.capture import Mode, build_and_capture, capture
from cnnkit.analysis.graph import INPUT_CALL, Call, Graph
from cnnkit.analysis.memory import MeasuredMemory, measure_saved_bytes
from cnnkit.analysis.receptive_field import propagate
from cnnkit.analysis.rules import OpFigures, Rule, find_rule, rule_key
from cnnkit.analysis.spatial import UNKNOWN
from cnnkit.arith.memory import training_activation_bytes
from cnnkit.errors import CnnkitError, ConfigError, ShapeError


@dataclass(frozen=True)
class LayerRow:
    """One row: a leaf module call, a function called in a non-leaf forward, or (with a depth)
    a module call at that depth with everything inside it.

    ``inputs`` are indices of the rows this one reads (``-1``: the model input), for diagrams.
    Receptive fields are per spatial axis (see :class:`Totals` for their conventions).
    """

    name: str
    type: str
    depth: int
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    params: int
    trainable_params: int
    macs: int
    other_flops: int
    activation_bytes: int
    rf: Axes | None
    jump: Axes | None
    start: Axes | None
    inputs: tuple[int, ...] = ()
    unsupported: tuple[str, ...] = ()
    rf_global: tuple[bool, ...] | None = None
    local_rf: Axes | None = None
    local_rf_global: tuple[bool, ...] | None = None
    kernel: tuple[int, ...] | None = None  # a module's kernel_size (convolutions, pooling)


@dataclass(frozen=True)
class Totals:
    """Whole-model figures. The receptive field is that of the last spatial output
    (``rf_layer``): the last row whose output is a map over the input's grid (the input's rank,
    every spatial axis still holding positions: before global pooling or flattening).

    Per axis: ``rf`` is seed 002's exact field; where it is global (an SE gate, attention, a
    train-mode batch norm lets every position see the whole input), ``rf_global`` is true and
    ``rf`` is the input's extent n. ``None``: unknown (no closed form on the path). ``jump`` and
    ``start`` give the grid of the map's positions (centre of output i: start + i jump).
    ``local_rf`` is the field through spatially varying paths only (broadcasts cut);
    ``local_rf_global`` where even that covers everything, 0 where only broadcasts reach.
    """

    params: int
    trainable_params: int
    macs: int
    flops: int
    other_flops: int
    param_bytes: int
    activation_bytes: int
    rf: Axes | None
    jump: Axes | None
    start: Axes | None
    training_activation_bytes: int = 0
    buffer_bytes: int = 0
    rf_layer: str | None = None
    rf_global: tuple[bool, ...] | None = None
    local_rf: Axes | None = None
    local_rf_global: tuple[bool, ...] | None = None


@dataclass(frozen=True)
class Summary:
    """The result of :func:`summarize`: rows (``layers``), ``total`` and what was not counted.

    ``unsupported`` maps ops that have no rule to their number of calls: their MACs and FLOPs
    are not in the totals. ``device`` is ``"meta"`` unless the model had to run for real, and
    then ``fallback_reason`` says why.
    """

    model: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerRow, ...]
    total: Totals
    unsupported: dict[str, int] = field(default_factory=dict)
    device: str = "meta"
    fallback_reason: str | None = None
    depth: int | None = None
    unused_params: int = 0
    measured: MeasuredMemory | None = None
    graph: Graph | None = field(default=None, repr=False, compare=False)
    figures: tuple[CallFigures, ...] = field(default=(), repr=False, compare=False)
    input_shapes: tuple[tuple[int, ...], ...] = ()

    def __str__(self) -> str:
        """The table of ``cnnkit summary`` (``print(summary)``, as torchinfo prints)."""
        from cnnkit.analysis.render import render_table  # the renderers import this module

        return render_table(self).rstrip("\n")

    def at_depth(self, depth: int | None) -> Summary:
        """The same summary with rows aggregated at module depth ``depth`` (``None``: leaves)."""
        if self.graph is None:
            raise ConfigError("this summary has no graph to re-aggregate (build it with summarize)")
        if depth is not None and depth < 0:
            raise ConfigError(f"depth must be >= 0, got {depth}")
        layers = _layers(self.graph, self.figures, depth)
        return dataclasses.replace(self, layers=layers, depth=depth)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of docs/architecture.md (plus ``unsupported``, ``device``, ...)."""
        total = dataclasses.asdict(self.total)
        total = {"flops": self.total.flops, **total}
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "input_shapes": [list(shape) for shape in self.input_shapes or (self.input_shape,)],
            "layers": [_row_dict(row) for row in self.layers],
            "total": {k: _jsonable(v) for k, v in total.items()},
            "unsupported": dict(self.unsupported),
            "unused_params": self.unused_params,
            "device": self.device,
            "fallback_reason": self.fallback_reason,
            "depth": self.depth,
            "measured": None if self.measured is None else dataclasses.asdict(self.measured),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _row_dict(row: LayerRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "type": row.type,
        "depth": row.depth,
        "input_shapes": [list(s) for s in row.input_shapes],
        "output_shape": list(row.output_shape),
        "params": row.params,
        "trainable_params": row.trainable_params,
        "macs": row.macs,
        "other_flops": row.other_flops,
        "activation_bytes": row.activation_bytes,
        "rf": _jsonable(row.rf),
        "jump": _jsonable(row.jump),
        "start": _jsonable(row.start),
        "rf_global": _jsonable(row.rf_global),
        "local_rf": _jsonable(row.local_rf),
        "local_rf_global": _jsonable(row.local_rf_global),
        "inputs": list(row.inputs),
        "unsupported": list(row.unsupported),
        "kernel": _jsonable(row.kernel),
    }


def summarize(
    model: nn.Module | Callable[[], nn.Module],
    input_size: Any = None,
    *,
    input_data: Any = None,
    dtypes: Any = None,
    batch_size: int = 1,
    depth: int | None = None,
    mode: Mode = "eval",
    rules: Mapping[Any, Rule] | None = None,
    measure: bool = False,
    input_shape: Any = None,
) -> Summary:
    """Trace ``model`` on an input of (batch_size, *input_size) and summarise every layer.

    Args:
        model: any ``nn.Module``, left exactly as found (device, values, hooks, modes); or a
            factory (a zero-argument callable returning one), built on the meta device so that
            a model larger than memory costs nothing, and rebuilt for real only when it cannot
            run on meta or ``measure`` is set.
        input_size: one sample's shape without the batch, e.g. ``(3, 224, 224)``, or a list of
            shapes for a model with several inputs (torchinfo's ``input_size`` minus the batch).
        input_data: instead of ``input_size``: an example tensor, a tuple/list of them (the
            positional inputs) or a dict (keyword inputs), batch included. Only their shapes
            and dtypes are used, unless the model must run for real.
        dtypes: one dtype per shape of ``input_size`` (e.g. ``torch.long`` for token ids);
            default: the model's first floating dtype.
        batch_size: N of the traced input (with ``input_size``).
        depth: aggregate rows at this module depth (``None``: one row per leaf call).
        mode: ``"eval"`` (default), ``"train"`` or ``"same"``: the modules' training flags
            during the trace (restored afterwards). Eval is what inference costs.
        rules: per-call rule overrides, ``{aten op or nn.Module class: rule}``.
        measure: also run a real training-mode forward and measure the bytes autograd saves.
        input_shape: the former name of ``input_size``.

    Raises:
        ShapeError: the input is too small (names the first layer whose output would be empty)
            or does not fit a layer; a shape that includes the batch says the batch is separate.
        ConfigError: an argument of the wrong type or value (names the parameter).
    """
    if input_shape is not None:
        if input_size is not None:
            raise ConfigError("give input_size or input_shape (its former name), not both")
        input_size = input_shape
    if not isinstance(model, nn.Module) and not callable(model):
        raise ConfigError(f"model must be an nn.Module or a factory, got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise ConfigError(f"depth must be an integer >= 0, got {depth!r}")
    if not isinstance(mode, str) or mode not in ("eval", "train", "same"):
        raise ConfigError(f"mode must be 'eval', 'train' or 'same', got {mode!r}")
    if rules is not None and not isinstance(rules, Mapping):
        raise ConfigError(f"rules must be a dict {{op or module class: rule}}, got {rules!r}")
    if not isinstance(measure, bool):
        raise ConfigError(f"measure must be True or False, got {measure!r}")
    inputs, single = model_inputs(input_size, input_data, dtypes, batch_size)
    overrides: dict[Hashable, Rule] = {rule_key(k): v for k, v in (rules or {}).items()}
    with _collector_paused():
        try:
            return _summarize(model, inputs, depth, mode, overrides, measure)
        except ShapeError:
            if single and _runs_without_its_first_dim(model, inputs, mode, overrides):
                shape = inputs.shapes[0][1:]
                raise ShapeError(
                    f"input_size {shape} does not fit the model, but {shape[1:]} does: the "
                    f"batch is separate (pass input_size={shape[1:]}, batch_size={shape[0]})"
                ) from None
            raise


def _runs_without_its_first_dim(
    model: Any, inputs: ModelInputs, mode: Mode, overrides: dict[Hashable, Rule]
) -> bool:
    """Whether the model accepts the one input with its first dim dropped (a shape written
    with its batch, as torchinfo takes it)."""
    (spec,) = inputs.specs
    if len(spec.shape) < 3:
        return False
    shorter = ModelInputs((TensorSpec((spec.shape[0], *spec.shape[2:]), spec.dtype),), {})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _summarize(model, shorter, None, mode, overrides, False)
    except CnnkitError:
        return False
    return True


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while tracing: the trace allocates many small
    objects and makes no cycles worth collecting, and collection passes cost ~10-25% of the
    time. Restored as found.

    After a summary is made, the objects made meanwhile (its graph, rows and figures: ~17,000
    on LeViT-128) are moved to the oldest generation at once (``gc.freeze()`` then
    ``gc.unfreeze()``, two list splices) instead of being traversed by the young collection
    that the next allocation would start (4-9 ms on LeViT-128): they live as long as the
    summary and form no cycles (tests/analysis/test_summary_memory.py checks both). Not done
    when the caller has frozen objects of their own (``unfreeze`` would release them too), nor
    after an error."""
    was_enabled = gc.isenabled()
    gc.disable()
    made = False
    try:
        yield
        made = True
    finally:
        if was_enabled:
            if made and gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _summarize(
    model: nn.Module | Callable[[], nn.Module],
    inputs: ModelInputs,
    depth: int | None,
    mode: Mode,
    overrides: dict[Hashable, Rule],
    measure: bool,
) -> Summary:

    def module_rule(module: nn.Module) -> Rule | None:
        return find_rule(type(module), overrides)

    shape = inputs.shapes[0]
    factory = None
    if not isinstance(model, nn.Module):
        factory = model
        model, graph = build_and_capture(factory, inputs, mode, module_rule, real=False)
    else:
        graph = capture(model, inputs, mode=mode, module_rule=module_rule)
    figures, unsupported = _figures(graph, overrides)
    spatial = [UNKNOWN if f is None else f.spatial for f in figures]
    layouts = propagate(graph, spatial)
    made, sums = figures_and_sums(graph, figures, layouts)
    per_call = tuple(made)
    total = _totals(graph, figures, per_call, sums)
    measured = None
    if measure:
        _check_fits_in_memory(total)
        if factory is not None and _on_meta(model):
            model = factory()  # built on meta for the trace: now for real, once it fits
        measured = measure_saved_bytes(model, inputs, estimate=total.training_activation_bytes)
    return Summary(
        model=type(model).__name__,
        input_shape=shape,
        input_shapes=inputs.shapes,
        layers=_layers(graph, per_call, depth),
        total=total,
        unsupported=unsupported,
        device=graph.device,
        fallback_reason=graph.fallback_reason,
        depth=depth,
        unused_params=total.params - sums.params,
        measured=measured,
        graph=graph,
        figures=per_call,
    )


def _on_meta(model: nn.Module) -> bool:
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def _check_fits_in_memory(total: Totals) -> None:
    """Refuse a measurement whose parameters and training activations (seed 000's estimate,
    from the meta trace) exceed this machine's physical memory, before allocating anything."""
    need = total.param_bytes + total.buffer_bytes + total.training_activation_bytes
    try:
        have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: nothing to check against
        return
    if need > have:
        raise ConfigError(
            f"measure: the training forward needs about {need / 1e9:,.1f} GB (parameters and "
            f"seed 000's activation estimate), more than this machine's {have / 1e9:,.1f} GB"
        )


_NO_RULE: Any = object()


def _figures(
    graph: Graph, overrides: Mapping[Hashable, Rule]
) -> tuple[list[OpFigures | None], dict[str, int]]:
    figures: list[OpFigures | None] = [OpFigures()]
    unsupported: dict[str, int] = {}
    # one registry lookup per op, not per call; by id (an overload's __hash__ is Python code),
    # the nodes keep every op alive
    rules: dict[int, Rule | None] = {}
    for node in graph.nodes[1:]:
        rule = rules.get(id(node.op), _NO_RULE)
        if rule is _NO_RULE:
            rule = rules[id(node.op)] = find_rule(node.op, dict(overrides))
        if rule is None:
            name = str(node.op) if not isinstance(node.op, type) else node.op.__name__
            unsupported[name] = unsupported.get(name, 0) + 1
            figures.append(None)
            continue
        figures.append(rule(node))
    for name, count in unsupported.items():
        warnings.warn(
            f"cnnkit: no analysis rule for {name} ({count} call(s)): its MACs and FLOPs are not "
            "counted; add one with cnnkit.register_rule",
            stacklevel=4,  # the caller of summarize
        )
    return figures, unsupported


def _totals(
    graph: Graph,
    figures: Sequence[OpFigures | None],
    per_call: Sequence[CallFigures],
    sums: RowSums,
) -> Totals:
    macs = other = 0
    for figure in figures:
        if figure is not None:
            macs += figure.macs
            other += figure.other_flops
    params = trainable = param_bytes = 0
    for numel, requires_grad, nbytes in graph.parameters.values():
        params += numel
        if requires_grad:
            trainable += numel
        param_bytes += nbytes
    last = None if sums.last_spatial is None else graph.calls[sums.last_spatial]
    figures_last = per_call[last.index] if last is not None else None
    return Totals(
        params=params,
        trainable_params=trainable,
        macs=macs,
        flops=2 * macs,
        other_flops=other,
        param_bytes=param_bytes,
        activation_bytes=sums.activation_bytes,
        rf=figures_last.rf if figures_last else None,
        jump=figures_last.jump if figures_last else None,
        start=figures_last.start if figures_last else None,
        # seed 000's x2 rule over the tensors the rows allocate: sum over them of their bytes,
        # x2 (the bytes of each row's own outputs were summed by figures_and_sums)
        training_activation_bytes=training_activation_bytes([(sums.own_bytes,)], 1),
        buffer_bytes=graph.buffer_bytes,
        rf_layer=last.name if last is not None else None,
        rf_global=figures_last.rf_global if figures_last else None,
        local_rf=figures_last.local_rf if figures_last else None,
        local_rf_global=figures_last.local_rf_global if figures_last else None,
    )


def _layers(
    graph: Graph, per_call: Sequence[CallFigures], depth: int | None
) -> tuple[LayerRow, ...]:
    chosen = selected_calls(graph, depth)
    kernels: dict[type, bool] = {}
    rows = []
    for call, inputs in zip(chosen, _row_inputs(graph, chosen, depth), strict=True):
        f = per_call[call.index]
        module = call.module
        refs = call.inputs
        rows.append(_layer_row({
            "name": call.name,
            "type": call.type,
            "depth": call.depth,
            "input_shapes": (refs[0].shape,) if len(refs) == 1 else tuple([r.shape for r in refs]),
            "output_shape": call.outputs[0].shape if call.outputs else (),
            "params": f.params,
            "trainable_params": f.trainable_params,
            "macs": f.macs,
            "other_flops": f.other_flops,
            "activation_bytes": f.activation_bytes,
            "rf": f.rf,
            "jump": f.jump,
            "start": f.start,
            "inputs": inputs,
            "unsupported": f.unsupported,
            "rf_global": f.rf_global,
            "local_rf": f.local_rf,
            "local_rf_global": f.local_rf_global,
            "kernel": None if module is None else _kernel(module, kernels),
        }))  # fmt: skip
    return tuple(rows)


def _row_inputs(graph: Graph, chosen: Sequence[Call], depth: int | None) -> list[tuple[int, ...]]:
    """Per chosen call: the positions of the rows it reads (``-1``: the model input), sorted."""
    position = {call.index: i for i, call in enumerate(chosen)}
    if depth is None:  # every row call is shown as itself (its own index is not a source)
        found = [call_sources(graph, call) for call in chosen]
    else:
        sources: dict[int, set[int]] = {call.index: set() for call in chosen}
        for call in graph.calls:
            if not call.is_row:
                continue
            target = representative(graph, call.index, depth)
            if target not in sources:
                continue
            for source in call_sources(graph, call):
                shown = representative(graph, source, depth)
                if shown != target:
                    sources[target].add(shown)
        found = [sources[call.index] for call in chosen]
    result: list[tuple[int, ...]] = []
    for calls in found:
        if len(calls) == 1:  # most rows read one row: no sort
            (source,) = calls
            if source == INPUT_CALL:
                result.append((-1,))
            else:
                at = position.get(source)
                result.append(() if at is None else (at,))
            continue
        result.append(tuple(sorted(
            -1 if s == INPUT_CALL else position[s]
            for s in calls
            if s == INPUT_CALL or s in position
        )))  # fmt: skip
    return result


def _layer_row(values: dict[str, Any]) -> LayerRow:
    """``LayerRow(**values)`` without the frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field, ~3 us, and a keyword call, ~1 us; this runs once per
    row): ``values`` holds every field (tests build each row again with ``LayerRow(**)``)."""
    row = _new(LayerRow)
    _set(row, "__dict__", values)
    return row


_new = object.__new__
_set = object.__setattr__


def _kernel(
    module: nn.Module | None, plain: dict[type, bool] | None = None
) -> tuple[int, ...] | None:
    """The ``kernel_size`` a convolution or pooling module was built with, per axis.

    ``plain`` remembers, per module class, whether an instance's ``kernel_size`` can only be an
    instance attribute: then it is read from the instance's ``__dict__`` (a missing one would go
    through ``Module.__getattr__``, which raises: slow), and absent means no kernel (what
    ``Module.__getattr__`` would find, a parameter, buffer or submodule, is no kernel either).
    """
    if module is None:
        return None
    cls = type(module)
    is_plain = None if plain is None else plain.get(cls)
    if is_plain is None:
        is_plain = (
            not hasattr(cls, "kernel_size")
            and cls.__getattribute__ is nn.Module.__getattribute__
            and cls.__getattr__ is nn.Module.__getattr__
        )
        if plain is not None:
            plain[cls] = is_plain
    size = module.__dict__.get("kernel_size") if is_plain else getattr(module, "kernel_size", None)
    if isinstance(size, int) and not isinstance(size, bool):
        return (size,)
    if isinstance(size, tuple) and all(isinstance(v, int) for v in size):
        return size
    return None
