"""Device and precision choices: explicit refusals name the flag."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import ConfigError, UnsupportedError
from cnnkit.train.runtime import cpu_has_bf16, resolve_device, resolve_precision


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


def _python(code: str, **env: str) -> str:
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**clean, **env}
    )
    return proc.stdout.strip()


def test_passive_waiting_is_requested_only_before_torch_and_only_if_unset():
    ask = "from cnnkit.train.threads import prefer_passive_waiting as p; import os; "
    show = "print(p(), os.environ.get('OMP_WAIT_POLICY'))"
    assert _python(ask + show) == "True PASSIVE"
    assert _python(ask + show, OMP_WAIT_POLICY="ACTIVE") == "False ACTIVE"
    assert _python("import torch; " + ask + show) == "False None"
