"""GoogLeNet: auxiliary heads, transform_input and the Inception module, against torchvision."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import create_model
from cnnkit.models.googlenet import GoogLeNetOutputs, Inception
from tests.oracles import torchvision_models


def test_aux_heads_in_training_match_torchvision():
    tv = torchvision_models()
    options = {"num_classes": 6, "aux_logits": True, "dropout": 0.0, "dropout_aux": 0.0}
    reference = tv.googlenet(init_weights=True, **options).train()
    model = create_model("googlenet", **options).train()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    ours, theirs = model(x), reference(x)
    assert isinstance(ours, GoogLeNetOutputs)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)
    assert model.eval()(x).shape == (2, 6)  # eval: the logits only


def test_transform_input_matches_torchvision():
    tv = torchvision_models()
    reference = tv.googlenet(aux_logits=False, transform_input=True, init_weights=True).eval()
    model = create_model("googlenet", transform_input=True).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(model(x), reference(x))


def test_transform_input_needs_rgb():
    with pytest.raises(ConfigError, match="transform_input needs in_channels=3"):
        create_model("googlenet", in_channels=1, transform_input=True)


def test_inception_module_concatenates_its_branches():
    # 001's example: Inception(192, 64, 96, 128, 16, 32, 32) on 28x28 -> 64+128+32+32 = 256
    module = Inception(192, 64, 96, 128, 16, 32, 32)
    assert module(torch.randn(1, 192, 28, 28)).shape == (1, 256, 28, 28)
    assert module.out_channels == 256
