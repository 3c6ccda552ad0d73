"""Every registered model, whoever wrote it: figures, shapes, options, errors, gradients.

Parametrized over ``list_models()``, so a model added to the registry is tested without touching
this file. Figures are built on the ``meta`` device (no memory, no time); real forwards and
backwards run at a small input. Oracles: the published table (reference_figures.py), figures
written out by hand below for the seeds' own models, and torch.utils.flop_counter.
"""

from __future__ import annotations

import functools
import inspect
import math
import typing

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnkit.models as models
from cnnkit.errors import ConfigError, ShapeError, UnknownNameError
from cnnkit.models import create_model, list_models, model_info
from tests.oracles import _load_torchvision, torchvision_models

from .reference_figures import TORCHVISION_FIGURES

ALL = list_models()

# Seeds' models: (params, MACs) for their default input and 10 classes, by hand.
# MACs of a conv: C_out * H_out * W_out * C_in * k * k; of a Linear: in * out.
SEED_FIGURES: dict[str, tuple[int, int]] = {
    # 1x28x28 -> Linear(784, 10)
    "softmax_regression": ((784 + 1) * 10, 784 * 10),
    # 784 -> 256 -> 128 -> 10
    "mlp": (
        (784 + 1) * 256 + (256 + 1) * 128 + (128 + 1) * 10,
        784 * 256 + 256 * 128 + 128 * 10,
    ),
    # 3x32x32: conv3x3 32 (+BN) at 32x32, pool, 64 at 16x16, pool, 128 at 8x8, GAP, Linear(128, 10)
    "simple_cnn": (
        (3 * 9 + 1) * 32
        + 2 * 32
        + (32 * 9 + 1) * 64
        + 2 * 64
        + (64 * 9 + 1) * 128
        + 2 * 128
        + (128 + 1) * 10,
        32 * 32 * 32 * 27 + 64 * 16 * 16 * 32 * 9 + 128 * 8 * 8 * 64 * 9 + 128 * 10,
    ),
    # 003: conv5x5 1->6 pad 2 at 28x28, pool -> 14, conv5x5 6->16 -> 10x10, pool -> 5, 400-120-84-10
    "lenet5": (
        (1 * 25 + 1) * 6 + (6 * 25 + 1) * 16 + (400 + 1) * 120 + (120 + 1) * 84 + (84 + 1) * 10,
        6 * 28 * 28 * 25 + 16 * 10 * 10 * 6 * 25 + 400 * 120 + 120 * 84 + 84 * 10,
    ),
    # 003: conv5x5 1->32 at 28, pool, 3x3 32->64 at 14, pool, 3x3 64->128, 3x3 128->64 at 7,
    # adaptive 4x4, 1024-256-10
    "alexnet_small": (
        (25 + 1) * 32
        + (32 * 9 + 1) * 64
        + (64 * 9 + 1) * 128
        + (128 * 9 + 1) * 64
        + (1024 + 1) * 256
        + (256 + 1) * 10,
        32 * 28 * 28 * 25
        + 64 * 14 * 14 * 32 * 9
        + 128 * 7 * 7 * 64 * 9
        + 64 * 7 * 7 * 128 * 9
        + 1024 * 256
        + 256 * 10,
    ),
}
# Pre-activation ResNet-18 at 3x224x224, 1000 classes: the convs and fc of ResNet-18, so the
# MACs equal resnet18's published figure; BN channels: stem 64; layer1 64 (first block has no
# bn1) + 64 + 64 + 64; then per stage bn1(C_in) + bn2(C) + bn1(C) + bn2(C); final 512.
_PREACT_CONVS = (
    3 * 64 * 49
    + 4 * 64 * 64 * 9
    + (64 * 128 * 9 + 3 * 128 * 128 * 9 + 64 * 128)
    + (128 * 256 * 9 + 3 * 256 * 256 * 9 + 128 * 256)
    + (256 * 512 * 9 + 3 * 512 * 512 * 9 + 256 * 512)
)
_PREACT_BN_CHANNELS = 64 + 3 * 64 + (64 + 3 * 128) + (128 + 3 * 256) + (256 + 3 * 512) + 512
SEED_FIGURES["preact_resnet18"] = (
    _PREACT_CONVS + 2 * _PREACT_BN_CHANNELS + 512 * 1000 + 1000,
    TORCHVISION_FIGURES["resnet18"][1],
)


def build(name: str, **kwargs: object) -> nn.Module:
    """``create_model`` on the meta device: full size, no memory, no time."""
    if not kwargs:
        return _build_default(name)
    with torch.device("meta"):
        return create_model(name, **kwargs)


@functools.cache
def _build_default(name: str) -> nn.Module:
    # meta models hold no data, so tests can share one (each sets the mode it needs)
    with torch.device("meta"):
        return create_model(name)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flop_counter_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """torch.utils.flop_counter's FLOPs / 2 for one image (the oracle for MACs)."""
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, *input_shape, device="meta"))
    return counter.get_total_flops() // 2


def small_size(name: str) -> tuple[int, int]:
    """A small input a model accepts: its default when that is small, else max(min, 32)."""
    info = model_info(name)
    _, height, width = info.default_input
    if height <= 64:
        return height, width
    low = info.min_input or (1, 1)
    return max(low[0], 32), max(low[1], 32)


TORCHVISION_NAMES = [name for name in ALL if model_info(name).torchvision]


def _real_size_params(names: list[str]) -> list[object]:
    """Names as pytest params; models over 40 M parameters are marked slow (real tensors)."""
    return [
        pytest.param(name, marks=pytest.mark.slow) if count_params(build(name)) > 40e6 else name
        for name in names
    ]


@pytest.mark.parametrize("name", ALL)
def test_registry_entry_describes_the_model(name):
    info = model_info(name)
    entry = models.MODELS.get(name)
    assert entry.factory.__name__ == name
    assert entry.factory.__module__.startswith("cnnkit.models.")
    assert info.family and len(info.default_input) == 3
    assert info.min_input is not None, f"{name}: ModelInfo.min_input is not set"
    model = build(name)
    channels = info.default_input[0]
    for field in ("first_conv", "classifier", "cam_layer"):
        target = getattr(info, field)
        if target is not None:
            model.get_submodule(target)  # raises AttributeError when the name is wrong
    if info.first_conv is not None:
        assert model.get_submodule(info.first_conv).in_channels == channels
    if info.classifier is not None:
        head = model.get_submodule(info.classifier)
        outputs = getattr(head, "out_features", None) or getattr(head, "out_channels", None)
        assert outputs == model(torch.empty(1, *info.default_input, device="meta")).shape[1]


@pytest.mark.parametrize("name", ALL)
def test_params_and_macs_equal_the_oracle_figures(name):
    info = model_info(name)
    if name in TORCHVISION_FIGURES:  # the table's MACs are at 3x224x224 for every model
        params, macs, entries = TORCHVISION_FIGURES[name]
        model, input_shape = build(name), (3, 224, 224)
        assert len(model.state_dict()) == entries
    elif name in SEED_FIGURES:
        params, macs = SEED_FIGURES[name]
        input_shape = info.default_input
        model = build(name, num_classes=10) if input_shape[1] < 64 else build(name)
    elif info.torchvision:
        pytest.skip("no published figure: compared with torchvision's own module below")
    else:
        pytest.skip(f"{name}: no published or hand-computed figure (see its own tests)")
    assert count_params(model) == params
    assert flop_counter_macs(model, input_shape) == macs


@pytest.mark.parametrize("name", ALL)
def test_forward_at_the_default_input_on_meta(name):
    info = model_info(name)
    model = build(name).eval()
    out = model(torch.empty(2, *info.default_input, device="meta"))
    assert out.shape[0] == 2 and out.dim() == 2


@pytest.mark.parametrize("name", ALL)
def test_num_classes_and_in_channels_options(name):
    info = model_info(name)
    model = build(name, num_classes=7, in_channels=2).eval()
    out = model(torch.empty(2, 2, *info.default_input[1:], device="meta"))
    assert tuple(out.shape) == (2, 7)
    if info.first_conv is not None:
        assert model.get_submodule(info.first_conv).in_channels == 2


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("key", ["num_classes", "in_channels"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True, "3"])
def test_bad_arguments_give_one_line_config_errors(name, key, value):
    with pytest.raises(ConfigError) as caught:
        create_model(name, **{key: value})
    message = str(caught.value)
    assert "\n" not in message and name in message and key in message


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownNameError) as caught:
        create_model("resnet19")
    assert "resnet18" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ALL)
def test_input_smaller_than_min_input_names_the_layer(name):
    info = model_info(name)
    channels = info.default_input[0]
    height, width = info.min_input or (1, 1)
    model = build(name).eval()
    model(torch.empty(1, channels, height, width, device="meta"))  # the minimum works
    if (height, width) == (1, 1):
        return
    too_small = torch.empty(1, channels, height - 1, width, device="meta")
    try:
        model(too_small)
    except ShapeError as error:
        message = str(error)
    except RuntimeError as error:
        pytest.fail(
            f"{name}: an input below min_input raised {type(error).__name__}, not a ShapeError "
            "naming the layer (decorate forward with cnnkit.models._checks.checked_forward)"
        )
    else:
        pytest.fail(f"{name}: min_input {info.min_input} is not the minimum; {height - 1} works")
    assert "\n" not in message
    layers = [module_name for module_name, _ in model.named_modules() if module_name]
    assert any(layer in message for layer in layers), f"no layer named in: {message}"


# torchvision's models get the stronger check below (gradients equal torchvision's) when the
# oracle is installed; without it they are checked here
_OWN_GRADIENT_CHECK = [
    name for name in ALL if not (model_info(name).torchvision and _load_torchvision() is not None)
]


@pytest.mark.parametrize("name", _real_size_params(_OWN_GRADIENT_CHECK))
def test_backward_on_a_small_input_reaches_every_parameter(name):
    """Real creation, train mode: every trainable parameter gets a finite gradient."""
    info = model_info(name)
    model = create_model(name, num_classes=5).train()
    x = torch.randn(2, info.default_input[0], *small_size(name))
    out = model(x)
    assert tuple(out.shape) == (2, 5)
    nn.functional.cross_entropy(out, torch.tensor([1, 3])).backward()
    for param_name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f"{name}: no gradient reaches {param_name}"
            assert torch.isfinite(param.grad).all(), f"{name}: non-finite gradient {param_name}"


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_same_state_dict_layout_params_and_macs_as_torchvision(name):
    tv = torchvision_models()
    ours, theirs = build(name), _torchvision_meta(tv, name)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key, value in theirs_state.items():
        assert ours_state[key].shape == value.shape, key
    assert count_params(ours) == count_params(theirs)
    shape = model_info(name).default_input
    assert flop_counter_macs(ours, shape) == flop_counter_macs(theirs, shape)


@pytest.mark.parametrize("name", _real_size_params(TORCHVISION_NAMES))
def test_torchvision_weights_give_the_same_outputs_and_gradients(name):
    """The proof of checkpoint compatibility: torchvision's model and ours, holding the same
    random state_dict (loaded strictly into ours), agree on outputs and on the gradient of
    every parameter. float32: the same ops in the same order agree to rounding, and float64
    convolutions on CPU take minutes for the large models."""
    tv = torchvision_models()
    theirs = _torchvision_meta(tv, name)
    with torch.device("meta"):
        ours = create_model(name)
    generator = torch.Generator().manual_seed(0)
    state = {key: _random_like(key, value, generator) for key, value in theirs.state_dict().items()}
    theirs.load_state_dict(state, strict=True, assign=True)
    ours.load_state_dict(state, strict=True, assign=True)
    for model in (ours, theirs):
        leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
        assert not leftover, f"{name}: tensors outside the state_dict: {leftover[:3]}"
        model.eval()
    x = torch.randn(2, 3, *small_size(name), generator=generator)
    out_ours, out_theirs = ours(x), theirs(x)
    assert out_ours.shape == (2, 1000)
    _assert_near(out_ours, out_theirs, 1e-5, f"{name}: outputs differ from torchvision's")
    target = torch.tensor([1, 3])
    nn.functional.cross_entropy(out_ours, target).backward()
    nn.functional.cross_entropy(out_theirs, target).backward()
    grads_theirs = dict(theirs.named_parameters())
    for key, param in ours.named_parameters():
        assert param.grad is not None, f"{name}: no gradient reaches {key}"
        _assert_near(param.grad, grads_theirs[key].grad, 1e-4, f"{name}: gradient of {key}")


@torch.no_grad()
def _assert_near(actual: torch.Tensor, expected: torch.Tensor, rtol: float, what: str) -> None:
    """max |actual - expected| <= rtol * max |expected|, all finite (cheap on 100 M elements;
    a NaN or inf anywhere makes the maximum non-finite)."""
    scale = float(expected.abs().max())
    error = float((actual - expected).abs_().max())
    assert math.isfinite(scale) and math.isfinite(error), f"{what}: not finite"
    assert error <= rtol * scale + 1e-12, f"{what}: max error {error:.3g}, scale {scale:.3g}"


def _torchvision_meta(tv, name: str) -> nn.Module:
    options = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    try:
        with torch.device("meta"):
            return getattr(tv, name)(**options)
    except NotImplementedError:  # e.g. RegNet computes its widths with tensors (.tolist())
        return getattr(tv, name)(**options).to("meta")


def _random_like(key: str, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A float32 tensor of ``like``'s shape with values that keep activations finite."""
    if not like.is_floating_point():
        return torch.zeros(like.shape, dtype=like.dtype)
    value = torch.empty(like.shape)
    if key.endswith(("running_var", "weight")) and like.dim() == 1:
        return value.uniform_(0.5, 1.5, generator=generator)  # norm scales and variances
    if like.dim() == 1 or like.numel() == like.shape[0]:
        return value.uniform_(-0.1, 0.1, generator=generator)  # biases, means, layer scales
    bound = math.sqrt(3.0 / math.prod(like.shape[1:]))  # unit-variance outputs (fan_in)
    return value.uniform_(-bound, bound, generator=generator)


@pytest.mark.parametrize("name", ALL)
def test_published_accuracy_cites_its_source(name):
    info = model_info(name)
    if info.torchvision:
        assert info.published is not None, f"{name}: torchvision publishes an accuracy for it"
    if info.published is None:
        return
    assert 0 < info.published.top1 < 100
    assert info.published.dataset and len(info.published.source) > 10


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_published_accuracy_and_min_input_equal_torchvisions_metadata(name):
    """The oracle: torchvision's weights metadata (acc@1 on ImageNet-1K, min_size)."""
    tv = torchvision_models()
    info = model_info(name)
    entries = list(tv.get_model_weights(name))
    accuracies = {entry.meta["_metrics"]["ImageNet-1K"]["acc@1"] for entry in entries}
    assert info.published is not None and info.published.top1 in accuracies
    (weights,) = [e for e in entries if e.name in info.published.source] or entries[:1]
    assert info.published.top1 == weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert info.min_input == weights.meta["min_size"]


def test_no_factory_escapes_the_registry():
    """Every public function of a family module that returns a model is registered (the
    converse of torchvision's test_list_models), and every registered factory is one."""
    registered = set(list_models())
    escaped = []
    for module_name, module in inspect.getmembers(models, inspect.ismodule):
        # loaders and renderers, not families
        if module_name.startswith("_") or module_name in (
            "weights",
            "pretrained",
            "pretrained_render",
        ):
            continue
        for attr, obj in vars(module).items():
            if attr.startswith("_") or not inspect.isfunction(obj):
                continue
            if obj.__module__ != module.__name__:
                continue
            returned = typing.get_type_hints(obj).get("return")
            is_factory = inspect.isclass(returned) and issubclass(returned, nn.Module)
            if is_factory and attr not in registered:
                escaped.append(f"{module.__name__}.{attr}")
    assert not escaped, f"model factories missing from the registry: {escaped}"


def test_list_models_filters_by_pattern_and_family():
    assert list_models("resnet1*") == ["resnet101", "resnet152", "resnet18"]
    assert set(list_models(family="vgg")) == {
        f"vgg{depth}{bn}" for depth in (11, 13, 16, 19) for bn in ("", "_bn")
    }
    with pytest.raises(UnknownNameError):
        list_models(family="no-such-family")
