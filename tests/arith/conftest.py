"""The arith oracles run thousands of tiny torch ops: one thread makes each take microseconds.

With the default thread pool, a 12x12 conv costs milliseconds on a loaded 2-core machine
(thread hand-off), so the property tests would spend their time waiting.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
