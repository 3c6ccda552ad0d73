"""The probe: a few real forward/backward steps on a deep copy of the model, with fixed seeds.

Everything is measured on ``copy.deepcopy(model)`` inside ``torch.random.fork_rng`` with the
seed fixed, so the user's model (weights, buffers, modes, hooks, ``.grad``) and the global RNG
are left exactly as found. Batches are the first images of the data (normalised with the mean
and std given) when there is data, else standard normal noise; targets are the labels, or
random classes. The optimiser is Adam (lr 1e-3), which over-fits one fixed batch quickly
(Karpathy's "overfit one batch" check).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cnnkit.errors import CnnkitError, ConfigError, TrainingError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from cnnkit.doctor.context import DataEvidence

PROBE_BATCH = 8
SEED = 0
_RELUS = ("ReLU", "ReLU6")


@dataclass
class ProbeResult:
    """What the probe measured.

    Attributes:
        losses: the loss before each step.
        first_nonfinite: the first leaf module whose output held NaN/Inf (inputs finite), or
            ``"loss"``/a parameter name when only those were non-finite.
        grad_ratios: per learned layer in execution order, (name, ||grad|| / ||weight||) at
            the first step.
        activation_vars: per learned layer in execution order, (name, output variance) at the
            first forward pass.
        dead: per ReLU module, (name, fraction of channels never positive, channels).
        unused: parameters with requires_grad that got no gradient.
        causal_leaks: per Conv1d named or flagged causal, whether changing its inputs after
            the middle changed its outputs before the middle (future leaking into the past).
        inplace_changes_output: whether the eval-mode output changed when the modules'
            ``inplace`` flags were turned off (``None``: no module has one).
    """

    steps: int
    losses: list[float] = field(default_factory=list)
    first_nonfinite: str | None = None
    grad_ratios: list[tuple[str, float]] = field(default_factory=list)
    activation_vars: list[tuple[str, float]] = field(default_factory=list)
    dead: list[tuple[str, float, int]] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    causal_leaks: dict[str, bool] = field(default_factory=dict)
    inplace_changes_output: bool | None = None


def _batch(
    input_shape: tuple[int, ...],
    data: DataEvidence | None,
    outputs: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    if data is not None and tuple(data.train.images.shape[1:]) == tuple(input_shape[1:]):
        images = data.train.images[:PROBE_BATCH].float() / 255
        if data.mean is not None and data.std is not None:
            mean = torch.tensor(data.mean).view(1, -1, *([1] * (images.dim() - 2)))
            std = torch.tensor(data.std).view(1, -1, *([1] * (images.dim() - 2)))
            images = (images - mean) / std
        labels = data.train.labels[: len(images)] % max(outputs, 1)
        return images, labels
    images = torch.randn((PROBE_BATCH, *input_shape[1:]), generator=generator)
    labels = torch.randint(0, max(outputs, 1), (PROBE_BATCH,), generator=generator)
    return images, labels


def run_probe(
    model: nn.Module, input_shape: tuple[int, ...], steps: int, data: DataEvidence | None
) -> ProbeResult:
    """Train a copy of ``model`` for ``steps`` steps on one fixed batch and measure it."""
    import torch

    if any(t.device.type == "meta" for t in (*model.parameters(), *model.buffers())):
        raise ConfigError("--probe-steps: the probe needs real weights, not a meta-device model")
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(SEED)
        probe = copy.deepcopy(model)
        probe.eval()  # dropout would look like a leak
        try:
            leaks = causal_leaks(probe)
            changes = inplace_changes_output(probe, input_shape)
            result = _run(probe, input_shape, steps, data)
        except CnnkitError:
            raise
        except (RuntimeError, ValueError, IndexError, TypeError) as error:
            lines = str(error).strip().splitlines()
            message = lines[0] if lines else type(error).__name__
            raise TrainingError(
                f"probe: the model failed a real training step ({message})"
            ) from None
        result.causal_leaks = leaks
        result.inplace_changes_output = changes
        return result


def causal_leaks(model: nn.Module, length: int = 16) -> dict[str, bool]:
    """For each outermost module called or flagged causal that holds a Conv1d: run it on x and
    on x with every step from ``length // 2`` on replaced; outputs of a causal module before
    that step cannot change (its padding, wherever it is done, included)."""
    import torch

    leaks: dict[str, bool] = {}
    for name, module in model.named_modules():
        flagged = "causal" in name.lower() or getattr(module, "causal", False) is True
        if not flagged or any(name.startswith(done + ".") for done in leaks):
            continue
        conv = next((m for m in module.modules() if isinstance(m, torch.nn.Conv1d)), None)
        if conv is None:
            continue
        weight = conv.weight
        x = torch.randn(1, conv.in_channels, length, dtype=weight.dtype, device=weight.device)
        changed = x.clone()
        changed[..., length // 2 :] = torch.randn_like(changed[..., length // 2 :])
        with torch.no_grad():
            before, after = module(x), module(changed)
        cut = min(length // 2, before.shape[-1])
        leaks[name] = not torch.equal(before[..., :cut], after[..., :cut])
    return leaks


def inplace_changes_output(model: nn.Module, input_shape: tuple[int, ...]) -> bool | None:
    """Run ``model`` (a copy, in eval mode) on one seeded batch twice: as built, and with every
    module's ``inplace`` flag (``nn.ReLU(inplace=True)`` and kin) turned off. Different outputs
    mean an in-place module rewrote a tensor that was read again later (003 Q&A). ``None``
    when no module has the flag (in-place tensor methods such as ``x.relu_()`` are not
    switched: PyTorch returns the input object itself from them, so they cannot be redirected).
    """
    import torch

    flagged = [m for m in model.modules() if getattr(m, "inplace", None) is True]
    if not flagged:
        return None
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    generator = torch.Generator().manual_seed(SEED)
    x = torch.randn((2, *input_shape[1:]), generator=generator).to(device, dtype)
    with torch.no_grad():
        written = model(x.clone())
        try:
            for module in flagged:
                module.inplace = False  # type: ignore[assignment]  # only modules that have an inplace flag reach this line
            rewritten = model(x.clone())
        finally:
            for module in flagged:
                module.inplace = True  # type: ignore[assignment]  # only modules that have an inplace flag reach this line
    if not isinstance(written, torch.Tensor) or not isinstance(rewritten, torch.Tensor):
        return None
    return not torch.allclose(written, rewritten, rtol=1e-4, atol=1e-5)


def _run(
    model: nn.Module, input_shape: tuple[int, ...], steps: int, data: DataEvidence | None
) -> ProbeResult:
    import torch
    from torch.nn import functional as F

    result = ProbeResult(steps)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    names = {id(m): n for n, m in model.named_modules()}
    first_pass = [True]
    active: dict[str, torch.Tensor] = {}

    def hook(module: nn.Module, args: tuple, output: object) -> None:
        if not isinstance(output, torch.Tensor) or not output.is_floating_point():
            return
        name = names.get(id(module), type(module).__name__)
        out = output.detach()
        if result.first_nonfinite is None and not bool(torch.isfinite(out).all()):
            inputs_finite = all(
                bool(torch.isfinite(a).all())
                for a in args
                if isinstance(a, torch.Tensor) and a.is_floating_point()
            )
            if inputs_finite:
                result.first_nonfinite = name
        if first_pass[0] and isinstance(module, torch.nn.modules.conv._ConvNd | torch.nn.Linear):
            result.activation_vars.append((name, float(out.float().var())))
        if type(module).__name__ in _RELUS and out.dim() >= 2:
            positive = (out > 0).transpose(0, 1).flatten(1).any(dim=1)
            active[name] = active[name] | positive if name in active else positive

    handles = [m.register_forward_hook(hook) for m in model.modules() if not m._modules]
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    with torch.no_grad():
        outputs = _outputs(model, input_shape, device, dtype)
    first_pass[0] = True
    result.activation_vars.clear()
    active.clear()
    result.first_nonfinite = None
    images, labels = _batch(input_shape, data, outputs, generator)
    images, labels = images.to(device, dtype), labels.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=1e-3) if trainable else None
    try:
        for step in range(max(steps, 1)):
            output = model(images)
            first_pass[0] = False
            if output.dim() == 2:
                loss = F.cross_entropy(output.float(), labels)
            else:
                loss = output.float().pow(2).mean()
            result.losses.append(float(loss.detach()))
            if not math.isfinite(result.losses[-1]):
                result.first_nonfinite = result.first_nonfinite or "loss"
                break
            if optimizer is None:
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if step == 0:
                _first_gradients(model, result)
            optimizer.step()
    finally:
        for handle in handles:
            handle.remove()
    for name, positive in active.items():
        dead = 1 - float(positive.float().mean())
        result.dead.append((name, dead, int(positive.numel())))
    return result


def _outputs(
    model: nn.Module, input_shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> int:
    """Number of classes (the output's last size) from one pass on two zero images."""
    import torch

    out = model(torch.zeros((2, *input_shape[1:]), device=device, dtype=dtype))
    return int(out.shape[-1]) if out.dim() == 2 else 1


def _first_gradients(model: nn.Module, result: ProbeResult) -> None:
    import torch

    for name, parameter in model.named_parameters():
        if parameter.requires_grad and parameter.grad is None:
            result.unused.append(name)
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.modules.conv._ConvNd | torch.nn.Linear):
            continue
        weight = module.weight
        if weight.grad is None:
            continue
        grad = float(weight.grad.norm())
        if not math.isfinite(grad):
            result.first_nonfinite = result.first_nonfinite or f"{name}.weight (gradient)"
        norm = float(weight.detach().norm())
        result.grad_ratios.append((name, grad / norm if norm > 0 else math.inf))
