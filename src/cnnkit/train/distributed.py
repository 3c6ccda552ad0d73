"""The distributed context of a run: which process this is, of how many (E7).

One process is rank 0 of 1 and every method below is the identity there (no collective runs, so a
single-process run is unchanged). Launched by ``torchrun`` or ``cnnkit train --nproc N``
(train/launch.py), each process joins torch.distributed's process group (gloo on CPU, NCCL on
CUDA) and the loop asks this object wherever the processes differ or must agree:

- the training loader yields this rank's contiguous slice of each *global* batch, which the
  seeded loader gathered and augmented whole, so the union over ranks is the single-process batch
  with the single-process augmentation (MixUp/CutMix partners included);
- validation and test images are split into contiguous shards (no padding: each image is
  evaluated exactly once) and the metric accumulators are gathered and merged in rank order;
- DDP averages the gradients; BatchNorm running statistics stay per rank during an epoch
  (``broadcast_buffers=False``: with the default every forward copies rank 0's buffers over the
  others', so the statistics follow rank 0's data only) and are averaged at each epoch's end
  (timm's ``--dist-bn reduce``), or are synchronised by SyncBatchNorm on CUDA (``--sync-bn``);
- only rank 0 writes the run folder and prints; the time budget (the slowest rank's clock), early
  stopping and a non-finite loss (naming the rank and the step) are decided by all together.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from cnnkit.errors import CnnkitError, ConfigError, TrainingError, UnsupportedError

if TYPE_CHECKING:
    from torch import nn

    from cnnkit.data import ImageDataset
    from cnnkit.train.config import RuntimeConfig
    from cnnkit.train.metrics import MetricAccumulator

T = TypeVar("T")

# what torchrun (and torch's elastic launcher) put in each worker's environment
ENV_WORLD_SIZE, ENV_RANK, ENV_LOCAL_RANK = "WORLD_SIZE", "RANK", "LOCAL_RANK"
ENV_LOCAL_WORLD_SIZE = "LOCAL_WORLD_SIZE"


class PeerLostError(TrainingError):
    """A process of a distributed run lost the others (one ended, or the network failed)."""


@dataclass(frozen=True)
class DistributedSettings:
    """What a run's config says about running on several processes (E7 fields)."""

    nproc: int = 1  # processes cnnkit launches on this machine (torchrun decides for itself)
    backend: str = "auto"  # auto, gloo, nccl
    sync_bn: bool = False
    timeout: float = 300.0  # seconds for the rendezvous and for each collective


def distributed_settings(settings: RuntimeConfig) -> DistributedSettings:
    """The one reader of the runtime section's E7 fields."""
    return DistributedSettings(
        nproc=settings.nproc,
        backend=settings.dist_backend,
        sync_bn=settings.sync_bn,
        timeout=settings.dist_timeout,
    )


def launched_world_size() -> int:
    """How many processes the launcher (torchrun, ``--nproc``) started: 1 when there is none."""
    try:
        return max(1, int(os.environ.get(ENV_WORLD_SIZE, "1")))
    except ValueError:
        return 1


def launched_rank() -> int:
    """This process's rank as the launcher set it (0 without a launcher)."""
    try:
        return int(os.environ.get(ENV_RANK, "0"))
    except ValueError:
        return 0


def choose_backend(settings: DistributedSettings, device: torch.device, local_world: int) -> str:
    """The backend for ``device`` (gloo on CPU, nccl on CUDA, or the one asked for), checked.

    One line naming the flag when the backend is not built into this torch, NCCL is asked for a
    CPU run, SyncBatchNorm for a CPU run (torch refuses CPU modules), or this machine has fewer
    cores (CPU) or GPUs (CUDA) than the processes it is to run.
    """
    import torch.distributed as dist

    backend = settings.backend
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    available = {"gloo": dist.is_available() and dist.is_gloo_available(),
                 "nccl": dist.is_available() and dist.is_nccl_available()}  # fmt: skip
    if not available.get(backend, False):
        raise UnsupportedError(
            f"--dist-backend {backend}: not available in this PyTorch build "
            f"({torch.__version__}; available: "
            f"{', '.join(k for k, v in available.items() if v) or 'none'})"
        )
    if backend == "nccl" and device.type != "cuda":
        raise UnsupportedError(
            f"--dist-backend nccl: NCCL needs CUDA devices, this run is on {device.type} "
            "(use gloo, the default on CPU)"
        )
    if settings.sync_bn and device.type != "cuda":
        raise UnsupportedError(
            "--sync-bn: SyncBatchNorm needs CUDA devices (torch refuses CPU modules); on CPU "
            "BatchNorm running statistics are averaged across processes at each epoch end"
        )
    if device.type == "cuda":
        gpus = torch.cuda.device_count()
        if local_world > gpus:
            raise ConfigError(
                f"--nproc {local_world}: one process per GPU, and this machine has {gpus} GPU(s)"
            )
    else:
        cores = os.cpu_count() or 1
        if local_world > cores:
            raise ConfigError(
                f"--nproc {local_world}: more processes than the {cores} CPU cores here "
                "(each process needs at least one core)"
            )
    return backend


def join_process_group(settings: DistributedSettings, device: torch.device) -> Distributed:
    """This process's :class:`Distributed` context: rank 0 of 1 without a launcher, else the
    rank the launcher gave, after joining the process group at its rendezvous.

    A process group initialised already (by the caller's script, or by an earlier run of this
    process) is used as it is; one opened here stays open for the process's later runs (a
    second ``init_process_group`` on the same rendezvous port waits for a store that is gone).
    """
    import torch.distributed as dist

    world = launched_world_size()
    if world == 1 and not (dist.is_available() and dist.is_initialized()):
        return Distributed()
    local_rank = int(os.environ.get(ENV_LOCAL_RANK, "0"))
    local_world = int(os.environ.get(ENV_LOCAL_WORLD_SIZE, str(world)))
    backend = choose_backend(settings, device, local_world)
    owned = not dist.is_initialized()
    if owned:
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        address, port = os.environ.get("MASTER_ADDR", "?"), os.environ.get("MASTER_PORT", "?")
        where = f"{address}:{port}"
        try:
            if launched_rank() != 0:  # rank 0 serves the rendezvous store; the others reach it
                _wait_for_rendezvous(address, int(port), settings.timeout)
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=settings.timeout))
        except (RuntimeError, ValueError, TimeoutError) as exc:  # DistError is a RuntimeError
            raise PeerLostError(
                f"rank {launched_rank()} of {world}: cannot join the other processes at the "
                f"rendezvous {where} within --dist-timeout {settings.timeout:g} s "
                f"({_first_line(exc)}); check the address and port (torchrun --rdzv-endpoint, "
                "MASTER_ADDR/MASTER_PORT) and that every process was started"
            ) from None
    return Distributed(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        local_world_size=local_world,
        backend=backend,
        sync_bn=settings.sync_bn,
        owns_group=owned,
    )


def _wait_for_rendezvous(address: str, port: int, timeout: float) -> None:
    """Return once ``address:port`` accepts a TCP connection; ``TimeoutError`` after ``timeout``.

    Tried here first so that an unreachable rendezvous is this one line, not c10d's C++ log.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=min(2.0, timeout)):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no answer from {address}:{port}: {exc}") from None
            time.sleep(0.2)


@dataclass
class Distributed:
    """Rank ``rank`` of ``world_size`` processes training one model together."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str | None = None  # None: one process, no process group
    sync_bn: bool = False
    owns_group: bool = False  # opened by join_process_group (it stays open: see there)
    _trainable: frozenset[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ConfigError(
                f"distributed context: rank {self.rank} of {self.world_size} processes"
            )

    @property
    def is_main(self) -> bool:
        """Whether this process logs and writes the run folder (rank 0)."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether collectives run (several processes in a process group)."""
        return self.backend is not None

    # -- set-up --------------------------------------------------------------------------------

    def device(self, device: torch.device) -> torch.device:
        """The device of this process: on CUDA, one GPU per process, ``LOCAL_RANK`` picks it."""
        if self.active and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def threads(self, requested: int | None, default: Callable[[int | None], int]) -> int:
        """CPU threads of this process: ``requested``, else the cores shared out, at least 1."""
        if not self.active:
            return default(requested)
        if requested is not None:
            return requested
        return max(1, (os.cpu_count() or 1) // self.local_world_size)

    def decide_on_main(self, decide: Callable[[], T]) -> T:
        """Run ``decide`` on rank 0 only; every rank gets its result, or raises its error.

        For what must be chosen once (the run folder's name, its creation and lock): rank 0's
        :class:`CnnkitError` is raised on every rank, so all of them stop with the same line.
        """
        if not self.active:
            return decide()
        import torch.distributed as dist

        outcome: list[Any] = [None]
        if self.is_main:
            try:
                outcome = [(True, decide())]
            except CnnkitError as exc:
                outcome = [(False, exc)]
        dist.broadcast_object_list(outcome, src=0)
        succeeded, value = outcome[0]
        if not succeeded:
            raise value
        return value

    def prepare(self, model: nn.Module) -> nn.Module:
        """``model`` with SyncBatchNorm layers when ``--sync-bn`` asks (CUDA runs only).

        ``convert_sync_batchnorm`` keeps the parameter objects, so the optimiser built after it
        (or before) steps the same tensors, and the state-dict names do not change.
        """
        if self.active and self.sync_bn:
            return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    def wrap(self, model: nn.Module, stepped: nn.Module | None, compile: bool) -> nn.Module:
        """What the training step calls: ``model`` in DDP (several processes), maybe compiled.

        DDP registers the parameters that require gradients when it is built; a model that
        freezes some parameters from an epoch on (airnet's whitening bias) is wrapped again
        then, so DDP never waits for a gradient that will not come. One process: the model (or
        its ``torch.compile`` wrapper), built once.
        """
        if not self.active:
            if stepped is not None:
                return stepped
            return _compiled(model) if compile else model
        trainable = frozenset(n for n, p in model.named_parameters() if p.requires_grad)
        if stepped is not None and trainable == self._trainable:
            return stepped
        self._trainable = trainable
        from torch.nn.parallel import DistributedDataParallel

        on_cuda = next(model.parameters()).device.type == "cuda"
        wrapped = DistributedDataParallel(
            model,
            device_ids=[self.local_rank] if on_cuda else None,
            **no_buffer_broadcast(),  # type: ignore[arg-type]  # one bool keyword, by torch version
        )
        return _compiled(wrapped) if compile else wrapped

    # -- data ----------------------------------------------------------------------------------

    def shard(self, loader: Any) -> Any:
        """The training batches of this rank: its slice of each global batch of ``loader``."""
        if self.world_size == 1:
            return loader
        return RankSlices(loader, self.rank, self.world_size)

    def eval_shard(self, dataset: ImageDataset) -> ImageDataset:
        """This rank's contiguous part of an evaluation set (sizes differ by at most one)."""
        if self.world_size == 1:
            return dataset
        if len(dataset) < self.world_size:
            raise ConfigError(
                f"{dataset.name} {dataset.split}: {len(dataset)} images cannot be shared out to "
                f"{self.world_size} processes (each evaluates at least one)"
            )
        start, end = slice_bounds(len(dataset), self.rank, self.world_size)
        return dataset.subset(range(start, end))

    def reduce_metrics(self, accumulator: MetricAccumulator) -> MetricAccumulator:
        """Every rank's accumulator merged in rank order: the whole set's metrics, each image
        once, and the hardest samples' indices those of the whole set (shards are contiguous).
        """
        if not self.active:
            return accumulator
        import torch.distributed as dist

        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, accumulator)
        merged = parts[0]
        for part in parts[1:]:
            merged.merge(part)
        return merged

    # -- agreement -----------------------------------------------------------------------------

    def _all_reduce(self, values: list[float], op: str) -> list[float]:
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self._collective_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        return tensor.tolist()

    def _collective_device(self) -> torch.device:
        on_gpu = self.backend == "nccl"  # NCCL reduces CUDA tensors only
        return torch.device("cuda", self.local_rank) if on_gpu else torch.device("cpu")

    def agree_to_stop(self, stop: bool) -> bool:
        """Whether all ranks stop: any rank's reason stops every rank (alone: its own)."""
        if not self.active:
            return stop
        return self._all_reduce([float(stop)], "max")[0] > 0

    def agree_on_clock(self, seconds: float) -> float:
        """The slowest rank's training time: every rank's schedule and budget follow it."""
        if not self.active:
            return seconds
        return self._all_reduce([seconds], "max")[0]

    def first_nonfinite(self, loss: float) -> tuple[int, float] | None:
        """The lowest rank whose loss is not finite, and its loss; ``None`` when all are."""
        if not self.active:
            return None if math.isfinite(loss) else (0, loss)
        values = [0.0] * self.world_size
        values[self.rank] = loss
        # a sum over ranks where each rank fills its own slot: NaN or inf stays in its slot
        gathered = self._all_reduce(values, "sum")
        for rank, value in enumerate(gathered):
            if not math.isfinite(value):
                return rank, value
        return None

    def sum(self, *numbers: float) -> list[float]:
        """``numbers`` summed over ranks (float64: counts stay exact below 2^53)."""
        if not self.active:
            return list(numbers)
        return self._all_reduce(list(numbers), "sum")

    @torch.no_grad()
    def average_buffers(self, *modules: nn.Module, keep: frozenset[str] = frozenset()) -> None:
        """Average the floating-point buffers (BatchNorm running statistics) across ranks.

        Called at each epoch's end, before validation and the checkpoint, unless SyncBatchNorm
        keeps the statistics equal already. Integer buffers (``num_batches_tracked``) agree.
        The buffers named in ``keep`` (a frozen stage's BatchNorm statistics, equal on every
        rank) are left alone: a sum over 3 ranks divided by 3 can change their last bit.
        """
        if not self.active or self.sync_bn:
            return
        import torch.distributed as dist

        seen: set[int] = set()
        for module in modules:
            for name, buffer in module.named_buffers():
                if id(buffer) in seen or not buffer.dtype.is_floating_point or name in keep:
                    continue
                seen.add(id(buffer))
                dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
                buffer.div_(self.world_size)

    def barrier(self) -> None:
        """Wait for every rank (e.g. until rank 0 has written a checkpoint the others read)."""
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    # -- reporting and ending ------------------------------------------------------------------

    def describe(self, batch_size: int, threads: int | None) -> str | None:
        """The header line of a distributed run (``None`` for one process)."""
        if self.world_size == 1:
            return None
        per_rank = f"{batch_size // self.world_size}"
        if batch_size % self.world_size:
            per_rank += f"-{batch_size // self.world_size + 1}"
        each = f" x {threads} thread{'s' if threads != 1 else ''}" if threads else ""
        bn = (
            "SyncBatchNorm"
            if self.sync_bn
            else "BatchNorm running statistics averaged across processes at each epoch end"
        )
        return (
            f"data-parallel: {self.world_size} processes{each} ({self.backend}), global batch "
            f"{batch_size} = {per_rank} per process; {bn}"
        )


@contextlib.contextmanager
def reporting_lost_peers(step: Callable[[], int] | None = None) -> Iterator[None]:
    """Turn a failed collective (a peer ended, the network failed, a timeout) into one line
    naming this rank (and the step, when known) instead of a C++ traceback."""
    try:
        yield
    except RuntimeError as exc:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise
        if not _is_communication_failure(exc):
            raise
        at = f" at step {step() + 1}" if step is not None else ""
        raise PeerLostError(
            f"rank {dist.get_rank()} of {dist.get_world_size()}: lost contact with the other "
            f"processes{at} ({_first_line(exc)}); one of them ended or the network failed, so "
            "this one stops too"
        ) from None


def no_buffer_broadcast() -> dict[str, bool]:
    """DDP's keyword that keeps each rank's buffers its own between forwards.

    Per-rank BatchNorm statistics during an epoch, averaged at its end (module docstring). Torch
    2.13 renamed ``broadcast_buffers`` to ``forward_sync_buffers`` (which still copies rank 0's
    buffers once, when DDP is built: every rank starts equal, as wanted here).
    """
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    parameters = inspect.signature(DistributedDataParallel.__init__).parameters
    if "forward_sync_buffers" in parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def slice_bounds(count: int, rank: int, world_size: int) -> tuple[int, int]:
    """``[start, end)`` of rank ``rank``'s contiguous share of ``count`` items.

    ``start = floor(count * rank / world_size)``: the shares tile ``0 .. count`` without
    overlap or padding and differ in size by at most one (10 items on 3 ranks: 3, 3, 4).
    """
    return count * rank // world_size, count * (rank + 1) // world_size


class RankSlices:
    """Rank ``rank``'s slice of each global batch of ``loader`` (a :class:`DeviceLoader`).

    The loader shuffles with the run's seed and augments the whole global batch (the random
    parameters are drawn for all of it), so each image is augmented as a single process would
    augment it; this rank keeps ``slice_bounds(len(batch), rank, world_size)`` of it. A last
    batch with fewer images than processes is left out (some rank would have none), the same on
    every rank. ``share`` is this slice's weight in the global batch's mean loss relative to
    DDP's plain average over ranks: ``len(slice) * world_size / len(batch)`` (1 when even).
    """

    def __init__(self, loader: Any, rank: int, world_size: int) -> None:
        self.loader, self.rank, self.world_size = loader, rank, world_size
        self.share = 1.0
        count, size = loader.images.shape[0], loader.batch_size
        if size < world_size:
            raise ConfigError(
                f"--batch-size {size}: the global batch is shared out to {world_size} processes, "
                f"so it must be at least {world_size}"
            )
        rest = count % size
        self.last_size = size if rest == 0 or loader.drop_last else rest
        self.batches = len(loader) - (1 if self.last_size < world_size else 0)

    def __len__(self) -> int:
        return self.batches

    @property
    def batch_size(self) -> int:
        return self.loader.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index, (images, targets) in enumerate(self.loader):
            if index >= self.batches:
                break
            start, end = slice_bounds(len(images), self.rank, self.world_size)
            self.share = (end - start) * self.world_size / len(images)
            yield images[start:end], targets[start:end]


_COMMUNICATION_MARKERS = (
    "connection closed",
    "connection reset",
    "connection refused",
    "broken pipe",
    "timed out",
    "timeout",
    "gloo",
    "nccl",
    "socket",
    "peer",
)


def _is_communication_failure(exc: BaseException) -> bool:
    import torch.distributed as dist

    if isinstance(exc, dist.DistError):
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _COMMUNICATION_MARKERS)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    line = re.sub(r"^\[[^\]]*\]\s*", "", line)  # gloo's "[/path/pair.cc:553] " source prefix
    return line if len(line) <= 300 else line[:297] + "..."


def _compiled(model: nn.Module) -> nn.Module:
    """``torch.compile(model)``: an OptimizedModule, which is an nn.Module (typed as a callable)."""
    return torch.compile(model)  # type: ignore[return-value]
