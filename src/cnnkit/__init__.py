"""cnnkit: convolutional neural networks, computed and verified.

The public API is re-exported lazily from the capability folder that owns each name, so that
``import cnnkit`` (and ``cnnkit --help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from cnnkit.errors import CnnkitError

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "TrainConfig": "cnnkit.train.config",
    "create_model": "cnnkit.models",
    "evaluate": "cnnkit.train.evaluation",
    "fit": "cnnkit.train.loop",
    "list_models": "cnnkit.models",
    "load_dataset": "cnnkit.data",
    "register_model": "cnnkit.models",
    "register_rule": "cnnkit.analysis",
    "summarize": "cnnkit.analysis",
    "load_weights": "cnnkit.models.weights",
    "model_info": "cnnkit.models",
    "zoo_table": "cnnkit.analysis.model_table",
}

__all__ = ["CnnkitError", "__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
