"""``examine(model, input_shape)``: capture the model once, run every rule whose evidence is
at hand, return a :class:`~cnnkit.doctor.findings.Report`.

The graph is :func:`cnnkit.analysis.summarize`'s (on the meta device when the model can run
there), so the static rules cost about one ``cnnkit summary``. The model is put in eval mode
with its own ``eval()`` for the capture (so an override that keeps BatchNorm training is
seen) and every module's flag is restored afterwards; the probe works on a deep copy.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cnnkit.doctor import rules_config, rules_data, rules_graph, rules_layers, rules_probe
from cnnkit.doctor.checks import CHECKS, Check, Hit, check
from cnnkit.doctor.context import Context, DataEvidence
from cnnkit.doctor.findings import SEVERITY_RANK, Finding, Report
from cnnkit.errors import ConfigError, ShapeError

if TYPE_CHECKING:
    from torch import nn

    from cnnkit.data import ImageDataset
    from cnnkit.train.config import TrainConfig

_RULE_MODULES = (rules_layers, rules_graph, rules_config, rules_data, rules_probe)
_GROUPS = re.compile(r"divisible by groups|must be divisible by", re.I)
_LAYER = re.compile(r"too small for (\S+)")
CAPTURE_BATCH = 2  # a train-mode BatchNorm on a 1x1 map needs 2 values per channel


@check(
    "grouped-divisibility",
    severity="error",
    evidence=("graph",),
    source="002 Implementation Checklist (grouped/depthwise channels divisible by groups)",
    checks="the model cannot be built: channels not divisible by groups in its settings",
    fix="choose channel counts that are multiples of groups (or groups that divide them)",
)
def grouped_divisibility(ctx: Context) -> list[Hit]:
    # Fires from examine() when building the model fails; a built model always divides.
    return []


def examine(
    model: nn.Module | Callable[[], nn.Module],
    input_shape: Sequence[int],
    *,
    data: DataEvidence | ImageDataset | None = None,
    config: TrainConfig | None = None,
    probe_steps: int = 0,
    object_size: int | None = None,
    rf_share: float = 0.5,
    rules: Sequence[str] | None = None,
    name: str | None = None,
) -> Report:
    """Run the doctor's rules on ``model`` at one sample's ``input_shape`` (no batch).

    Args:
        model: an ``nn.Module`` (left exactly as found) or a zero-argument factory (built on
            the meta device unless the probe needs real weights; a build that fails because
            channels do not divide by groups is the finding ``grouped-divisibility``).
        input_shape: e.g. ``(3, 224, 224)``.
        data: datasets for the data rules (an ImageDataset is the training set).
        config: a TrainConfig for the config rules (and class weights, batch size).
        probe_steps: > 0 runs the probe rules: that many training steps on a copy.
        object_size: pixels the receptive field must cover (default: ``rf_share`` of the input).
        rules: only these rule ids (default: all).

    Returns a Report whose ``checked`` lists the rules that ran (a rule whose evidence is
    missing is skipped) and whose findings are sorted errors first.
    """
    if isinstance(probe_steps, bool) or not isinstance(probe_steps, int) or probe_steps < 0:
        raise ConfigError(f"probe_steps must be an integer >= 0, got {probe_steps!r}")
    if object_size is not None and object_size < 1:
        raise ConfigError(f"object_size must be >= 1, got {object_size}")
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"input shape must be integers, got {input_shape!r}") from None
    selected = _selected(rules)
    evidence = _as_data(data)
    module, failure = _build(model, probe_steps > 0)
    label = name or (type(module).__name__ if module is not None else "model")
    if module is None:
        finding = _finding(CHECKS.get("grouped-divisibility"), Hit("model_kwargs", failure or ""))
        return Report(label, shape, (finding,), ("grouped-divisibility",))
    ctx = Context(
        module,
        (CAPTURE_BATCH, *shape),
        config=config,
        data=evidence,
        object_size=object_size,
        rf_share=rf_share,
    )
    ctx.flags_before = {n: m.training for n, m in module.named_modules()}
    findings: list[Finding] = []
    checked: list[str] = []
    try:
        ctx.summary = _capture(module, shape)
    except ShapeError as error:
        match = _LAYER.search(str(error))
        if match is None:  # not a window too large for its input: not the doctor's finding
            raise
        where = match.group(1)
        findings.append(_finding(CHECKS.get("kernel-exceeds-input"), Hit(where, str(error))))
        findings[-1] = Finding(**{**findings[-1].to_dict(), "severity": "error"})
        checked.append("kernel-exceeds-input")
    if probe_steps > 0:
        from cnnkit.doctor.probe import run_probe

        ctx.probe = run_probe(module, ctx.input_shape, probe_steps, evidence)
    available = {
        "graph": ctx.summary is not None,
        "config": config is not None,
        "data": evidence is not None,
        "probe": ctx.probe is not None,
    }
    for item in rule_table():
        rule_id = item.id
        if rule_id not in selected or rule_id in checked:
            continue
        if not all(available[kind] for kind in item.evidence):
            continue
        checked.append(str(rule_id))
        findings.extend(_finding(item, hit) for hit in item.function(ctx))
    findings.sort(key=lambda f: -SEVERITY_RANK[f.severity])
    return Report(label, shape, tuple(findings), tuple(checked), _source_file(module))


def _selected(rules: Sequence[str] | None) -> set[str]:
    if rules is None:
        return {str(k) for k in CHECKS}
    for rule in rules:
        CHECKS.get(rule)  # unknown ids raise UnknownNameError with close names
    return set(rules)


def _as_data(data: DataEvidence | ImageDataset | None) -> DataEvidence | None:
    if data is None or isinstance(data, DataEvidence):
        return data
    return DataEvidence(train=data)


def _build(model: Any, real: bool) -> tuple[nn.Module | None, str | None]:
    from torch import nn

    if isinstance(model, nn.Module):
        return model, None
    if not callable(model):
        raise ConfigError(f"model must be an nn.Module or a factory, got {type(model).__name__}")
    import torch

    try:
        if real:
            built = model()
        else:
            try:
                with torch.device("meta"):
                    built = model()
            except (NotImplementedError, RuntimeError):  # the factory reads tensor values
                built = model()
    except ValueError as error:
        if _GROUPS.search(str(error)):
            return None, f"building the model failed: {error}"
        raise
    if not isinstance(built, nn.Module):
        raise ConfigError(f"the model factory returned {type(built).__name__}, not an nn.Module")
    return built, None


def _capture(module: nn.Module, shape: tuple[int, ...]) -> Any:
    from cnnkit.analysis import summarize

    flags = [(m, m.training) for m in module.modules()]
    try:
        module.eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # uncounted MACs do not matter to the doctor
            return summarize(module, shape, batch_size=CAPTURE_BATCH, mode="same")
    finally:
        for m, training in flags:
            m.training = training


def _finding(item: Check, hit: Hit) -> Finding:
    return Finding(
        rule=item.id,
        severity=hit.severity or item.severity,
        where=hit.where,
        message=hit.message,
        fix=hit.fix or item.fix,
        source=item.source,
    )


def _source_file(module: nn.Module) -> str | None:
    import inspect

    try:
        return inspect.getsourcefile(type(module))
    except (TypeError, OSError):
        return None


_KIND_ORDER = {"static": 0, "probe": 1, "data": 2, "config": 3}
# The order of issue 20's list (and of docs/doctor.md); rules not listed follow, as registered.
ORDER = (
    "conv-bias-before-bn", "missing-nonlinearity", "softmax-before-loss",
    "inplace-overwrites-input", "early-downsampling", "rf-smaller-than-input",
    "kernel-exceeds-input", "checkerboard-transposed-conv", "asymmetric-padding",
    "causal-conv-symmetric-padding", "view-needs-contiguous", "residual-shape-broadcast",
    "depthwise-without-pointwise", "fixed-input-size", "dropout-before-bn", "large-kernel-stack",
    "channels-not-multiple-of-8", "eval-batch-dependence", "modules-in-eval",
    "grouped-divisibility", "loss-not-decreasing", "vanishing-gradients", "exploding-gradients",
    "dead-relu", "activation-blowup", "unused-parameters", "nan-or-inf",
    "normalisation-mismatch", "class-imbalance", "train-test-overlap", "bn-small-batch",
    "no-augmentation", "lr-warmup-missing", "training-memory",
)  # fmt: skip


def rule_table() -> list[Check]:
    """Every registered rule: static, probe, data, then config rules, each kind in the order
    registered (the order they run in and of docs/doctor.md's table)."""
    items = [item for _, item in CHECKS.items()]
    rank = {rule: i for i, rule in enumerate(ORDER)}
    return sorted(items, key=lambda item: (_KIND_ORDER[item.kind], rank.get(item.id, len(rank))))
