"""The model zoo: one file per family, a registry, factories that only set numbers.

Family modules register their factories on import; they are imported explicitly here so that the
registry is complete whenever ``cnnkit.models`` is imported.
"""

from __future__ import annotations

from cnnkit.models import (  # noqa: F401  (imported for registration)
    airnet,
    alexnet,
    baselines,
    convnext,
    densenet,
    efficientnet,
    googlenet,
    lenet,
    mobilenetv2,
    mobilenetv3,
    regnet,
    resnet,
    shufflenetv2,
    squeezenet,
    vgg,
)
from cnnkit.models._registry import (
    MODELS,
    ModelInfo,
    Published,
    create_model,
    instantiate,
    list_models,
    model_info,
    register_model,
    resolve_model,
)

__all__ = [
    "MODELS",
    "ModelInfo",
    "Published",
    "create_model",
    "instantiate",
    "list_models",
    "model_info",
    "register_model",
    "resolve_model",
]
