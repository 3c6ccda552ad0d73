"""Training and evaluation (E1-E3, E8): one config, named recipes, one loop, exact resume.

``fit(TrainConfig)`` trains and writes a run folder; ``evaluate(checkpoint)`` measures a saved run;
``RECIPES`` holds the named configurations (``fast``, ``best``, ``seed003``, ...). Names are
imported lazily, so that ``cnnkit train --help`` (which reads TrainConfig) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "TrainConfig": "cnnkit.train.config",
    "resolve_config": "cnnkit.train.config",
    "RECIPES": "cnnkit.train.recipes",
    "fit": "cnnkit.train.loop",
    "launch": "cnnkit.train.launch",
    "RunResult": "cnnkit.train.run_types",
    "evaluate": "cnnkit.train.evaluation",
    "EvalResult": "cnnkit.train.evaluation",
    "Metrics": "cnnkit.train.metrics",
    "distillation_loss": "cnnkit.train.distill",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnkit.train' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
