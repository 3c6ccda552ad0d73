"""Two real processes (gloo on 127.0.0.1) against one-process oracles (E7).

Each test starts two spawned processes with torchrun's environment (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``/``PORT``) and joins them with a timeout, so a hang fails instead of blocking.
Oracles: a 1-process run with the same global batch (BN-free model: same weights within 1e-5);
with train-mode BatchNorm a 1-process "ghost BN" run that forwards each rank's half of the batch
separately and keeps one set of running statistics per half, averaged when it is evaluated.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.train.tiny import quadrant_dataset

pytestmark = pytest.mark.slow
TIMEOUT = 180  # seconds for a pair of processes (two torch imports on a loaded 2-core machine)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def conv_net() -> nn.Module:
    """A small conv net without BatchNorm or dropout: per-image losses are batch-independent."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(3), nn.Flatten(),
        nn.Linear(36, 4),
    )  # fmt: skip


def bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(3),
        nn.Flatten(), nn.Linear(36, 4),
    )  # fmt: skip


class GhostBN(nn.Module):
    """``inner`` forwarded on each of ``parts`` contiguous slices of a training batch, each with
    its own BatchNorm running statistics; evaluating averages them (what the ranks do)."""

    def __init__(self, inner: nn.Module, parts: int = 2) -> None:
        super().__init__()
        self.inner, self.parts = inner, parts
        self.part_buffers: list[dict[str, torch.Tensor]] | None = None
        self.spread = 0.0  # the largest difference between the parts' statistics

    def _swap_in(self, values: dict[str, torch.Tensor]) -> None:
        """Make ``values`` the buffers (the objects: BatchNorm updates them in place)."""
        for name, value in values.items():
            owner, _, key = name.rpartition(".")
            self.inner.get_submodule(owner)._buffers[key] = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.inner(x)
        if self.part_buffers is None:
            named = dict(self.inner.named_buffers())
            self.part_buffers = [
                {k: v.clone() for k, v in named.items()} for _ in range(self.parts)
            ]
        outputs = []
        for part, chunk in enumerate(x.tensor_split(self.parts)):
            self._swap_in(self.part_buffers[part])
            outputs.append(self.inner(chunk))
        return torch.cat(outputs)

    def train(self, mode: bool = True) -> GhostBN:
        if not mode and self.part_buffers is not None:
            with torch.inference_mode(False), torch.no_grad():  # called inside evaluation
                self._average()
        return super().train(mode)

    def _average(self) -> None:
        if self.part_buffers is not None:
            averaged = {}
            for name, first in self.part_buffers[0].items():
                values = torch.stack([p[name] for p in self.part_buffers])
                if first.dtype.is_floating_point:
                    self.spread = max(self.spread, float((values - values.mean(0)).abs().max()))
                    averaged[name] = values.mean(0)
                else:
                    averaged[name] = first.clone()
            self._swap_in(averaged)
            self.part_buffers = None


def config(out: Path | None, **changes):
    from cnnkit.train import TrainConfig

    settings = dict(
        model_kwargs={},
        val_size=32,
        batch_size=32,
        eval_batch_size=24,
        epochs=2,
        lr=0.05,
        precision="off",
        channels_last=False,
        device="cpu",
        deterministic=True,
        threads=1,
        progress=False,
        tensorboard=False,
        plots=False,
        tta=False,
        flip=True,
        crop_padding=1,
        out_dir=str(out) if out is not None else None,
    )
    settings.update(changes)
    return TrainConfig.from_flat(**settings)


def data():
    return quadrant_dataset(160, seed=1), quadrant_dataset(50, seed=2)


def _worker(rank: int, world: int, port: int, scenario: str, folder: str) -> None:
    """One rank: torchrun's environment, then the scenario; failures go to a file."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    out = Path(folder)
    try:
        _SCENARIOS[scenario](rank, out)
    except BaseException as exc:  # reported by the parent, with the rank
        report = f"rank {rank}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        (out / f"rank{rank}.error").write_text(report)


def _equivalence(rank: int, out: Path) -> None:
    from cnnkit.train import fit

    os.chdir(out / "cwd")  # no --out: the run folder's name is rank 0's choice
    result = fit(config(None), model=conv_net(), data=data())
    (out / f"plain{rank}.json").write_text(json.dumps(result.final))
    torch.save(result.model.state_dict(), out / f"plain{rank}.pt")
    ghost = fit(config(out / "bn"), model=bn_net(), data=data())
    torch.save(ghost.model.state_dict(), out / f"bn{rank}.pt")


class Dying(nn.Module):
    """A linear classifier whose rank-1 copy kills its own process at its 6th training step."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(144, 4)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if os.environ.get("RANK") == "1" and self.calls == 6:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.fc(x.flatten(1))


class NanOnRank1(nn.Module):
    """A linear classifier whose rank-1 copy gives NaN logits from its 3rd training step."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(144, 4)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc(x.flatten(1))
        if self.training:
            self.calls += 1
            if os.environ.get("RANK") == "1" and self.calls >= 3:
                logits = logits * float("nan")
        return logits


class SlowOnRank1(nn.Module):
    """A linear classifier whose rank-1 copy sleeps 30 ms per training step (a slower clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(144, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and os.environ.get("RANK") == "1":
            time.sleep(0.03)
        return self.fc(x.flatten(1))


def _killed_peer(rank: int, out: Path) -> None:
    from cnnkit.errors import CnnkitError, TrainingError
    from cnnkit.train import fit

    # a time budget: the ranks' clocks differ, they stop at one step with one schedule
    budget = config(out / "budget", epochs=1000, time_budget=1.5, val_size=0)
    result = fit(budget, model=SlowOnRank1(), data=data())
    last = result.history[-1]
    summary = [result.final["steps"], result.final["stopped"], last["lr"], last["epoch_fraction"]]
    (out / f"budget{rank}.json").write_text(json.dumps(summary))
    try:  # then a NaN on rank 1: every rank stops at once, naming rank 1
        fit(config(out / "nan", epochs=5), model=NanOnRank1(), data=data())
    except TrainingError as exc:
        (out / f"nan{rank}.txt").write_text(str(exc))
    try:
        fit(config(out / "run", epochs=50, dist_timeout=60), model=Dying(), data=data())
    except CnnkitError as exc:
        (out / f"message{rank}.txt").write_text(str(exc))


_SCENARIOS = {"equivalence": _equivalence, "killed_peer": _killed_peer}


def run_ranks(target: Any, rank_args: list[tuple[Any, ...]], timeout: float) -> list[int | None]:
    """Start ``target(*args)`` in one spawned process per entry of ``rank_args``, wait at most
    ``timeout`` seconds for them all, kill what is left; their exit codes (None: killed)."""
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    processes = [context.Process(target=target, args=args) for args in rank_args]
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    codes = [process.exitcode for process in processes]
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    return codes


def run_two(scenario: str, folder: Path) -> list[int | None]:
    """Start the two ranks, wait at most TIMEOUT, kill what is left; their exit codes."""
    port = free_port()
    args = [(rank, 2, port, scenario, str(folder)) for rank in range(2)]
    codes = run_ranks(_worker, args, TIMEOUT)
    errors = sorted(folder.glob("rank*.error"))
    assert not errors, "\n".join(e.read_text() for e in errors)
    return codes


def test_two_processes_train_the_one_process_model(tmp_path):
    from cnnkit.train import fit

    (tmp_path / "cwd").mkdir()
    codes = run_two("equivalence", tmp_path)
    assert codes == [0, 0]

    # BN-free: the same weights and test metrics as one process with the same global batch
    single = fit(config(tmp_path / "single"), model=conv_net(), data=data())
    two = torch.load(tmp_path / "plain0.pt")
    assert torch.equal(two["0.weight"], torch.load(tmp_path / "plain1.pt")["0.weight"])
    plain_diff = max(float((two[k] - v).abs().max()) for k, v in single.model.state_dict().items())
    print(f"\n2 processes vs 1, BN-free conv net, 2 epochs: max |dw| = {plain_diff:.2e}")
    assert plain_diff < 1e-5
    final = json.loads((tmp_path / "plain0.json").read_text())
    assert final["test_top1"] == single.final["test_top1"]
    assert final["test_images"] == 50 and final["processes"] == 2
    assert final["test_loss"] == pytest.approx(single.final["test_loss"], abs=1e-6)
    assert json.loads((tmp_path / "plain1.json").read_text())["test_top1"] == final["test_top1"]

    # only rank 0 wrote: exactly one run folder, named by rank 0
    runs = list((tmp_path / "cwd" / "runs").iterdir())
    assert len(runs) == 1, runs
    assert {p.name for p in runs[0].iterdir()} >= {"config.json", "final.json", "last.pt"}

    # train-mode BN: the oracle is ghost BN (each half separately, statistics averaged)
    ghost = fit(config(tmp_path / "ghost"), model=GhostBN(bn_net()), data=data())
    oracle = {k.removeprefix("inner."): v for k, v in ghost.model.state_dict().items()}
    distributed = torch.load(tmp_path / "bn0.pt")
    ghost_diff = max(float((distributed[k] - v).abs().max()) for k, v in oracle.items())
    plain = fit(config(tmp_path / "plain-bn"), model=bn_net(), data=data()).model.state_dict()
    plain_bn_diff = max(float((distributed[k] - v).abs().max()) for k, v in plain.items())
    print(f"BN: vs ghost BN {ghost_diff:.2e}, vs plain 1-process BN {plain_bn_diff:.2e}")
    assert ghost_diff < 1e-5  # weights and the averaged running statistics
    assert plain_bn_diff > 100 * ghost_diff  # the plain run is not the oracle
    assert ghost.model.spread > 1e-3  # the halves' statistics differed: averaging mattered
    for name in ("1.running_mean", "1.running_var"):
        assert torch.allclose(distributed[name], torch.load(tmp_path / "bn1.pt")[name])


def test_a_budget_a_nan_or_a_killed_rank_stop_every_rank_together(tmp_path):
    codes = run_two("killed_peer", tmp_path)
    budget = [json.loads((tmp_path / f"budget{rank}.json").read_text()) for rank in range(2)]
    assert budget[0] == budget[1] and budget[0][1] == "time_budget" and budget[0][0] > 2
    for rank in range(2):
        nan = (tmp_path / f"nan{rank}.txt").read_text()
        assert nan.startswith("loss is nan at step 3 (epoch 1, batch 3) on rank 1 of 2; ")
    assert codes[1] == -signal.SIGKILL
    assert codes[0] == 0  # it returned (with the message) instead of hanging until TIMEOUT
    message = (tmp_path / "message0.txt").read_text()
    assert message.startswith("rank 0 of 2: lost contact with the other processes at step ")
    assert "\n" not in message


def cnnkit(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout=300):
    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "PYTHONPATH": str(root / "src"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cnnkit", *argv],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=timeout,
    )


def test_an_unreachable_rendezvous_is_one_line_with_exit_2(tmp_path):
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port())}  # fmt: skip
    proc = cnnkit("train", "--device", "cpu", "--dist-timeout", "3", env=env, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("cnnkit: error: rank 1 of 2: cannot join the other processes")
    assert proc.stderr.count("\n") == 1 and "--dist-timeout 3 s" in proc.stderr
    assert not list(tmp_path.iterdir())


def test_cli_nproc_2_then_resume_on_1_process_ends_as_one_process_run(tmp_path):
    """``cnnkit train --nproc 2`` (torch's elastic launcher), resumed with ``--nproc 1``.

    One schedule for both (``--schedule-epochs 2``), and SGD: Adam turns the float rounding of
    nearly-zero gradients into steps of about ``--lr``."""
    from cnnkit.cli.main import main

    common = ["--recipe", "lenet5", "--train-subset", "600", "--val-size", "200",
              "--precision", "off", "--deterministic", "--no-channels-last", "--threads", "1",
              "--optimizer", "sgd", "--lr", "0.05", "--schedule-epochs", "2",
              "--no-plots", "--no-tensorboard", "--no-report", "--no-progress"]  # fmt: skip
    proc = cnnkit("train", *common, "--epochs", "1", "--nproc", "2", "--out", "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("lenet5 on fashion_mnist") == 1  # rank 0 prints, once
    assert "data-parallel: 2 processes x 1 thread (gloo)" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    proc = cnnkit("train", "--resume", "run", "--epochs", "2", "--nproc", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 2/2" in proc.stdout and "data-parallel" not in proc.stdout
    argv = [*common, "--epochs", "2", "--out", str(tmp_path / "single")]
    assert main(["train", *argv]) == 0
    resumed = torch.load(tmp_path / "run" / "last.pt")["model"]
    single = torch.load(tmp_path / "single" / "last.pt")["model"]
    diff = max(float((resumed[k] - v).abs().max()) for k, v in single.items())
    print(f"\n--nproc 2 for 1 epoch, resumed on 1 process, vs 1 process: max |dw| = {diff:.2e}")
    assert diff < 1e-5


def test_ghost_bn_oracle_forwards_halves_separately():
    """The oracle itself: its training output is the two halves' outputs, each normalised alone."""
    model = GhostBN(bn_net())
    x = torch.randn(8, 1, 12, 12)
    reference = copy.deepcopy(model.inner)
    expected = torch.cat([reference(x[:4]), copy.deepcopy(bn_net())(x[4:])])
    assert torch.allclose(model(x), expected, atol=1e-6)
