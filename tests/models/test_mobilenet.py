"""MobileNetV2 and V3: channel rounding, width multipliers, V3's options, init and metadata.

Oracles: torchvision (its ``_make_divisible``, its modules built with the same options, its
initialisation under the same seed, its weights' published accuracy) and the rounding rule's
own guarantees (a multiple of the divisor, never more than 10% below the request).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.models import create_model, model_info
from cnnkit.models.mobilenetv2 import make_divisible
from cnnkit.nn import SqueezeExcitation
from tests.oracles import torchvision_models


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


@given(value=st.floats(0.5, 5000.0), divisor=st.sampled_from([1, 4, 8, 16]))
def test_make_divisible_rounds_to_a_multiple_never_more_than_ten_percent_down(value, divisor):
    rounded = make_divisible(value, divisor)
    assert rounded % divisor == 0 and rounded >= divisor
    assert rounded >= 0.9 * value
    assert rounded <= max(divisor, value + divisor)


@settings(max_examples=200)
@given(value=st.floats(0.1, 4000.0), divisor=st.sampled_from([1, 3, 8, 16]))
def test_make_divisible_equals_torchvision(value, divisor):
    tv_utils = torchvision_models()._utils
    assert make_divisible(value, divisor) == tv_utils._make_divisible(value, divisor)


@pytest.mark.parametrize("width_mult", [0.35, 0.75, 1.4])
def test_mobilenet_v2_width_multiplier_matches_torchvision(width_mult):
    tv = torchvision_models()
    with torch.device("meta"):
        mine = create_model("mobilenet_v2", width_mult=width_mult)
        theirs = tv.mobilenet_v2(width_mult=width_mult)
    assert shapes(mine) == shapes(theirs)


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "mobilenet_v3_large"])
@pytest.mark.parametrize(
    "options",
    [{"width_mult": 0.75}, {"reduced_tail": True}, {"dilated": True}, {"width_mult": 1.25}],
)
def test_mobilenet_v3_options_match_torchvision(name, options):
    tv = torchvision_models()
    with torch.device("meta"):
        mine = create_model(name, **options)
        theirs = getattr(tv, name)(**options)
    assert shapes(mine) == shapes(theirs)
    dilations = [m.dilation for m in mine.modules() if isinstance(m, torch.nn.Conv2d)]
    assert dilations == [m.dilation for m in theirs.modules() if isinstance(m, torch.nn.Conv2d)]


def test_dilated_mobilenet_v3_has_output_stride_16():
    with torch.device("meta"):
        model = create_model("mobilenet_v3_large", dilated=True)
        features = model.features(torch.empty(1, 3, 224, 224))
    assert features.shape[-2:] == (14, 14)  # 224 / 16; the undilated network gives 7 x 7


def test_mobilenet_v3_se_blocks_use_a_hard_sigmoid_gate_a_quarter_wide():
    model = create_model("mobilenet_v3_small")
    blocks = [m for m in model.modules() if isinstance(m, SqueezeExcitation)]
    assert len(blocks) == 9  # Table 2: SE in 9 of the 11 bottlenecks
    for block in blocks:
        assert isinstance(block.scale_activation, torch.nn.Hardsigmoid)
        assert block.fc1.out_channels == make_divisible(block.fc1.in_channels // 4, 8)


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"])
def test_initialisation_equals_torchvision_under_the_same_seed(name):
    tv = torchvision_models()
    torch.manual_seed(3)
    theirs = getattr(tv, name)().state_dict()
    torch.manual_seed(3)
    mine = create_model(name).state_dict()
    assert list(mine) == list(theirs)
    for key, value in theirs.items():
        assert torch.equal(mine[key], value), key


@pytest.mark.parametrize(
    ("name", "weights"),
    [
        ("mobilenet_v2", "MobileNet_V2_Weights"),
        ("mobilenet_v3_small", "MobileNet_V3_Small_Weights"),
        ("mobilenet_v3_large", "MobileNet_V3_Large_Weights"),
    ],
)
def test_published_accuracy_is_torchvision_v1_weights_figure(name, weights):
    meta = getattr(torchvision_models(), weights).IMAGENET1K_V1.meta
    published = model_info(name).published
    assert published.top1 == meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert weights in published.source
    assert model_info(name).min_input == meta["min_size"]


def test_residual_is_used_only_when_stride_one_and_widths_match():
    model = create_model("mobilenet_v2")
    for block in model.features[1:-1]:
        conv = [m for m in block.conv.modules() if isinstance(m, torch.nn.Conv2d)]
        same_width = conv[0].in_channels == conv[-1].out_channels
        stride_one = all(c.stride == (1, 1) for c in conv)
        assert block.use_res_connect == (same_width and stride_one)
