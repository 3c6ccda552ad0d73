"""Learning the edge kernel [1, -1] by gradient descent: seed 004's experiment (B6).

004 (section 2.3): ``Y = corr2d(X, [1, -1])`` on its 6x8 image; a 1x2 kernel initialised at
random is trained for 10 iterations with learning rate 3e-2 on ``L = sum (corr2d(X, K) - Y)^2``;
the seed prints ``tensor([[ 1.0307, -0.9488]])``. Here the forward is
:func:`cnnkit.reference.conv2d` and the gradient is :func:`cnnkit.reference.conv2d_backward`
(002's formula ``dL/dW = X corr dL/dY`` with ``dL/dY = 2 (Y_hat - Y)``), not autograd.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from cnnkit.errors import ConfigError
from cnnkit.lab._checks import require_memory, require_seed
from cnnkit.lab.edges import SEED004_KERNEL, seed004_image
from cnnkit.reference import conv2d, conv2d_backward


@dataclass(frozen=True)
class LearnKernelResult:
    """The loss before each update, and the kernel before and after training."""

    iterations: int
    learning_rate: float
    seed: int
    initial_kernel: tuple[float, float]
    losses: tuple[float, ...]
    kernel: tuple[float, float]
    final_loss: float
    target_kernel: tuple[float, float] = (1.0, -1.0)

    def to_dict(self) -> dict:
        return asdict(self)


def learn_kernel(
    iterations: int = 10, learning_rate: float = 3e-2, seed: int = 0
) -> LearnKernelResult:
    """Fit a 1x2 kernel to 004's edge map by plain gradient descent on the summed squared error.

    ``K <- K - lr dL/dK`` with ``L = sum (corr2d(X, K) - Y)^2`` and ``Y = corr2d(X, [1, -1])``
    (004). The initial kernel is drawn like ``nn.Conv2d``'s default:
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in = 2``, from ``torch.Generator`` seeded
    with ``seed``.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ConfigError(f"iterations must be a positive integer, got {iterations!r}")
    if not (isinstance(learning_rate, int | float) and math.isfinite(learning_rate)):
        raise ConfigError(f"learning_rate must be a finite number, got {learning_rate!r}")
    if learning_rate <= 0:
        raise ConfigError(f"learning_rate must be positive, got {learning_rate!r}")
    require_seed(seed)
    # one loss per iteration is kept (a Python float in a list: about 32 bytes)
    require_memory(iterations, f"iterations {iterations}", bytes_per_element=32)
    x = seed004_image()[None, None]
    target = conv2d(x, torch.tensor(SEED004_KERNEL)[None, None])
    bound = 1 / math.sqrt(2)
    generator = torch.Generator().manual_seed(seed)
    kernel = (torch.rand(1, 1, 1, 2, generator=generator) * 2 - 1) * bound
    initial = kernel.flatten().tolist()
    losses = []
    for _ in range(iterations):
        error = conv2d(x, kernel) - target
        losses.append(float((error**2).sum()))
        _, grad_kernel, _ = conv2d_backward(2 * error, x, kernel)
        kernel = kernel - learning_rate * grad_kernel
    final_loss = float(((conv2d(x, kernel) - target) ** 2).sum())
    return LearnKernelResult(
        iterations=iterations,
        learning_rate=learning_rate,
        seed=seed,
        initial_kernel=tuple(initial),
        losses=tuple(losses),
        kernel=tuple(kernel.flatten().tolist()),
        final_loss=final_loss,
    )
