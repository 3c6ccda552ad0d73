"""ShuffleNetV2: channel shuffle, the split unit, and torchvision's layout.

Oracles: the permutation the shuffle must be (channel ``i*g + j`` <- ``j*c + i``), torchvision's
``channel_shuffle`` and units with the same weights, and torchvision's weights metadata.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import ConfigError, ShapeError
from cnnkit.models import model_info
from cnnkit.models.shufflenetv2 import InvertedResidual, channel_shuffle
from tests.oracles import torchvision_models


@settings(max_examples=40)
@given(groups=st.integers(1, 5), per_group=st.integers(1, 5), batch=st.integers(1, 2))
def test_channel_shuffle_is_the_transpose_permutation_and_torchvisions(groups, per_group, batch):
    channels = groups * per_group
    x = torch.randn(batch, channels, 2, 3)
    out = channel_shuffle(x, groups)
    for i in range(per_group):
        for j in range(groups):
            assert torch.equal(out[:, i * groups + j], x[:, j * per_group + i])
    assert torch.equal(channel_shuffle(out, per_group), x)  # the inverse permutation
    assert torch.equal(out, torchvision_models().shufflenetv2.channel_shuffle(x, groups))


def test_channel_shuffle_refuses_channels_that_do_not_split():
    with pytest.raises(ShapeError, match="7 channels"):
        channel_shuffle(torch.randn(1, 7, 2, 2), 2)


def test_stride_one_unit_passes_half_the_channels_through_unchanged():
    unit = InvertedResidual(16, 16, 1).eval()
    x = torch.randn(2, 16, 5, 5)
    out = unit(x)
    # after concat (kept, transformed) and a 2-group shuffle, the kept half sits at even indices
    assert torch.equal(out[:, 0::2], x[:, :8])


@pytest.mark.parametrize(("in_channels", "out_channels", "stride"), [(24, 116, 2), (116, 116, 1)])
def test_unit_output_equals_torchvision_with_the_same_weights(in_channels, out_channels, stride):
    theirs = torchvision_models().shufflenetv2.InvertedResidual(in_channels, out_channels, stride)
    theirs.eval()
    mine = InvertedResidual(in_channels, out_channels, stride).eval()
    mine.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, in_channels, 8, 8)
    torch.testing.assert_close(mine(x), theirs(x))


def test_bad_units_are_config_errors():
    with pytest.raises(ConfigError, match="stride 1 needs"):
        InvertedResidual(24, 116, 1)
    with pytest.raises(ConfigError, match="stride must be"):
        InvertedResidual(24, 116, 4)


def test_initialisation_equals_torchvision_under_the_same_seed():
    tv = torchvision_models()
    torch.manual_seed(2)
    theirs = tv.shufflenet_v2_x1_0().state_dict()
    torch.manual_seed(2)
    from cnnkit.models import create_model

    mine = create_model("shufflenet_v2_x1_0").state_dict()
    for key, value in theirs.items():
        assert torch.equal(mine[key], value), key


def test_published_accuracy_is_torchvision_v1_weights_figure():
    meta = torchvision_models().ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1.meta
    assert (
        model_info("shufflenet_v2_x1_0").published.top1 == meta["_metrics"]["ImageNet-1K"]["acc@1"]
    )
