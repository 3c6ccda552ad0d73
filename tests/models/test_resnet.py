"""ResNet family details: 003's small-input stem and figures, pre-activation blocks, options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.models import create_model
from cnnkit.models.resnet import PreActBlock
from tests.oracles import torchvision_models

from .reference_figures import SEED_RESNET_SMALL_INPUT


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(SEED_RESNET_SMALL_INPUT))
def test_small_input_variants_give_003s_computed_figures(name):
    with torch.device("meta"):
        model = create_model(name, in_channels=1, num_classes=10, small_input=True)
    assert _params(model) == SEED_RESNET_SMALL_INPUT[name]


def test_small_input_stem_is_a_3x3_conv_without_max_pool():
    model = create_model("resnet18", in_channels=1, num_classes=10, small_input=True)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    # the keys stay torchvision's: only conv1's shape changes
    with torch.device("meta"):
        imagenet = create_model("resnet18", in_channels=1, num_classes=10)
    assert list(model.state_dict()) == list(imagenet.state_dict())
    # 28x28 keeps 28x28 through layer1 (no stride-2 stem): layer4 sees 4x4
    assert model.forward_features(torch.randn(2, 1, 28, 28)).shape == (2, 512, 4, 4)


def test_small_input_equals_torchvision_with_003s_stem_swapped_in():
    tv = torchvision_models()
    reference = tv.resnet18(num_classes=10)
    reference.conv1 = nn.Conv2d(1, 64, 3, stride=1, padding=1, bias=False)
    reference.maxpool = nn.Identity()
    model = create_model("resnet18", in_channels=1, num_classes=10, small_input=True)
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(model.eval()(x), reference.eval()(x))


def test_zero_init_residual_zeroes_the_same_norms_as_torchvision():
    tv = torchvision_models()
    for name in ("resnet18", "resnet50"):
        with torch.device("meta"):
            keys = list(create_model(name).state_dict())
        ours = create_model(name, zero_init_residual=True).state_dict()
        theirs = getattr(tv, name)(zero_init_residual=True).state_dict()
        zero_ours = {k for k in keys if k.endswith("weight") and not ours[k].any()}
        zero_theirs = {k for k in keys if k.endswith("weight") and not theirs[k].any()}
        assert zero_ours == zero_theirs and zero_ours


def test_preact_block_has_a_clean_identity_path():
    """He et al. 2016: nothing after the addition, so with a zero residual branch the block is
    exactly the identity, negative values included (a post-activation block would ReLU them)."""
    block = PreActBlock(8, 8).eval()
    nn.init.zeros_(block.conv2.weight)
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block(x), x)


def test_preact_resnet_layout():
    model = create_model("preact_resnet18", num_classes=10, small_input=True)
    first = model.layer1[0]
    assert isinstance(first.bn1, nn.Identity)  # the stem already ends in BN-ReLU
    assert isinstance(model.layer2[0].downsample, nn.Conv2d)  # projection without BN
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    with pytest.raises(ConfigError, match="zero_init_residual"):
        create_model("preact_resnet18", zero_init_residual=True)


def test_resnext_and_wide_widths():
    with torch.device("meta"):
        resnext = create_model("resnext50_32x4d")
        wide = create_model("wide_resnet50_2")
    assert resnext.layer1[0].conv2.groups == 32 and resnext.layer1[0].conv2.in_channels == 128
    assert wide.layer1[0].conv2.in_channels == 128 and wide.layer4[0].conv2.in_channels == 1024


def test_options_that_do_not_fit_a_basic_block_are_refused():
    with pytest.raises(ConfigError, match="BasicBlock"):
        create_model("resnet18", groups=32)
    with pytest.raises(ConfigError, match="width_per_group"):
        create_model("resnet50", width_per_group=0)
