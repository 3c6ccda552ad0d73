"""RegNetY-400MF: the quantised linear width rule, the block, init and metadata.

Oracles: torchvision's ``BlockParams.from_init_params`` on its 15 RegNet design points, the
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

# torchvision 0.29's regnet_y_* and regnet_x_* design points: (d, w_0, w_a, w_m, g, SE ratio).
TORCHVISION_DESIGN_POINTS = [
    (16, 48, 27.89, 2.09, 8, 0.25),
    (14, 56, 38.84, 2.4, 16, 0.25),
    (27, 48, 20.71, 2.65, 24, 0.25),
    (21, 80, 42.63, 2.66, 24, 0.25),
    (17, 192, 76.82, 2.19, 56, 0.25),
    (18, 200, 106.23, 2.48, 112, 0.25),
    (20, 232, 115.89, 2.53, 232, 0.25),
    (27, 456, 160.83, 2.52, 264, 0.25),
    (22, 24, 24.48, 2.54, 16, None),
    (16, 56, 35.73, 2.28, 16, None),
    (18, 80, 34.01, 2.25, 24, None),
    (25, 88, 26.31, 2.25, 48, None),
    (23, 80, 49.56, 2.88, 120, None),
    (22, 216, 55.59, 2.1, 128, None),
    (23, 320, 69.86, 2.0, 168, None),
]


@pytest.mark.parametrize("point", TORCHVISION_DESIGN_POINTS)
def test_stage_rule_equals_torchvision_block_params(point):
    depth, w_0, w_a, w_m, group_width, se_ratio = point
    block_params = torchvision_models().regnet.BlockParams
    theirs = block_params.from_init_params(depth, w_0, w_a, w_m, group_width, se_ratio=se_ratio)
    mine = regnet_stages(depth, w_0, w_a, w_m, group_width, se_ratio=se_ratio)
    assert list(mine.widths) == theirs.widths
    assert list(mine.depths) == theirs.depths
    assert list(mine.group_widths) == theirs.group_widths


@settings(max_examples=80)
@given(
    depth=st.integers(1, 30),
    w_0=st.sampled_from([16, 24, 32, 48, 56, 64, 80, 96, 128, 200]),
    w_a=st.floats(0.5, 120.0),
    w_m=st.floats(1.5, 3.0),
    group_width=st.sampled_from([1, 8, 16, 24, 48]),
    bottleneck=st.sampled_from([1.0, 0.5, 0.25]),
)
def test_stages_cover_every_block_and_fit_their_groups(
    depth, w_0, w_a, w_m, group_width, bottleneck
):
    stages = regnet_stages(depth, w_0, w_a, w_m, group_width, bottleneck)
    assert sum(stages.depths) == depth and min(stages.depths) >= 1
    for width, groups in zip(stages.widths, stages.group_widths, strict=True):
        inner = int(width * bottleneck)
        assert 1 <= groups <= group_width
        assert inner % groups == 0  # the grouped 3x3 conv splits its channels evenly


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
