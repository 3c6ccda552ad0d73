"""The model table (capability C5): every registered model summarised by the analyzer.

One row per zoo model: parameters, MACs and the receptive field of its last spatial output at
the model's default input (or another), and the published ImageNet top-1 where a source gives
one. Seed 001 types such a model-selection table by hand; here nothing is typed but the
published accuracies (quoted in each model's :class:`~cnnkit.models.ModelInfo`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnnkit.errors import ConfigError, ShapeError

if TYPE_CHECKING:
    from cnnkit.models import ModelInfo

Axes = tuple[int | float | None, ...]


@dataclass(frozen=True)
class ZooRow:
    """One model of the table, with the receptive field of its last spatial output
    (``rf_layer``, the last map over the input's grid before global pooling; see
    :class:`cnnkit.analysis.Totals`).

    Per axis: ``rf`` is the exact field (seed 002), the whole input extent where ``rf_global``
    (an SE gate or attention lets every position see everything); ``local_rf`` the field
    through the spatially varying paths only (broadcast gates cut), which papers quote for SE
    networks (``local_rf_global`` where even those paths see everything, as under
    attention). ``macs``/``rf``/``local_rf`` are ``None`` when the model cannot take the input
    (``note`` says why); ``None`` entries are unknown (no closed form).
    """

    name: str
    family: str
    input_shape: tuple[int, ...]
    params: int
    macs: int | None
    rf: Axes | None
    rf_global: tuple[bool, ...] | None
    local_rf: Axes | None
    local_rf_global: tuple[bool, ...] | None
    rf_layer: str | None
    top1: float | None
    dataset: str | None
    source: str | None
    note: str | None = None


def zoo_table(
    family: str | None = None,
    pattern: str | None = None,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> list[ZooRow]:
    """Summarise every registered model (filtered by ``family`` / fnmatch ``pattern``).

    Each model is built and traced on the meta device by :func:`cnnkit.analysis.summarize`:
    ``params`` and ``macs`` (torch.utils.flop_counter's convention) at ``input_shape`` (default:
    the model's own ``default_input``; a different channel count builds the model with that
    ``in_channels``; ``num_classes`` rebuilds the classifier), and the receptive field of the
    last spatial output (seed 002's recursion over the graph: ``Summary.total``). ``top1`` is
    quoted from the source in :class:`~cnnkit.models.ModelInfo`, and only for the model as
    published (not for a rebuilt stem or head). ``model_kwargs`` go to every model's factory
    (a published accuracy is then not quoted either).

    Raises:
        ConfigError: no model matches.
        UnknownNameError: an unknown family.
    """
    from cnnkit.models import list_models, model_info

    names = list_models(pattern, family)
    if not names:
        where = f" in family {family!r}" if family else ""
        raise ConfigError(f"no model matches pattern {pattern!r}{where}")
    names.sort(key=_natural_key)  # resnet18 before resnet101
    extra = dict(model_kwargs or {})
    return [_row(name, model_info(name), input_shape, num_classes, extra) for name in names]


def _natural_key(name: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _row(
    name: str,
    info: ModelInfo,
    input_shape: tuple[int, int, int] | None,
    num_classes: int | None,
    model_kwargs: dict[str, Any] | None = None,
) -> ZooRow:
    from cnnkit.analysis.summary import summarize
    from cnnkit.models import create_model

    shape = tuple(input_shape or info.default_input)
    options: dict[str, Any] = {**model_options(info, shape, num_classes), **(model_kwargs or {})}
    # a published accuracy belongs to the architecture as published, not to a rebuilt head/stem
    published = None if options else info.published
    common: dict[str, Any] = dict(
        name=name,
        family=info.family,
        input_shape=shape,
        top1=published.top1 if published else None,
        dataset=published.dataset if published else None,
        source=published.source if published else None,
    )
    try:
        summary = summarize(lambda: create_model(name, **options), shape)
    except ShapeError as error:
        return ZooRow(
            **common,
            params=_params(name, options),
            macs=None,
            rf=None,
            rf_global=None,
            local_rf=None,
            local_rf_global=None,
            rf_layer=None,
            note=str(error),
        )
    total = summary.total
    return ZooRow(
        **common,
        params=total.params,
        macs=total.macs,
        rf=total.rf,
        rf_global=total.rf_global,
        local_rf=total.local_rf,
        local_rf_global=total.local_rf_global,
        rf_layer=total.rf_layer,
    )


def _params(name: str, options: dict[str, Any]) -> int:
    import torch

    from cnnkit.models import create_model

    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name, **options).parameters())


def model_options(
    info: ModelInfo, shape: tuple[int, ...], num_classes: int | None
) -> dict[str, int]:
    """The ``create_model`` options that build the model for one sample shape (C, H, W): its
    ``in_channels`` where C differs from its default input, and ``num_classes`` if given."""
    options = {} if shape[0] == info.default_input[0] else {"in_channels": shape[0]}
    if num_classes is not None:
        options["num_classes"] = num_classes
    return options


@dataclass(frozen=True)
class WeightsFit:
    """A checkpoint that loaded strictly: how many tensors and parameters it filled."""

    name: str
    path: str
    tensors: int
    params: int


def check_weights(
    name: str,
    path: str,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
) -> WeightsFit:
    """Load a torchvision or cnnkit checkpoint strictly into model ``name`` (built for
    ``input_shape``/``num_classes`` like a table row, for a fine-tuned checkpoint).

    Raises:
        UnknownNameError: no model is called ``name``.
        CheckpointError: the file does not fit (names the first mismatching tensor).
    """
    from cnnkit.models import create_model, model_info

    info = model_info(name)
    options = model_options(info, tuple(input_shape or info.default_input), num_classes)
    model = create_model(name, weights=path, **options)  # type: ignore[arg-type]  # num_classes/in_channels ints
    params = sum(p.numel() for p in model.parameters())
    return WeightsFit(name, path, len(model.state_dict()), params)
