"""``cnnkit train --nproc N`` / :func:`launch`: N training processes on this machine (E7).

The processes are started by torch's own elastic launcher (``torch.distributed.launcher.api``,
what ``torchrun`` runs), with a c10d rendezvous on 127.0.0.1 at a free port and no restarts;
each one calls :func:`cnnkit.train.fit`, which joins the process group from the environment the
launcher sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``). Rank 0
prints and writes the run folder. A process that fails with a cnnkit error returns its message
(printed once here); one that dies makes the launcher stop the others, and this says which.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cnnkit.errors import CnnkitError, ConfigError, TrainingError
from cnnkit.train.config import TrainConfig
from cnnkit.train.distributed import PeerLostError, choose_backend, distributed_settings

# called by rank 0 as before_training(config, image_shape, num_classes); must be picklable
BeforeTraining = Callable[[TrainConfig, tuple[int, ...], int], object]


def launch(
    config: TrainConfig,
    *,
    nproc: int | None = None,
    resume: str | Path | None = None,
    before_training: BeforeTraining | None = None,
) -> Path:
    """Train ``config`` on ``nproc`` processes (default ``config.nproc``); return the run folder.

    The same run as ``fit(config)`` in one process, for a deterministic BN-free model to within
    float rounding (the global batch, its order and its augmentation do not depend on ``nproc``);
    see docs/distributed.md. The backend, the process count and ``--sync-bn`` are checked here,
    before any process starts. Raises the first process's :class:`CnnkitError` (the root cause
    rather than the others' lost contact), or :class:`TrainingError` naming a process that died.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from cnnkit import runtime

    count = config.runtime.nproc if nproc is None else nproc
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"--nproc: must be a positive int, got {count!r}")
    settings = distributed_settings(config.runtime)
    choose_backend(settings, runtime.resolve_device(config.runtime.device), count)
    launch_config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=count,
        run_id=f"cnnkit-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",  # the launcher picks a free port
        rdzv_configs={"join_timeout": settings.timeout},
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
    )
    task = config.replace(nproc=count).to_dict()
    with _quiet_launcher():
        try:
            results = elastic_launch(launch_config, _worker)(
                task, str(resume) if resume is not None else None, before_training
            )
        except ChildFailedError as exc:
            raise TrainingError(_failure_line(exc.failures, count)) from None
    return _outcome(results)


def _worker(
    task: dict[str, Any], resume: str | None, before_training: BeforeTraining | None
) -> dict[str, Any]:
    """One process: ``fit``; its cnnkit error is returned (not raised) to the launcher."""
    from cnnkit.train.distributed import launched_rank
    from cnnkit.train.loop import fit

    try:
        config = TrainConfig.from_dict(task)
        result = fit(config, resume=resume, before_training=before_training)
    except CnnkitError as exc:
        lost = isinstance(exc, PeerLostError)
        return {"rank": launched_rank(), "error": str(exc), "lost": lost, "exc": exc}
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return {"rank": launched_rank(), "out_dir": str(result.out_dir)}


def _outcome(results: dict[int, dict[str, Any]]) -> Path:
    """The run folder, or the most telling error: a cause before a lost contact, lowest rank."""
    errors = [r for _, r in sorted(results.items()) if "error" in r]
    if errors:
        first = min(errors, key=lambda r: (r["lost"], r["rank"]))
        exc = first["exc"]
        raise exc if isinstance(exc, CnnkitError) else TrainingError(first["error"])
    return Path(results[0]["out_dir"])


def _failure_line(failures: dict[int, Any], count: int) -> str:
    """``rank 1 (pid 123) ended by SIGKILL; ...`` for the first process that died."""
    rank, failure = min(failures.items())
    if failure.exitcode < 0:
        try:
            how = f"ended by {failure.signal_name()}"
        except ValueError:
            how = f"ended by signal {-failure.exitcode}"
    else:
        how = f"exited with code {failure.exitcode}"
    return (
        f"--nproc {count}: rank {rank} (pid {failure.pid}) {how}; the launcher stopped the "
        "other processes (the run folder keeps the last completed epoch's last.pt)"
    )


@contextlib.contextmanager
def _quiet_launcher() -> Iterator[None]:
    """The launcher's own log lines (rendezvous, 'Terminating process') stay out of the run's
    output: what went wrong is reported once, as one line."""
    names = ("torch.distributed", "torch.multiprocessing")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
