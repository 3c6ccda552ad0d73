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
from cnnkit.errors import CnnkitError, ConfigError, UnknownNameError, first_line

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


def create_model(
    name: str, weights: str | None = None, pretrained: bool = False, **kwargs: Any
) -> nn.Module:
    """Build a registered model by name.

    Every model accepts ``num_classes`` (>= 1) and ``in_channels`` (>= 1); the ResNet family also
    ``small_input``. ``weights`` is a path to a local torchvision or cnnkit checkpoint, loaded with
    ``weights_only=True`` and strict key matching (a mismatch names the first bad key and shape).
    ``pretrained=True`` loads torchvision's published ImageNet weights for the model, found in
    the cache or downloaded and checked against the hash in their file name
    (:mod:`cnnkit.models.pretrained`).
    """
    _import_families()
    entry = MODELS.get(name)
    if not isinstance(pretrained, bool):
        raise ConfigError(f"{name}: pretrained must be True or False, got {pretrained!r}")
    if pretrained:
        if weights is not None:
            raise ConfigError(f"{name}: pass weights=FILE or pretrained=True, not both")
        from cnnkit.models.pretrained import build_kwargs

        kwargs = build_kwargs(name, kwargs)  # refuses a model without published weights
    for key in ("num_classes", "in_channels"):
        value = kwargs.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ConfigError(f"{name}: {key} must be an integer >= 1, got {value!r}")
    try:
        model = entry.factory(**kwargs)
    except (TypeError, ValueError) as exc:  # a keyword the family lacks, a value it refuses
        if isinstance(exc, CnnkitError):
            raise
        raise ConfigError(f"model {name!r}: {first_line(exc)}") from None
    if weights is not None:
        from cnnkit.models.weights import load_weights

        load_weights(model, weights, name=name)
    if pretrained:
        from cnnkit.models.pretrained import load_pretrained

        load_pretrained(model, name)
    return model


def resolve_model(spec: str, **kwargs: Any) -> nn.Module:
    """A zoo name, or ``package.module:callable`` returning an ``nn.Module`` (used by the CLI).

    Only for code the user named (a flag, a Python argument): a name read from a file goes
    through ``create_model`` (the zoo) unless the user names it again.
    """
    return instantiate(spec, kwargs)[0]


def load_factory(spec: str) -> Callable[..., nn.Module] | nn.Module:
    """What ``package.module:attr`` names: a callable, or a module instance (used as it is).

    Any exception the import raises (a syntax error included) becomes one :class:`ConfigError`
    line naming the spec.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"model {spec!r}: expected package.module:callable")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module failed to import: say how, in one line
        raise ConfigError(
            f"model {spec!r}: cannot import module {module_name!r} ({type(exc).__name__}: "
            f"{first_line(exc)})"
        ) from None
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
    from torch import nn

    if isinstance(target, nn.Module) or callable(target):
        return target
    raise ConfigError(f"model {spec!r}: {module_name} has no callable or nn.Module {attr!r}")


def instantiate(
    spec: str | Callable[..., nn.Module] | nn.Module,
    kwargs: dict[str, Any],
    *,
    optional: dict[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model ``spec`` names; return it with the keyword arguments it was given.

    ``spec``: a zoo name, ``package.module:callable`` (imported), a callable, or an ``nn.Module``
    (a copy of it is used; it takes no arguments). ``kwargs`` are passed as they are (a key the
    factory's signature lacks is refused, naming it); ``optional`` ones (e.g. ``num_classes``
    from the dataset) only when the factory accepts them. An exception raised by a user's
    factory, or a result that is not an ``nn.Module``, is one :class:`ConfigError` line.
    """
    from torch import nn

    optional = {k: v for k, v in (optional or {}).items() if k not in kwargs}
    if isinstance(spec, str) and ":" not in spec:
        passed = {**optional, **kwargs}
        return create_model(spec, **passed), passed
    label = spec if isinstance(spec, str) else _label(spec)
    target = load_factory(spec) if isinstance(spec, str) else spec
    if isinstance(target, nn.Module):
        if kwargs:
            raise ConfigError(
                f"model {label!r} is already an nn.Module; it takes no keyword arguments "
                f"(got {', '.join(sorted(kwargs))})"
            )
        import copy

        return copy.deepcopy(target), {}  # a copy: the user's module is left as found
    accepted = _accepted_names(target)
    if accepted is not None:
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            from cnnkit.errors import suggest

            close = suggest(unknown[0], accepted)
            hint = f"did you mean {close[0]!r}?" if close else f"it accepts: {_names(accepted)}"
            raise ConfigError(f"model {label!r} has no keyword argument {unknown[0]!r}; {hint}")
        optional = {k: v for k, v in optional.items() if k in accepted}
    passed = {**optional, **kwargs}
    try:
        model = target(**passed)
    except Exception as exc:  # the user's code: any exception is theirs to fix, in one line
        raise ConfigError(
            f"model {label!r} raised {type(exc).__name__}: {first_line(exc)}"
        ) from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model {label!r}: returned {type(model).__name__}, not an nn.Module")
    return model, passed


def _accepted_names(factory: Callable[..., Any]) -> set[str] | None:
    """The keyword names ``factory`` accepts, or None when it takes ``**kwargs`` (or is opaque)."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    usable = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in parameters if p.kind in usable}


def _label(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{getattr(obj, '__module__', '?')}:{name}"


def _names(names: set[str]) -> str:
    return ", ".join(sorted(names)) or "no keyword arguments"


def _import_families() -> None:
    # Family modules register on import; cnnkit.models imports all of them explicitly.
    importlib.import_module("cnnkit.models")
