"""Evaluation with and without TTA (flip, flip + shifts) against the computation written out."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import ConfigError
from cnnkit.train.evaluation import run_evaluation, shifted_views, tta_label


@pytest.mark.parametrize("tta", [0, 1])
def test_tta_averages_the_logits_of_each_image_and_its_mirror(tta):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 5 * 7, 3)).double()
    images = torch.randn(20, 2, 5, 7, dtype=torch.float64)
    labels = torch.randint(0, 3, (20,))
    batches = [(images[:8], labels[:8]), (images[8:], labels[8:])]
    metrics = run_evaluation(model, batches, num_classes=3, tta=tta, hardest=2)
    with torch.no_grad():
        logits = model(images)
        if tta:
            logits = (logits + model(torch.flip(images, dims=[3]))) / 2
    expected_loss = torch.nn.functional.cross_entropy(logits, labels).item()
    assert metrics.loss == pytest.approx(expected_loss, rel=1e-6)
    assert metrics.top1 == pytest.approx(
        100.0 * (logits.argmax(1) == labels).double().mean().item()
    )
    assert model.training  # restored


def test_evaluation_restores_eval_mode_too():
    model = torch.nn.Linear(3, 2).eval()
    run_evaluation(model, [(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))], num_classes=2)
    assert not model.training


def _reflect(index: int, size: int) -> int:
    """numpy's 'reflect' rule for an index one step outside [0, size): -1 -> 1, size -> size-2."""
    if index < 0:
        return -index
    if index >= size:
        return 2 * (size - 1) - index
    return index


@settings(max_examples=30, deadline=None)
@given(
    height=st.integers(2, 9),
    width=st.integers(2, 9),
    data=st.data(),
)
def test_shifted_views_move_the_image_by_the_shift_with_reflected_edges(height, width, data):
    shift = data.draw(st.integers(1, min(height, width) - 1))
    images = torch.randn(2, 3, height, width)
    down_right, up_left = shifted_views(images, shift)
    for view, sign in ((down_right, -1), (up_left, 1)):
        assert view.shape == images.shape
        for i in range(height):
            for j in range(width):
                # a shift of s <= size - 1 reflects at most once, so one reflection suffices
                source = _reflect(i + sign * shift, height), _reflect(j + sign * shift, width)
                assert torch.equal(view[..., i, j], images[..., source[0], source[1]])


def test_shift_tta_averages_the_flip_pair_with_the_shifted_flip_pairs():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1 * 6 * 6, 4)).double()
    images = torch.randn(10, 1, 6, 6, dtype=torch.float64)
    labels = torch.randint(0, 4, (10,))
    metrics = run_evaluation(model, [(images, labels)], num_classes=4, tta=2)
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1), mode="reflect")
    views = [images, padded[..., 0:6, 0:6], padded[..., 2:8, 2:8]]
    weights = [0.5, 0.25, 0.25]
    with torch.no_grad():
        logits = sum(
            w * (model(v) + model(torch.flip(v, dims=[3]))) / 2
            for w, v in zip(weights, views, strict=True)
        )
    expected = torch.nn.functional.cross_entropy(logits, labels).item()
    assert metrics.loss == pytest.approx(expected, rel=1e-6)
    plain = run_evaluation(model, [(images, labels)], num_classes=4, tta=1)
    assert plain.loss != pytest.approx(metrics.loss, rel=1e-9)  # the shifts did change the mean


def test_a_shift_as_large_as_the_image_names_the_flag_and_the_limit():
    with pytest.raises(ConfigError, match=r"--tta: a shift must be between 1 and 4 pixels for 5x7"):
        shifted_views(torch.zeros(1, 1, 5, 7), 5)


def test_tta_label_names_what_was_averaged():
    assert tta_label(0) == ""
    assert tta_label(1) == "flip TTA"
    assert tta_label(2) == "flip + 1 px TTA"
    assert tta_label(4) == "flip + 3 px TTA"
