"""The optional onnx stack (``pip install cnnkit[onnx]``), imported on first use."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from cnnkit.errors import UnsupportedError

EXTRA_HINT = "pip install cnnkit[onnx]"


def require(name: str) -> ModuleType:
    """Import ``onnx``, ``onnxruntime`` or ``onnxscript``, or fail in one line naming the extra."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise UnsupportedError(
            f"the ONNX tools need the package {name!r}, which is not installed: {EXTRA_HINT}"
        ) from None


def session(model_bytes: bytes, threads: int | None = None) -> Any:
    """An onnxruntime CPU session of a serialised model (``threads``: intra-op threads)."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    except RuntimeError as error:  # e.g. pthread_create refused on a crowded machine
        text = str(error).strip().splitlines()
        raise UnsupportedError(
            f"onnxruntime could not start a session: {text[0] if text else error}"
        ) from None
