"""Transfer learning (E4): start from trained weights, freeze stages, per-group learning rates.

Three modes (seed 001's "most practical way to ship a CNN"):

- ``features``: feature extraction; only the head (the model's classifier) trains.
- ``partial``: the stages from ``unfreeze_from`` on train, the earlier ones are frozen.
- ``full``: everything trains, optionally at per-group rates (``head_lr``/``backbone_lr``, or
  layer-wise decay ``layer_decay``).

Stages are named from the model's own structure: its top-level children that hold
parameters, with torchvision's flat ``features``/``classifier`` Sequentials split into their
layers (``conv1``, ``layer3``, ``fc`` for a ResNet; ``features.6``, ``classifier.1`` for a
MobileNet). A frozen parameter has ``requires_grad=False`` and is left out of the optimiser (no
state); a frozen stage's BatchNorm layers stay in eval mode while the rest trains, because
``requires_grad=False`` alone does not stop their running statistics from moving (pytorch
#86590). ``freeze_bn`` keeps every BatchNorm in eval mode.

:func:`~cnnkit.train.transfer_config.transfer_settings` is the one place that reads the E4
fields of a ``TrainConfig``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnkit.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from cnnkit.train.distributed import Distributed
    from cnnkit.train.transfer_config import TransferSettings

# torchvision's flat Sequentials whose layers are stages of their own (``features.6``)
SPLIT_CONTAINERS = ("features", "classifier")
# the checkpoint entry holding a fine-tuning run's notes on its initial weights (for a resume)
TRANSFER_NOTES_KEY = "transfer_notes"


# -- stages ---------------------------------------------------------------------------------------


def model_stages(model: nn.Module) -> list[str]:
    """The model's stages in order: top-level children holding parameters, torchvision's flat
    ``features``/``classifier`` Sequentials split into their layers."""
    stages = []
    for name, child in model.named_children():
        if name in SPLIT_CONTAINERS and isinstance(child, nn.Sequential):
            stages += [f"{name}.{sub}" for sub, layer in child.named_children() if _owns(layer)]
        elif _owns(child):
            stages.append(name)
    return stages


def _owns(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def head_stage(model: nn.Module, stages: list[str], classifier: str | None) -> str:
    """The stage holding the classifier (the zoo's ``ModelInfo.classifier``), else the last."""
    if not stages:
        raise ConfigError("fine-tuning: the model has no parameters")
    if classifier:
        for stage in stages:
            if classifier == stage or classifier.startswith(stage + "."):
                return stage
    return stages[-1]


def stage_of(parameter_name: str, stages: list[str]) -> int:
    """Index of the stage a parameter belongs to (a parameter of the root module: stage 0)."""
    for index, stage in enumerate(stages):
        if parameter_name.startswith(stage + "."):
            return index
    return 0


# -- the plan: what trains, at which rate -----------------------------------------------------


@dataclass(frozen=True)
class StageRow:
    """One line of the parameter-group table."""

    stage: str
    parameters: int
    trainable: int  # parameters that train (the model may freeze some itself)
    lr: float | None  # peak learning rate; None: frozen
    batchnorm: str  # "train", "eval" (running statistics frozen) or "-" (none)

    def to_dict(self) -> dict[str, Any]:
        """The row as recorded in final.json, with ``frozen`` spelled out (``lr`` None)."""
        return {**asdict(self), "frozen": self.lr is None}


@dataclass(frozen=True)
class TransferPlan:
    """What fine-tuning set up: the notes on the initial weights and the stage table."""

    mode: str
    head: str
    rows: list[StageRow]
    notes: list[str] = field(default_factory=list)
    lr_scales: dict[str, float] = field(default_factory=dict)  # parameter -> x peak lr

    def to_dict(self) -> dict[str, Any]:
        """The parameter-group table as final.json's ``transfer`` records it: mode, head,
        notes and one row per stage. ``lr_scales`` (one multiplier per parameter, what the
        optimiser is built from) is left out: the rows carry each stage's rate."""
        return {
            "mode": self.mode,
            "head": self.head,
            "notes": list(self.notes),
            "rows": [row.to_dict() for row in self.rows],
        }


def plan_transfer(
    model: nn.Module,
    settings: TransferSettings,
    *,
    lr: float,
    classifier: str | None,
    notes: list[str] | None = None,
) -> tuple[TransferPlan, list[nn.Module]]:
    """Freeze ``model``'s stages for ``settings`` (in place); return the plan and the BatchNorm
    layers that must stay in eval mode while the model trains.

    Learning rates, as a multiple of the peak ``lr``: ``head_lr / lr`` for the head and
    ``backbone_lr / lr`` for the other stages; with ``layer_decay`` d, stage i of a model whose
    head is stage n trains at ``d ** (n - i)`` (BEiT's layer-wise decay, as timm implements it),
    so the head keeps ``lr``.
    """
    stages = model_stages(model)
    head = head_stage(model, stages, classifier)
    head_index = stages.index(head)
    if settings.mode == "features":
        first_trained = head_index
    elif settings.mode == "partial":
        start = settings.unfreeze_from or stages[max(head_index - 1, 0)]
        if start not in stages:
            raise ConfigError(
                f"--unfreeze-from {start}: no such stage; the model's stages are "
                f"{', '.join(stages)}"
            )
        first_trained = stages.index(start)
    else:
        first_trained = 0
    scales: dict[str, float] = {}
    for name, parameter in model.named_parameters():
        index = stage_of(name, stages)
        if index < first_trained:
            parameter.requires_grad_(False)
            continue
        if settings.layer_decay is not None:
            scales[name] = settings.layer_decay ** max(head_index - index, 0)
        else:
            chosen = settings.head_lr if index == head_index else settings.backbone_lr
            scales[name] = chosen / lr if chosen is not None else 1.0
    keep_eval: list[nn.Module] = []
    rows = []
    for index, stage in enumerate(stages):
        module = model.get_submodule(stage)
        frozen = index < first_trained
        norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if frozen or settings.freeze_bn:
            keep_eval += norms
        params = [(n, p) for n, p in model.named_parameters() if stage_of(n, stages) == index]
        trained = [(n, p) for n, p in params if p.requires_grad]
        rows.append(
            StageRow(
                stage=stage,
                parameters=sum(p.numel() for _, p in params),
                trainable=sum(p.numel() for _, p in trained),
                lr=None if frozen or not trained else lr * scales[trained[0][0]],
                batchnorm="-" if not norms else ("eval" if norms[0] in keep_eval else "train"),
            )
        )
    plan = TransferPlan(settings.mode, head, rows, list(notes or []), scales)
    return plan, keep_eval


def resumed_plan(plan: TransferPlan, saved_notes: Any) -> TransferPlan:
    """``plan`` of a resumed run with the notes its first session recorded in the checkpoint
    (``TRANSFER_NOTES_KEY``: where the weights came from, a re-initialised head, an adapted
    stem); a resumed run loads its own weights, so it cannot say this itself. A checkpoint
    without the key (or with anything but a list of strings there) leaves ``plan`` as is."""
    if not isinstance(saved_notes, list) or not all(isinstance(n, str) for n in saved_notes):
        return plan
    return replace(plan, notes=list(saved_notes))


def frozen_buffer_names(model: nn.Module, norms: list[nn.Module]) -> frozenset[str]:
    """The names (in ``model``'s state dict) of the buffers of ``norms``, the BatchNorm layers
    of frozen stages: statistics that stay the checkpoint's."""
    return frozenset(
        f"{name}.{buffer}" if name else buffer
        for name, module in model.named_modules()
        if any(module is norm for norm in norms)
        for buffer, _ in module.named_buffers(recurse=False)
    )


def format_plan(plan: TransferPlan) -> str:
    """The parameter-group table of the run header (renders ``plan``; computes nothing)."""
    width = max(len("stage"), *(len(r.stage) for r in plan.rows))
    lines = [*plan.notes, f"fine-tuning ({plan.mode}): head {plan.head}"]
    lines.append(f"  {'stage':<{width}}  {'params':>10}  {'trains':>10}  {'peak lr':>9}  BN")
    for row in plan.rows:
        lr = "frozen" if row.lr is None else f"{row.lr:.3g}"
        lines.append(
            f"  {row.stage:<{width}}  {row.parameters:>10,}  {row.trainable:>10,}  {lr:>9}  "
            f"{row.batchnorm}"
        )
    return "\n".join(lines)


# -- the initial weights --------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Weights to start from: the state dict and, for a cnnkit run, what it was trained on."""

    state: dict[str, torch.Tensor]
    label: str
    model_name: str | None = None  # a cnnkit checkpoint's model
    model_kwargs: dict[str, Any] | None = None
    classes: list[str] | None = None
    mean: list[float] | None = None  # a cnnkit run's input normalisation
    std: list[float] | None = None


def read_source(spec: str, *, trusted_code: bool = True) -> Source:
    """The weights ``spec`` names: a cnnkit checkpoint (``best.pt``, or a run folder: its
    ``best.pt``), a torchvision-format state-dict file, or ``package.module:callable`` returning
    an ``nn.Module`` or a state dict (imported only when the user named it: ``trusted_code``).

    Files load with ``torch.load(weights_only=True)``; anything else is one
    :class:`CheckpointError` line naming the file.
    """
    from cnnkit.models.weights import read_state_dict
    from cnnkit.train.checkpoint import FORMAT, _read, load_checkpoint

    path = Path(spec)
    if path.is_dir():
        path = path / "best.pt"
        if not path.is_file():
            raise CheckpointError(f"--init-from {spec}: a folder without best.pt (not a run)")
    if path.is_file():
        payload = _read(path)  # weights_only; a file that is not a checkpoint: one line, why
        if isinstance(payload, dict) and payload.get("format") == FORMAT:
            saved = load_checkpoint(path)
            kwargs = {
                k: v
                for k, v in saved["model_kwargs"].items()
                if k not in ("num_classes", "in_channels")
            }
            return Source(
                saved["model"],
                str(path),
                saved["model_name"],
                kwargs,
                saved["classes"],
                list(saved["mean"]),
                list(saved["std"]),
            )
        return Source(read_state_dict(path), str(path))
    if ":" in spec and not spec.startswith(("/", ".")):
        if not trusted_code:
            raise ConfigError(
                f"--init-from {spec}: names code that cnnkit would import and call; a file may "
                f"only name weight files. If you trust it, name it yourself: --init-from {spec}"
            )
        return _from_code(spec)
    raise CheckpointError(f"--init-from {spec}: no such checkpoint file")


def names_code(spec: str) -> bool:
    """Whether ``spec`` names ``package.module:callable`` code (not a file or folder)."""
    return not Path(spec).exists() and ":" in spec and not spec.startswith(("/", "."))


def model_to_fine_tune(spec: str) -> tuple[str, dict[str, Any]] | None:
    """The model (name, keyword arguments) that fine-tuning from ``spec`` builds when no model
    is named: a cnnkit checkpoint's (:func:`checkpoint_model`), or the model that code the user
    named builds (:func:`code_model`); None for a plain state-dict file."""
    recorded = checkpoint_model(spec)
    if recorded is not None:
        return recorded
    return (code_model(spec), {}) if names_code(spec) else None


def code_model(spec: str) -> str:
    """The model to fine-tune when the weights are the code ``spec`` and no ``--model`` is
    given: ``spec`` itself when it is (or returns) an ``nn.Module``. A state dict records no
    model: one :class:`ConfigError` line asking for ``--model``."""
    from cnnkit.models._registry import load_factory

    target = load_factory(spec)
    if isinstance(target, nn.Module):
        return spec
    try:
        made = target()
    except Exception as exc:  # the user's code: one line, theirs to fix
        raise ConfigError(f"--init-from {spec} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(made, nn.Module):
        raise ConfigError(
            f"--init-from {spec}: returns {type(made).__name__}, which records no model; name "
            "the model it fits with --model (a zoo name or package.module:callable)"
        )
    return spec


def _from_code(spec: str) -> Source:
    from cnnkit.models._registry import load_factory

    target = load_factory(spec)
    try:
        made = target if isinstance(target, nn.Module) else target()
    except Exception as exc:  # the user's code: one line, theirs to fix
        raise ConfigError(f"--init-from {spec} raised {type(exc).__name__}: {exc}") from None
    state = made.state_dict() if isinstance(made, nn.Module) else made
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"--init-from {spec}: returned {type(made).__name__}, not an nn.Module or state dict"
        )
    return Source({k: v.detach().cpu().clone() for k, v in state.items()}, spec)


def load_initial_weights(
    model: nn.Module,
    source: Source,
    *,
    model_name: str,
    classes: list[str],
    classifier: str | None,
    first_conv: str | None,
) -> list[str]:
    """Copy ``source``'s weights into ``model`` (fresh from its factory); return notes.

    The head (the stage holding ``classifier``) keeps its fresh initialisation when the classes
    differ (in number, or in name for a cnnkit run). A first conv with a different number of
    input channels is adapted by :func:`adapt_input_conv`. Any other missing, unexpected or
    mis-shaped key is one :class:`CheckpointError` line naming it.
    """
    if source.model_name is not None and source.model_name != model_name:
        raise CheckpointError(
            f"--init-from {source.label}: trained {source.model_name}, but the model is "
            f"{model_name} (leave --model out to fine-tune {source.model_name})"
        )
    from cnnkit.models.weights import adapt_state_dict

    state = adapt_state_dict(model, source.state)
    own = model.state_dict()
    stages = model_stages(model)
    head = head_stage(model, stages, classifier)
    first_conv = first_conv or _first_conv(model)
    in_head = [k for k in own if k.startswith(head + ".")]
    head_differs = any(k in state and state[k].shape != own[k].shape for k in in_head)
    renamed = source.classes is not None and list(source.classes) != list(classes)
    notes = [f"init from {source.label}"]
    merged = dict(state)
    if head_differs or renamed:
        for key in in_head:
            merged[key] = own[key]
        before = "different classes" if renamed else "a different number of classes"
        notes.append(
            f"head {head} re-initialised for {len(classes)} classes (the checkpoint has {before})"
        )
    stem = f"{first_conv}.weight" if first_conv else None
    if stem in own and stem in state and own[stem].shape != state[stem].shape:
        old, new = state[stem], own[stem]
        if old.shape[0] == new.shape[0] and old.shape[2:] == new.shape[2:]:
            merged[stem] = adapt_input_conv(old, new.shape[1]).to(new.dtype)
            how = "summed" if new.shape[1] == 1 else "repeated and scaled"
            notes.append(
                f"stem {first_conv} adapted from {old.shape[1]} to {new.shape[1]} input "
                f"channels (kernel {how}, as timm's adapt_input_conv)"
            )
    for key, value in own.items():
        if key not in merged:
            raise CheckpointError(f"--init-from {source.label}: missing key {key!r} for the model")
        if merged[key].shape != value.shape:
            raise CheckpointError(
                f"--init-from {source.label}: {key} has shape {tuple(merged[key].shape)}, "
                f"the model expects {tuple(value.shape)}"
            )
    unexpected = [k for k in merged if k not in own]
    if unexpected:
        raise CheckpointError(
            f"--init-from {source.label}: unexpected key {unexpected[0]!r} for the model"
        )
    model.load_state_dict(merged)
    return notes


def _first_conv(model: nn.Module) -> str | None:
    return next((n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A conv kernel ``(O, I, kH, kW)`` for ``in_channels`` inputs instead of ``I``.

    One input channel: the sum over ``I`` (a grey image ``g`` fed to the summed kernel gives what
    the original kernel gives for ``g`` repeated over its ``I`` channels). Otherwise the kernel
    is tiled along the input channels, cut to ``in_channels`` and scaled by
    ``I / in_channels``, so that an input tiled the same way keeps the original response
    (timm's ``adapt_input_conv``, generalised from ``I = 3``).
    """
    source = weight.to(torch.promote_types(weight.dtype, torch.float32))
    if in_channels == 1:
        return source.sum(dim=1, keepdim=True)
    repeats = math.ceil(in_channels / source.shape[1])
    tiled = source.repeat(1, repeats, 1, 1)[:, :in_channels]
    return tiled * (source.shape[1] / in_channels)


def set_up_transfer(
    model: nn.Module,
    settings: TransferSettings,
    *,
    model_name: str,
    classes: list[str],
    lr: float,
    initialise: bool,
) -> tuple[TransferPlan, list[nn.Module]]:
    """Load the initial weights (a new run only: a resumed one loads its own) and freeze."""
    classifier, first_conv = _zoo_names(model_name)
    notes: list[str] = []
    source = None
    if initialise and settings.pretrained:
        source = published_source(model_name)
    elif initialise and settings.init_from is not None:
        source = read_source(settings.init_from)
    if source is not None:
        notes = load_initial_weights(
            model,
            source,
            model_name=model_name,
            classes=classes,
            classifier=classifier,
            first_conv=first_conv,
        )
    return plan_transfer(model, settings, lr=lr, classifier=classifier, notes=notes)


def published_file(model_name: str) -> Path:
    """The verified local file of torchvision's published ImageNet weights of zoo model
    ``model_name`` (``--pretrained``): found in the cache or downloaded, checked against the
    hash in the file's name (:func:`cnnkit.models.pretrained.pretrained_file`)."""
    import sys

    from cnnkit.models.pretrained import pretrained_file

    if ":" in model_name:
        raise ConfigError(
            f"--pretrained: --model {model_name} is code; only zoo models have published weights"
        )
    try:
        return pretrained_file(model_name, report=lambda line: print(line, file=sys.stderr))
    except ConfigError as exc:  # a model without published weights: say which flag asked
        raise ConfigError(f"--pretrained: {exc}") from None


def fetch_published_once(model_name: str, distributed: Distributed) -> Path:
    """:func:`published_file` for every process of a distributed run, downloaded once.

    Rank 0 finds or downloads the file while the other ranks wait for it
    (:meth:`~cnnkit.train.distributed.Distributed.decide_on_main`: its error, if any, is
    raised on every rank). Without that, each rank of ``--nproc 2`` with an empty cache would
    start the same download, and the downloader's lock on the ``.part`` file refuses the
    second (``another process is downloading this file``). One process: just the file.
    """
    return distributed.decide_on_main(lambda: published_file(model_name))


def published_source(model_name: str) -> Source:
    """torchvision's published ImageNet weights of zoo model ``model_name`` (``--pretrained``,
    :func:`published_file`), with the ImageNet normalisation every torchvision weight was
    trained with."""
    from cnnkit.models.pretrained import IMAGENET_MEAN, IMAGENET_STD
    from cnnkit.models.weights import read_state_dict

    path = published_file(model_name)
    return Source(
        read_state_dict(path),
        f"torchvision's {path.name} ({path.parent})",
        mean=list(IMAGENET_MEAN),
        std=list(IMAGENET_STD),
    )


def _zoo_names(model_name: str) -> tuple[str | None, str | None]:
    """The zoo's classifier and first conv of ``model_name``; (None, None) for other models."""
    if ":" in model_name:
        return None, None
    from cnnkit.models import MODELS, model_info

    if model_name not in MODELS.names():
        return None, None
    info = model_info(model_name)
    return info.classifier, info.first_conv


def pretrained_normalisation(spec: str) -> tuple[list[float], list[float]] | None:
    """The (mean, std) a cnnkit checkpoint ``spec`` was trained with; None for other sources."""
    source = read_source(spec, trusted_code=False) if Path(spec).exists() else None
    if source is None or source.mean is None or source.std is None:
        return None
    return list(source.mean), list(source.std)


def checkpoint_model(spec: str) -> tuple[str, dict[str, Any]] | None:
    """The model (name, keyword arguments) of a cnnkit checkpoint ``spec``; None otherwise.

    What ``cnnkit finetune`` and ``cnnkit train --init-from`` build when ``--model`` is not
    given. A recorded ``package.module:callable`` is refused (a file never selects code).
    """
    from cnnkit.train.checkpoint import FORMAT, _read
    from cnnkit.train.config import refuse_recorded_model

    path = Path(spec)
    if path.is_dir():
        path = path / "best.pt"
        if not path.is_file():
            raise CheckpointError(f"--init-from {spec}: a folder without best.pt (not a run)")
    if not path.is_file():
        return None
    payload = _read(path)  # one load: a plain state dict (perhaps large) records no model
    if not (isinstance(payload, dict) and payload.get("format") == FORMAT):
        return None
    source = read_source(str(path))
    if source.model_name is None:  # pragma: no cover - a cnnkit checkpoint records its model
        return None
    refuse_recorded_model(source.model_name, f"--init-from {spec}", CheckpointError)
    return source.model_name, dict(source.model_kwargs or {})
