"""Device and precision choices: explicit refusals name the flag."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import ConfigError, UnsupportedError
from cnnkit.runtime import cpu_has_bf16, resolve_device, resolve_precision


def test_fp16_autocast_on_cpu_is_refused_with_the_flag():
    with pytest.raises(UnsupportedError, match="--precision fp16"):
        resolve_precision("fp16", torch.device("cpu"))


def test_auto_precision_on_cpu_is_bf16_exactly_when_the_cpu_has_bf16_units():
    flags = set()
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    for line in lines:
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    has_bf16 = bool(flags & {"avx512_bf16", "amx_bf16"})
    assert cpu_has_bf16() is has_bf16
    expected = torch.bfloat16 if has_bf16 else None
    assert resolve_precision("auto", torch.device("cpu")) is expected
    assert resolve_precision("off", torch.device("cpu")) is None


def test_unknown_or_missing_devices_name_the_flag():
    with pytest.raises(ConfigError, match="--device"):
        resolve_device("tpu:x")
    if not torch.cuda.is_available():
        with pytest.raises(UnsupportedError, match="--device cuda"):
            resolve_device("cuda")


def test_threads_fall_back_to_one_only_on_a_crowded_machine(monkeypatch):
    import os

    from cnnkit.runtime import choose_threads

    cores = torch.get_num_threads()
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 1.0, 0.0, 0.0))
    assert choose_threads(None) == 1
    assert choose_threads(3) == 3
    monkeypatch.setattr(os, "getloadavg", lambda: (cores - 0.5, 0.0, 0.0))
    assert choose_threads(None) == cores
