"""Capture one forward pass of any ``nn.Module`` as a graph of aten ops (capability A6).

The pass runs on the meta device (no memory, no compute, any input size) through
``torch.func.functional_call`` with meta copies of the parameters and buffers, so the model is
left exactly as found: same device, same values, no hooks left behind, every module's
``training`` flag restored, no RNG consumed. A ``TorchDispatchMode`` records every aten op
(functional ops, inplace ops, Python loops included: it is a real forward), global module hooks
say which module call each op belongs to (see :mod:`cnnkit.analysis._recording`).

When a model cannot run on meta (data-dependent Python such as ``if x.sum() > 0``, an op with no
meta kernel) the pass is repeated for real on the model's device, with cloned buffers and a
seeded random input, and :attr:`Graph.fallback_reason` says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from cnnkit.analysis._inputs import ModelInputs, one_shape
from cnnkit.analysis._recording import (
    DispatchRecorder,
    FunctionNamer,
    ModuleRuleLookup,
    OpFailed,
    Recorder,
)
from cnnkit.analysis._swap import swapped
from cnnkit.analysis._tensors import tensors_in
from cnnkit.analysis.graph import Graph
from cnnkit.errors import CnnkitError, ConfigError, ShapeError, UnsupportedError, first_line

Mode = Literal["eval", "train", "same"]

_TOO_SMALL = re.compile(
    r"too small|greater than (the )?actual input|output size|non-positive|would be empty", re.I
)
_NEEDS_REAL = re.compile(r"\bmeta\b|data-dependent|item\(\)|no data", re.I)


# a device object, not "meta": torch parses a device string on every call (~0.4 us a tensor)
_META = torch.device("meta")


class _NeedsRealForward(Exception):
    pass


def _no_module_rules(module: nn.Module) -> None:
    return None


def capture(
    model: nn.Module,
    input_shape: Sequence[int] | ModelInputs,
    *,
    mode: Mode = "eval",
    module_rule: ModuleRuleLookup = _no_module_rules,
) -> Graph:
    """Run ``model`` once on an input of ``input_shape`` (batch included) and record its graph.

    ``input_shape`` may also be the :class:`~cnnkit.analysis._inputs.ModelInputs` that
    ``summarize`` parses (several inputs, keyword inputs, example tensors, integer dtypes).

    ``mode`` sets every module's ``training`` flag for the pass (``"same"`` keeps them); the
    flags are restored afterwards. ``module_rule(module)`` returns a rule for modules that are to
    be treated as one opaque leaf (their inner ops are not recorded), or ``None``.

    Raises :class:`~cnnkit.errors.ShapeError` naming the first layer that cannot take its input
    (an input too small for the network: the layer whose output would be empty).
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be an nn.Module, got {type(model).__name__}")
    shape = input_shape if isinstance(input_shape, ModelInputs) else one_shape(input_shape)
    if mode not in ("eval", "train", "same"):
        raise ConfigError(f"mode must be 'eval', 'train' or 'same', got {mode!r}")
    walked = _ModelTensors(model)
    flags = [(module, module.training) for module in walked.modules]
    try:
        if mode != "same":
            for module, training in flags:  # not model.train(): a user override could do more
                if training != (mode == "train"):  # nn.Module.__setattr__ is slow: only changes
                    module.training = mode == "train"
        try:
            return _run(model, walked, shape, module_rule, meta=True)
        except _NeedsRealForward as reason:
            if _device_of(model).type == "meta":
                raise UnsupportedError(
                    f"{reason}; the model's weights are on the meta device, so it cannot be run "
                    "for real: build it with real weights to analyse it"
                ) from None
            graph = _run(model, walked, shape, module_rule, meta=False)
            graph.fallback_reason = str(reason)
            return graph
    finally:
        for module, training in flags:
            if module.training != training:
                module.training = training


def _device_of(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


class _ModelTensors:
    """The model's modules, parameters and buffers by name, from one walk over its modules
    (``named_parameters`` and friends each walk the whole tree again: slow on big models).

    ``parameters`` and ``buffers`` keep every alias of a tied tensor; ``canonical`` maps a
    tensor's id to its first name, the one ``named_parameters()`` reports. ``modules`` are the
    modules as ``model.modules()`` yields them (each once).
    """

    def __init__(self, model: nn.Module) -> None:
        self.modules: list[nn.Module] = []
        self.module_names: dict[int, str] = {}
        self.parameters: list[tuple[str, torch.Tensor]] = []
        self.buffers: list[tuple[str, torch.Tensor]] = []
        self.canonical: dict[int, str] = {}
        for prefix, module in model.named_modules(remove_duplicate=False):
            if id(module) not in self.module_names:
                self.modules.append(module)
            self.module_names.setdefault(id(module), prefix)
            dot = prefix + "." if prefix else ""
            for name, tensor in module._parameters.items():
                if tensor is not None:
                    self.parameters.append((dot + name, tensor))
                    self.canonical.setdefault(id(tensor), dot + name)
            for name, tensor in module._buffers.items():
                if tensor is not None:
                    self.buffers.append((dot + name, tensor))

    def first_float_dtype(self) -> torch.dtype:
        for _, tensor in (*self.parameters, *self.buffers):
            if tensor.is_floating_point():
                return tensor.dtype
        return torch.get_default_dtype()

    def state(self, meta: bool) -> tuple[dict[int, torch.Tensor], dict[int, str]]:
        """Tensors to run with, by the id of the tensor they stand for (meta copies, or the
        parameters themselves and cloned buffers), and the canonical name of each parameter
        tensor passed.

        Tied parameters (one tensor under two names) stay one tensor, so they stay tied and the
        parameter count dedupes them.
        """
        copies: dict[int, torch.Tensor] = {}
        for _, tensor in self.parameters:
            if id(tensor) not in copies:
                copies[id(tensor)] = torch.empty_like(tensor, device=_META) if meta else tensor
        for _, tensor in self.buffers:
            if id(tensor) not in copies:  # cloned: a training-mode BN must not move real stats
                copies[id(tensor)] = (
                    torch.empty_like(tensor, device=_META) if meta else tensor.detach().clone()
                )
        names = {id(copies[key]): name for key, name in self.canonical.items()}
        return copies, names


def _run(
    model: nn.Module,
    walked: _ModelTensors,
    inputs: ModelInputs,
    module_rule: ModuleRuleLookup,
    meta: bool,
) -> Graph:
    tensors, parameter_names = walked.state(meta)
    recorder = Recorder(walked.module_names, parameter_names, module_rule, meta)
    device = torch.device("meta") if meta else _device_of(model)
    dtype = walked.first_float_dtype()
    # a real pass never sees uninitialised memory: data-dependent branches need real values
    args, kwargs, made = inputs.make(meta, device, dtype)
    recorder.add_input(made)
    shape = _shape_text(inputs.shapes)
    register = torch.nn.modules.module
    handles = [
        register.register_module_forward_pre_hook(recorder.pre_hook),
        register.register_module_forward_hook(recorder.post_hook),
    ]
    rng_devices = [] if device.type in ("cpu", "meta") else [device]
    try:
        with (
            swapped(model, tensors, walked.modules),
            torch.random.fork_rng(devices=rng_devices),  # a training-mode dropout draws numbers
            torch.no_grad(),
            FunctionNamer(recorder, device),
            DispatchRecorder(recorder),
        ):
            output = model(*args, **kwargs)
    except OpFailed as failure:
        raise _classify(failure.error, failure.layer, shape, meta, recorder.first_empty) from None
    except CnnkitError:
        raise
    except Exception as error:
        layer = recorder.innermost()
        raise _classify(error, layer, shape, meta, recorder.first_empty) from None
    finally:
        for handle in handles:
            handle.remove()
    _check_output(output, recorder, shape)
    return _graph(walked, recorder, inputs.shapes, device)


def _shape_text(shapes: tuple[tuple[int, ...], ...]) -> str:
    return str(shapes[0]) if len(shapes) == 1 else ", ".join(str(s) for s in shapes)


def _check_output(output: Any, recorder: Recorder, shape: str) -> None:
    """Refuse an empty model output (empty intermediate tensors are legal), naming the layer
    whose output first became empty."""
    for tensor in tensors_in(output):
        if tensor.numel() == 0 and recorder.ref(tensor).is_data:
            where = recorder.first_empty
            layer, empty = where if where is not None else ("the model", tuple(tensor.shape))
            raise ShapeError(
                f"input {shape} is too small for {layer}: its output {empty} is empty, and so "
                f"is the model's output {tuple(tensor.shape)}"
            )


def _classify(
    error: BaseException,
    layer: str,
    shape: str,
    meta: bool,
    first_empty: tuple[str, tuple[int, ...]] | None = None,
) -> Exception:
    """A failed forward: retry for real (meta limitation) or a one-line ShapeError."""
    message = first_line(error)
    if meta and (isinstance(error, NotImplementedError) or _NEEDS_REAL.search(str(error))):
        return _NeedsRealForward(f"{layer} cannot run on the meta device ({message})")
    if isinstance(error, CnnkitError) and not isinstance(error, ShapeError):
        return error
    if first_empty is not None:  # PyTorch refused an op downstream of an empty tensor
        return ShapeError(
            f"input {shape} is too small for {first_empty[0]}: its output {first_empty[1]} "
            f"is empty and {layer} refuses it ({message})"
        )
    if _TOO_SMALL.search(message):
        return ShapeError(
            f"input {shape} is too small for {layer}: its output would be empty ({message})"
        )
    if meta and not isinstance(error, RuntimeError | ValueError | IndexError):
        return _NeedsRealForward(f"{layer} failed on the meta device ({message})")
    return ShapeError(f"{layer} cannot take the input {shape}: {message}")


def _graph(
    walked: _ModelTensors,
    recorder: Recorder,
    shapes: tuple[tuple[int, ...], ...],
    device: torch.device,
) -> Graph:
    parameters: dict[str, tuple[int, bool, int]] = {}
    for _, p in walked.parameters:
        name = walked.canonical[id(p)]
        if name not in parameters:  # (a tied parameter: counted once)
            count = p.numel()
            parameters[name] = (count, p.requires_grad, count * p.element_size())
    seen: set[int] = set()
    buffer_bytes = 0
    for _, b in walked.buffers:
        if id(b) not in seen:
            seen.add(id(b))
            buffer_bytes += b.numel() * b.element_size()
    module_parameters = {}
    canonical = walked.canonical
    for call in recorder.calls:
        module = call.module
        if call.kind != "module" or not call.is_row or module is None:
            continue
        owned = module._parameters.values() if not module._modules else module.parameters()
        module_parameters[call.index] = tuple(
            [canonical[id(p)] for p in owned if p is not None and id(p) in canonical]
        )
    return Graph(
        nodes=recorder.nodes,
        calls=recorder.calls,
        input_shape=shapes[0],
        input_shapes=shapes,
        device=device.type,
        fallback_reason=None,
        parameters=parameters,
        buffer_bytes=buffer_bytes,
        module_parameters=module_parameters,
    )


def build_and_capture(
    factory: Callable[[], nn.Module],
    shape: Sequence[int] | ModelInputs,
    mode: Mode,
    module_rule: ModuleRuleLookup,
    real: bool,
) -> tuple[nn.Module, Graph]:
    """Build ``factory()`` on the meta device and capture it; build it for real when the
    factory or the forward pass cannot run on meta (or ``real`` is asked for). Returns the
    model built and its graph."""
    if not callable(factory):
        raise ConfigError(f"model must be an nn.Module or a factory, got {type(factory).__name__}")
    model = None
    if not real:
        try:
            with torch.device("meta"):
                model = factory()
        except (NotImplementedError, RuntimeError):  # the factory reads tensor values
            model = None
    if model is not None:
        _check_module(model)
        try:
            return model, capture(model, shape, mode=mode, module_rule=module_rule)
        except UnsupportedError:  # needs a real forward pass: rebuild with real weights
            pass
    model = factory()
    _check_module(model)
    return model, capture(model, shape, mode=mode, module_rule=module_rule)


def _check_module(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise ConfigError(f"the model factory returned {type(model).__name__}, not an nn.Module")
