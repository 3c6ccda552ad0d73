"""The one training configuration: :class:`TrainConfig`, made of sections, and how it is resolved.

A run's settings live in eight section dataclasses (``model``, ``data``, ``augmentation``,
``optimisation``, ``schedule``, ``evaluation``, ``runtime``, ``output``); each helper of the
trainer takes only its section. A setting's name is unique across the sections, so every
*flat* name (``lr``, ``batch_size``, ...) maps to one place: :func:`flat_fields` derives that
map from the dataclasses, and the ``cnnkit train`` flags (``--lr``), recipes, ``--config``
files (flat, as written before the sections, or nested, as ``config.json`` is now) and
overrides all go through it, so nothing is defined twice. Every field carries its help text in
its metadata. Resolution order (nanoGPT's and timm's): dataclass defaults < recipe <
``--config`` JSON file < flags, where a flag left at ``None`` overrides nothing.

A new setting is one field in the section it belongs to; its flag, its place in config.json and
its loading follow from that.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, get_args, get_type_hints

from cnnkit.errors import ConfigError

Optimizer = Literal["sgd", "adamw"]
Schedule = Literal["cosine", "onecycle", "linear", "constant"]
Precision = Literal["auto", "off", "bf16", "fp16"]
EvalWeights = Literal["best", "last"]
DistBackend = Literal["auto", "gloo", "nccl"]
FinetuneMode = Literal["features", "partial", "full"]


def _help(text: str, **more: Any) -> dict[str, Any]:
    """Field metadata: the help text that ``cnnkit train --help`` shows for the flag.

    ``more``: ``bare`` (the value of the flag given without one: ``--tta``), ``off`` (the
    value of ``--no-<flag>``), ``flag=False`` (a record, not a setting: no flag).
    """
    return {"help": text, **more}


@dataclass(frozen=True)
class ModelConfig:
    """What network trains, and the settings that only its own model understands."""

    model: str = field(
        default="airnet",
        metadata=_help("zoo name, or package.module:callable returning an nn.Module"),
    )
    model_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata=_help("extra keyword arguments for the model (JSON)")
    )
    whiten_bias_epochs: int | None = field(
        default=None,
        metadata=_help(
            "airnet: train the whitening conv's bias for this many epochs, then freeze it "
            "(airbench; later steps skip a gradient; default: always train it)"
        ),
    )


@dataclass(frozen=True)
class DataConfig:
    """Which images, how they are split and normalised."""

    dataset: str = field(
        default="fashion_mnist", metadata=_help("dataset name (cnnkit data list) or folder:<path>")
    )
    data_dir: str | None = field(
        default=None, metadata=_help("where the dataset files are (default: cnnkit's search)")
    )
    val_size: int = field(
        default=6000,
        metadata=_help("held-out validation images from train (0: none; seed003 recipe: 6000)"),
    )
    train_subset: int | None = field(
        default=None, metadata=_help("train on only the first N training images (quick trials)")
    )
    split_seed: int = field(
        default=42, metadata=_help("seed of the train/validation split (seed003 recipe: 42)")
    )
    mean: list[float] | None = field(
        default=None, metadata=_help("per-channel normalisation mean (default: computed)")
    )
    std: list[float] | None = field(
        default=None, metadata=_help("per-channel normalisation std (default: computed)")
    )


@dataclass(frozen=True)
class AugmentationConfig:
    """Batched training augmentation, on the device."""

    flip: bool = field(default=True, metadata=_help("random horizontal flip"))
    crop_padding: int = field(
        default=0, metadata=_help("random crop after zero padding by this many pixels (0: off)")
    )
    rotation: float = field(
        default=0.0, metadata=_help("random rotation by up to this many degrees (0: off)")
    )
    resized_crop: float = field(
        default=0.0,
        metadata=_help("random resized crop: smallest area kept, in (0, 1] (0: off)"),
    )
    color_jitter: float = field(
        default=0.0,
        metadata=_help("colour jitter strength: brightness and contrast (+ saturation: RGB)"),
    )
    erasing: float = field(default=0.0, metadata=_help("random erasing probability (0: off)"))
    mixup: float = field(default=0.0, metadata=_help("MixUp alpha (0: off)"))
    cutmix: float = field(
        default=0.0, metadata=_help("CutMix alpha (0: off; with MixUp, each sample gets one)")
    )


@dataclass(frozen=True)
class OptimisationConfig:
    """The step: batches, the loss, the optimiser and what acts on the gradients and weights."""

    batch_size: int = field(default=128, metadata=_help("training batch size"))
    drop_last: bool = field(
        default=True,
        metadata=_help("drop the last incomplete training batch (the seed003 recipe keeps it)"),
    )
    accumulation_steps: int = field(
        default=1, metadata=_help("batches accumulated per optimiser step")
    )
    optimizer: Optimizer = field(default="sgd", metadata=_help("sgd (momentum, nesterov) or adamw"))
    momentum: float = field(default=0.9, metadata=_help("SGD momentum, or AdamW beta1"))
    nesterov: bool = field(default=True, metadata=_help("Nesterov momentum (SGD)"))
    weight_decay: float = field(
        default=5e-4, metadata=_help("weight decay (L2 for SGD, decoupled for AdamW)")
    )
    decay_norm_bias: bool = field(
        default=True, metadata=_help("weight decay also on normalisation weights and biases")
    )
    bias_lr_scale: float = field(
        default=1.0,
        metadata=_help("learning-rate multiplier of norm weights and biases (divides their decay)"),
    )
    label_smoothing: float = field(
        default=0.0, metadata=_help("label smoothing of the cross-entropy")
    )
    class_weights: list[float] | None = field(
        default=None, metadata=_help("per-class loss weights (one per class)")
    )
    grad_clip: float | None = field(
        default=None, metadata=_help("clip the gradient norm to this value")
    )
    ema: float | None = field(
        default=None, metadata=_help("EMA decay of the weights per step (e.g. 0.999)")
    )


@dataclass(frozen=True)
class ScheduleConfig:
    """How long the run is, when it stops, and its learning rate over that time (timm's group)."""

    epochs: int = field(
        default=10, metadata=_help("number of epochs (an upper bound when --time-budget is set)")
    )
    time_budget: float | None = field(
        default=None,
        metadata=_help("seconds of training; the schedule follows elapsed time and ends annealed"),
    )
    patience: int | None = field(
        default=None, metadata=_help("stop after this many epochs without a better val top-1")
    )
    lr: float = field(default=0.1, metadata=_help("peak learning rate"))
    schedule: Schedule = field(
        default="cosine", metadata=_help("learning-rate schedule after warm-up")
    )
    warmup: float = field(
        default=0.0, metadata=_help("warm-up fraction of training (linear from 0; OneCycle: rise)")
    )
    min_lr: float = field(
        default=0.0, metadata=_help("final learning rate (cosine eta_min, linear end)")
    )
    lr_per_epoch: bool = field(
        default=False,
        metadata=_help(
            "hold the learning rate within an epoch (a scheduler stepped per epoch, as the "
            "seed003 recipe)"
        ),
    )
    schedule_epochs: int | None = field(
        default=None,
        metadata=_help(
            "length of the schedule in epochs (seed003 recipe: T_max=50; default: --epochs)"
        ),
    )


@dataclass(frozen=True)
class EvaluationConfig:
    """How validation and the test are measured (``cnnkit eval`` reads the same fields)."""

    eval_weights: EvalWeights = field(
        default="best",
        metadata=_help(
            "test the best (by val top-1) or the last weights; EMA weights when --ema is set"
        ),
    )
    tta: int = field(
        default=0,
        metadata=_help(
            "test-time augmentation level: 0 off (--no-tta); 1 (--tta alone) the mean of the "
            "logits of the image and its flip; 2 also over the image shifted by 1 pixel "
            "(airbench's level 2); N > 2: shifted by N-1 pixels",
            bare=1,
            off=0,
        ),
    )
    eval_batch_size: int = field(
        default=500, metadata=_help("batch size of evaluation (500: fastest here)")
    )
    hardest: int = field(default=16, metadata=_help("number of hardest test samples reported"))


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how the arithmetic runs, and its seeds."""

    device: str = field(default="auto", metadata=_help("auto, cpu, cuda or cuda:N"))
    precision: Precision = field(
        default="auto",
        metadata=_help(
            "autocast dtype: auto is bf16 on CPUs with native bf16 units (AVX-512 BF16, AMX) "
            "and on CUDA GPUs that support it, fp16 on other CUDA GPUs, fp32 on other CPUs; "
            "off: fp32; bf16; fp16 (CUDA only)"
        ),
    )
    channels_last: bool = field(
        default=True, metadata=_help("channels_last memory format for model and batches")
    )
    matmul_weight_grad: bool = field(
        default=True,
        metadata=_help(
            "CPU bf16: weight gradients of convs on maps up to 4x4 by one matmul "
            "(faster than oneDNN's kernel there)"
        ),
    )
    compile: bool = field(
        default=False, metadata=_help("torch.compile the model (slower on small CPU runs)")
    )
    threads: int | None = field(
        default=None,
        metadata=_help("torch CPU threads (default: all cores; 1 if the machine is crowded)"),
    )
    seed: int = field(
        default=0, metadata=_help("seed of initialisation, shuffling and augmentation")
    )
    deterministic: bool = field(
        default=False, metadata=_help("deterministic algorithms (exact resume, slower)")
    )
    # -- E7 data-parallel training (train/distributed.py, train/launch.py) --------------------
    nproc: int = field(
        default=1,
        metadata=_help(
            "processes that train together on this machine (torch's elastic launcher; one per "
            "GPU on CUDA); under torchrun, torchrun's --nproc-per-node decides"
        ),
    )
    dist_backend: DistBackend = field(
        default="auto",
        metadata=_help("torch.distributed backend: auto (gloo on CPU, nccl on CUDA), gloo, nccl"),
    )
    sync_bn: bool = field(
        default=False,
        metadata=_help(
            "SyncBatchNorm across processes (CUDA only; on CPU BatchNorm running statistics "
            "are averaged across processes at each epoch end)"
        ),
    )
    dist_timeout: float = field(
        default=300.0,
        metadata=_help("seconds a process waits for the others (rendezvous, each collective)"),
    )


@dataclass(frozen=True)
class OutputConfig:
    """What the run writes and shows."""

    out_dir: str | None = field(
        default=None, metadata=_help("run directory (default: runs/<model>-<time>)")
    )
    progress: bool = field(default=True, metadata=_help("progress bar on a terminal"))
    tensorboard: bool = field(
        default=True, metadata=_help("TensorBoard event files when tensorboard is installed")
    )
    plots: bool = field(default=True, metadata=_help("curves and confusion matrix as PNG"))
    grad_flow: int = field(
        default=0,
        metadata=_help(
            "every N steps, per-layer gradient norms into grad_flow.csv/.png, TensorBoard (0: off)"
        ),
    )


@dataclass(frozen=True)
class TransferConfig:
    """Transfer learning (E4, ``cnnkit finetune``): where the weights come from, what trains,
    at which rates; read only by ``train/transfer_config.transfer_settings``."""

    init_from: str | None = field(
        default=None,
        metadata=_help(
            "start from these weights: a cnnkit run's best.pt (or its folder), a "
            "torchvision-format state_dict file, or package.module:callable returning an "
            "nn.Module or state dict (new classes re-initialise only the head)"
        ),
    )
    finetune_mode: FinetuneMode | None = field(
        default=None,
        metadata=_help(
            "features: train only the head; partial: the stages from --unfreeze-from on; "
            "full: all (default when fine-tuning)"
        ),
    )
    unfreeze_from: str | None = field(
        default=None,
        metadata=_help(
            "partial fine-tuning: first stage that trains, e.g. layer3 or features.6 "
            "(default: the last stage before the head)"
        ),
    )
    head_lr: float | None = field(
        default=None, metadata=_help("peak learning rate of the head (default: --lr)")
    )
    backbone_lr: float | None = field(
        default=None,
        metadata=_help("peak learning rate of the stages before the head (default: --lr)"),
    )
    layer_decay: float | None = field(
        default=None,
        metadata=_help("layer-wise lr decay: stage i of n trains at lr * X^(n-i) (e.g. 0.75)"),
    )
    freeze_bn: bool = field(
        default=False,
        metadata=_help("keep every BatchNorm in eval mode (running statistics fixed)"),
    )
    pretrained: bool = field(
        default=False,
        metadata=_help(
            "start from torchvision's published ImageNet weights of --model (downloaded once, "
            "checked against the hash in the file's name, cached: cnnkit zoo --pretrained)"
        ),
    )


@dataclass(frozen=True)
class DistillationConfig:
    """Knowledge distillation from a teacher (E6; Hinton et al. 2015; train/distill.py)."""

    teacher: str | None = field(
        default=None,
        metadata=_help(
            "knowledge distillation from this teacher: a cnnkit run's checkpoint (its best.pt "
            "or run folder; default: no teacher)"
        ),
    )
    teacher_model: str | None = field(
        default=None,
        metadata=_help(
            "the teacher's code when its checkpoint records a package.module:callable model "
            "(a file never selects code; default: the zoo name the checkpoint records)"
        ),
    )
    distill_alpha: float = field(
        default=0.5,
        metadata=_help("weight A of the teacher: loss = (1 - A) CE + A T^2 KL(teacher || student)"),
    )
    distill_temperature: float = field(
        default=4.0, metadata=_help("temperature T that softens both softmaxes of the KL term")
    )


@dataclass
class TrainConfig:
    """A complete description of a training run (003's recipe is one instance: ``seed003``).

    Build one from flat settings with :meth:`from_flat` (``TrainConfig.from_flat(lr=0.1)``),
    or section by section (``TrainConfig(schedule=ScheduleConfig(lr=0.1))``). A field that is
    not a section (a capability's block added at the end) is a flat setting of its own.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    optimisation: OptimisationConfig = field(default_factory=OptimisationConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    distillation: DistillationConfig = field(default_factory=DistillationConfig)
    # What a recipe's budget rule changed (flat name, or name.key inside a dict -> new value);
    # written to config.json and shown in the run header. A record, not a setting: no flag.
    budget_changes: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help("what the recipe's time-budget rule changed", flag=False),
    )

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able nested dict (what config.json and checkpoints hold)."""
        return dataclasses.asdict(self)

    def to_flat(self) -> dict[str, Any]:
        """``{flat name: value}`` over every setting (copies of lists and dicts)."""
        nested = self.to_dict()
        return {
            name: nested[section][name] if section else nested[name]
            for name, section in flat_fields().items()
        }

    def setting(self, name: str) -> Any:
        """The value of the flat setting ``name`` (``config.setting("lr")``)."""
        section = flat_fields()[name]
        return getattr(getattr(self, section), name) if section else getattr(self, name)

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with flat settings changed (``config.replace(lr=0.2)``)."""
        return replace_config(self, changes, "settings")

    @classmethod
    def from_flat(cls, **settings: Any) -> TrainConfig:
        """Defaults with flat settings applied: ``TrainConfig.from_flat(lr=0.2, epochs=3)``."""
        return replace_config(cls(), settings, "settings")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a flat or nested dict; an unknown key names the source and the closest
        setting. Flat is what config.json held before the sections (still read)."""
        return replace_config(cls(), data, source)


SECTIONS: dict[str, type] = {
    item.name: item.default_factory  # type: ignore[misc]  # only the section fields, whose factories are the section classes
    for item in fields(TrainConfig)
    if dataclasses.is_dataclass(item.default_factory)
}


@cache
def flat_fields() -> dict[str, str | None]:
    """Flat setting name -> the section that holds it (``None``: a field of TrainConfig itself).

    Derived from the dataclasses; a name used twice is a bug caught here (and by a test).
    """
    mapping: dict[str, str | None] = {}
    for item in fields(TrainConfig):
        inner = (
            [(f.name, item.name) for f in fields(SECTIONS[item.name])]
            if (item.name in SECTIONS)
            else [(item.name, None)]
        )
        for name, section in inner:
            if name in mapping:
                raise TypeError(f"TrainConfig: setting {name!r} is defined twice")
            mapping[name] = section
    return mapping


@cache
def _flat_field_objects() -> dict[str, dataclasses.Field]:
    found: dict[str, dataclasses.Field] = {}
    for item in fields(TrainConfig):
        if item.name in SECTIONS:
            found.update({f.name: f for f in fields(SECTIONS[item.name])})
        else:
            found[item.name] = item
    return found


def setting_fields() -> list[dataclasses.Field]:
    """The fields of every flat setting, in order (what the CLI makes flags of)."""
    return list(_flat_field_objects().values())


def field_types() -> dict[str, Any]:
    """Resolved type hints of every flat setting (for CLI generation and value coercion)."""
    hints: dict[str, Any] = {}
    for item in fields(TrainConfig):
        if item.name in SECTIONS:
            hints.update(get_type_hints(SECTIONS[item.name]))
        else:
            hints[item.name] = get_type_hints(TrainConfig)[item.name]
    return hints


def flag_name(name: str) -> str:
    """The flag of a flat setting: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def tta_shift_of(level: int) -> int:
    """The shift in pixels of a TTA level (0 below level 2)."""
    return max(level - 1, 0)


def flatten_settings(data: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """A flat ``{name: value}`` of a flat or nested dict (sections unfolded; other keys kept).

    A key that names a section and holds a dict is that section (``"model": "airnet"`` is the
    setting, ``"model": {...}`` the section); a setting inside the wrong section is refused,
    naming both.
    """
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, dict):
            for name, inner in value.items():
                if flat_fields().get(name, key) != key:
                    raise ConfigError(
                        f"{source}: setting {name!r} belongs to section "
                        f"{flat_fields()[name]!r}, not {key!r}"
                    )
                flat[name] = inner
        else:
            flat[key] = value
    return flat


def replace_config(config: TrainConfig, changes: dict[str, Any], source: str) -> TrainConfig:
    """A copy of ``config`` with ``changes`` applied: flat names or sections (a ``None`` value
    sets the field to None). The old ``tta``/``tta_shift`` pair becomes the TTA level."""
    flat = _modern(config, flatten_settings(changes, source))
    known = flat_fields()
    unknown = sorted(set(flat) - set(known))
    if unknown:
        from cnnkit.errors import suggest

        close = suggest(unknown[0], known)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{source}: unknown setting {unknown[0]!r}{hint}")
    by_section: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for name, value in flat.items():
        section = known[name]
        if section is None:
            top[name] = value
        else:
            by_section.setdefault(section, {})[name] = value
    sections = {
        name: dataclasses.replace(getattr(config, name), **values)
        for name, values in by_section.items()
    }
    return dataclasses.replace(config, **sections, **top)


def _modern(config: TrainConfig, flat: dict[str, Any]) -> dict[str, Any]:
    """Old settings in today's terms: ``tta`` true/false and ``tta_shift`` -> the TTA level."""
    if "tta_shift" not in flat and not isinstance(flat.get("tta"), bool):
        return flat
    flat = dict(flat)
    shift = flat.pop("tta_shift", None)
    tta = flat.get("tta", config.evaluation.tta)
    if shift is not None and (not isinstance(shift, int) or isinstance(shift, bool) or shift < 0):
        raise ConfigError(f"--tta-shift: must be an integer >= 0, got {shift!r}")
    if isinstance(tta, bool) or (isinstance(tta, int) and shift is not None):
        # the pair meant: shifts only with the flip on
        flat["tta"] = (1 + shift if shift is not None else 1) if tta else 0
    return flat


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON object of TrainConfig fields from ``path`` (``--config FILE``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--config: file not found: {path}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path} must hold a JSON object of settings")
    return data


def resolve_config(
    recipe: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Defaults < recipe < config file < overrides, then the recipe's budget rule, if any.

    ``overrides`` holds only what the user set (the CLI leaves out flags it was not given);
    the file may be flat or nested. A budget rule (``recipes.BUDGET_RULES``) adapts a recipe
    to its time budget, e.g. ``best`` picks a wider, then deeper network for long budgets; it
    applies only to the recipe's own model, leaves alone the settings the user set, and what
    it changed is recorded in ``budget_changes`` (config.json, the run header). With
    ``init_from`` and no model named, the model is the one to fine-tune
    (:func:`cnnkit.train.transfer.model_to_fine_tune`), and no budget rule applies (it would
    pick another network than the checkpoint's).
    """
    from cnnkit.train.recipes import BUDGET_RULES, RECIPES

    config = TrainConfig.from_dict(RECIPES.get(recipe).to_dict()) if recipe else TrainConfig()
    explicit: set[str] = set(flatten_settings(overrides or {}, "flags"))
    if config_file is not None:
        source = f"--config {config_file}"
        from_file = flatten_settings(load_config_file(config_file), source)
        if "model" not in explicit:
            refuse_recorded_model(from_file.get("model"), source, ConfigError)
        if "teacher_model" not in explicit:  # E6: nor the teacher's code
            from cnnkit.train.distill_settings import refuse_recorded_teacher

            refuse_recorded_teacher(from_file.get("teacher_model"), source, ConfigError)
        if "init_from" not in explicit:  # E4: nor code to start from
            refuse_recorded_code(from_file.get("init_from"), source)
        explicit |= set(from_file)
        config = replace_config(config, from_file, source)
    if overrides:
        config = replace_config(config, overrides, "flags")
    fine_tuned = False
    if config.transfer.init_from is not None and "model" not in explicit:
        from cnnkit.train.transfer import model_to_fine_tune

        # E4: fine-tuning a cnnkit run (or code that builds a model): that model and its
        # keyword arguments, unless the model is named
        chosen = model_to_fine_tune(config.transfer.init_from)
        if chosen is not None:
            changes = {"model": chosen[0], "model_kwargs": chosen[1]}
            config = replace_config(config, changes, f"--init-from {config.transfer.init_from}")
            explicit |= set(changes)
            fine_tuned = True
    if "tta_shift" in explicit:
        explicit.add("tta")
    config = dataclasses.replace(config, budget_changes={})
    if fine_tuned:  # a budget rule picks the network; the checkpoint's is the network
        return config
    if not recipe or config.model.model != RECIPES.get(recipe).model.model:
        # a recipe's model settings and budget rule mean nothing to another model
        return _keep_model_settings_with_their_model(config, recipe, explicit) if recipe else config
    rule = BUDGET_RULES.find(recipe)
    if rule is None:
        return config
    adapted = rule(config, frozenset(explicit))
    return dataclasses.replace(adapted, budget_changes=setting_changes(config, adapted))


def setting_changes(before: TrainConfig, after: TrainConfig) -> dict[str, Any]:
    """``{flat name: new value}`` of the settings that differ; a dict setting by its keys
    (``model_kwargs.depth``), so that a rule's record shows only what it added or changed."""
    old, new = before.to_flat(), after.to_flat()
    changes: dict[str, Any] = {}
    for name, value in new.items():
        if name == "budget_changes" or value == old[name]:
            continue
        if isinstance(value, dict) and isinstance(old[name], dict):
            for key, inner in value.items():
                if key not in old[name] or old[name][key] != inner:
                    changes[f"{name}.{key}"] = inner
        else:
            changes[name] = value
    return changes


def _keep_model_settings_with_their_model(
    config: TrainConfig, recipe: str, explicit: set[str]
) -> TrainConfig:
    """A recipe's model-specific settings apply only to the recipe's model.

    ``--recipe fast --model resnet18``: fast's airnet keyword arguments and whitening schedule
    mean nothing to resnet18, so the settings of the model section other than ``model`` that
    the user did not set return to their defaults (what ``--dry-run`` shows is what runs).
    """
    defaults = ModelConfig()
    reset = {
        item.name: getattr(defaults, item.name)
        for item in fields(ModelConfig)
        if item.name != "model" and item.name not in explicit
    }
    return replace_config(config, reset, "recipe")


# A run of the user's own nn.Module (``fit(model=module)``) records ``user:<module>.<class>``:
# no zoo name has this prefix, and no file can turn it back into code.
USER_MODEL_PREFIX = "user:"


def user_model_name(module: Any) -> str:
    """The model a run of the user's own ``nn.Module`` records: ``user:<module>.<class>``."""
    kind = type(module)
    return f"{USER_MODEL_PREFIX}{kind.__module__}.{kind.__qualname__}"


def refuse_recorded_model(model: Any, source: str, error: type[Exception]) -> None:
    """A model read from a file may only be a zoo name: ``module:callable`` is code to run.

    A checkpoint or config file is data; building ``os:system`` from it would run whatever
    its author chose (Hugging Face's ``trust_remote_code`` rule). The user allows the code by
    naming it themselves, on the command line or in Python.
    """
    if isinstance(model, str) and model.startswith(USER_MODEL_PREFIX):
        raise error(
            f"{source}: the run trained the user's own nn.Module "
            f"{model[len(USER_MODEL_PREFIX) :]}; give it again in Python (model=<the module>)"
        )
    if isinstance(model, str) and ":" in model:
        raise error(
            f"{source}: names the model {model!r}, code that cnnkit would import and call; "
            f"a file may only name zoo models. If you trust that code, name it yourself: "
            f"--model {model} (Python: model={model!r})"
        )


def refuse_recorded_code(init_from: Any, source: str) -> None:
    """``init_from`` read from a file may name weight files, never ``module:callable`` code."""
    if isinstance(init_from, str) and ":" in init_from and not Path(init_from).exists():
        raise ConfigError(
            f"{source}: names init_from {init_from!r}, code that cnnkit would import and "
            f"call; a file may only name weight files. If you trust that code, name it "
            f"yourself: --init-from {init_from}"
        )


def resume_config(
    saved: dict[str, Any], source: str, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """The config of a run to resume: the checkpoint's, with the user's ``overrides``.

    The model stays the run's: a different ``model`` is refused, naming both. A run whose
    model is ``module:callable`` resumes only when the user names it again (``overrides``).
    """
    from cnnkit.errors import CheckpointError

    changes = dict(overrides or {})
    recorded = saved["model_name"]
    named = changes.get("model")
    if named is None:
        refuse_recorded_model(recorded, source, CheckpointError)
    elif named != recorded:
        raise ConfigError(
            f"--model {named}: the run in {source} trained {recorded}; a resumed run keeps "
            f"its model (train {named} into a new --out)"
        )
    if changes.get("teacher_model") is None:  # E6: nor the teacher's code
        from cnnkit.train.distill_settings import refuse_recorded_teacher

        recorded_teacher = flatten_settings(saved["config"], source).get("teacher_model")
        refuse_recorded_teacher(recorded_teacher, source, CheckpointError)
    return replace_config(saved_config(saved, source), changes, "flags")


def saved_config(saved: dict[str, Any], source: str) -> TrainConfig:
    """The TrainConfig a checkpoint records (flat before the sections, nested since); the
    checkpoint's loader has already checked that it builds (``load_checkpoint``)."""
    return TrainConfig.from_dict(saved["config"], source=source)


def is_run_config(data: Any) -> bool:
    """Whether ``data`` (a config.json's content) is a run's resolved config, flat or nested."""
    if not isinstance(data, dict):
        return False
    try:
        TrainConfig.from_dict(data)
    except (ConfigError, TypeError):
        return False
    nested = set(TrainConfig().to_dict())
    return set(data) == nested or set(data) >= {"model", "dataset", "epochs", "seed", "lr"}


def plain_json_problem(value: Any, where: str = "") -> str | None:
    """Why ``value`` is not plain JSON (str, int, float, bool, None, lists, str-keyed dicts)."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where or 'value'} is {value}"
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = plain_json_problem(item, f"{where}[{index}]")
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"key {key!r} of {where or 'the dict'} is not a string"
            problem = plain_json_problem(item, f"{where}.{key}" if where else key)
            if problem:
                return problem
        return None
    return f"{where or 'value'} is a {type(value).__name__}"


def validate(config: TrainConfig) -> None:
    """Raise :class:`ConfigError` naming the first invalid field (as its flag)."""
    hints = field_types()
    for name, section in flat_fields().items():
        if section is not None and not isinstance(getattr(config, section), SECTIONS[section]):
            raise ConfigError(
                f"section {section!r}: expected a {SECTIONS[section].__name__}, "
                f"got {type(getattr(config, section)).__name__}"
            )
        _check_type(flag_name(name), config.setting(name), hints[name])
    flat = SimpleNamespace(**config.to_flat())  # the checks below read flat names
    positive_ints = ("epochs", "batch_size", "eval_batch_size", "accumulation_steps")
    for name in positive_ints:
        if getattr(flat, name) < 1:
            raise ConfigError(
                f"--{name.replace('_', '-')}: must be >= 1, got {getattr(flat, name)}"
            )
    _check_range("lr", flat.lr, 0.0, math.inf, low_open=True)
    _check_range("bias_lr_scale", flat.bias_lr_scale, 0.0, math.inf, low_open=True)
    _check_range("momentum", flat.momentum, 0.0, 1.0, high_open=True)
    _check_range("weight_decay", flat.weight_decay, 0.0, math.inf)
    _check_range("warmup", flat.warmup, 0.0, 1.0, high_open=True)
    _check_range("min_lr", flat.min_lr, 0.0, flat.lr)
    _check_range("label_smoothing", flat.label_smoothing, 0.0, 1.0, high_open=True)
    _check_range("erasing", flat.erasing, 0.0, 1.0)
    _check_range("resized_crop", flat.resized_crop, 0.0, 1.0)
    _check_range("color_jitter", flat.color_jitter, 0.0, 1.0)
    for name in ("val_size", "crop_padding", "tta", "hardest", "rotation", "mixup", "cutmix"):
        _check_range(name, getattr(flat, name), 0.0, math.inf)
    if flat.ema is not None:
        _check_range("ema", flat.ema, 0.0, 1.0, low_open=True, high_open=True)
    if flat.grad_clip is not None:
        _check_range("grad_clip", flat.grad_clip, 0.0, math.inf, low_open=True)
    if flat.time_budget is not None:
        _check_range("time_budget", flat.time_budget, 0.0, math.inf, low_open=True)
    if flat.whiten_bias_epochs is not None and flat.whiten_bias_epochs < 0:
        raise ConfigError(f"--whiten-bias-epochs: must be >= 0, got {flat.whiten_bias_epochs}")
    _check_range("distill_alpha", flat.distill_alpha, 0.0, 1.0)
    _check_range("distill_temperature", flat.distill_temperature, 0.0, math.inf, low_open=True)
    if flat.grad_flow < 0:
        raise ConfigError(f"--grad-flow: must be >= 0, got {flat.grad_flow}")
    if flat.patience is not None and flat.patience < 1:
        raise ConfigError(f"--patience: must be >= 1, got {flat.patience}")
    if flat.schedule_epochs is not None and flat.schedule_epochs < 1:
        raise ConfigError(f"--schedule-epochs: must be >= 1, got {flat.schedule_epochs}")
    if flat.train_subset is not None and flat.train_subset < 1:
        raise ConfigError(f"--train-subset: must be >= 1, got {flat.train_subset}")
    if flat.threads is not None and flat.threads < 1:
        raise ConfigError(f"--threads: must be >= 1, got {flat.threads}")
    if flat.nproc < 1:
        raise ConfigError(f"--nproc: must be >= 1, got {flat.nproc}")
    _check_range("dist_timeout", flat.dist_timeout, 0.0, math.inf, low_open=True)
    if flat.patience is not None and flat.val_size == 0:
        raise ConfigError("--patience: early stopping needs a validation split (--val-size > 0)")
    for name in ("seed", "split_seed"):  # what torch's generators accept
        if not -(2**63) <= getattr(flat, name) < 2**63:
            raise ConfigError(
                f"--{name.replace('_', '-')}: must be in [-2^63, 2^63), got {getattr(flat, name)}"
            )
    if flat.rotation > 180:
        raise ConfigError(f"--rotation: must be in [0, 180] degrees, got {flat.rotation}")
    for name in ("mean", "std", "class_weights"):
        values = getattr(flat, name)
        if values is not None and not all(math.isfinite(v) for v in values):
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag}: every value must be finite, got {values}")
    if flat.class_weights is not None and (
        any(w < 0 for w in flat.class_weights) or not any(w > 0 for w in flat.class_weights)
    ):
        raise ConfigError(f"--class-weights: must be >= 0 and not all 0, got {flat.class_weights}")
    if flat.mean is not None and flat.std is not None and len(flat.mean) != len(flat.std):
        raise ConfigError(
            f"--mean/--std: {len(flat.mean)} means but {len(flat.std)} standard deviations"
        )
    if flat.std is not None and any(s <= 0 for s in flat.std):
        raise ConfigError(f"--std: every value must be positive, got {flat.std}")
    from cnnkit.train.transfer_config import transfer_settings

    transfer_settings(config.transfer)  # E4 options that do not fit together: one line


def _check_range(
    name: str,
    value: float,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high or not math.isfinite(value):
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ConfigError(
            f"--{name.replace('_', '-')}: must be in {left}{low:g}, {high:g}{right}, got {value}"
        )


def _check_type(flag: str, value: Any, hint: Any) -> None:
    """Check ``value`` against a field's type hint (the handful of shapes TrainConfig uses)."""
    args = get_args(hint)
    if value is None:
        if type(None) in args:
            return
        raise ConfigError(f"{flag}: a value is required")
    if args and type(None) in args:  # X | None
        hint = next(a for a in args if a is not type(None))
        args = get_args(hint)
    origin = getattr(hint, "__origin__", None)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{flag}: must be one of {', '.join(args)}, got {value!r}")
        return
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is str:
        ok = isinstance(value, str)
    elif origin is list:
        ok = isinstance(value, list) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        )
    elif origin is dict:
        ok = isinstance(value, dict) and all(isinstance(k, str) for k in value)
        problem = plain_json_problem(value) if ok else None
        if problem:  # a file's values are never resolved through an import: JSON only
            raise ConfigError(f"{flag}: values must be plain JSON, but {problem}")
    else:  # pragma: no cover - a new field type must be handled here
        raise TypeError(f"{flag}: unhandled field type {hint!r}")
    if not ok:
        raise ConfigError(f"{flag}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
