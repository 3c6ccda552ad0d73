"""The zoo is the false-positive check: no model gets an ``error`` at its default input, nor
the small-input ResNets and airnet at 1x28x28; the ImageNet stem on 28x28 gets
``early-downsampling``. Static rules only, on the meta device (a factory is built there)."""

from __future__ import annotations

import pytest

from cnnkit.doctor import examine
from cnnkit.models import create_model, list_models, model_info

SMALL_INPUT = ["resnet18", "resnet34", "resnet50", "preact_resnet18"]
# The zoo's warnings and infos at these inputs, each justified in docs/doctor.md.
EXPECTED = {
    "airnet": {"channels-not-multiple-of-8"},
    "convnext_tiny": set(),
    "lenet5": {"fixed-input-size"},
    "mlp": {"fixed-input-size"},
    "softmax_regression": {"fixed-input-size"},
    "simple_cnn": {"conv-bias-before-bn"},
    "regnet_y_400mf": {"channels-not-multiple-of-8"},
    "shufflenet_v2_x1_0": {"channels-not-multiple-of-8"},
    **{f"efficientnet_b{k}": {"channels-not-multiple-of-8"} for k in range(8)},
    **{f"vgg{d}_bn": {"conv-bias-before-bn"} for d in (11, 13, 16, 19)},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_zoo_model_at_its_default_input_has_no_error(name: str) -> None:
    report = examine(lambda: create_model(name), model_info(name).default_input)
    assert report.at_least("error") == (), report.findings
    assert set(report.rules_fired()) == EXPECTED.get(name, set()), report.findings


@pytest.mark.parametrize("name", SMALL_INPUT)
def test_small_input_resnets_at_28x28_have_no_findings(name: str) -> None:
    report = examine(lambda: create_model(name, in_channels=1, small_input=True), (1, 28, 28))
    assert report.findings == ()


def test_airnet_at_28x28_has_no_error() -> None:
    report = examine(lambda: create_model("airnet"), (1, 28, 28))
    assert report.at_least("error") == ()
    fast = examine(lambda: create_model("airnet", whitening_components=8), (1, 28, 28))
    assert fast.findings == ()  # the fast recipe's 16 whitening channels


def test_imagenet_stem_on_28x28_downsamples_early() -> None:
    report = examine(lambda: create_model("resnet18", in_channels=1), (1, 28, 28))
    assert report.at_least("error") == ()
    early = [f for f in report.findings if f.rule == "early-downsampling"]
    assert [f.where for f in early] == ["maxpool"]
    assert "28x28" in early[0].message and "7x7" in early[0].message
