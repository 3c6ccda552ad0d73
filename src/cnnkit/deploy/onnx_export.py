"""Export to ONNX, checked: ``onnx.checker`` and onnxruntime against PyTorch (capability G2).

The dynamo exporter (``torch.onnx.export(..., dynamo=True)``, needs onnxscript) is used; the
legacy TorchScript exporter only when it fails, and the result says so. Nothing is written until
the model has passed the checker and run in onnxruntime; the file and its JSON sidecar are then
written atomically, so a failure never leaves a partial ``.onnx`` behind.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnkit._io import atomic_write_bytes, atomic_write_text
from cnnkit.deploy._onnx_stack import require, session
from cnnkit.errors import ConfigError, ShapeError, UnsupportedError

INPUT_NAME = "input"
# An op name in an exporter's message: aten::foo, aten.foo.default, mylib::op.
_OP_NAME = re.compile(r"\b([a-z_][a-z0-9_]*(?:::|\.)[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)\b")
_NAMESPACES = ("aten", "prims", "quantized", "torchvision")


@dataclass
class ExportResult:
    """An exported, verified ONNX model.

    Attributes:
        path: the ``.onnx`` file; ``sidecar``: its JSON description (input, normalisation,
            classes).
        exporter: ``"dynamo"``, or ``"legacy"`` when the dynamo exporter failed (``notes``
            says why).
        opset: the ONNX opset of the default domain in the file.
        max_error: max |onnxruntime − PyTorch| over the checked inputs (float32).
        checked_batches: the batch sizes run in both (one not seen at export with dynamic batch).
        folded: Conv-BN pairs folded before export (``fold=True``).
    """

    path: Path
    sidecar: Path
    exporter: str
    opset: int
    input_shape: tuple[int, ...]
    dynamic_batch: bool
    max_error: float
    checked_batches: list[int]
    file_bytes: int
    folded: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sidecar": str(self.sidecar),
            "exporter": self.exporter,
            "opset": self.opset,
            "input_shape": list(self.input_shape),
            "dynamic_batch": self.dynamic_batch,
            "max_error": self.max_error,
            "checked_batches": self.checked_batches,
            "file_bytes": self.file_bytes,
            "folded": self.folded,
            "notes": self.notes,
        }


def export_onnx(
    model: nn.Module,
    input_shape: Sequence[int],
    path: str | Path,
    *,
    dynamic_batch: bool = True,
    fold: bool = False,
    opset: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    classes: Sequence[str] | None = None,
    seed: int = 0,
) -> ExportResult:
    """Export ``model`` (run in eval mode; the model itself is left as found) to ``path``.

    Verification: ``onnx.checker.check_model``, then onnxruntime (CPU) and PyTorch on the same
    seeded N(0, 1) input of batch 2, and of batch 3 as well with ``dynamic_batch`` (a size not
    seen at export); ``max_error`` is the largest absolute difference of any output.

    Args:
        input_shape: one sample's shape without the batch, e.g. ``(3, 224, 224)``.
        fold: fold Conv-BN pairs first (:func:`cnnkit.deploy.fold_batchnorm`).
        opset: ONNX opset (default: the exporter's).
        mean, std, classes: written to the sidecar, for users of the file without cnnkit.

    Raises:
        UnsupportedError: the onnx extra is missing, or the model cannot be exported (names the
            op that failed).
    """
    for name in ("onnx", "onnxruntime", "onnxscript"):
        require(name)
    shape = _checked_shape(input_shape)
    target = Path(path)
    if target.suffix != ".onnx":
        raise ConfigError(f"{target}: the output file must end in .onnx")
    if target.is_dir() or not target.parent.is_dir():
        raise ConfigError(f"{target}: not a file in an existing folder")
    work = copy.deepcopy(model).eval()
    notes: list[str] = []
    folded = 0
    if fold:
        from cnnkit.deploy.fold import fold_batchnorm

        result = fold_batchnorm(work, shape)
        work, folded = result.model, len(result.folded)
        notes.append(f"folded {folded} Conv-BN pairs (max error {result.max_error:.2e})")
    for parameter in work.parameters():
        parameter.requires_grad_(False)
    data, exporter = export_bytes(work, shape, dynamic_batch, opset, notes)
    onnx = require("onnx")
    proto = onnx.load_model_from_string(data)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        raise UnsupportedError(
            f"the exported model fails onnx.checker: {_first_line(error)}"
        ) from None
    batches = [2, 3] if dynamic_batch else [1]
    max_error = compare_with_torch(work, data, shape, batches, seed)
    opset_used = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    sidecar = target.with_suffix(".json")
    description = {
        "input_name": proto.graph.input[0].name,
        "input_shape": ["batch" if dynamic_batch else 1, *shape],
        "output_names": [o.name for o in proto.graph.output],
        "mean": list(mean) if mean is not None else None,
        "std": list(std) if std is not None else None,
        "classes": list(classes) if classes is not None else None,
        "opset": opset_used,
        "exporter": exporter,
        "layout": "NCHW float32; normalise as (x / 255 - mean) / std",
    }
    atomic_write_bytes(target, data)
    atomic_write_text(sidecar, json.dumps(description, indent=2) + "\n")
    return ExportResult(
        path=target,
        sidecar=sidecar,
        exporter=exporter,
        opset=opset_used,
        input_shape=shape,
        dynamic_batch=dynamic_batch,
        max_error=max_error,
        checked_batches=batches,
        file_bytes=len(data),
        folded=folded,
        notes=notes,
    )


def _checked_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"input shape must be integers, got {input_shape!r}") from None
    if not shape or any(v <= 0 for v in shape):
        raise ConfigError(f"input shape must hold positive integers, got {shape}")
    return shape


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def export_bytes(
    model: nn.Module,
    shape: tuple[int, ...],
    dynamic_batch: bool,
    opset: int | None,
    notes: list[str],
) -> tuple[bytes, str]:
    """Serialised ONNX bytes and the exporter that made them (dynamo, else legacy), unchecked.

    ``model`` is run once on a random input first (a shape it cannot take is a ShapeError, not
    an export failure): pass an eval-mode copy. ``notes`` receives the fallback's reason.
    """
    example = (torch.randn(2 if dynamic_batch else 1, *shape),)
    try:
        with torch.inference_mode():
            model(*example)
    except Exception as error:  # not the exporter's fault: say what the model cannot take
        raise ShapeError(
            f"the model cannot take an input of shape {tuple(example[0].shape)}: "
            f"{_first_line(error)}"
        ) from None
    try:
        return _export_dynamo(model, example, dynamic_batch, opset), "dynamo"
    except Exception as error:  # any exporter failure: try the legacy one, then name the op
        dynamo_error = error
    notes.append(f"dynamo exporter failed ({_first_line(dynamo_error)}); used the legacy one")
    try:
        return _export_legacy(model, example, dynamic_batch, opset), "legacy"
    except Exception as legacy_error:
        op = _failed_op(f"{dynamo_error}\n{legacy_error}")
        what = f"the op {op}" if op else "an op"
        raise UnsupportedError(
            f"cannot export the model to ONNX: {what} has no ONNX translation "
            f"({_first_line(legacy_error)})"
        ) from None


def _export_dynamo(
    model: nn.Module, example: tuple[torch.Tensor], dynamic_batch: bool, opset: int | None
) -> bytes:
    dynamic = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            example,
            dynamo=True,
            input_names=[INPUT_NAME],
            dynamic_shapes=dynamic,
            opset_version=opset,
            verbose=False,
            report=False,
        )
    if program is None:
        raise RuntimeError("the dynamo exporter returned nothing")
    return program.model_proto.SerializeToString()


def _export_legacy(
    model: nn.Module, example: tuple[torch.Tensor], dynamic_batch: bool, opset: int | None
) -> bytes:
    buffer = io.BytesIO()
    axes = {INPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            example,
            buffer,  # type: ignore[arg-type]  # torch.onnx.export writes to a file-like too (documented)
            dynamo=False,
            input_names=[INPUT_NAME],
            dynamic_axes=axes,
            opset_version=opset or 17,
        )
    return buffer.getvalue()


class _quiet_exporter:
    """The exporters print progress lines and log every failed attempt (tracebacks included);
    a library call should not: the outcome is in the result or the error."""

    def __enter__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        self._stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        self._level = logging.root.manager.disable
        logging.disable(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        logging.disable(self._level)
        self._stack.close()


def _failed_op(message: str) -> str | None:
    """The first op name an exporter's message mentions (``aten::foo``, ``mylib.op``)."""
    for match in _OP_NAME.finditer(message):
        name = match.group(1)
        namespace = re.split(r"::|\.", name)[0]
        if namespace in _NAMESPACES or "::" in name:
            return name
    return None


def compare_with_torch(
    model: nn.Module, data: bytes, shape: tuple[int, ...], batches: Sequence[int], seed: int
) -> float:
    """max |onnxruntime − PyTorch| over every output, on seeded N(0, 1) inputs per batch size."""
    runner = session(data)
    input_name = runner.get_inputs()[0].name
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch in batches:
        x = torch.randn((batch, *shape), generator=generator)
        with torch.inference_mode():
            want = _flat(model(x))
        got = runner.run(None, {input_name: x.numpy()})
        if len(got) != len(want):
            raise UnsupportedError(
                f"onnxruntime returned {len(got)} outputs, PyTorch {len(want)}: export mismatch"
            )
        for a, b in zip(want, got, strict=True):
            worst = max(worst, float(np.abs(a.numpy() - b).max()) if a.numel() else 0.0)
    return worst


def _flat(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for item in value for t in _flat(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _flat(item)]
    return []
