"""Static int8 ONNX models with onnxruntime's quantization tools (beyond the seeds).

``quantize_static`` in QDQ format, weights per channel, activations calibrated (MinMax) on
images the caller gives (training images for a checkpoint). What int8 costs in accuracy is
measured by :func:`cnnkit.deploy.accuracy.onnx_top1` on the test set, not assumed.
"""

from __future__ import annotations

import copy
import functools
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnkit.deploy._onnx_stack import require
from cnnkit.errors import ConfigError


def quantize_int8(model_bytes: bytes, calibration: torch.Tensor, *, batch_size: int = 32) -> bytes:
    """A static int8 (QDQ, per-channel weights) copy of an fp32 ONNX model.

    Activation ranges come from running ``calibration`` (N, C, H, W float32, already
    normalised like the model's inputs) through the fp32 model (MinMax calibration).
    """
    if calibration.ndim < 2 or calibration.shape[0] < 1:
        raise ConfigError("int8 calibration needs at least one input")
    onnx = require("onnx")
    quantization = require("onnxruntime.quantization")
    proto = onnx.load_model_from_string(model_bytes)
    input_name = proto.graph.input[0].name
    batches = [
        {input_name: chunk.float().contiguous().numpy()} for chunk in calibration.split(batch_size)
    ]

    class Reader(quantization.CalibrationDataReader):  # type: ignore[name-defined]  # runtime import
        def __init__(self) -> None:
            self._items = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._items, None)

    with tempfile.TemporaryDirectory(prefix="cnnkit-int8-") as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(model_bytes)
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # its advice to pre-process goes to the root logger
        try:
            _quantize(quantization, source, target, Reader())
        finally:
            logging.disable(previous)
        return target.read_bytes()


def _quantize(quantization: object, source: Path, target: Path, reader: object) -> None:
    quantization.quantize_static(  # type: ignore[attr-defined]  # onnxruntime.quantization ships no type stubs for these names
        str(source),
        str(target),
        reader,
        quant_format=quantization.QuantFormat.QDQ,  # type: ignore[attr-defined]  # onnxruntime.quantization ships no type stubs for these names
        per_channel=True,
        activation_type=quantization.QuantType.QUInt8,  # type: ignore[attr-defined]  # onnxruntime.quantization ships no type stubs for these names
        weight_type=quantization.QuantType.QInt8,  # type: ignore[attr-defined]  # onnxruntime.quantization ships no type stubs for these names
    )


@dataclass
class QuantizeReport:
    """fp32 against static int8 ONNX: file size, batch-1 latency (one thread, p50 of
    :func:`cnnkit.deploy.bench.time_call`) and test top-1 of each (and of PyTorch)."""

    path: Path
    fp32_bytes: int
    int8_bytes: int
    fp32_ms: float
    int8_ms: float
    torch_top1: float
    fp32_top1: float
    int8_top1: float
    test_images: int
    calibration_images: int

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    def text(self) -> str:
        return "\n".join(
            [
                f"wrote {self.path} (static int8, QDQ, calibrated on "
                f"{self.calibration_images:,} training images)",
                f"size      fp32 {self.fp32_bytes:,} B   int8 {self.int8_bytes:,} B "
                f"({self.int8_bytes / self.fp32_bytes:.2f}x)",
                f"latency   fp32 {self.fp32_ms:.3f} ms   int8 {self.int8_ms:.3f} ms "
                f"(batch 1, 1 thread, p50; {self.fp32_ms / self.int8_ms:.2f}x)",
                f"top-1     PyTorch {self.torch_top1:.2f}%   onnx fp32 {self.fp32_top1:.2f}%   "
                f"int8 {self.int8_top1:.2f}% ({self.int8_top1 - self.fp32_top1:+.2f} points, "
                f"{self.test_images:,} test images)",
            ]
        )


def quantize_report(
    model: nn.Module,
    input_shape: tuple[int, ...],
    path: str | Path,
    calibration: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
) -> QuantizeReport:
    """Export ``model`` (fp32 ONNX, dynamic batch), quantize it (:func:`quantize_int8`), write
    the int8 file atomically to ``path`` and measure both against each other."""
    from cnnkit._io import atomic_write_bytes
    from cnnkit.deploy._onnx_stack import session
    from cnnkit.deploy.accuracy import onnx_top1, torch_top1
    from cnnkit.deploy.bench import time_call
    from cnnkit.deploy.onnx_export import export_bytes

    target = Path(path)
    if target.suffix != ".onnx":
        raise ConfigError(f"{target}: the output file must end in .onnx")
    work = copy.deepcopy(model).eval()
    fp32, _ = export_bytes(work, tuple(input_shape), True, None, [])
    int8 = quantize_int8(fp32, calibration)
    latency = []
    for data in (fp32, int8):
        runner = session(data, threads=1)
        feed = {runner.get_inputs()[0].name: test_images[:1].float().numpy()}
        times, _ = time_call(functools.partial(runner.run, None, feed), 5, 50)
        latency.append(float(np.percentile(times, 50)))
    report = QuantizeReport(
        path=target,
        fp32_bytes=len(fp32),
        int8_bytes=len(int8),
        fp32_ms=latency[0],
        int8_ms=latency[1],
        torch_top1=torch_top1(work, test_images, test_labels),
        fp32_top1=onnx_top1(fp32, test_images, test_labels),
        int8_top1=onnx_top1(int8, test_images, test_labels),
        test_images=len(test_labels),
        calibration_images=len(calibration),
    )
    atomic_write_bytes(target, int8)
    return report
