"""Setting a run up: its folder, its model (with data-dependent init), checkpoint basics."""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cnnkit.errors import ConfigError
from cnnkit.runtime import to_memory_format
from cnnkit.train.transfer import fetch_published_once, pretrained_normalisation
from cnnkit.train.transfer import set_up_transfer as plan_transfer
from cnnkit.train.transfer_config import transfer_settings

if TYPE_CHECKING:
    from torch import nn

    from cnnkit.train.config import (
        DataConfig,
        ModelConfig,
        OutputConfig,
        RuntimeConfig,
        TrainConfig,
        TransferConfig,
    )
    from cnnkit.train.datasets import RunData
    from cnnkit.train.distributed import Distributed
    from cnnkit.train.transfer import TransferPlan

# What makes a folder a run that --out must not overwrite: files written once an epoch ends. A
# folder left by a run that failed before its first epoch (config.json alone) can be reused.
RUN_FILES = ("last.pt", "best.pt", "final.json", "metrics.csv")
LOCK_FILE = ".cnnkit-lock"
# images for a data-dependent init: 1.35 M patches of 28x28 images, plenty for airnet's 9x9
# patch covariance
INIT_IMAGES = 2000
# Settings of the model section that hold the epoch some parameters are frozen from (models
# declare which)
FREEZE_FIELDS = ("whiten_bias_epochs",)


def set_up_runtime(settings: RuntimeConfig, distributed: Distributed) -> torch.device:
    """The run's device (this rank's GPU in a distributed run), with torch's threads (cores / N
    per process by default), deterministic algorithms and seeds set."""
    from cnnkit import runtime

    device = distributed.device(runtime.resolve_device(settings.device))
    if settings.nproc > 1 and distributed.world_size == 1:
        raise ConfigError(
            f"--nproc {settings.nproc}: fit trains in the process that calls it; start the "
            f"processes with `cnnkit train --nproc {settings.nproc}`, "
            f"cnnkit.train.launch(config) or torchrun"
        )
    cores = os.cpu_count() or 1
    threads = settings.threads
    if threads is not None and threads > cores:  # torch crashes on absurd counts
        raise ConfigError(f"--threads: {threads} is more than the {cores} CPU cores here")
    if device.type == "cpu":
        torch.set_num_threads(distributed.threads(threads, runtime.choose_threads))
    runtime.set_deterministic(settings.deterministic)
    runtime.seed_everything(settings.seed)
    return device


def make_out_dir(
    output: OutputConfig, model: str, resume: str | Path | None, *, create: bool = True
) -> Path:
    """The run folder: ``resume``'s folder, ``--out``, or ``runs/<model>-<YYYYmmdd-HHMMSS>``.

    A folder that already holds a run is never overwritten: it must be resumed instead. A path
    that is a file, or a folder that cannot be created or written, is one line naming ``--out``.
    ``create=False`` only chooses and checks the path (``fit`` creates it once the data and the
    model are ready, so that a run refused before then leaves nothing behind).
    """
    if resume is not None:
        path = Path(resume)
        return path.parent if path.is_file() else path
    if output.out_dir is not None:
        path = Path(output.out_dir)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--out {path}: is a file, not a folder")
        existing = [name for name in RUN_FILES if (path / name).exists()]
        if existing:
            raise ConfigError(
                f"--out {path}: already holds a run ({existing[0]}); continue it with "
                f"--resume {path} or choose another folder"
            )
        if (path / "config.json").exists() and not _left_by_a_run(path / "config.json"):
            raise ConfigError(
                f"--out {path}: holds a config.json that is not a cnnkit run's; choose another "
                "folder"
            )
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path("runs") / f"{model.replace(':', '-').replace('.', '-')}-{stamp}"
        path, suffix = base, 1
        while path.exists():
            suffix += 1
            path = base.with_name(f"{base.name}-{suffix}")
    if not create:
        blocker = next((p for p in (path, *path.absolute().parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise ConfigError(f"--out {path}: {blocker} is a file, not a folder")
        if blocker is not None and not os.access(blocker, os.W_OK | os.X_OK):
            raise ConfigError(f"--out {path}: the folder {blocker} is not writable")
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only parent, a file on the way, ...
        raise ConfigError(f"--out {path}: cannot create the folder ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {path}: the folder is not writable")
    return path


def _left_by_a_run(config_json: Path) -> bool:
    """Whether ``config_json`` is a run's resolved config (so the folder may be reused)."""
    import json

    from cnnkit.train.config import is_run_config

    try:
        data = json.loads(config_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return is_run_config(data)


def lock_run_folder(path: Path) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive lock on ``path`` for one training; a second one is refused.

    ``fcntl.flock`` on ``.cnnkit-lock`` (holding the owner's pid): the kernel drops the lock
    when its process dies, so a lock left by a killed run is simply taken over. The file is
    removed when the context ends. (No lock where fcntl is missing: Windows.)
    """
    return _locked(path / LOCK_FILE)


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    for _ in range(3):
        handle = open(lock, "a+")  # noqa: SIM115 - held open while the run trains
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise ConfigError(
                f"{lock.parent}: another training (pid {owner}) is writing this run folder; "
                "wait for it or choose another --out"
            ) from None
        # the holder before us may have removed the file after we opened it: lock the live one
        try:
            same = os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    else:  # pragma: no cover - three removals in a row while racing
        raise ConfigError(f"{lock.parent}: cannot lock the run folder; try again")
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()  # still holding the lock: nobody else can own this file now
        handle.close()


def clean_stale_temporaries(path: Path) -> list[Path]:
    """Remove ``.NAME.tmp-<pid>`` files (``cnnkit._io``'s atomic writes) of dead processes.

    A process killed inside an atomic write leaves its temporary file; the destination itself is
    intact. Called with the folder's lock held, so no live writer of this run is affected.
    """
    removed = []
    for candidate in path.glob(".*.tmp-*"):
        pid_text = candidate.name.rsplit(".tmp-", 1)[1]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
            removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process (or an odd number): leave its file alone
    return True


def build_model(
    config: ModelConfig,
    data: RunData,
    device: torch.device,
    runtime: RuntimeConfig,
    *,
    initialise: bool,
    module: nn.Module | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The configured model for the data's channels and classes, on ``device``.

    ``num_classes`` and ``in_channels`` come from the data and are passed when the factory
    accepts them (``cnnkit.models.instantiate``); one forward pass on a blank image then checks
    that the model takes the data's images and gives one logit per class, so a mismatch is one
    line here rather than a failure inside the first step. A model with a data-dependent
    initialisation (``cnnkit_init_from_data(images)``, e.g. airnet's whitening layer) gets it
    from the first training images, normalised (``initialise``; a resumed run loads it from the
    checkpoint instead). Returns the model and
    the keyword arguments it was built with (what a checkpoint records). ``module``, the
    user's own ``nn.Module``, replaces ``config.model``: a copy of it trains (the user's object
    is left as found).
    """
    from cnnkit.models import instantiate
    from cnnkit.nn.matmul_grad import use_matmul_weight_grad

    channels = data.image_shape[0]
    classes = len(data.classes)
    explicit = dict(config.model_kwargs)
    if isinstance(explicit.get("widths"), list):
        explicit["widths"] = tuple(explicit["widths"])
    requested = explicit.get("num_classes")
    if isinstance(requested, int) and requested != classes:
        raise ConfigError(
            f"--model-kwargs: num_classes is {requested}, but {data.train.name} has "
            f"{classes} classes (leave num_classes out: it follows the data)"
        )
    optional = {"num_classes": classes, "in_channels": channels}
    spec = module if module is not None else config.model
    model, kwargs = instantiate(spec, explicit, optional=optional)
    check_model_fits_data(model, config.model, kwargs, data)
    init_from_data = getattr(model, "cnnkit_init_from_data", None)
    if initialise and callable(init_from_data):
        mean = torch.tensor(data.mean).view(1, -1, 1, 1)
        std = torch.tensor(data.std).view(1, -1, 1, 1)
        init_from_data(data.train.images[:INIT_IMAGES].float().div(255).sub(mean).div(std))
    freeze_schedule(model, config)  # a freeze flag the model does not declare is refused
    model = model.to(device)
    if runtime.channels_last:
        model = to_memory_format(model, channels_last=True)
    if runtime.matmul_weight_grad and device.type == "cpu":
        use_matmul_weight_grad(model)
    return model, kwargs


def keep_pretrained_normalisation(
    transfer: TransferConfig, settings: DataConfig, data: RunData
) -> RunData:
    """Fine-tuning a cnnkit run: normalise with its mean and std, not the new data's
    (torchvision's published weights, ``--pretrained``: ImageNet's).

    The pre-trained weights expect inputs normalised as in pre-training (what torchvision's
    and timm's pretrained models require). Kept unless ``--mean``/``--std`` are given, or the
    channels differ (a stem that was adapted: the new data's statistics are used).
    """
    plan = transfer_settings(transfer)
    if plan is None or (plan.init_from is None and not plan.pretrained):
        return data
    if settings.mean is not None or settings.std is not None:
        return data
    if plan.pretrained:  # torchvision's weights: ImageNet's normalisation
        from cnnkit.models.pretrained import IMAGENET_MEAN, IMAGENET_STD

        found: tuple[list[float], list[float]] | None = (
            list(IMAGENET_MEAN),
            list(IMAGENET_STD),
        )
    else:
        found = pretrained_normalisation(str(plan.init_from))
    if found is None or len(found[0]) != data.image_shape[0]:
        return data
    return dataclasses.replace(data, mean=tuple(found[0]), std=tuple(found[1]))


def set_up_transfer(
    transfer: TransferConfig,
    model_name: str,
    lr: float,
    data: RunData,
    model: nn.Module,
    initialise: bool,
    distributed: Distributed | None = None,
) -> tuple[TransferPlan, list[nn.Module]] | None:
    """Fine-tuning (E4): the initial weights (a new run), frozen stages and per-stage rates.

    None for a run without E4 settings. Returns the plan (what the header prints, the
    optimiser's per-parameter rate multipliers) and the BatchNorm layers kept in eval mode.
    With several processes, ``--pretrained`` weights are fetched by rank 0 alone while the
    others wait (:func:`~cnnkit.train.transfer.fetch_published_once`); each then reads the file.
    """
    settings = transfer_settings(transfer)
    if settings is None:
        return None
    if initialise and settings.pretrained and distributed is not None:
        fetch_published_once(model_name, distributed)
    return plan_transfer(
        model,
        settings,
        model_name=model_name,
        classes=list(data.classes),
        lr=lr,
        initialise=initialise,
    )


def check_model_fits_data(
    model: nn.Module, spec: str, kwargs: dict[str, Any], data: RunData
) -> None:
    """One forward pass (eval mode, no grad) on a blank image of the data's shape.

    Raises :class:`ConfigError` when it fails or when the model does not give one logit per
    class, saying which of ``num_classes``/``in_channels`` the factory did not accept.
    """
    channels, height, width = data.image_shape
    classes = len(data.classes)
    ignored = [k for k in ("num_classes", "in_channels") if k not in kwargs]
    note = f" (it does not accept {' or '.join(ignored)})" if ignored else ""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(torch.zeros(1, channels, height, width))
    except Exception as exc:  # the user's model cannot take these images: one line, why
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConfigError(
            f"--model {spec}: a forward pass on one {channels}x{height}x{width} image of "
            f"{data.train.name} failed{note}: {type(exc).__name__}: {text}"
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(logits, torch.Tensor) or logits.shape != (1, classes):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ConfigError(
            f"--model {spec}: gives output {shape} for one image, but {data.train.name} needs "
            f"(1, {classes}): one logit per class{note}"
        )


def freeze_schedule(model: nn.Module, config: ModelConfig) -> dict[str, int]:
    """Parameter-name pattern -> the 0-based epoch it is frozen from, for this run.

    A model declares ``cnnkit_freeze_fields``: pattern -> the model setting holding that epoch
    (airnet: ``{"whiten.bias": "whiten_bias_epochs"}``). A freeze field the user set that the
    model does not declare is a :class:`ConfigError` naming the flag.
    """
    declared: dict[str, str] = dict(getattr(model, "cnnkit_freeze_fields", {}) or {})
    for name in FREEZE_FIELDS:
        if getattr(config, name) is not None and name not in declared.values():
            flag = "--" + name.replace("_", "-")
            raise ConfigError(
                f"{flag}: --model {config.model} has no parameters that this flag freezes "
                "(only a model that declares it, such as airnet, has)"
            )
    return {
        pattern: getattr(config, name)
        for pattern, name in declared.items()
        if getattr(config, name) is not None
    }


def freeze_for_epoch(model: nn.Module, schedule: dict[str, int], epoch: int) -> None:
    """Freeze the parameters ``schedule`` names (fnmatch patterns) from their epoch on.

    airbench trains airnet's whitening bias for its first 3 of 10 epochs. Once it is frozen
    nothing before ``layer1`` needs a gradient, so backward skips the input gradient of
    ``layer1.conv1`` (airnet's steps ran about 15% faster here, docs/benchmarks.md). A function
    of the epoch (0-based), so a resumed run freezes exactly where the uninterrupted one did.
    """
    for pattern, first in schedule.items():
        if epoch >= first:
            for name, parameter in model.named_parameters():
                if fnmatch.fnmatchcase(name, pattern):
                    parameter.requires_grad_(False)


def checkpoint_state(
    config: TrainConfig, model_kwargs: dict[str, Any], data: RunData, epoch: int
) -> dict[str, Any]:
    """The entries every checkpoint of a run shares (what is needed to rebuild and evaluate)."""
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in model_kwargs.items()}
    return {
        "model_name": config.model.model,
        "model_kwargs": kwargs,
        "config": config.to_dict(),
        "epoch": epoch,
        "classes": list(data.classes),
        "mean": list(data.mean),
        "std": list(data.std),
        "image_shape": list(data.image_shape),
        "dataset": data.train.name,
    }
