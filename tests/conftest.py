"""Shared test configuration: hypothesis profiles, seeding, the torchvision oracle."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, settings

from tests.oracles import use_oracle_folder

# Two cores shared with other test workers: wall-clock deadlines would make tests flaky.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "thorough", deadline=None, max_examples=2000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# The dev-only oracles (torchvision, timm, grad-cam) live in their own folder, on sys.path for the
# tests only (tests/oracles.py): before any test module imports them.
use_oracle_folder()


def pytest_configure(config):
    # `make test` runs two workers on two cores: one intra-op thread each avoids oversubscription
    # (a tiny conv took 2.6 ms with the default pool under load, 10 us with one thread).
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything():
    import torch

    random.seed(0)
    torch.manual_seed(0)
    yield
