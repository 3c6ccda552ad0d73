"""conv-algorithms lab: errors against torch, the im2col memory bill measured, refusals."""

from __future__ import annotations

import json

import pytest
import torch

from cnnkit.analysis.memory import peak_allocated_bytes
from cnnkit.arith.memory import im2col_bytes
from cnnkit.errors import ConfigError
from cnnkit.lab import ConvShape, conv_algorithms
from cnnkit.lab.render import render_text


@pytest.fixture(scope="module")
def result():
    shapes = [ConvShape(2, 6, 9, 8, 8, 3, 1, 1), ConvShape(1, 4, 11, 11, 6, 3, 2, 0)]
    return conv_algorithms(shapes, repeats=2)


def test_every_method_agrees_with_torch(result):
    for row in result.measurements:
        if row.note:
            continue
        assert row.max_error < 1e-4, row  # float32 against float64 F.conv2d
        assert row.seconds > 0 and row.cpu_seconds >= 0 and row.runs >= 1
    anchors = [row for row in result.measurements if row.method == "torch"]
    assert all(row.time_vs_torch == 1.0 for row in anchors)


def test_winograd_is_refused_for_stride_two_with_the_reason(result):
    refused = [row for row in result.measurements if row.note]
    assert [(row.method, row.note) for row in refused] == [
        ("winograd", "refused: stride must be (1, 1), got (2, 2)")
    ]


def test_im2col_extra_memory_is_the_seed002_bill(result):
    """Measured (torch.profiler) peak beyond the output vs 002's formula: the patch matrix plus,
    at most, one padded copy of the input."""
    for figures in result.figures:
        shape = figures.shape
        bill = im2col_bytes(shape.batch, shape.in_channels, shape.kernel_size,
                            figures.output_size)  # fmt: skip
        assert figures.im2col_bytes == bill
        row = next(r for r in result.measurements
                   if r.method == "im2col" and r.shape == shape.label)  # fmt: skip
        padded = (shape.batch * shape.in_channels * (shape.height + 2 * shape.padding)
                  * (shape.width + 2 * shape.padding) * 4)  # fmt: skip
        assert bill <= row.peak_extra_bytes <= bill + padded


def test_peak_measurement_on_known_allocations():
    def overlapping():
        first = torch.empty(1000)
        second = torch.empty(2000)
        del first
        return second

    def sequential():
        first = torch.empty(1000)
        del first
        return torch.empty(2000)

    assert peak_allocated_bytes(overlapping)[1] == 12_000
    assert peak_allocated_bytes(sequential)[1] == 8_000


def test_json_and_text(result):
    data = json.loads(json.dumps(result.to_dict()))
    # 9x8 output: 9 * 8 outputs x 9 taps direct, 5 x 4 tiles x 16 products
    assert data["figures"][0]["winograd"]["ratio"] == pytest.approx(9 * 8 * 9 / (5 * 4 * 16))
    assert data["figures"][1]["winograd"] is None
    text = render_text(result)
    assert "Winograd F(2x2,3x3)" in text and "(2.02x fewer)" in text


def test_bad_arguments():
    with pytest.raises(ConfigError, match="unknown method 'gemm'"):
        conv_algorithms(methods=("gemm",))
    with pytest.raises(ConfigError, match="dtype must be one of float32, float64"):
        conv_algorithms(dtype="float16")
