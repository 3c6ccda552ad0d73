"""One intra-op thread: the suite runs two pytest workers on two shared cores, and OpenMP
threads that spin-wait on a busy core make tiny torch ops 100-1000x slower."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
