"""Deployment: exact Conv-BN folding, ONNX export checked in onnxruntime, int8, and an
inference benchmark (capabilities G1-G3)."""

from __future__ import annotations

from cnnkit.deploy.fold import FoldResult, Skipped, fold_batchnorm

__all__ = ["FoldResult", "Skipped", "fold_batchnorm"]
