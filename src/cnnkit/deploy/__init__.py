"""Deployment: exact Conv-BN folding, ONNX export checked in onnxruntime, int8, and an
inference benchmark (capabilities G1-G3). The onnx stack (``pip install cnnkit[onnx]``) is
imported only by the functions that need it."""

from __future__ import annotations

from cnnkit.deploy.bench import BenchResult, Measurement, benchmark
from cnnkit.deploy.fold import FoldResult, Skipped, fold_batchnorm
from cnnkit.deploy.onnx_export import ExportResult, export_onnx
from cnnkit.deploy.quantize import QuantizeReport, quantize_int8, quantize_report

__all__ = [
    "BenchResult",
    "ExportResult",
    "FoldResult",
    "Measurement",
    "QuantizeReport",
    "Skipped",
    "benchmark",
    "export_onnx",
    "fold_batchnorm",
    "quantize_int8",
    "quantize_report",
]
