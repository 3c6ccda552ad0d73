"""The seeds' experiments as functions returning dataclasses (B4-B7).

Each function returns a result dataclass with ``to_dict()`` (``--format json``); its text (what
``cnnkit lab NAME`` prints) is :func:`cnnkit.lab.render.render_text`.
"""

from __future__ import annotations

from cnnkit.lab.checkerboard import CheckerboardResult, checkerboard, transposed_coverage
from cnnkit.lab.conv_algorithms import (
    RESNET18_SHAPES,
    ConvAlgorithmsResult,
    ConvShape,
    conv_algorithms,
)
from cnnkit.lab.edges import EdgesResult, edges
from cnnkit.lab.equivariance import EquivarianceResult, equivariance
from cnnkit.lab.gradient_flow import GradientFlowResult, gradient_flow
from cnnkit.lab.learn_kernel import LearnKernelResult, learn_kernel

__all__ = [
    "RESNET18_SHAPES",
    "CheckerboardResult",
    "ConvAlgorithmsResult",
    "ConvShape",
    "EdgesResult",
    "EquivarianceResult",
    "GradientFlowResult",
    "LearnKernelResult",
    "checkerboard",
    "conv_algorithms",
    "edges",
    "equivariance",
    "gradient_flow",
    "learn_kernel",
    "transposed_coverage",
]
