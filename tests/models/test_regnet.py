"""RegNetY-400MF: the quantised linear width rule, the block, init and metadata.

Oracles: torchvision's ``BlockParams.from_init_params`` on random valid design-space points, the
paper's RegNetY-400MF stage table (widths 48, 104, 208, 440; depths 1, 3, 6, 6), torchvision's
block with the same weights, init under the same seed and its weights metadata.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.models import create_model, model_info
from cnnkit.models.regnet import ResBottleneckBlock, regnet_stages
from tests.oracles import torchvision_models


@settings(max_examples=60)
@given(
    depth=st.integers(1, 30),
    w_0=st.sampled_from([16, 24, 32, 48, 56, 64, 80, 96, 128, 200]),
    w_a=st.floats(0.5, 120.0),
    w_m=st.floats(1.5, 3.0),
    group_width=st.sampled_from([1, 8, 16, 24, 48]),
    bottleneck=st.sampled_from([1.0, 0.5, 0.25]),
)
def test_stage_rule_equals_torchvision_block_params(depth, w_0, w_a, w_m, group_width, bottleneck):
    block_params = torchvision_models().regnet.BlockParams
    theirs = block_params.from_init_params(depth, w_0, w_a, w_m, group_width, bottleneck)
    mine = regnet_stages(depth, w_0, w_a, w_m, group_width, bottleneck)
    assert list(mine.widths) == theirs.widths
    assert list(mine.depths) == theirs.depths
    assert list(mine.group_widths) == theirs.group_widths
    assert sum(mine.depths) == depth


def test_regnet_y_400mf_stages_are_the_papers():
    model = create_model("regnet_y_400mf")
    stages = list(model.trunk_output.children())
    assert [len(stage) for stage in stages] == [1, 3, 6, 6]
    assert [stage[-1].f.c[0].out_channels for stage in stages] == [48, 104, 208, 440]
    first = stages[0][0]
    assert first.f.b[0].groups == 48 // 8  # group width 8
    assert first.f.se.fc1.out_channels == round(0.25 * 32)  # SE width: 1/4 of the block input


def test_block_output_equals_torchvision_with_the_same_weights():
    regnet = torchvision_models().regnet
    args = (32, 48, 2, nn.BatchNorm2d, nn.ReLU, 8, 1.0, 0.25)
    theirs = regnet.ResBottleneckBlock(*args).eval()
    mine = ResBottleneckBlock(*args).eval()
    mine.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 32, 8, 8)
    torch.testing.assert_close(mine(x), theirs(x))
    assert mine.proj is not None and ResBottleneckBlock(*args[:1], 32, 1, *args[3:]).proj is None


def test_initialisation_equals_torchvision_under_the_same_seed():
    tv = torchvision_models()
    torch.manual_seed(4)
    theirs = tv.regnet_y_400mf().state_dict()
    torch.manual_seed(4)
    mine = create_model("regnet_y_400mf").state_dict()
    for key, value in theirs.items():
        assert torch.equal(mine[key], value), key


def test_published_accuracy_is_torchvision_v1_weights_figure():
    meta = torchvision_models().RegNet_Y_400MF_Weights.IMAGENET1K_V1.meta
    assert model_info("regnet_y_400mf").published.top1 == meta["_metrics"]["ImageNet-1K"]["acc@1"]


@pytest.mark.parametrize(
    "arguments", [(16, 50, 27.89, 2.09, 8), (16, 48, -1.0, 2.09, 8), (16, 48, 27.89, 1.0, 8)]
)
def test_invalid_design_space_points_are_config_errors(arguments):
    with pytest.raises(ConfigError, match="RegNet"):
        regnet_stages(*arguments)
