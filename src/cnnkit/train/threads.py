"""OpenMP waiting policy for the training commands, set before torch is imported.

By default the OpenMP threads of PyTorch's CPU kernels spin while they wait for each other. On a
machine whose cores are busy with other work, a spinning thread can hold a core the thread it
waits for needs: measured here with 2 threads on 2 shared cores (load average 4), an airnet
training step ran at 127 images/s with spinning threads and 911 images/s with
``OMP_WAIT_POLICY=PASSIVE`` (1 thread: 700-1,480). The commands therefore ask for passive
waiting unless the user chose a policy; it must happen before the OpenMP runtime starts, i.e.
before ``import torch``, so it has no effect in a Python session that already imported torch.
"""

from __future__ import annotations

import os
import sys


def prefer_passive_waiting() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` if unset and torch is not imported yet; True if set."""
    if "OMP_WAIT_POLICY" in os.environ or "torch" in sys.modules:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
