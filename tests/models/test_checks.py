"""The zoo's shared checks: one-line errors naming the layer, and nothing misattributed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.errors import ConfigError, ShapeError
from cnnkit.models import create_model
from cnnkit.models._checks import check_positive, checked_forward, flat_features


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3))
        self.fc = nn.Linear(4, 2)

    @checked_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "meta" and torch.isnan(x).any():
            raise RuntimeError("the input holds NaN")  # about values: must stay as it is
        return self.fc(torch.flatten(self.features(x), 1))


def test_too_small_names_the_first_empty_layer_and_keeps_the_model():
    model = _Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ShapeError) as caught:
        model(torch.randn(1, 1, 5, 5))  # conv -> 3x3, pool -> 1x1, conv 3x3 does not fit
    message = str(caught.value)
    assert message.startswith("_Net: input (1, 1, 5, 5) fails at features.2 (Conv2d): ")
    assert "\n" not in message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model._forward_hooks and not model.features[2]._forward_pre_hooks


def test_wrong_channels_and_wrong_flatten_size_are_named():
    with pytest.raises(ShapeError, match=r"fails at features\.0 \(Conv2d\)"):
        _Net()(torch.randn(1, 3, 8, 8))
    with pytest.raises(ShapeError, match=r"fails at fc \(Linear\)"):
        _Net()(torch.randn(1, 1, 12, 12))  # 12 -> 10 -> 5 -> 3: 36 features, fc takes 4


def test_failures_about_values_are_not_turned_into_shape_errors():
    x = torch.full((1, 1, 8, 8), float("nan"))
    with pytest.raises(RuntimeError, match="the input holds NaN") as caught:
        _Net()(x)
    assert not isinstance(caught.value, ShapeError)


def test_a_fixed_input_size_too_small_fails_at_construction():
    with pytest.raises(ShapeError) as caught:
        create_model("lenet5", input_size=8)
    assert str(caught.value).startswith("lenet5: input (1, 1, 8, 8) fails at features.3 (Conv2d)")
    assert flat_features(nn.Sequential(nn.Conv2d(1, 2, 3)), (1, 5, 6), owner="x") == 2 * 3 * 4


@pytest.mark.parametrize("value", [0, -1, 1.5, True, None])
def test_check_positive_names_model_and_argument(value):
    with pytest.raises(ConfigError, match=rf"^net: width must be an integer >= 1, got {value!r}$"):
        check_positive("net", width=value)
