"""Rules on the training configuration (evidence: ``config``, some with the graph too).

Config *validation* (impossible values: a negative learning rate) stays in
:func:`cnnkit.train.config.validate`; these rules flag values that are legal but suspicious.
"""

from __future__ import annotations

from collections.abc import Iterator

from cnnkit.doctor.checks import Hit, check
from cnnkit.doctor.context import BATCH_NORM_OPS, MATMUL_OPS, NORM_OPS, Context

_AUGMENTATION = (
    "flip",
    "crop_padding",
    "rotation",
    "resized_crop",
    "color_jitter",
    "erasing",
    "mixup",
    "cutmix",
)
SMALL_BATCH = 8
HIGH_LR = {"sgd": 0.1, "adamw": 3e-3}
DEEP = 10


@check(
    "bn-small-batch",
    severity="warning",
    evidence=("graph", "config"),
    source="001 排错清单 (BatchNorm: loss oscillates -> GroupNorm)",
    checks=f"BatchNorm trained with a batch below {SMALL_BATCH}: its batch statistics are noise",
    fix="use a larger batch, or GroupNorm/LayerNorm (batch-independent)",
)
def bn_small_batch(ctx: Context) -> Iterator[Hit]:
    config = ctx.config
    assert config is not None
    if config.optimisation.batch_size >= SMALL_BATCH:
        return
    first = next(ctx.nodes(*BATCH_NORM_OPS), None)
    if first is not None:
        yield Hit(
            ctx.where(first),
            f"BatchNorm with batch_size {config.optimisation.batch_size} (< {SMALL_BATCH}): the "
            "mean and "
            "variance of so few samples are noisy and differ from the running statistics "
            "used at test time",
        )


@check(
    "no-augmentation",
    severity="warning",
    evidence=("config",),
    source="000 section 7 (over-fitting: augmentation); 001 常见误区 (no augmentation)",
    checks="a training config with every augmentation off",
    fix="turn on at least flip and a small random crop (--flip --crop-padding 2)",
)
def no_augmentation(ctx: Context) -> Iterator[Hit]:
    config = ctx.config
    assert config is not None
    if all(not getattr(config.augmentation, name) for name in _AUGMENTATION):
        yield Hit(
            "flip",
            f"no augmentation ({', '.join(_AUGMENTATION)} all off): the network sees the "
            "same pixels every epoch and over-fits sooner",
        )


@check(
    "lr-warmup-missing",
    severity="warning",
    evidence=("graph", "config"),
    source="000 section 7 (exploding values: learning-rate warm-up)",
    checks=f"a high learning rate (SGD >= {HIGH_LR['sgd']}, AdamW >= {HIGH_LR['adamw']}) with "
    f"no warm-up on a network of {DEEP}+ learned layers without normalisation",
    fix="add a warm-up (--warmup 0.05) or normalisation layers, or lower the learning rate",
)
def lr_warmup_missing(ctx: Context) -> Iterator[Hit]:
    config = ctx.config
    assert config is not None
    if config.schedule.warmup > 0 or config.schedule.schedule == "onecycle":
        return
    if config.schedule.lr < HIGH_LR.get(config.optimisation.optimizer, 0.1):
        return
    if next(ctx.nodes(*NORM_OPS), None) is not None:
        return
    depth = sum(1 for _ in ctx.nodes("convolution", *MATMUL_OPS))
    if depth >= DEEP:
        yield Hit(
            "warmup",
            f"lr {config.schedule.lr:g} from the first step on {depth} learned layers with no "
            "normalisation: early updates can blow up before the weights settle",
        )


MEMORY_SHARE = 0.8
# Tensors per parameter during training: the weight, its gradient and the optimiser's state.
_STATES = {"sgd": 3, "adamw": 4}


def device_memory_bytes(device: str) -> int | None:
    """Memory of the device a config trains on: the GPU's, or the machine's RAM for the CPU."""
    import os

    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            return None
        index = int(device.split(":")[1]) if ":" in device else 0
        return int(torch.cuda.get_device_properties(index).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


@check(
    "training-memory",
    severity="warning",
    evidence=("graph", "config"),
    source="000 section 7 (out of memory: smaller resolution or batch; sum_l B H W C bytes)",
    checks=f"seed 000's training estimate (activations x 2 at the config's batch, plus "
    f"weights, gradients and optimiser state) above {MEMORY_SHARE:.0%} of the device's memory",
    fix="lower batch_size (with accumulation_steps to keep the effective batch), the input "
    "resolution, or use gradient checkpointing",
)
def training_memory(ctx: Context) -> Iterator[Hit]:
    config, summary = ctx.config, ctx.summary
    assert config is not None and summary is not None
    available = device_memory_bytes(config.runtime.device)
    if not available:
        return
    per_sample = summary.total.training_activation_bytes / summary.input_shape[0]
    activations = per_sample * config.optimisation.batch_size
    states = _STATES.get(config.optimisation.optimizer, 3) * summary.total.param_bytes
    need = activations + states
    if need > MEMORY_SHARE * available:
        yield Hit(
            "batch_size",
            f"batch {config.optimisation.batch_size} needs about {need / 2**30:.1f} GiB "
            f"({activations / 2**30:.1f} GiB of activations x 2, seed 000) and the device "
            f"has {available / 2**30:.1f} GiB",
        )
