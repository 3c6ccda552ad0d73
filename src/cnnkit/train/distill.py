"""Knowledge distillation (E6): the loss, the frozen teacher, and the objective that joins them.

Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network" (2015): the student
learns from the labels and from the teacher's softened class probabilities. The teacher is a
cnnkit run's checkpoint (a zoo model, or the user's code when the user names it), run in eval
mode without gradients on exactly the batch the student sees (the loader's augmented images,
MixUp and CutMix included), once per step, under the student's device, autocast and memory
format. It plugs into the loop's objective seam (objective.py).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from cnnkit import runtime
from cnnkit.errors import CheckpointError, ConfigError
from cnnkit.train.config import USER_MODEL_PREFIX
from cnnkit.train.objective import Objective

if TYPE_CHECKING:
    from cnnkit.train.datasets import RunData
    from cnnkit.train.distill_settings import DistillSettings

# the checkpoint key (last.pt and best.pt of a distilled run) holding the teacher's fingerprint
TEACHER_KEY = "teacher_sha256"


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float,
    temperature: float,
    *,
    class_weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Hinton et al. (2015): ``(1 - A) CE(z_s, y) + A T^2 KL(softmax(z_t/T) || softmax(z_s/T))``.

    With ``p = softmax(z_t / T)`` and ``q = softmax(z_s / T)`` per image,
    ``KL(p || q) = sum_c p_c (log p_c - log q_c)`` is summed over the classes and averaged over
    the batch (``reduction="batchmean"``; a ``"mean"`` would also divide by the number of
    classes). ``T^2`` keeps the soft term's gradient, which scales as ``1/T^2``, comparable to
    the hard term's whatever ``T`` (section 2 of the paper). ``CE`` is exactly the plain
    objective's ``F.cross_entropy(z_s, y, weight=class_weights,
    label_smoothing=label_smoothing)``, with ``y`` class indices or per-class probabilities
    (MixUp and CutMix targets); so ``A = 0`` is the plain objective, bit for bit. Both logits
    are taken in float32.
    """
    student = student_logits.float()
    teacher = teacher_logits.float()
    hard = F.cross_entropy(student, targets, weight=class_weights, label_smoothing=label_smoothing)
    soft = F.kl_div(
        F.log_softmax(student / temperature, dim=1),
        F.log_softmax(teacher / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return (1.0 - alpha) * hard + (alpha * temperature * temperature) * soft


@dataclass
class Teacher:
    """A frozen teacher: eval mode, ``requires_grad`` off, on the student's device.

    ``scale``/``offset`` map the student's normalised images to the teacher's normalisation
    (``x_t = x_s * std_s / std_t + (mean_s - mean_t) / std_t``, per channel); None when the two
    agree, so the teacher then sees the student's very tensor.
    """

    module: nn.Module
    source: str  # the checkpoint file, or user:<module>.<class>
    model: str  # the teacher's model name (zoo name or code)
    sha256: str  # of the checkpoint file's bytes, or of a module's state dict
    scale: torch.Tensor | None = None
    offset: torch.Tensor | None = None

    @torch.no_grad()
    def logits(self, images: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
        """The teacher's logits for the student's batch, without an autograd graph."""
        if self.scale is not None and self.offset is not None:
            images = images * self.scale + self.offset
        with runtime.autocast(images.device, dtype):
            return self.module(images)

    def describe(self, settings: DistillSettings) -> str:
        """The run header's line about the teacher."""
        params = sum(p.numel() for p in self.module.parameters())
        rescaled = ", its own normalisation" if self.scale is not None else ""
        model = f"{self.model}, " if self.model != self.source else ""
        return (
            f"teacher: {self.source} ({model}{params:,} parameters, sha256 "
            f"{self.sha256[:12]}{rescaled}); loss (1 - {settings.alpha:g}) CE + "
            f"{settings.alpha:g} * {settings.temperature:g}^2 KL"
        )


def distillation_objective(
    device: torch.device,
    dtype: torch.dtype | None,
    teacher: Teacher,
    settings: DistillSettings,
    *,
    class_weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> Objective:
    """The objective seam's ``(model, images, targets) -> (loss, logits)`` with a teacher.

    The student's forward runs as in ``cross_entropy_objective`` (autocast ``dtype``); the
    teacher's logits for the same ``images`` are computed once, under ``no_grad``; the loss
    is :func:`distillation_loss`. The logits returned (training accuracy) are the student's.
    """
    alpha, temperature = settings.alpha, settings.temperature

    def objective(
        model: nn.Module, images: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with runtime.autocast(device, dtype):
            logits = model(images)
        taught = teacher.logits(images, dtype)
        loss = distillation_loss(
            logits,
            taught,
            targets,
            alpha,
            temperature,
            class_weights=class_weights,
            label_smoothing=label_smoothing,
        )
        return loss, logits

    return objective


def load_teacher(
    settings: DistillSettings,
    data: RunData,
    device: torch.device,
    *,
    channels_last: bool,
    module: nn.Module | None = None,
) -> Teacher:
    """Build the frozen teacher and check that it fits the student's data, before training.

    From ``settings.checkpoint`` (a file, or a run folder: its ``best.pt``, loaded with
    ``weights_only=True``): its recorded zoo model, or the code the user named
    (``settings.code`` = ``package.module:callable``, or ``module``, the user's own
    ``nn.Module``, a copy of which gets the checkpoint's weights). Without a checkpoint, a copy of
    ``module`` with its own weights. The teacher must have been trained on images of the data's
    shape (its checkpoint's ``image_shape``) and give one logit per class of the data (its
    ``classes``, and one forward pass on a blank image); anything else is one
    :class:`ConfigError` line naming ``--teacher``. Building draws no random numbers from the
    run's generators (a teacher with ``A = 0`` leaves the run bit-identical).
    """
    with torch.random.fork_rng(devices=[]):  # a model's constructor draws initial weights
        if settings.checkpoint is None:
            teacher = _module_teacher(settings, module)
        else:
            teacher = _checkpoint_teacher(settings, data, module)
    _check_forward(teacher.module, settings.source, data)
    network = teacher.module
    network.eval()
    network.requires_grad_(False)
    network.to(device)
    if channels_last:
        runtime.to_memory_format(network, channels_last=True)
    if teacher.scale is not None and teacher.offset is not None:
        teacher.scale, teacher.offset = teacher.scale.to(device), teacher.offset.to(device)
    return teacher


def _module_teacher(settings: DistillSettings, module: nn.Module | None) -> Teacher:
    code = settings.code
    if module is None:
        if code is not None and code.startswith(USER_MODEL_PREFIX):
            raise ConfigError(
                f"teacher_model {code}: the teacher is the user's own nn.Module; give it in "
                "Python (fit(config, teacher=<the module>))"
            )
        raise ConfigError(
            f"--teacher-model {code}: names the teacher's code, but its weights come from a "
            "checkpoint: give --teacher CHECKPOINT too"
        )
    return Teacher(
        module=copy.deepcopy(module),  # the user's module is left as found
        source=str(code),
        model=str(code),
        sha256=state_sha256(module),
    )


def _checkpoint_teacher(
    settings: DistillSettings, data: RunData, module: nn.Module | None
) -> Teacher:
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.evaluation import model_from_checkpoint

    path = Path(str(settings.checkpoint))
    if path.is_dir():
        path = path / "best.pt"
    flag = f"--teacher {settings.checkpoint}"
    if not path.is_file():
        raise CheckpointError(f"{flag}: no such checkpoint file ({path})")
    try:
        saved = load_checkpoint(path)
    except CheckpointError as exc:
        raise CheckpointError(f"--teacher: {exc}") from None
    recorded = str(saved["model_name"])
    code: Any = module if module is not None else settings.code
    if code is None and ":" in recorded:  # a file never selects code (user: or module:callable)
        from cnnkit.train.distill_settings import refuse_recorded_teacher

        refuse_recorded_teacher(recorded, flag, CheckpointError)
    if isinstance(code, str) and code.startswith(USER_MODEL_PREFIX):
        own = code[len(USER_MODEL_PREFIX) :]
        raise ConfigError(
            f"{flag}: the teacher's code is the user's own nn.Module {own}; give it in Python "
            "(fit(config, teacher=<the module>))"
        )
    classes, shape = list(saved["classes"]), tuple(saved["image_shape"])
    if len(classes) != len(data.classes):
        raise ConfigError(
            f"{flag}: the teacher gives {len(classes)} logits per image, but "
            f"{data.train.name} has {len(data.classes)} classes"
        )
    if classes != list(data.classes):
        first = next(i for i, name in enumerate(classes) if name != data.classes[i])
        raise ConfigError(
            f"{flag}: the teacher's class {first} is {classes[first]!r}, {data.train.name}'s "
            f"is {data.classes[first]!r}: its logits would teach the wrong classes"
        )
    if shape != tuple(data.image_shape):
        raise ConfigError(
            f"{flag}: the teacher was trained on {'x'.join(map(str, shape))} images, "
            f"{data.train.name} has {'x'.join(map(str, data.image_shape))}"
        )
    network = model_from_checkpoint(saved, path, "model", code)
    scale, offset = _renormalisation(data, saved["mean"], saved["std"])
    if code is None or isinstance(code, str):
        name = code or recorded
    else:
        name = f"{USER_MODEL_PREFIX}{type(code).__module__}.{type(code).__qualname__}"
    return Teacher(
        module=network,
        source=str(path),
        model=name,
        sha256=file_sha256(path),
        scale=scale,
        offset=offset,
    )


def _renormalisation(
    data: RunData, mean: list[float], std: list[float]
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Per-channel ``(scale, offset)`` from the student's normalisation to the teacher's."""
    if list(map(float, mean)) == list(data.mean) and list(map(float, std)) == list(data.std):
        return None, None
    mean_s = torch.tensor(data.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_s = torch.tensor(data.std, dtype=torch.float32).view(1, -1, 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return std_s / std_t, (mean_s - mean_t) / std_t


def _check_forward(network: nn.Module, source: str, data: RunData) -> None:
    """One forward pass (eval mode, no grad) on a blank image: one logit per class."""
    channels, height, width = data.image_shape
    classes = len(data.classes)
    network.eval()
    where = next(network.parameters(), torch.empty(0)).device  # a user's module may be on a GPU
    try:
        with torch.no_grad():
            logits = network(torch.zeros(1, channels, height, width, device=where))
    except Exception as exc:  # the teacher cannot take the student's images: one line, why
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConfigError(
            f"--teacher {source}: a forward pass on one {channels}x{height}x{width} image of "
            f"{data.train.name} failed: {type(exc).__name__}: {text}"
        ) from None
    if not isinstance(logits, torch.Tensor) or logits.shape != (1, classes):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ConfigError(
            f"--teacher {source}: gives output {shape} for one image, but {data.train.name} "
            f"needs (1, {classes}): one logit per class"
        )


def check_resumed_teacher(recorded: Any, teacher: Teacher | None, resume: Any) -> None:
    """A resumed run keeps its teacher: the same file (by sha256), or none if it had none."""
    if recorded is None and teacher is None:
        return
    if recorded is None:
        raise ConfigError(
            f"--teacher {teacher.source}: the run in {resume} trained without a teacher; a "  # type: ignore[union-attr]  # recorded is not None here, so teacher is not None
            "resumed run keeps its objective (distil into a new --out)"
        )
    if not isinstance(recorded, str):
        raise CheckpointError(f"{resume}: field {TEACHER_KEY!r} must be a sha256 string")
    if teacher is None:
        raise ConfigError(
            f"--resume {resume}: the run was distilled from a teacher (sha256 {recorded[:12]}); "
            "a resumed run keeps it (give --teacher with that checkpoint)"
        )
    if teacher.sha256 != recorded:
        raise ConfigError(
            f"--teacher {teacher.source}: not the teacher the run in {resume} began with "
            f"(sha256 {teacher.sha256[:12]}, the run's {recorded[:12]}); resume with that "
            "teacher, or distil into a new --out"
        )


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (the teacher checkpoint's fingerprint)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def state_sha256(module: nn.Module) -> str:
    """sha256 over a module's state dict: each entry's name, dtype, shape and bytes, in order."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
