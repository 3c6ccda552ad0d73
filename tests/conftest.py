"""Shared test configuration: hypothesis profiles, seeding, the torchvision oracle."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, settings

# Two cores shared with other test workers: wall-clock deadlines would make tests flaky.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "thorough", deadline=None, max_examples=2000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _seed_everything():
    import torch

    random.seed(0)
    torch.manual_seed(0)
    yield
