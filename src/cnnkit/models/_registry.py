"""The model registry: ``@register_model``, ``create_model``, ``list_models``.

A family file registers small factories that only set numbers (torchvision's style). Each factory
carries a :class:`ModelInfo` with structural facts only (family, default input, which modules are
the first conv, the classifier and the CAM layer, a published accuracy with its source). Figures
such as params and MACs are never stored: the analyzer computes them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnnkit._registry import Registry
from cnnkit.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Published:
    """A published accuracy: ``top1`` (percent) on ``dataset``, quoted from ``source``."""

    top1: float
    dataset: str
    source: str


@dataclass(frozen=True)
class ModelInfo:
    """Structural facts about a registered model.

    Attributes:
        family: family name (``"resnet"``, ``"vgg"``, ...), used by ``cnnkit zoo --family``.
        default_input: (C, H, W) the model is designed for (ImageNet models: (3, 224, 224)).
        min_input: smallest (H, W) the default configuration accepts, if known.
        first_conv: dotted name of the first convolution (for ``in_channels`` surgery and checks).
        classifier: dotted name of the final classifier module.
        cam_layer: dotted name of the module whose output Grad-CAM explains by default.
        torchvision: True when torchvision has a model of the same name and state_dict layout.
        published: published ImageNet (or dataset) accuracy with its source, where known.
    """

    family: str
    default_input: tuple[int, int, int] = (3, 224, 224)
    min_input: tuple[int, int] | None = None
    first_conv: str | None = None
    classifier: str | None = None
    cam_layer: str | None = None
    torchvision: bool = False
    published: Published | None = None


@dataclass(frozen=True)
class ModelEntry:
    factory: Callable[..., nn.Module]
    info: ModelInfo


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(
    info: ModelInfo,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a factory under its function name with its :class:`ModelInfo`."""

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS.add(factory.__name__, ModelEntry(factory, info))
        return factory

    return decorator


def list_models(pattern: str | None = None, family: str | None = None) -> list[str]:
    """Registered model names, filtered by fnmatch ``pattern`` and/or ``family``."""
    _import_families()
    names = MODELS.names(pattern)
    if family is not None:
        families = {MODELS.get(n).info.family for n in MODELS.names()}
        if family not in families:
            raise UnknownNameError("model family", family, families)
        names = [n for n in names if MODELS.get(n).info.family == family]
    return names


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model (unknown names list close matches)."""
    _import_families()
    return MODELS.get(name).info


def create_model(name: str, weights: str | None = None, **kwargs: Any) -> nn.Module:
    """Build a registered model by name.

    Every model accepts ``num_classes`` (>= 1) and ``in_channels`` (>= 1); the ResNet family also
    ``small_input``. ``weights`` is a path to a local torchvision or cnnkit checkpoint, loaded with
    ``weights_only=True`` and strict key matching (a mismatch names the first bad key and shape).
    """
    _import_families()
    entry = MODELS.get(name)
    for key in ("num_classes", "in_channels"):
        value = kwargs.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ConfigError(f"{name}: {key} must be an integer >= 1, got {value!r}")
    model = entry.factory(**kwargs)
    if weights is not None:
        from cnnkit.models.weights import load_weights

        load_weights(model, weights, name=name)
    return model


def resolve_model(spec: str, **kwargs: Any) -> nn.Module:
    """A zoo name, or ``package.module:callable`` returning an ``nn.Module`` (used by the CLI)."""
    if ":" not in spec:
        return create_model(spec, **kwargs)
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"MODEL {spec!r}: cannot import module {module_name!r} ({exc})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"MODEL {spec!r}: {module_name} has no callable {attr!r}")
    model = factory(**kwargs)
    from torch import nn

    if not isinstance(model, nn.Module):
        raise ConfigError(f"MODEL {spec!r}: returned {type(model).__name__}, not an nn.Module")
    return model


def _import_families() -> None:
    # Family modules register on import; cnnkit.models imports all of them explicitly.
    importlib.import_module("cnnkit.models")
