"""A model that calls a ``torch.compile``d function is captured without dynamo tracing
cnnkit's own recorder (torch wraps ``__torch_dispatch__`` in ``_disable_dynamo`` for this)."""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.analysis import summarize


def test_dynamo_traces_none_of_the_recorders_frames():
    from torch._dynamo.utils import counters

    @torch.compile(backend="eager")
    def head(x):
        return torch.relu(x * 2 + 1)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(4, 4)

        def forward(self, x):
            return head(self.linear(x))

    torch._dynamo.reset()
    counters.clear()
    try:
        summary = summarize(Model(), (3, 4))
        traced = dict(counters["frames"])
        resumed = dict(counters["resumes"])
    finally:
        torch._dynamo.reset()
    assert [row.name for row in summary.layers] == ["linear", "mul", "add", "relu"]
    assert summary.total.macs == 3 * 4 * 4
    assert not traced.get("total") and not resumed  # no frame of cnnkit compiled or resumed
