"""Default layers come from the capture graph: checked on zoo models whose structure is known."""

from __future__ import annotations

import pytest

from cnnkit.explain import first_conv_layer, last_conv_layer, stage_outputs
from cnnkit.models import create_model
from tests.model_guard import model_left_as_found


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "last", "stages"),
    [
        (
            "vgg11",
            "features",
            ["features.1", "features.4", "features.9", "features.14", "features.19"],
        ),
        ("resnet18", "layer4", ["relu", "layer1", "layer2", "layer3", "layer4"]),
    ],
)
def test_zoo_layers(name, last, stages):
    model = create_model(name, num_classes=10, in_channels=1)
    with model_left_as_found(model):
        assert last_conv_layer(model, (1, 1, 32, 32)) == last
        assert stage_outputs(model, (1, 1, 32, 32)) == stages
        assert first_conv_layer(model, (1, 1, 32, 32)) in ("features.0", "conv1")
