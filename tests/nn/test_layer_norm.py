"""LayerNorm2d normalises each pixel's channel vector.

Oracles: the formula ``(x - mean_c) / sqrt(var_c + eps) * w + b`` in float64, and
``F.layer_norm`` over the channel axis of a channels-last copy.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from cnnkit.errors import ShapeError
from cnnkit.nn import LayerNorm2d


@settings(max_examples=40)
@given(
    batch=st.integers(1, 3),
    channels=st.integers(1, 9),
    height=st.integers(1, 5),
    width=st.integers(1, 5),
    eps=st.sampled_from([1e-6, 1e-5, 1e-3]),
)
def test_equals_the_formula_and_f_layer_norm_over_channels(batch, channels, height, width, eps):
    norm = LayerNorm2d(channels, eps=eps).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = 3 * torch.randn(batch, channels, height, width, dtype=torch.float64) + 1
    mean = x.mean(1, keepdim=True)
    variance = x.var(1, unbiased=False, keepdim=True)
    formula = (x - mean) / torch.sqrt(variance + eps) * norm.weight.view(1, -1, 1, 1)
    formula = formula + norm.bias.view(1, -1, 1, 1)
    library = F.layer_norm(x.permute(0, 2, 3, 1), (channels,), norm.weight, norm.bias, eps)
    out = norm(x)
    torch.testing.assert_close(out, formula)
    torch.testing.assert_close(out, library.permute(0, 3, 1, 2))


def test_channels_last_input_gives_the_same_result():
    norm = LayerNorm2d(6)
    x = torch.randn(2, 6, 5, 4)
    torch.testing.assert_close(norm(x.to(memory_format=torch.channels_last)), norm(x))


def test_parameters_are_weight_and_bias_of_shape_c():
    assert {k: tuple(v.shape) for k, v in LayerNorm2d(7).state_dict().items()} == {
        "weight": (7,),
        "bias": (7,),
    }


def test_gradients_match_finite_differences():
    norm = LayerNorm2d(3).double()
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(norm, (x,))


def test_a_three_dimensional_input_is_a_shape_error():
    with pytest.raises(ShapeError, match=r"LayerNorm2d expects \(N, C, H, W\)"):
        LayerNorm2d(4)(torch.randn(4, 5, 5))
