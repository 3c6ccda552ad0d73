"""Top-1 accuracy of a PyTorch model and of an ONNX model on the same images."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnkit.deploy._onnx_stack import session


def torch_top1(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500
) -> float:
    """Percent of ``images`` whose arg-max logit is the label (eval mode, float32)."""
    correct = 0
    with torch.inference_mode():
        for x, y in zip(images.split(batch_size), labels.split(batch_size), strict=True):
            correct += int((model(x.float()).argmax(1) == y).sum())
    return 100.0 * correct / max(len(labels), 1)


def onnx_top1(
    model_bytes: bytes, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500
) -> float:
    """The same figure, run by onnxruntime (CPU) on a serialised ONNX model."""
    runner = session(model_bytes)
    name = runner.get_inputs()[0].name
    correct = 0
    for x, y in zip(images.split(batch_size), labels.split(batch_size), strict=True):
        logits = runner.run(None, {name: x.float().contiguous().numpy()})[0]
        correct += int((torch.from_numpy(logits).argmax(1) == y).sum())
    return 100.0 * correct / max(len(labels), 1)


@dataclass(frozen=True)
class ImageComparison:
    """PyTorch and onnxruntime on the same real images: top-1 of each (percent) and the
    largest absolute difference of their logits."""

    torch_top1: float
    onnx_top1: float
    max_error: float
    images: int


def compare_on_images(
    model: nn.Module,
    model_bytes: bytes,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 500,
) -> ImageComparison:
    """Run both on ``images`` (normalised float32) batch by batch; compare logits and labels."""
    runner = session(model_bytes)
    name = runner.get_inputs()[0].name
    right_torch = right_onnx = 0
    worst = 0.0
    with torch.inference_mode():
        for x, y in zip(images.split(batch_size), labels.split(batch_size), strict=True):
            want = model(x.float())
            got = torch.from_numpy(runner.run(None, {name: x.float().contiguous().numpy()})[0])
            worst = max(worst, float((want - got).abs().max()))
            right_torch += int((want.argmax(1) == y).sum())
            right_onnx += int((got.argmax(1) == y).sum())
    count = max(len(labels), 1)
    return ImageComparison(
        100.0 * right_torch / count, 100.0 * right_onnx / count, worst, len(labels)
    )
