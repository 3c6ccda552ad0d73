"""Sizes beyond memory or int64 in every lab size flag: one line naming the size, exit 2 from the
CLI, checked before anything is allocated (torch's allocator is never reached)."""

from __future__ import annotations

import pytest
import torch

from cnnkit.arith.limits import physical_memory_bytes
from cnnkit.errors import ConfigError
from cnnkit.lab import ConvShape, checkerboard, conv_algorithms, equivariance, gradient_flow
from tests.data.hostile import cli_refuses, disk_state

HUGE = str(10**20)  # beyond int64

CASES = [
    (["conv-algorithms", "--shape", "1,3,100000,100000,64,3"],
     "shape 3x100000x100000->64 k3 s1 p0: needs", "more than the"),
    (["conv-algorithms", "--shape", f"{HUGE},3,8,8,4,3"], "beyond what int64 can count"),
    (["conv-algorithms", "--shape", f"1,3,8,8,{HUGE},3"], "beyond what int64 can count"),
    (["equivariance", "--size", "100000000"], "size 100000000 with 3 channels: needs"),
    (["equivariance", "--channels", HUGE], "beyond what int64 can count"),
    (["equivariance", "--seed", HUGE], "seed must be in -2^63..2^64-1"),
    (["checkerboard", "--size", "1000000"], "kernel_size 3, stride 2, size 1000000: needs"),
    (["checkerboard", "--kernel-size", HUGE], "beyond what int64 can count"),
    (["checkerboard", "--stride", HUGE], "beyond what int64 can count"),
    (["gradient-flow", "--blocks", "100000000"], "blocks 100000000 (conv): needs"),
    (["gradient-flow", "--blocks", HUGE], "beyond what int64 can count"),
    (["learn-kernel", "--iterations", HUGE], "iterations", "beyond what int64 can count"),
    (["learn-kernel", "--seed", f"-{HUGE}"], "seed must be in"),
    (["edges", "--threads", HUGE], "--threads must be below 2^31"),
]  # fmt: skip


@pytest.fixture
def no_allocation(monkeypatch):
    """Any large tensor allocation fails the test: the checks come first."""
    for name in ("randn", "ones", "zeros", "empty"):
        original = getattr(torch, name)

        def guarded(*size, _original=original, **kwargs):
            dims = size[0] if len(size) == 1 and isinstance(size[0], tuple | list) else size
            count = 1
            for dim in dims:
                count *= int(dim)
            assert count < 10**8, f"allocated {count} elements"
            return _original(*size, **kwargs)

        monkeypatch.setattr(torch, name, guarded)


@pytest.mark.parametrize(("argv", *["fragments"]), [(c[0], c[1:]) for c in CASES],
                         ids=[" ".join(c[0])[:40] for c in CASES])  # fmt: skip
def test_lab_size_beyond_memory_or_int64_is_one_line_exit_2(
    argv, fragments, capsys, tmp_path, monkeypatch, no_allocation
):
    monkeypatch.chdir(tmp_path)
    before = disk_state(tmp_path)
    cli_refuses(capsys, ["lab", *argv], *fragments)
    assert disk_state(tmp_path) == before


def test_the_checks_hold_from_python_too(no_allocation):
    memory = physical_memory_bytes()
    side = 10**5 if memory is None else int((memory / 8) ** 0.5) + 1  # one input > memory
    with pytest.raises(ConfigError, match=r"more than the|beyond what int64"):
        conv_algorithms(shapes=[ConvShape(1, 1, side, side, 1, 1)], methods=("torch",))
    with pytest.raises(ConfigError, match="beyond what int64"):
        equivariance(size=2**40)
    with pytest.raises(ConfigError, match="beyond what int64"):
        checkerboard(size=2**40)
    with pytest.raises(ConfigError, match="blocks"):
        gradient_flow(blocks=2**40)
