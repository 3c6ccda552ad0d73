"""Every static rule fires on its broken model with the right ``where`` and stays quiet on
the close twin (tests/doctor/defects.py); every call leaves the model as found."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.doctor import CHECKS, examine
from tests.doctor.defects import (
    CASES,
    TWIN_INPUT,
    AlwaysDropout,
    eval_model,
    small_rf,
    unpadded_big_kernel,
)
from tests.model_guard import model_left_as_found


def _run(model: nn.Module, shape: tuple[int, ...], rule: str, **options):  # type: ignore[no-untyped-def]
    with model_left_as_found(model):
        report = examine(model, shape, rules=[rule], **options)
    assert report.checked == (rule,)
    return [f for f in report.findings if f.rule == rule]


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires_on_the_defect_and_not_on_its_twin(rule: str) -> None:
    broken, twin, shape, where = CASES[rule]
    torch.manual_seed(0)
    found = _run(broken(), shape, rule)
    assert [f.where for f in found][:1] == [where], found
    finding = found[0]
    assert finding.severity == CHECKS.get(rule).severity or rule == "kernel-exceeds-input"
    assert finding.message and finding.fix and finding.source
    assert "\n" not in finding.message
    assert _run(twin(), TWIN_INPUT.get(rule, shape), rule) == []


def test_every_static_rule_has_a_case() -> None:
    static = {str(k) for k, c in CHECKS.items() if c.evidence == ("graph",)}
    covered = set(CASES) | {"rf-smaller-than-input", "modules-in-eval", "grouped-divisibility"}
    assert static <= covered, sorted(static - covered)


def test_rf_smaller_than_input_and_object_size() -> None:
    # Two 3x3 convs see 5 pixels (seed 002: 1 + 2 + 2): less than half of 32, not of 8.
    found = _run(small_rf(), (3, 32, 32), "rf-smaller-than-input")
    assert [f.where for f in found] == ["2"] and "5 pixels" in found[0].message
    assert _run(small_rf(), (3, 8, 8), "rf-smaller-than-input") == []
    assert _run(small_rf(), (3, 32, 32), "rf-smaller-than-input", object_size=5) == []
    assert len(_run(small_rf(), (3, 32, 32), "rf-smaller-than-input", object_size=6)) == 1


def test_kernel_exceeding_the_padded_input_is_an_error_naming_the_layer() -> None:
    found = _run(unpadded_big_kernel(), (3, 8, 8), "kernel-exceeds-input")
    assert [(f.severity, f.where) for f in found] == [("error", "2")]


def test_functional_dropout_in_eval_mode_is_batch_dependence() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), AlwaysDropout())
    assert [f.where for f in _run(model, (3, 8, 8), "eval-batch-dependence")] == ["1"]


def test_eval_batch_dependence_matches_pytorch() -> None:
    # The oracle: with the sticky BatchNorm, eval-mode outputs for image 0 change with the batch.
    torch.manual_seed(0)
    model = eval_model(True).eval()
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(model(x)[:1], model(torch.cat([x[:1], -x[1:]]))[:1])
    twin = eval_model(False).eval()
    with torch.no_grad():
        assert torch.allclose(twin(x)[:1], twin(torch.cat([x[:1], -x[1:]]))[:1])


def test_modules_in_eval() -> None:
    model = eval_model(False)
    model.train()
    model[1].eval()
    assert [f.where for f in _run(model, (3, 8, 8), "modules-in-eval")] == ["1"]
    model.train()
    assert _run(model, (3, 8, 8), "modules-in-eval") == []
    model.eval()  # a model handed over in eval mode as a whole is not "some modules"
    assert _run(model, (3, 8, 8), "modules-in-eval") == []


def test_grouped_divisibility_from_a_factory() -> None:
    report = examine(lambda: nn.Conv2d(6, 8, 3, groups=4), (6, 8, 8))
    assert [(f.rule, f.severity, f.where) for f in report.findings] == [
        ("grouped-divisibility", "error", "model_kwargs")
    ]
    assert "divisible by groups" in report.findings[0].message
    twin = examine(lambda: nn.Conv2d(6, 8, 3, groups=2), (6, 8, 8), rules=["grouped-divisibility"])
    assert twin.findings == () and twin.checked == ("grouped-divisibility",)


def test_inplace_rule_matches_what_pytorch_computes() -> None:
    # The oracle: the bug model's output differs from the same model with inplace=False.
    torch.manual_seed(0)
    model = InplaceBlockPair()
    x = torch.randn(2, 8, 8, 8)
    assert not torch.allclose(model.inplace(x.clone()), model.out_of_place(x.clone()))


class InplaceBlockPair:
    def __init__(self) -> None:
        from tests.doctor.defects import InplaceBlock

        self.inplace = InplaceBlock(bug=True)
        self.out_of_place = InplaceBlock(bug=True)
        self.out_of_place.load_state_dict(self.inplace.state_dict())
        self.out_of_place.relu = nn.ReLU(inplace=False)


def test_view_rule_matches_pytorch_under_channels_last() -> None:
    from tests.doctor.defects import ViewHead

    x = torch.randn(2, 3, 8, 8).to(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="view"):
        ViewHead(True).to(memory_format=torch.channels_last)(x)
    ViewHead(False).to(memory_format=torch.channels_last)(x)


def test_unknown_rule_id_names_close_ones() -> None:
    from cnnkit.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="dead-relu"):
        examine(nn.Conv2d(3, 8, 3), (3, 8, 8), rules=["dead-relus"])


def test_causal_leak_is_confirmed_by_the_probe() -> None:
    from cnnkit.doctor.probe import causal_leaks
    from tests.doctor.defects import Sequence

    broken, right = Sequence(right=False), Sequence(right=True)
    assert causal_leaks(broken) == {"causal": True}
    assert causal_leaks(right) == {"causal": False}
    with model_left_as_found(broken):
        report = examine(broken, (4, 16), probe_steps=1, rules=["causal-conv-symmetric-padding"])
    assert "probe: changing later inputs changed earlier outputs" in report.findings[0].message


class Centred(nn.Module):
    """x - x.mean(): a scalar term, not a residual; and a pooled context added back."""

    def __init__(self, context: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.context = context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.context:
            return y + y.mean(dim=(2, 3), keepdim=True)
        return y - y.mean()


def test_residual_rule_ignores_scalars_and_calls_pooled_context_info() -> None:
    assert _run(Centred(False), (3, 8, 8), "residual-shape-broadcast") == []
    found = _run(Centred(True), (3, 8, 8), "residual-shape-broadcast")
    assert [(f.severity, f.where) for f in found] == [("info", "add")]


def test_inplace_rewrite_is_confirmed_by_the_probe() -> None:
    from cnnkit.doctor.probe import inplace_changes_output
    from tests.doctor.defects import inplace_model

    torch.manual_seed(0)
    broken, twin = inplace_model(True).eval(), inplace_model(False).eval()
    assert inplace_changes_output(broken, (2, 3, 8, 8)) is True
    assert inplace_changes_output(twin, (2, 3, 8, 8)) is False  # relu_ on the conv's output
    assert inplace_changes_output(nn.Conv2d(3, 8, 3), (2, 3, 8, 8)) is None
    with model_left_as_found(broken):
        report = examine(broken, (3, 8, 8), probe_steps=1, rules=["inplace-overwrites-input"])
    assert "probe: the output changes with inplace=False" in report.findings[0].message
