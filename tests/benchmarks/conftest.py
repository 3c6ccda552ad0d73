"""The benchmark scripts are files, not a package: load each once per module by path."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fashion_table() -> ModuleType:
    return load_script("fashion_table")


@pytest.fixture(scope="module")
def conv_weight_grad() -> ModuleType:
    return load_script("conv_weight_grad")


@pytest.fixture(scope="module")
def deploy_script() -> ModuleType:
    return load_script("deploy")


@pytest.fixture(scope="module")
def explain_bench() -> ModuleType:
    return load_script("explain")
