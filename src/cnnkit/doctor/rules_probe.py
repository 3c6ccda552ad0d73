"""Rules on what the probe measured (evidence: ``probe``; only with ``probe_steps`` > 0).

See :mod:`cnnkit.doctor.probe` for how the numbers are obtained (a copy of the model, fixed
seeds, one fixed batch, Adam at 1e-3).
"""

from __future__ import annotations

from collections.abc import Iterator

from cnnkit.doctor.checks import Hit, check
from cnnkit.doctor.context import Context

MIN_STEPS_FOR_LOSS = 5
LOSS_DROP = 0.9  # the last loss must be below 90% of the first
GRADIENT_SPREAD = 1e3
ACTIVATION_SPREAD = 100.0
DEAD_SHARE = 0.5


@check(
    "loss-not-decreasing",
    severity="warning",
    evidence=("probe",),
    source="001 排错清单 (loss does not fall); Karpathy's recipe (overfit one batch)",
    checks=f"after N probe steps (N >= {MIN_STEPS_FOR_LOSS}) on one fixed batch the loss is "
    f"not below {LOSS_DROP:.0%} of its first value: the model cannot even memorise 8 images",
    fix="look for a wiring bug: a detached tensor, frozen layers, wrong targets, a softmax "
    "before the loss, a learning rate of zero",
)
def loss_not_decreasing(ctx: Context) -> Iterator[Hit]:
    probe = ctx.probe
    assert probe is not None
    if probe.steps < MIN_STEPS_FOR_LOSS or len(probe.losses) < MIN_STEPS_FOR_LOSS:
        return
    first, last = probe.losses[0], probe.losses[-1]
    if last > LOSS_DROP * first:
        yield Hit(
            "the model",
            f"loss {first:.4f} -> {last:.4f} after {len(probe.losses)} steps on one fixed "
            f"batch of 8 (Adam, lr 1e-3): it should fall well below {LOSS_DROP * first:.4f}",
        )


def _ordered_ratios(ctx: Context) -> list[tuple[str, float]]:
    probe = ctx.probe
    assert probe is not None
    order = {name: i for i, (name, _) in enumerate(probe.activation_vars)}
    ratios = [(n, r) for n, r in probe.grad_ratios if n in order]
    return sorted(ratios, key=lambda item: order[item[0]])


@check(
    "vanishing-gradients",
    severity="warning",
    evidence=("probe",),
    source="000 section 7 (exploding/vanishing values); 001 (ReLU, BN, residuals)",
    checks=f"at initialisation the first learned layer's relative gradient ||g||/||w|| is "
    f"{GRADIENT_SPREAD:g}x smaller than the last one's",
    fix="use ReLU-family activations, normalisation and residual connections; He init",
)
def vanishing_gradients(ctx: Context) -> Iterator[Hit]:
    ratios = _ordered_ratios(ctx)
    if len(ratios) < 2:
        return
    (first, low), (last, high) = ratios[0], ratios[-1]
    if high > 0 and low * GRADIENT_SPREAD < high:
        yield Hit(
            first,
            f"relative gradient {low:.2e} at {first} vs {high:.2e} at {last}: the early "
            "layers barely learn",
        )


@check(
    "exploding-gradients",
    severity="warning",
    evidence=("probe",),
    source="000 section 7 (exploding/vanishing values)",
    checks=f"at initialisation the first learned layer's relative gradient is "
    f"{GRADIENT_SPREAD:g}x larger than the last one's",
    fix="lower the initial weight scale (He/Xavier init), add normalisation, clip gradients",
)
def exploding_gradients(ctx: Context) -> Iterator[Hit]:
    ratios = _ordered_ratios(ctx)
    if len(ratios) < 2:
        return
    (first, high), (last, low) = ratios[0], ratios[-1]
    if low > 0 and high > GRADIENT_SPREAD * low:
        yield Hit(
            first,
            f"relative gradient {high:.2e} at {first} vs {low:.2e} at {last}: one step "
            "moves the early layers far more than the late ones",
        )


@check(
    "dead-relu",
    severity="warning",
    evidence=("probe",),
    source="000 section 7 (ReLU/LeakyReLU); 001",
    checks=f"a ReLU whose channels were never positive over the probe ({DEAD_SHARE:.0%} or "
    "more of them): those units pass no gradient",
    fix="check the bias/initialisation before it, lower the learning rate, or use LeakyReLU",
)
def dead_relu(ctx: Context) -> Iterator[Hit]:
    probe = ctx.probe
    assert probe is not None
    for name, share, channels in probe.dead:
        if share >= DEAD_SHARE:
            yield Hit(
                name,
                f"{share:.0%} of its {channels} channels never fired over {len(probe.losses)} "
                "probe step(s): they get no gradient and stay dead",
            )


@check(
    "activation-blowup",
    severity="warning",
    evidence=("probe",),
    source="002 (initialisation that fits the fan-in); 000 section 7",
    checks=f"the output variance of the learned layers grows or shrinks more than "
    f"{ACTIVATION_SPREAD:g}x from the first to a later one at initialisation",
    fix="initialise for the fan-in (He for ReLU, Xavier for tanh) or add normalisation",
)
def activation_blowup(ctx: Context) -> Iterator[Hit]:
    probe = ctx.probe
    assert probe is not None
    variances = probe.activation_vars
    if len(variances) < 2 or variances[0][1] <= 0:
        return
    first_name, first = variances[0]
    for name, var in variances[1:]:
        ratio = var / first
        if ratio > ACTIVATION_SPREAD or ratio < 1 / ACTIVATION_SPREAD:
            yield Hit(
                name,
                f"output variance {var:.3g} vs {first:.3g} at {first_name} ({ratio:.3g}x): "
                "the initialisation does not fit the layers' fan-in",
            )
            return


@check(
    "unused-parameters",
    severity="warning",
    evidence=("probe",),
    source="PyTorch DDP (find_unused_parameters); 000 section 7 (memory)",
    checks="trainable parameters that get no gradient from the loss",
    fix="remove the unused layers or freeze them (requires_grad=False); DDP needs "
    "find_unused_parameters=True otherwise",
)
def unused_parameters(ctx: Context) -> Iterator[Hit]:
    probe = ctx.probe
    assert probe is not None
    if probe.unused:
        shown = ", ".join(probe.unused[:3]) + (", ..." if len(probe.unused) > 3 else "")
        yield Hit(
            probe.unused[0].rsplit(".", 1)[0],
            f"{len(probe.unused)} trainable parameter(s) get no gradient ({shown}): wasted "
            "memory, and DistributedDataParallel raises",
        )


@check(
    "nan-or-inf",
    severity="error",
    evidence=("probe",),
    source="000 section 7 (exploding values)",
    checks="non-finite values in a forward pass, the loss or a gradient (names the first "
    "layer that produced them from finite inputs)",
    fix="look at that layer: a log/sqrt/division of zero or negatives, an overflow in "
    "low precision, or exploding weights",
)
def nan_or_inf(ctx: Context) -> Iterator[Hit]:
    probe = ctx.probe
    assert probe is not None
    if probe.first_nonfinite is not None:
        yield Hit(
            probe.first_nonfinite,
            f"produced NaN/Inf from finite inputs during the probe (losses: "
            f"{', '.join(f'{v:.4g}' for v in probe.losses[:3])})",
        )
