"""004's kernel learning: the hand-written gradient against autograd, and convergence to [1, -1]."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import ConfigError
from cnnkit.lab import learn_kernel
from cnnkit.lab.render import render_text


def _seed_image() -> torch.Tensor:
    image = torch.ones(6, 8)
    image[:, 2:6] = 0.0  # 004's X: columns 2-5 are 0
    return image[None, None]


def _autograd_run(initial, iterations, learning_rate):
    """004's loop, verbatim in spirit: F.conv2d + autograd + a manual update."""
    x = _seed_image()
    y = F.conv2d(x, torch.tensor([[[[1.0, -1.0]]]]))
    kernel = torch.tensor(initial).reshape(1, 1, 1, 2).requires_grad_(True)
    losses = []
    for _ in range(iterations):
        loss = ((F.conv2d(x, kernel) - y) ** 2).sum()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            kernel -= learning_rate * kernel.grad
        kernel.grad = None
    return kernel.detach().flatten().tolist(), losses


def test_default_run_matches_autograd_and_lands_near_one_minus_one():
    result = learn_kernel()
    kernel, losses = _autograd_run(result.initial_kernel, 10, 3e-2)
    assert result.kernel == pytest.approx(kernel, abs=1e-5)
    assert result.losses == pytest.approx(losses, rel=1e-5)
    assert result.kernel == pytest.approx((1.0, -1.0), abs=0.1)  # 004 printed (1.0307, -0.9488)
    assert all(b < a for a, b in zip(result.losses, result.losses[1:], strict=False))


@settings(max_examples=20)
@given(seed=st.integers(0, 10_000))
def test_error_contracts_by_the_hessians_rate_for_every_seed(seed):
    """L is quadratic in K with Hessian H; gradient descent multiplies the error by I - lr H.

    H comes from autograd on the seed's loss, not from cnnkit.
    """
    x = _seed_image()
    y = F.conv2d(x, torch.tensor([[[[1.0, -1.0]]]]))

    def loss(flat):
        return ((F.conv2d(x, flat.reshape(1, 1, 1, 2)) - y) ** 2).sum()

    hessian = torch.autograd.functional.hessian(loss, torch.zeros(2))
    step = torch.eye(2) - 3e-2 * hessian
    result = learn_kernel(seed=seed)
    error0 = torch.tensor(result.initial_kernel) - torch.tensor([1.0, -1.0])
    predicted = torch.linalg.matrix_power(step, 10) @ error0 + torch.tensor([1.0, -1.0])
    assert torch.tensor(result.kernel) == pytest.approx(predicted, abs=1e-4)
    assert result.final_loss < result.losses[0]


def test_bad_arguments():
    with pytest.raises(ConfigError, match="iterations must be a positive integer"):
        learn_kernel(iterations=0)
    with pytest.raises(ConfigError, match="learning_rate must be positive"):
        learn_kernel(learning_rate=-1.0)


def test_text_prints_the_loss_every_two_iterations_like_the_seed():
    lines = render_text(learn_kernel()).splitlines()
    assert [line.split(",")[0] for line in lines if line.startswith("epoch")] == [
        "epoch 2", "epoch 4", "epoch 6", "epoch 8", "epoch 10"
    ]  # fmt: skip
    assert lines[-1].startswith("learned kernel: tensor([[")
