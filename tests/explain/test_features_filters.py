"""Feature maps and filters against the layers' outputs and weights computed directly."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import UnknownNameError
from cnnkit.explain.features import ChannelStats, feature_maps
from cnnkit.explain.filters import filters
from tests.explain.tiny import tiny
from tests.model_guard import model_left_as_found


def test_feature_maps_equal_the_layer_outputs():
    model = tiny()
    model.train()
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    with model_left_as_found(model):
        result = feature_maps(model, x, layers=["features.1", "features.2"])
        default = feature_maps(model, x)
    with torch.no_grad():
        first = model.features[:2](x)
        second = model.features[:3](x)
    torch.testing.assert_close(result["features.1"].maps, first.float())
    torch.testing.assert_close(result["features.2"].maps, second.float())
    # the only stage (6x6 throughout) ends at the Sequential's output (after the in-place ReLU)
    assert [layer.name for layer in default.layers] == ["features"]
    torch.testing.assert_close(default["features"].maps, torch.relu(second).float())


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(0, 2**16))
def test_channel_stats_against_numpy_definitions(batch, channels, seed):
    maps = torch.relu(
        torch.randn(batch, channels, 3, 5, generator=torch.Generator().manual_seed(seed))
    )
    stats = ChannelStats.of(maps)
    for c in range(channels):
        values = maps[:, c].flatten().double().numpy()
        assert stats.mean[c].item() == pytest.approx(values.mean(), rel=1e-6, abs=1e-7)
        assert stats.std[c].item() == pytest.approx(values.std(), rel=1e-6, abs=1e-7)
        assert stats.max[c].item() == pytest.approx(values.max())
        assert stats.zero_fraction[c].item() == pytest.approx((values == 0).mean())


def test_unknown_layer_lists_close_matches():
    model = tiny()
    with model_left_as_found(model), pytest.raises(UnknownNameError, match="did you mean"):
        feature_maps(model, torch.randn(1, 2, 6, 6, dtype=torch.float64), layers=["feature.1"])


def test_filters_are_the_first_conv_weights_and_per_filter_norms():
    model = tiny()
    with model_left_as_found(model):
        result = filters(model, (2, 6, 6))
    assert result.first_layer == "features.0" and list(result.norms) == ["features.0", "features.2"]
    torch.testing.assert_close(result.kernels, model.features[0].weight.detach().float())
    for name, conv in (("features.0", model.features[0]), ("features.2", model.features[2])):
        expected = torch.stack([w.norm() for w in conv.weight.detach()])
        torch.testing.assert_close(result.norms[name], expected.float())
