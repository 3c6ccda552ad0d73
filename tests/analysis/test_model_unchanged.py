"""summarize leaves the user's model exactly as found (tests/model_guard.py): shared modules,
tied weights, every zoo model, random DAGs, and calls that raise."""

from __future__ import annotations

import contextlib

import pytest
import torch
from hypothesis import given, settings
from torch import nn

from cnnkit.analysis import summarize
from cnnkit.errors import ShapeError
from cnnkit.models import create_model, list_models, model_info
from tests.analysis.random_models import RandomNet, net_specs
from tests.model_guard import model_left_as_found


class SharedModule(nn.Module):
    """One module object registered under two names (timm's CoaT: ``cpe1`` is also
    ``serial_blocks1.N.cpe``), plus a weight tied across two modules and a buffer."""

    def __init__(self) -> None:
        super().__init__()
        conv, norm = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)
        self.shared, self.norm = conv, norm
        self.seq = nn.Sequential(conv, norm)
        self.a = nn.Conv2d(3, 3, 1)
        self.b = nn.Conv2d(3, 3, 1)
        self.b.weight = self.a.weight  # tied
        self.register_buffer("offset", torch.ones(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(self.seq(self.norm(self.shared(x))))) + self.offset


def test_a_module_registered_under_two_names_is_left_as_found():
    model = SharedModule()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
    with model_left_as_found(model):
        summary = summarize(model, (3, 8, 8))
    assert summary.total.params == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        assert torch.equal(model(x), expected)  # still runs on real weights


def test_a_shared_module_is_left_as_found_when_the_call_raises():
    model = SharedModule()
    with model_left_as_found(model), pytest.raises(ShapeError):
        summarize(model, (5, 8, 8))  # wrong channel count


def test_a_shared_module_is_left_as_found_by_the_real_fallback_pass():
    class DataDependent(SharedModule):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = super().forward(x)
            return y * 2 if y.sum() > 0 else y

    model = DataDependent()
    with model_left_as_found(model):
        summary = summarize(model, (3, 8, 8), mode="train")
    assert summary.device == "cpu"


@pytest.mark.slow  # ~35 s of CPU for all 41: the eight VGGs cost 2 s each (building 130 M+
# parameters and hashing them twice); every other model is well under a second
@pytest.mark.parametrize("name", list_models())
def test_every_zoo_model_is_left_as_found(name):
    model = create_model(name)
    model.train()
    info = model_info(name)
    channels, height, width = info.default_input
    if info.min_input is not None:  # the smallest input keeps the pass cheap
        height, width = info.min_input
    with model_left_as_found(model):
        summary = summarize(model, (channels, height, width), batch_size=2, mode="train")
    assert summary.total.params == sum(p.numel() for p in model.parameters())


@settings(max_examples=20)
@given(net_specs())
def test_random_dags_are_left_as_found(specs):
    model = RandomNet(specs, 3)
    model.layers[0].train(False)  # mixed flags
    # an input too small for this draw raises a ShapeError: the guard still holds
    with model_left_as_found(model), contextlib.suppress(ShapeError):
        summarize(model, (3, 12, 12), batch_size=2, mode="train")


def test_measuring_memory_leaves_a_shared_module_as_found():
    model = SharedModule()
    with model_left_as_found(model):
        summary = summarize(model, (3, 8, 8), batch_size=2, measure=True)
    assert summary.measured is not None and summary.measured.saved_bytes > 0
