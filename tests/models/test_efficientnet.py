"""EfficientNet B0-B7: compound scaling per variant, the MBConv/FusedMBConv blocks, init.

Oracles: the published coefficient table (Tan & Le 2019 and the reference TF code's
``efficientnet_params``: width, depth, resolution, dropout), torchvision's modules (widths,
repeats, stochastic-depth rates, params and MACs by torch.utils.flop_counter at each variant's
resolution, block outputs with the same weights, init under the same seed) and torchvision's
weights metadata (accuracy).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.models import create_model, model_info
from cnnkit.models.efficientnet import (
    B0_STAGES,
    COEFFICIENTS,
    EfficientNet,
    FusedMBConv,
    MBConv,
    MBConvConfig,
)
from tests.oracles import torchvision_models

VARIANTS = [f"b{i}" for i in range(8)]

# Published (width, depth, resolution, dropout): EfficientNet paper section 4 / reference TF code.
PUBLISHED = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}
# Seed 001's table, as printed there. docs/models_modern.md explains what is wrong with it.
SEED_001 = {
    "b0": (1.0, 1.0, 224, 0.04),
    "b1": (1.0, 1.0, 240, 0.05),
    "b2": (1.1, 1.2, 260, 0.06),
    "b3": (1.2, 1.4, 300, 0.08),
    "b4": (1.4, 1.8, 380, 0.09),
    "b5": (1.6, 2.2, 456, 0.11),
    "b6": (1.8, 2.6, 528, 0.13),
    "b7": (2.0, 3.1, 600, 0.14),
}


def build(name: str, **kwargs: object) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


def stage_layout(model: nn.Module) -> list[tuple[int, int]]:
    """(output width, number of blocks) of features[1:-1], read from the modules."""
    return [(stage[-1].out_channels, len(stage)) for stage in model.features[1:-1]]


@pytest.mark.parametrize("variant", VARIANTS)
def test_coefficient_table_is_the_published_one(variant):
    c = COEFFICIENTS[variant]
    assert (c.width_mult, c.depth_mult, c.resolution, c.dropout) == PUBLISHED[variant]
    assert model_info(f"efficientnet_{variant}").default_input == (3, c.resolution, c.resolution)


def test_seed_001_differs_from_the_published_table_exactly_where_the_docs_say():
    # 001's first two columns are (width, depth) although its code unpacks them as (d, w);
    # b1's depth is 1.0 instead of 1.1; the fourth column is neither dropout nor drop-path rate.
    for variant, (width, depth, resolution, fourth) in SEED_001.items():
        p_width, p_depth, p_resolution, p_dropout = PUBLISHED[variant]
        assert (width, resolution) == (p_width, p_resolution)
        assert (depth == p_depth) == (variant != "b1")
        assert fourth != p_dropout and fourth != 0.2


def macs(model: nn.Module, resolution: int) -> int:
    with FlopCounterMode(display=False) as counter:
        model.eval()(torch.empty(1, 3, resolution, resolution, device="meta"))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize(
    "variant", [pytest.param(v, marks=pytest.mark.slow) if v >= "b5" else v for v in VARIANTS]
)
def test_variant_follows_compound_scaling_and_equals_torchvision(variant):
    """Widths make_divisible(c * w, 8) and repeats ceil(n * d) from the published coefficients;
    then torchvision's module of the same name: layout, dropout, drop-path rates, BatchNorm eps,
    params (also its weights' num_params) and MACs at the variant's own resolution."""
    tv = torchvision_models()
    width, depth, resolution, dropout = PUBLISHED[variant]
    expected = [
        (
            tv._utils._make_divisible(stage.out_channels * width, 8),
            math.ceil(stage.num_layers * depth),
        )
        for stage in B0_STAGES
    ]
    mine = build(f"efficientnet_{variant}")
    with torch.device("meta"):
        theirs = getattr(tv, f"efficientnet_{variant}")()
    assert stage_layout(mine) == expected == stage_layout(theirs)
    assert mine.features[0][0].out_channels == tv._utils._make_divisible(32 * width, 8)
    assert mine.features[-1][0].out_channels == 4 * expected[-1][0]
    assert mine.classifier[0].p == dropout == theirs.classifier[0].p
    rates = [m.stochastic_depth.p for m in mine.modules() if isinstance(m, MBConv)]
    assert rates == [0.2 * i / len(rates) for i in range(len(rates))]
    assert rates == [
        m.stochastic_depth.p for m in theirs.modules() if hasattr(m, "stochastic_depth")
    ]
    eps = {m.eps for m in mine.modules() if isinstance(m, nn.BatchNorm2d)}
    assert eps == {m.eps for m in theirs.modules() if isinstance(m, nn.BatchNorm2d)}
    count = sum(p.numel() for p in mine.parameters())
    weights = getattr(tv, f"EfficientNet_{variant.upper()}_Weights").IMAGENET1K_V1
    assert count == sum(p.numel() for p in theirs.parameters()) == weights.meta["num_params"]
    assert macs(mine, resolution) == macs(theirs, resolution)


@pytest.mark.parametrize("variant", VARIANTS)
def test_published_accuracy_is_torchvision_v1_weights_figure(variant):
    tv = torchvision_models()
    meta = getattr(tv, f"EfficientNet_{variant.upper()}_Weights").IMAGENET1K_V1.meta
    assert (
        model_info(f"efficientnet_{variant}").published.top1
        == (meta["_metrics"]["ImageNet-1K"]["acc@1"])
    )


def test_mbconv_block_output_equals_torchvision_with_the_same_weights():
    tv_efficientnet = torchvision_models().efficientnet
    config = MBConvConfig(6, 5, 1, 24, 24, 1)
    theirs_config = tv_efficientnet.MBConvConfig(6, 5, 1, 24, 24, 1, 1.0, 1.0)
    theirs = tv_efficientnet.MBConv(theirs_config, 0.0, nn.BatchNorm2d).eval()
    mine = MBConv(config, 0.0, nn.BatchNorm2d).eval()
    mine.load_state_dict(theirs.state_dict(), strict=True)
    assert mine.use_res_connect
    x = torch.randn(2, 24, 7, 7)
    torch.testing.assert_close(mine(x), theirs(x))
    # the squeeze width is a quarter of the block's input width, not of the expanded width
    assert mine.block[2].fc1.out_channels == 24 // 4


@pytest.mark.parametrize(
    ("expand", "stride", "in_channels", "out_channels"), [(4, 2, 16, 32), (1, 1, 24, 24)]
)
def test_fused_mbconv_block_output_equals_torchvision(expand, stride, in_channels, out_channels):
    tv_efficientnet = torchvision_models().efficientnet
    config = MBConvConfig(expand, 3, stride, in_channels, out_channels, 1, fused=True)
    theirs_config = tv_efficientnet.FusedMBConvConfig(
        expand, 3, stride, in_channels, out_channels, 1
    )
    theirs = tv_efficientnet.FusedMBConv(theirs_config, 0.0, nn.BatchNorm2d).eval()
    mine = FusedMBConv(config, 0.0, nn.BatchNorm2d).eval()
    mine.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, in_channels, 8, 8)
    torch.testing.assert_close(mine(x), theirs(x))
    assert not any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in mine.modules())


def test_fused_stages_rebuild_efficientnet_v2_s_layout():
    tv = torchvision_models()
    table = [
        MBConvConfig(1, 3, 1, 24, 24, 2, fused=True),
        MBConvConfig(4, 3, 2, 24, 48, 4, fused=True),
        MBConvConfig(4, 3, 2, 48, 64, 4, fused=True),
        MBConvConfig(4, 3, 2, 64, 128, 6),
        MBConvConfig(6, 3, 1, 128, 160, 9),
        MBConvConfig(6, 3, 2, 160, 256, 15),
    ]
    with torch.device("meta"):
        mine = EfficientNet(table, dropout=0.2, last_channel=1280)
        theirs = tv.efficientnet_v2_s()
    assert {k: v.shape for k, v in mine.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }


def test_initialisation_equals_torchvision_under_the_same_seed():
    tv = torchvision_models()
    torch.manual_seed(5)
    theirs = tv.efficientnet_b0().state_dict()
    torch.manual_seed(5)
    mine = create_model("efficientnet_b0").state_dict()
    for key, value in theirs.items():
        assert torch.equal(mine[key], value), key
