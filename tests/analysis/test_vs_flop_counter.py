"""Params and MACs against their oracles: torch.utils.flop_counter on random models, and the
published figures of torchvision's models (docs: reference-figures.md, torchvision 0.28 with
default arguments, GoogLeNet with aux_logits=False: every parameter, and FlopCounterMode's
FLOPs / 2 for one 3x224x224 image)."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.analysis import summarize
from cnnkit.errors import ShapeError
from tests.analysis.random_models import RandomNet, net_specs
from tests.oracles import torchvision_models

# name: (params, MACs at 224), copied from the project's reference figures.
REFERENCE = {
    "alexnet": (61_100_840, 714_188_480),
    "vgg11": (132_863_336, 7_609_090_048),
    "vgg16": (138_357_544, 15_470_264_320),
    "vgg16_bn": (138_365_992, 15_470_264_320),
    "vgg19": (143_667_240, 19_632_062_464),
    "googlenet": (6_624_904, 1_498_376_192),
    "resnet18": (11_689_512, 1_814_073_344),
    "resnet34": (21_797_672, 3_663_761_408),
    "resnet50": (25_557_032, 4_089_184_256),
    "resnet101": (44_549_160, 7_801_405_440),
    "resnet152": (60_192_808, 11_513_626_624),
    "resnext50_32x4d": (25_028_904, 4_230_479_872),
    "wide_resnet50_2": (68_883_240, 11_398_021_120),
    "densenet121": (7_978_856, 2_834_161_664),
    "densenet169": (14_149_480, 3_359_843_328),
    "mobilenet_v2": (3_504_872, 300_774_272),
    "mobilenet_v3_small": (2_542_856, 56_510_400),
    "mobilenet_v3_large": (5_483_032, 216_589_760),
    "efficientnet_b0": (5_288_548, 385_814_752),
    "efficientnet_b4": (19_341_616, 1_503_710_432),
    "convnext_tiny": (28_589_128, 4_455_531_264),
    "squeezenet1_0": (1_248_424, 818_924_576),
    "shufflenet_v2_x1_0": (2_278_604, 144_907_992),
    "regnet_y_400mf": (4_344_144, 401_842_848),
}
HEAVY = {"resnet101", "resnet152", "densenet169", "efficientnet_b4", "wide_resnet50_2"}


def _torchvision(name: str) -> nn.Module:
    models = torchvision_models()
    kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    if name.startswith("regnet"):  # its constructor reads tensor values: cannot build on meta
        return getattr(models, name)(**kwargs)
    with torch.device("meta"):
        return getattr(models, name)(**kwargs)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in REFERENCE],
)
def test_torchvision_models_give_the_published_params_and_macs(name):
    params, macs = REFERENCE[name]
    summary = summarize(_torchvision(name), (3, 224, 224))
    assert (summary.total.params, summary.total.macs) == (params, macs)
    assert summary.total.flops == 2 * macs
    assert not summary.unsupported
    assert sum(row.macs for row in summary.layers) == macs


@pytest.mark.parametrize("name", ["convnext_tiny", "googlenet", "mobilenet_v3_small"])
def test_torchvision_models_match_flop_counter_at_other_sizes(name):
    model = _torchvision(name)
    summary = summarize(model, (3, 160, 192), batch_size=2)
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(2, 3, 160, 192, device=next(model.parameters()).device))
    assert 2 * summary.total.macs == counter.get_total_flops()


def test_convnext_counts_its_per_position_linears():
    """torchinfo reports 0.32 G MACs for ConvNeXt-T (Linear on 4-D input as params x batch)."""
    summary = summarize(_torchvision("convnext_tiny"), (3, 224, 224))
    linears = [r for r in summary.layers if r.type == "Linear" and r.name.startswith("features")]
    assert len(linears) == 2 * 18  # two per CNBlock
    for row in linears:
        positions = row.output_shape[0] * row.output_shape[1] * row.output_shape[2]
        weights = row.params - row.output_shape[-1]  # minus the bias
        assert row.macs == positions * weights  # every position: rows x in x out
    fc1 = next(r for r in linears if r.name == "features.1.0.block.3")
    assert fc1.macs == 56 * 56 * 96 * 384


@settings(
    max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(
    specs=net_specs(),
    channels=st.integers(1, 6),
    size=st.tuples(st.integers(6, 40), st.integers(6, 40)),
    batch=st.integers(1, 3),
)
def test_random_models_match_flop_counter_and_parameter_count(specs, channels, size, batch):
    with torch.device("meta"):
        # eval mode, as summarize runs it: training-mode BatchNorm refuses a 1x1 map of batch 1
        model = RandomNet(specs, channels).eval()
    try:
        summary = summarize(model, (channels, *size), batch_size=batch)
    except ShapeError:
        assume(False)
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(batch, channels, *size, device="meta"))
    assert 2 * summary.total.macs == counter.get_total_flops()
    assert summary.total.params == sum(p.numel() for p in model.parameters())
    assert sum(r.macs for r in summary.layers) == summary.total.macs
    assert sum(r.other_flops for r in summary.layers) == summary.total.other_flops
    assert sum(r.params for r in summary.layers) + summary.unused_params == summary.total.params
    assert not summary.unsupported


class Attention(nn.Module):
    """Self-attention through nn.MultiheadAttention (its forward calls F.* directly)."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x, need_weights=False)[0]


class BranchyAttention(nn.Module):
    """A data-dependent branch forces a real CPU pass, where attention is one fused aten op."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = x if x.sum() > float("-inf") else -x
        return torch.nn.functional.scaled_dot_product_attention(q, q, q)


@pytest.mark.parametrize(
    "model, shape",
    [
        (nn.Conv1d(4, 6, 5, stride=2, dilation=2, groups=2), (4, 50)),
        (nn.Conv3d(2, 4, (3, 1, 2), stride=(1, 2, 1), padding=1), (2, 9, 10, 11)),
        (nn.ConvTranspose1d(4, 8, 4, stride=3, groups=4), (4, 7)),
        (nn.ConvTranspose3d(3, 2, 3, stride=2, output_padding=1), (3, 4, 5, 6)),
        (Attention(), (10, 16)),
        (BranchyAttention(), (4, 10, 8)),
    ],
)
def test_other_ranks_and_attention_match_flop_counter(model, shape):
    """The oracle runs on meta: on the CPU, FlopCounterMode has no formula for the fused
    attention kernel and misses the q k^T and attention x v products."""
    summary = summarize(model, shape, batch_size=3)
    meta = copy.deepcopy(model).to("meta")
    with FlopCounterMode(display=False) as counter:
        if isinstance(model, BranchyAttention):
            q = torch.empty(3, *shape, device="meta")
            torch.nn.functional.scaled_dot_product_attention(q, q, q)
        else:
            meta(torch.empty(3, *shape, device="meta"))
    assert 2 * summary.total.macs == counter.get_total_flops() > 0
    assert summary.total.params == sum(p.numel() for p in model.parameters())
    assert summary.device == ("cpu" if isinstance(model, BranchyAttention) else "meta")
