"""--measure: the bytes autograd saves, against the saved tensors read back from the graph."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.analysis import measure_saved_bytes, summarize
from cnnkit.errors import UnsupportedError
from tests.analysis.models import TinyResNet


def _saved_by_graph(output: torch.Tensor, excluded: set[int]) -> tuple[int, int]:
    """The oracle: walk output.grad_fn and read every ``_saved_*`` tensor attribute."""
    storages: dict[int, int] = {}
    stack, seen = [output.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        for name in dir(fn):
            if not name.startswith("_saved_"):
                continue
            value = getattr(fn, name)
            for tensor in value if isinstance(value, tuple | list) else [value]:
                if isinstance(tensor, torch.Tensor):
                    storage = tensor.untyped_storage()
                    if storage.data_ptr() not in excluded:
                        storages[storage.data_ptr()] = storage.nbytes()
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return sum(storages.values()), len(storages)


@pytest.mark.parametrize(
    "factory",
    [
        TinyResNet,
        lambda: nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 7 * 7, 10)
        ),
    ],
    ids=["tiny_resnet", "conv_relu_pool_linear"],
)
def test_measured_bytes_equal_the_tensors_saved_in_the_graph(factory):
    model = factory()
    measured = measure_saved_bytes(model, (2, 3, 16, 16))
    reference = factory()
    reference.load_state_dict(model.state_dict())
    reference.train()
    excluded = {t.untyped_storage().data_ptr() for t in reference.parameters()}
    excluded |= {t.untyped_storage().data_ptr() for t in reference.buffers()}
    generator = torch.Generator().manual_seed(0)
    output = reference(torch.randn(2, 3, 16, 16, generator=generator))
    assert (measured.saved_bytes, measured.saved_tensors) == _saved_by_graph(output, excluded)
    assert measured.saved_bytes > 0


def test_summary_shows_the_measurement_beside_the_estimate():
    summary = summarize(TinyResNet(), (3, 16, 16), measure=True)
    assert summary.measured is not None
    assert summary.measured.estimate_bytes == summary.total.training_activation_bytes
    assert summary.to_dict()["measured"]["saved_bytes"] == summary.measured.saved_bytes


def test_frozen_models_save_nothing_and_meta_models_cannot_be_measured():
    model = TinyResNet()
    model.requires_grad_(False)
    assert measure_saved_bytes(model, (1, 3, 8, 8)).saved_bytes == 0
    with torch.device("meta"):
        meta = TinyResNet()
    with pytest.raises(UnsupportedError, match="meta"):
        measure_saved_bytes(meta, (1, 3, 8, 8))
