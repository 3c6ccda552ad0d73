"""Capture: functional ops and module calls are seen, and the model is left exactly as found."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as module_globals
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.analysis import summarize
from cnnkit.errors import ConfigError, ShapeError, UnsupportedError
from tests.analysis.models import DataDependent, FunctionalNet, TinyResNet


def _snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "training": {name: m.training for name, m in model.named_modules()},
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for m in model.modules()
        ],
        "grad": [p.requires_grad for p in model.parameters()],
        "device": {p.device for p in model.parameters()},
        "grads": [p.grad for p in model.parameters()],
    }


def _global_hooks() -> tuple[int, ...]:
    return (
        len(module_globals._global_forward_hooks),
        len(module_globals._global_forward_pre_hooks),
        len(module_globals._global_backward_hooks),
    )


@pytest.mark.parametrize("mode", ["eval", "train", "same"])
@pytest.mark.parametrize("measure", [False, True])
def test_model_is_left_exactly_as_found(mode, measure):
    model = TinyResNet()
    model.layer1.train(False)  # mixed flags: each must come back as it was
    before = _snapshot(model)
    hooks = _global_hooks()
    rng = torch.get_rng_state()
    functional = {name: getattr(F, name) for name in ("conv2d", "relu", "linear")}
    summarize(model, (3, 16, 16), mode=mode, measure=measure)
    after = _snapshot(model)
    assert after["training"] == before["training"]
    assert after["hooks"] == before["hooks"] and _global_hooks() == hooks
    assert after["grad"] == before["grad"] and after["device"] == before["device"]
    assert all(g is None for g in after["grads"])
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), key
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(getattr(F, name) is fn for name, fn in functional.items())


def test_hooks_are_removed_when_the_forward_fails():
    hooks = _global_hooks()
    with pytest.raises(ShapeError):
        summarize(TinyResNet(), (5, 16, 16))  # wrong channel count
    assert _global_hooks() == hooks


def test_functional_ops_are_rows_named_by_module_and_function():
    summary = summarize(FunctionalNet(), (3, 8, 8))
    names = [row.name for row in summary.layers]
    assert names == [
        "conv2d", "mul", "block", "add", "block", "add_1", "block", "add_2", "relu",
        "getitem", "mul_1", "setitem", "relu_", "cat", "mean", "head", "tied",
    ]  # fmt: skip
    assert [row.type for row in summary.layers][:3] == ["conv2d", "mul", "Conv2d"]


def test_macs_of_functional_ops_and_loops_equal_flop_counter():
    model = FunctionalNet()
    summary = summarize(model, (3, 8, 8), batch_size=2)
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(2, 3, 8, 8))
    assert summary.total.macs * 2 == counter.get_total_flops()


def test_a_module_called_three_times_is_three_rows_with_its_params_once():
    model = FunctionalNet()
    summary = summarize(model, (3, 8, 8))
    rows = [row for row in summary.layers if row.name == "block"]
    block_params = sum(p.numel() for p in model.block.parameters())
    assert [row.params for row in rows] == [block_params, 0, 0]
    assert len({row.macs for row in rows}) == 1 and rows[0].macs > 0


def test_tied_parameters_count_once_and_unused_ones_are_reported():
    model = FunctionalNet()
    summary = summarize(model, (3, 8, 8))
    unique = {id(p): p.numel() for p in model.parameters()}
    assert summary.total.params == sum(unique.values())
    head = next(row for row in summary.layers if row.name == "head")
    tied = next(row for row in summary.layers if row.name == "tied")
    assert head.params == 8 * 8 + 8 and tied.params == 8  # the shared weight counted once
    assert summary.unused_params == sum(p.numel() for p in model.unused.parameters())
    assert sum(row.params for row in summary.layers) + summary.unused_params == summary.total.params


def test_frozen_parameters_are_not_trainable():
    model = TinyResNet()
    for p in model.stem.parameters():
        p.requires_grad_(False)
    summary = summarize(model, (3, 16, 16))
    frozen = sum(p.numel() for p in model.stem.parameters())
    assert summary.total.params - summary.total.trainable_params == frozen
    assert sum(r.params - r.trainable_params for r in summary.layers) == frozen


def test_shapes_equal_a_real_forward():
    model = TinyResNet().eval()
    shapes = {}
    for name, module in model.named_modules():
        if not list(module.children()):
            module.register_forward_hook(
                lambda m, i, o, name=name: shapes.setdefault(name, (i[0].shape, o.shape)) and None
            )
    model(torch.randn(2, 3, 20, 12))
    summary = summarize(model, (3, 20, 12), batch_size=2)
    for row in summary.layers:
        if row.name in shapes:
            assert row.input_shapes[0] == tuple(shapes[row.name][0])
            assert row.output_shape == tuple(shapes[row.name][1])


def test_meta_models_and_huge_inputs_cost_no_memory():
    with torch.device("meta"):
        model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3))
    summary = summarize(model, (3, 4096, 4096), batch_size=256)
    assert summary.device == "meta"
    assert summary.layers[0].output_shape == (256, 64, 4096, 4096)


def test_data_dependent_forward_falls_back_to_a_real_pass():
    summary = summarize(DataDependent(), (3, 8, 8))
    assert summary.device == "cpu" and "meta" in summary.fallback_reason
    assert summary.layers[-1].output_shape == (1, 4, 6, 6)
    assert summary.total.macs == 1 * 4 * 6 * 6 * 3 * 9


def test_a_meta_model_that_needs_a_real_pass_is_refused():
    with torch.device("meta"):
        model = DataDependent()
    with pytest.raises(UnsupportedError, match="meta"):
        summarize(model, (3, 8, 8))


def test_a_factory_is_built_on_meta_and_rebuilt_when_it_must_run():
    assert summarize(TinyResNet, (3, 8, 8)).device == "meta"
    summary = summarize(DataDependent, (3, 8, 8))
    assert summary.device == "cpu"


def _first_failing_layer(model: nn.Sequential, shape: tuple[int, ...]) -> str:
    """The oracle: run the real layers one by one until one raises."""
    x = torch.randn(shape)
    for name, layer in model.named_children():
        try:
            x = layer(x)
        except RuntimeError:
            return name
        if x.numel() == 0:
            return name
    return ""


@pytest.mark.parametrize("size", [4, 7, 10, 13])
def test_too_small_input_names_the_first_layer_with_an_empty_output(size):
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3), nn.MaxPool2d(2),
        nn.Conv2d(2, 2, 2),
    )  # fmt: skip
    expected = _first_failing_layer(model, (1, 1, size, size))
    if not expected:
        summarize(model, (1, size, size))
        return
    with pytest.raises(ShapeError) as error:
        summarize(model, (1, size, size))
    message = str(error.value)
    assert f"{expected} (" in message and "too small" in message and "\n" not in message


def test_a_mismatched_input_names_the_layer_in_one_line():
    with pytest.raises(ShapeError, match=r"^stem\.0 \(Conv2d\) cannot take") as error:
        summarize(TinyResNet(), (1, 16, 16))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "arguments",
    [dict(input_shape=(3, 0, 8)), dict(input_shape=(3, 8, 8), batch_size=0), dict(depth=-1)],
)
def test_bad_arguments_are_config_errors(arguments):
    arguments = {"input_shape": (3, 8, 8), **arguments}
    with pytest.raises(ConfigError):
        summarize(TinyResNet(), **arguments)


def test_inplace_ops_do_not_allocate_and_views_are_free():
    summary = summarize(TinyResNet(), (3, 8, 8))
    relu = next(row for row in summary.layers if row.name == "stem.2")
    inplace = next(row for row in summary.layers if row.name == "layer1.relu")
    flatten = next(row for row in summary.layers if row.name == "flatten")
    assert relu.activation_bytes == 8 * 8 * 8 * 4
    assert inplace.activation_bytes == 0 and flatten.activation_bytes == 0


def test_deepcopy_of_a_summarized_model_still_works():
    model = TinyResNet()
    summarize(model, (3, 8, 8))
    clone = copy.deepcopy(model)
    assert clone(torch.randn(1, 3, 8, 8)).shape == (1, 10)


class _NoPrefixTokens(nn.Module):
    """timm's qwen3 ViTs: ``x[:, :0]`` (no prefix tokens) is empty on purpose and concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prefix, tokens = x[:, :0], x[:, 0:]
        return torch.cat([prefix, self.proj(tokens)], dim=1)


def test_an_empty_intermediate_tensor_is_legal():
    model = _NoPrefixTokens()
    summary = summarize(model, (5, 4))
    assert summary.layers[-1].output_shape == tuple(model(torch.randn(1, 5, 4)).shape)
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 5, 4))
    assert summary.total.macs * 2 == counter.get_total_flops()


def test_an_empty_model_output_is_refused_naming_where_it_began():
    class Crop(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x[:, :, 4:])

    model = nn.Sequential(nn.Conv2d(1, 1, 3), Crop())
    assert model(torch.randn(1, 1, 6, 6)).numel() == 0  # PyTorch itself runs it
    with pytest.raises(ShapeError, match=r"too small for 1 \(Crop\)|too small for getitem") as e:
        summarize(model, (1, 6, 6))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("model", [FunctionalNet, TinyResNet])
def test_the_dispatch_with_function_modes_on_records_the_same(model, monkeypatch):
    """The dispatch mode keeps its tensor reads away from FunctionNamer with a quiet block
    should an op reach it with the function mode on (torch takes the mode off its stack inside
    every torch function, so the usual op skips the block): both paths record the same."""
    from cnnkit.analysis import _recording

    usual = summarize(model(), (3, 8, 8)).to_dict()
    monkeypatch.setattr(_recording, "_function_modes_on", lambda: True)
    enabled = []  # per op: whether torch functions were on for its bookkeeping
    original = _recording.DispatchRecorder._before

    def spy(self, *args):
        enabled.append(torch._C._is_torch_function_enabled())
        return original(self, *args)

    monkeypatch.setattr(_recording.DispatchRecorder, "_before", spy)
    assert summarize(model(), (3, 8, 8)).to_dict() == usual
    assert enabled and not any(enabled)  # every op's bookkeeping ran in a quiet block
