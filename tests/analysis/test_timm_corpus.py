"""An outside corpus: timm models nobody here wrote (tests/analysis/timm_corpus.py).

For each model of the fixed sample: parameters against ``sum(numel)``, MACs against
FlopCounterMode on a real CPU forward (with torch's SDPA formula for the fused attention
kernel), the output shape against the real output, and the model left exactly as found.
Receptive fields of a subset against the float64 gradient of one output.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from cnnkit.analysis import summarize
from tests.analysis.test_local_receptive_field import positive
from tests.analysis.timm_corpus import RF_SAMPLE, SAMPLE, create, flop_counter
from tests.model_guard import model_left_as_found

# Where FlopCounterMode on the CPU is not the oracle (cnnkit is checked by formula instead):
# nn.LSTM runs as mkldnn_rnn_layer, which has no FLOP formula (docs/analysis.md).
FLOP_COUNTER_BLIND = {"sequencer2d_s"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SAMPLE))
def test_timm_model_params_macs_shape_and_left_as_found(name):
    kwargs, size = SAMPLE[name]
    model = create(name, **kwargs)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad(), flop_counter() as counter:
        expected = model(x)
    with warnings.catch_warnings(record=True) as caught, model_left_as_found(model):
        warnings.simplefilter("always")
        summary = summarize(model, (3, size, size))
    assert summary.total.params == sum(p.numel() for p in model.parameters())
    assert summary.layers[-1].output_shape == tuple(expected.shape)
    assert not summary.unsupported, summary.unsupported
    assert not [w for w in caught if "cnnkit" in str(w.message)]
    if name not in FLOP_COUNTER_BLIND:
        assert 2 * summary.total.macs == counter.get_total_flops()


def _seen(model: torch.nn.Module, size: int, position: tuple[int, int]) -> list[tuple[int, int]]:
    """Per axis, the first and last input pixel with a non-zero gradient of the output map at
    ``position`` (all channels, weighted by random positive weights)."""
    x = (torch.rand(1, 3, size, size, dtype=torch.float64) + 0.5).requires_grad_(True)
    out = model(x)
    chosen = out[(0, slice(None), *position)]
    (grad,) = torch.autograd.grad((chosen * (torch.rand_like(chosen) + 0.5)).sum(), x)
    seen = grad[0].abs().sum(0)
    boxes = []
    for axis in range(2):
        hits = torch.nonzero(seen.sum(1 - axis)).flatten()
        boxes.append((int(hits.min()), int(hits.max())))
    return boxes


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RF_SAMPLE))
def test_timm_receptive_fields_match_the_gradient(name):
    """The model's last feature map (``forward_features``, as ``total.rf_layer`` names it):
    a global field sees every input pixel; a finite one covers exactly what the centre output
    sees (its interval clipped to the image)."""
    kwargs, size = RF_SAMPLE[name]
    model = positive(create(name, **kwargs))
    features = _Features(model)
    summary = summarize(features, (3, size, size))
    total = summary.total
    assert total.rf is not None and None not in total.rf, "unknown field"
    out = summary.layers[-1].output_shape
    centre = (out[2] // 2, out[3] // 2)
    seen = _seen(features, size, centre)
    for axis in range(2):
        if total.rf_global[axis]:
            assert seen[axis] == (0, size - 1), (axis, seen)
            continue
        middle = total.start[axis] + centre[axis] * total.jump[axis]
        low, high = middle - total.rf[axis] / 2, middle + total.rf[axis] / 2 - 1
        assert (max(low, 0), min(high, size - 1)) == seen[axis], (axis, seen, low, high)


class _Features(torch.nn.Module):
    """A timm model's ``forward_features``: its last map, before pooling and the head."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)
