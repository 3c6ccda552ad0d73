"""benchmarks/conv_weight_grad.py measures the two weight gradients of the same conv, and they
agree."""

from __future__ import annotations


def test_a_measurement_times_every_pass_and_the_gradients_agree(conv_weight_grad):
    row = conv_weight_grad.measure(8, 16, 3, 4, repeats=1)
    timed = ("forward_ms", "input_grad_ms", "onednn_weight_grad_ms", "im2col_weight_grad_ms")
    assert all(row[key] > 0 for key in timed)
    assert row["relative_difference"] < 1e-2  # both round a float32 sum to bf16 once


def test_the_table_has_a_row_per_shape(conv_weight_grad):
    row = {"network": "n", "in": 8, "out": 16, "side": 3, "batch": 4}
    row.update(conv_weight_grad.measure(8, 16, 3, 4, repeats=1), im2col_speedup=2.0)
    row["takes_matmul_path"] = True
    machine = {"cpu": "x", "cores": 2, "load_before": [0.1], "load_after": [0.2]}
    result = {"repeats": 1, "threads": 2, "max_positions": 16, "machine": machine}
    text = conv_weight_grad.render({**result, "rows": [row, {**row, "side": 13}]})
    assert text.count("| n | 8 -> 16 |") == 2
    assert "| 3x3 | 4 |" in text and "| 13x13 | 4 |" in text
