"""Probe rules: each fires on a model with the defect and not on its twin; the probe uses fixed
seeds (two runs agree) and leaves the model and the global RNG as found."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.doctor import examine
from tests.model_guard import model_left_as_found

STEPS = 20


class Scaled(nn.Module):
    """A linear classifier whose logits are multiplied by ``scale`` (0: nothing can be learned)."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 10)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * self.scale


def mlp(depth: int, activation: type[nn.Module], width: int = 32) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(3 * 8 * 8, width)]
    for _ in range(depth - 2):
        layers += [activation(), nn.Linear(width, width)]
    return nn.Sequential(*layers, activation(), nn.Linear(width, 10))


def tiny_first_layer(scale: float) -> nn.Sequential:
    model = mlp(3, nn.ReLU)
    with torch.no_grad():
        model[1].weight.mul_(scale)
    return model


def dead(bias: float) -> nn.Sequential:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 10))
    with torch.no_grad():
        model[0].bias.fill_(bias)
    return model


def linear_stack(depth: int, he: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(192, 64)]
    layers += [nn.Linear(64, 64, bias=False) for _ in range(depth)]
    model = nn.Sequential(*layers)
    if he:
        for layer in model:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="linear")
    return model


class WithSpare(nn.Module):
    def __init__(self, spare: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(192, 10)
        if spare:
            self.unused = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class Log(nn.Module):
    def __init__(self, safe: bool) -> None:
        super().__init__()
        self.safe = safe

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x.abs() + 1) if self.safe else torch.log(x - 10)


def logs(safe: bool) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3), Log(safe), nn.Flatten(), nn.Linear(4 * 36, 10))


CASES = {
    "loss-not-decreasing": (lambda: Scaled(0.0), lambda: Scaled(1.0), "the model"),
    "vanishing-gradients": (lambda: mlp(12, nn.Sigmoid), lambda: mlp(3, nn.ReLU), "1"),
    "exploding-gradients": (lambda: tiny_first_layer(1e-4), lambda: tiny_first_layer(1.0), "1"),
    "dead-relu": (lambda: dead(-100.0), lambda: dead(0.0), "1"),
    "activation-blowup": (lambda: linear_stack(10, False), lambda: linear_stack(10, True), "6"),
    "unused-parameters": (lambda: WithSpare(True), lambda: WithSpare(False), "unused"),
    "nan-or-inf": (lambda: logs(False), lambda: logs(True), "1"),
}


def _probe(model: nn.Module, rule: str) -> list:
    with model_left_as_found(model):
        state = torch.get_rng_state()
        report = examine(model, (3, 8, 8), probe_steps=STEPS, rules=[rule])
        assert torch.equal(torch.get_rng_state(), state)
    assert report.checked == (rule,)
    return list(report.findings)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_probe_rule_fires_on_the_defect_and_not_on_its_twin(rule: str) -> None:
    broken, twin, where = CASES[rule]
    torch.manual_seed(0)
    found = _probe(broken(), rule)
    assert [f.where for f in found][:1] == [where], found
    torch.manual_seed(0)
    assert _probe(twin(), rule) == []


def test_probe_is_reproducible_and_off_by_default() -> None:
    torch.manual_seed(0)
    model = mlp(4, nn.ReLU)
    first = examine(model, (3, 8, 8), probe_steps=3)
    again = examine(model, (3, 8, 8), probe_steps=3)
    assert first == again
    assert "dead-relu" in first.checked
    assert "dead-relu" not in examine(model, (3, 8, 8)).checked


def test_activation_blowup_oracle() -> None:
    # PyTorch's default Linear init (kaiming_uniform, a=sqrt(5)) gives weight variance
    # 1/(3 fan_in): each layer divides the variance by about 3, so 10 layers ~ 3^10.
    torch.manual_seed(0)
    model = linear_stack(10, False)
    x = torch.randn(256, 3, 8, 8)
    with torch.no_grad():
        ratio = model[2:](model[:2](x)).var() / model[:2](x).var()
    assert ratio < 1e-2
