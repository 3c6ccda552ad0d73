"""The one training configuration: :class:`TrainConfig`, and how it is resolved.

Every knob of a run is a field here with its help text in the field's metadata; the ``cnnkit
train`` flags are generated from these fields (``cli/train.py``), so nothing is defined twice.
Resolution order (nanoGPT's and timm's): dataclass defaults < recipe < ``--config`` JSON file <
flags, where a flag left at ``None`` overrides nothing.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from cnnkit.errors import ConfigError

Optimizer = Literal["sgd", "adamw"]
Schedule = Literal["cosine", "onecycle", "linear", "constant"]
Precision = Literal["auto", "off", "bf16", "fp16"]
EvalWeights = Literal["best", "last"]
FinetuneMode = Literal["features", "partial", "full"]


def _help(text: str) -> dict[str, str]:
    """Field metadata: the help text that ``cnnkit train --help`` shows for the flag."""
    return {"help": text}


@dataclass
class TrainConfig:
    """A complete description of a training run (003's recipe is one instance: ``seed003``)."""

    # -- model and data -------------------------------------------------------------------------
    model: str = field(
        default="airnet",
        metadata=_help("zoo name, or package.module:callable returning an nn.Module"),
    )
    model_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata=_help("extra keyword arguments for the model (JSON)")
    )
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
    # -- augmentation (batched, on the device) --------------------------------------------------
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
    # -- optimisation ---------------------------------------------------------------------------
    epochs: int = field(
        default=10, metadata=_help("number of epochs (an upper bound when --time-budget is set)")
    )
    batch_size: int = field(default=128, metadata=_help("training batch size"))
    drop_last: bool = field(
        default=True,
        metadata=_help("drop the last incomplete training batch (the seed003 recipe keeps it)"),
    )
    optimizer: Optimizer = field(default="sgd", metadata=_help("sgd (momentum, nesterov) or adamw"))
    lr: float = field(default=0.1, metadata=_help("peak learning rate"))
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
    label_smoothing: float = field(
        default=0.0, metadata=_help("label smoothing of the cross-entropy")
    )
    class_weights: list[float] | None = field(
        default=None, metadata=_help("per-class loss weights (one per class)")
    )
    grad_clip: float | None = field(
        default=None, metadata=_help("clip the gradient norm to this value")
    )
    accumulation_steps: int = field(
        default=1, metadata=_help("batches accumulated per optimiser step")
    )
    ema: float | None = field(
        default=None, metadata=_help("EMA decay of the weights per step (e.g. 0.999)")
    )
    # -- stopping and evaluation ----------------------------------------------------------------
    whiten_bias_epochs: int | None = field(
        default=None,
        metadata=_help(
            "airnet: train the whitening conv's bias for this many epochs, then freeze it "
            "(airbench; later steps skip a gradient; default: always train it)"
        ),
    )
    patience: int | None = field(
        default=None, metadata=_help("stop after this many epochs without a better val top-1")
    )
    time_budget: float | None = field(
        default=None,
        metadata=_help("seconds of training; the schedule follows elapsed time and ends annealed"),
    )
    eval_weights: EvalWeights = field(
        default="best",
        metadata=_help(
            "test the best (by val top-1) or the last weights; EMA weights when --ema is set"
        ),
    )
    tta: bool = field(
        default=False,
        metadata=_help("test-time augmentation: average the logits of the image and its flip"),
    )
    tta_shift: int = field(
        default=0,
        metadata=_help(
            "with --tta, also average over the image shifted by this many pixels "
            "(airbench's TTA level 2; 0: off)"
        ),
    )
    eval_batch_size: int = field(
        default=500, metadata=_help("batch size of evaluation (500: fastest here)")
    )
    hardest: int = field(default=16, metadata=_help("number of hardest test samples reported"))
    # -- speed ----------------------------------------------------------------------------------
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
    # -- reproducibility and output -------------------------------------------------------------
    seed: int = field(
        default=0, metadata=_help("seed of initialisation, shuffling and augmentation")
    )
    deterministic: bool = field(
        default=False, metadata=_help("deterministic algorithms (exact resume, slower)")
    )
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
    # -- E4 transfer learning (cnnkit finetune; read only by train/transfer.transfer_settings) --
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

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (what config.json and checkpoints hold)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a dict; an unknown key names the source and the closest field."""
        return replace_config(cls(), data, source)


def field_help(name: str) -> str:
    """The help text of a :class:`TrainConfig` field."""
    return next(f.metadata["help"] for f in fields(TrainConfig) if f.name == name)


def field_types() -> dict[str, Any]:
    """Resolved type hints of the fields (for CLI generation and value coercion)."""
    return get_type_hints(TrainConfig)


def replace_config(config: TrainConfig, changes: dict[str, Any], source: str) -> TrainConfig:
    """A copy of ``config`` with ``changes`` applied (a ``None`` value sets the field to None)."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(changes) - known)
    if unknown:
        from cnnkit.errors import suggest

        close = suggest(unknown[0], known)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{source}: unknown setting {unknown[0]!r}{hint}")
    return dataclasses.replace(config, **changes)


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

    ``overrides`` holds only what the user set (the CLI leaves out flags it was not given).
    A budget rule (``recipes.BUDGET_RULES``) adapts a recipe to its time budget, e.g. ``best``
    picks a wider, then deeper network for long budgets; it leaves alone the fields the user
    set.
    """
    from cnnkit.train.recipes import RECIPES

    config = TrainConfig.from_dict(RECIPES.get(recipe).to_dict()) if recipe else TrainConfig()
    explicit: set[str] = set(overrides or ())
    if config_file is not None:
        from_file = load_config_file(config_file)
        if "model" not in (overrides or {}):
            refuse_recorded_model(from_file.get("model"), f"--config {config_file}", ConfigError)
        if "init_from" not in (overrides or {}):
            refuse_recorded_code(from_file.get("init_from"), f"--config {config_file}")
        explicit |= set(from_file)
        config = replace_config(config, from_file, f"--config {config_file}")
    if overrides:
        config = replace_config(config, overrides, "flags")
    if recipe:
        config = _keep_model_settings_with_their_model(config, recipe, explicit)
    from cnnkit.train.recipes import BUDGET_RULES

    rule = BUDGET_RULES.find(recipe) if recipe else None
    return rule(config, frozenset(explicit)) if rule is not None else config


def _keep_model_settings_with_their_model(
    config: TrainConfig, recipe: str, explicit: set[str]
) -> TrainConfig:
    """A recipe's model-specific settings apply only to the recipe's model.

    ``--recipe fast --model resnet18``: fast's airnet keyword arguments and whitening schedule
    mean nothing to resnet18, so the fields in ``MODEL_SPECIFIC`` that the user did not set
    return to their defaults (what ``--dry-run`` then shows is what runs).
    """
    from cnnkit.train.recipes import RECIPES

    if config.model == RECIPES.get(recipe).model:
        return config
    defaults = TrainConfig()
    reset = {name: getattr(defaults, name) for name in MODEL_SPECIFIC if name not in explicit}
    return dataclasses.replace(config, **reset)


# Fields that only make sense for the model a recipe names (see _keep_model_settings_...).
MODEL_SPECIFIC = ("model_kwargs", "whiten_bias_epochs")


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
    return replace_config(TrainConfig.from_dict(saved["config"], source=source), changes, "flags")


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
    for item in fields(config):
        value = getattr(config, item.name)
        flag = "--" + item.name.replace("_", "-")
        _check_type(flag, value, hints[item.name])
    positive_ints = ("epochs", "batch_size", "eval_batch_size", "accumulation_steps")
    for name in positive_ints:
        if getattr(config, name) < 1:
            raise ConfigError(
                f"--{name.replace('_', '-')}: must be >= 1, got {getattr(config, name)}"
            )
    _check_range("lr", config.lr, 0.0, math.inf, low_open=True)
    _check_range("bias_lr_scale", config.bias_lr_scale, 0.0, math.inf, low_open=True)
    _check_range("momentum", config.momentum, 0.0, 1.0, high_open=True)
    _check_range("weight_decay", config.weight_decay, 0.0, math.inf)
    _check_range("warmup", config.warmup, 0.0, 1.0, high_open=True)
    _check_range("min_lr", config.min_lr, 0.0, config.lr)
    _check_range("label_smoothing", config.label_smoothing, 0.0, 1.0, high_open=True)
    _check_range("erasing", config.erasing, 0.0, 1.0)
    _check_range("resized_crop", config.resized_crop, 0.0, 1.0)
    _check_range("color_jitter", config.color_jitter, 0.0, 1.0)
    for name in ("val_size", "crop_padding", "tta_shift", "hardest", "rotation", "mixup", "cutmix"):
        _check_range(name, getattr(config, name), 0.0, math.inf)
    if config.ema is not None:
        _check_range("ema", config.ema, 0.0, 1.0, low_open=True, high_open=True)
    if config.grad_clip is not None:
        _check_range("grad_clip", config.grad_clip, 0.0, math.inf, low_open=True)
    if config.time_budget is not None:
        _check_range("time_budget", config.time_budget, 0.0, math.inf, low_open=True)
    if config.whiten_bias_epochs is not None and config.whiten_bias_epochs < 0:
        raise ConfigError(f"--whiten-bias-epochs: must be >= 0, got {config.whiten_bias_epochs}")
    if config.grad_flow < 0:
        raise ConfigError(f"--grad-flow: must be >= 0, got {config.grad_flow}")
    if config.patience is not None and config.patience < 1:
        raise ConfigError(f"--patience: must be >= 1, got {config.patience}")
    if config.schedule_epochs is not None and config.schedule_epochs < 1:
        raise ConfigError(f"--schedule-epochs: must be >= 1, got {config.schedule_epochs}")
    if config.train_subset is not None and config.train_subset < 1:
        raise ConfigError(f"--train-subset: must be >= 1, got {config.train_subset}")
    if config.threads is not None and config.threads < 1:
        raise ConfigError(f"--threads: must be >= 1, got {config.threads}")
    if config.patience is not None and config.val_size == 0:
        raise ConfigError("--patience: early stopping needs a validation split (--val-size > 0)")
    for name in ("seed", "split_seed"):  # what torch's generators accept
        if not -(2**63) <= getattr(config, name) < 2**63:
            raise ConfigError(
                f"--{name.replace('_', '-')}: must be in [-2^63, 2^63), got {getattr(config, name)}"
            )
    if config.rotation > 180:
        raise ConfigError(f"--rotation: must be in [0, 180] degrees, got {config.rotation}")
    for name in ("mean", "std", "class_weights"):
        values = getattr(config, name)
        if values is not None and not all(math.isfinite(v) for v in values):
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag}: every value must be finite, got {values}")
    if config.class_weights is not None and (
        any(w < 0 for w in config.class_weights) or not any(w > 0 for w in config.class_weights)
    ):
        raise ConfigError(
            f"--class-weights: must be >= 0 and not all 0, got {config.class_weights}"
        )
    if config.mean is not None and config.std is not None and len(config.mean) != len(config.std):
        raise ConfigError(
            f"--mean/--std: {len(config.mean)} means but {len(config.std)} standard deviations"
        )
    if config.std is not None and any(s <= 0 for s in config.std):
        raise ConfigError(f"--std: every value must be positive, got {config.std}")
    from cnnkit.train.transfer_config import transfer_settings

    transfer_settings(config)  # E4 options that do not fit together: one line


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
