"""The model table: every zoo model's row against its oracles (the module's parameters,
torch.utils.flop_counter, seed 003's LeNet field, the published accuracies it quotes)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.analysis.model_table import zoo_table
from cnnkit.models import create_model, list_models, model_info
from cnnkit.nn import SqueezeExcitation


def _oracle(name: str, shape: tuple[int, ...]) -> tuple[int, int]:
    """Parameters counted from the module and torch.utils.flop_counter's FLOPs / 2."""
    with torch.device("meta"):
        model = create_model(name).eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, *shape, device="meta"))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


def _params(name: str, **options: int) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name, **options).parameters())


@pytest.mark.slow
def test_every_registered_model_has_a_row_that_matches_the_oracles():
    """The analyzer summarises every zoo model (what `cnnkit summary NAME` runs)."""
    rows = zoo_table()
    assert sorted(row.name for row in rows) == list_models()
    for row in rows:
        info = model_info(row.name)
        assert row.input_shape == info.default_input
        assert (row.params, row.macs) == _oracle(row.name, row.input_shape), row.name
        published = info.published
        assert row.top1 == (published.top1 if published else None)
        assert row.source == (published.source if published else None)


def test_lenet_receptive_field_is_003s():
    # seed 003: LeNet-5's receptive field after pool2 is 16 (5, 6, 14, 16 layer by layer)
    (row,) = zoo_table(pattern="lenet5")
    assert row.rf == row.local_rf == (16, 16) and row.rf_layer == "features.5"
    assert row.rf_global == row.local_rf_global == (False, False)


def test_se_networks_are_global_with_a_local_field_through_their_convolutions():
    """An SE gate multiplies the last map by a function of the whole image: the exact field is
    the whole input; the local one (measured against the gradient in
    test_local_receptive_field) is larger than the image, as unclipped fields are."""
    for row in zoo_table(pattern="efficientnet_b0") + zoo_table(pattern="mobilenet_v3_small"):
        with torch.device("meta"):
            has_se = any(isinstance(m, SqueezeExcitation) for m in create_model(row.name).modules())
        assert has_se and row.rf_global == (True, True)
        assert row.rf == row.input_shape[1:]
        assert row.local_rf_global == (False, False) and row.local_rf[0] > row.input_shape[1]


def test_rows_are_in_natural_order_and_filtered():
    names = [row.name for row in zoo_table(family="resnet", pattern="resnet*")]
    assert names == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]


def test_rebuilt_models_carry_no_published_accuracy():
    (row,) = zoo_table(pattern="resnet18", input_shape=(1, 28, 28), num_classes=10)
    assert row.params == _params("resnet18", in_channels=1, num_classes=10)
    assert row.top1 is None and row.input_shape == (1, 28, 28)


def test_an_input_too_small_is_a_note_naming_the_layer():
    (row,) = zoo_table(pattern="lenet5", input_shape=(1, 8, 8))
    assert row.macs is None and row.rf is None and row.local_rf is None
    assert row.params == _params("lenet5")
    assert "features.3 (Conv2d)" in row.note
