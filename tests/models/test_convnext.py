"""ConvNeXt-T: the block's equation, layer scale, stochastic-depth schedule, init, metadata.

Oracles: the block written with torch ops on its own modules, torchvision's ``CNBlock`` and
``convnext_tiny`` (outputs with the same weights, rates, init under the same seed) and
torchvision's weights metadata.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.models import create_model, model_info
from cnnkit.models.convnext import TINY, CNBlock, ConvNeXt, StageConfig
from cnnkit.nn import LayerNorm2d
from tests.oracles import torchvision_models


def test_block_is_input_plus_layer_scale_times_the_branch():
    block = CNBlock(8, layer_scale=1e-6, stochastic_depth_prob=0.5).eval()
    assert block.layer_scale.shape == (8, 1, 1)
    assert torch.all(block.layer_scale == 1e-6)
    with torch.no_grad():
        block.layer_scale.uniform_(0.5, 1.5)
    x = torch.randn(2, 8, 9, 9)
    dwconv, norm, pw1, pw2 = block.block[0], block.block[2], block.block[3], block.block[5]
    branch = dwconv(x).permute(0, 2, 3, 1)
    branch = pw2(nn.functional.gelu(pw1(norm(branch)))).permute(0, 3, 1, 2)
    torch.testing.assert_close(block(x), x + block.layer_scale * branch)


def test_block_output_equals_torchvision_cnblock_with_the_same_weights():
    theirs = torchvision_models().convnext.CNBlock(16, 0.3, 0.0).eval()
    mine = CNBlock(16, 0.3, 0.0).eval()
    mine.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 16, 6, 6)
    torch.testing.assert_close(mine(x), theirs(x))


def test_training_mode_drops_whole_residual_branches_per_sample():
    torch.manual_seed(0)
    block = CNBlock(4, layer_scale=1.0, stochastic_depth_prob=0.5).train()
    x = torch.randn(64, 4, 3, 3)
    with torch.no_grad():
        out = block(x)
    kept_input_only = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert 10 < sum(kept_input_only) < 54  # about half of the 64 samples skip the branch


def test_stochastic_depth_rate_grows_linearly_to_0_1_like_torchvision():
    tv = torchvision_models()
    with torch.device("meta"):
        mine = create_model("convnext_tiny")
        theirs = tv.convnext_tiny()
    rates = [m.stochastic_depth.p for m in mine.modules() if isinstance(m, CNBlock)]
    assert len(rates) == 3 + 3 + 9 + 3
    assert rates == pytest.approx([0.1 * i / 17 for i in range(18)])
    assert rates == [m.stochastic_depth.p for m in theirs.modules() if hasattr(m, "layer_scale")]


def test_layout_alternates_stages_and_layer_norm_downsampling():
    with torch.device("meta"):
        model = create_model("convnext_tiny")
    for index, stage in zip((1, 3, 5, 7), TINY, strict=True):
        assert len(model.features[index]) == stage.num_layers
        assert all(isinstance(b, CNBlock) for b in model.features[index])
    for index in (2, 4, 6):
        norm, conv = model.features[index]
        assert isinstance(norm, LayerNorm2d) and conv.kernel_size == conv.stride == (2, 2)
    stem = model.features[0]
    assert stem[0].kernel_size == stem[0].stride == (4, 4) and isinstance(stem[1], LayerNorm2d)


def test_initialisation_equals_torchvision_under_the_same_seed():
    # a small configuration runs the same init code as convnext_tiny in a fraction of the time
    convnext = torchvision_models().convnext
    torch.manual_seed(11)
    theirs = convnext.ConvNeXt(
        [convnext.CNBlockConfig(32, 64, 2), convnext.CNBlockConfig(64, None, 1)]
    )
    torch.manual_seed(11)
    mine = ConvNeXt([StageConfig(32, 64, 2), StageConfig(64, None, 1)])
    for key, value in theirs.state_dict().items():
        assert torch.equal(mine.state_dict()[key], value), key


def test_initial_weights_have_std_0_02_and_zero_biases():
    torch.manual_seed(0)
    model = ConvNeXt([StageConfig(192, None, 1)])
    weight = model.features[1][0].block[3].weight  # 768 x 192 Linear
    assert abs(weight.std().item() - 0.02) < 0.0005
    assert abs(weight.mean().item()) < 0.0005
    assert all(
        m.bias.abs().max() == 0 for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)
    )


def test_published_accuracy_and_min_input_are_torchvision_figures():
    meta = torchvision_models().ConvNeXt_Tiny_Weights.IMAGENET1K_V1.meta
    info = model_info("convnext_tiny")
    assert info.published.top1 == meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert info.min_input == meta["min_size"]


def test_single_block_network_and_bad_rates():
    ConvNeXt([StageConfig(8, None, 1)], stochastic_depth_prob=0.5)  # no division by zero
    with pytest.raises(ConfigError, match="stochastic_depth_prob"):
        ConvNeXt(TINY, stochastic_depth_prob=1.5)
