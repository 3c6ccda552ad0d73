"""The inference benchmark: leaves the model alone, times every variant asked for, and picks the
fastest from its own measurements."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.deploy.bench import BenchResult, Measurement, benchmark, time_interleaved
from cnnkit.errors import UnknownNameError
from cnnkit.runtime import cpu_has_bf16
from tests.model_guard import model_left_as_found


def small_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten()).eval()


def test_benchmark_leaves_the_model_as_found_and_times_each_variant():
    model = small_net()
    variants = ("eager", "channels_last", "folded", "bf16")
    with model_left_as_found(model):
        result = benchmark(model, (3, 6, 6), batch_sizes=(1, 3), threads=(1,),
                           variants=variants, warmup=1, repeats=3)  # fmt: skip
    ran = {m.variant for m in result.measurements}
    assert ran | set(result.skipped) == set(variants)
    assert ("bf16" in ran) == cpu_has_bf16()
    for m in result.measurements:
        assert m.repeats == 3 and m.p50_ms <= m.p99_ms
    assert "folded" in result.notes and "1 of 1 BN folded" in result.notes["folded"]


def test_unknown_variant_fails_before_measuring():
    with pytest.raises(UnknownNameError, match="warp"):
        benchmark(small_net(), (3, 6, 6), variants=("eager", "warp"))


def row(variant, batch, p50):
    return Measurement(variant, "fp32", batch, 1, p50, p50, p50, p50, batch / p50 * 1e3, 1, p50)


def test_fastest_and_speedup_come_from_the_measurements():
    rows = [row("eager", 1, 2.0), row("ort", 1, 0.5), row("eager", 8, 4.0), row("ort", 8, 8.0)]
    result = BenchResult("m", (1,), rows, {}, {}, {}, {}, (0, 0, 0), (0, 0, 0))
    assert [(m.batch_size, m.variant) for m in result.fastest()] == [(1, "ort"), (8, "eager")]
    assert result.speedup("ort") == {(1, 1): 4.0, (8, 1): 0.5}


def test_interleaved_timing_calls_each_variant_the_same_number_of_times():
    counts = {"a": 0, "b": 0}

    def counter(name):
        def call():
            counts[name] += 1

        return call

    timed = time_interleaved({"a": counter("a"), "b": counter("b")}, warmup=3, repeats=5)
    assert counts == {"a": 8, "b": 8}  # 1 first call + 2 more warm-up + 5 timed
    assert all(len(times) == 5 for times, _ in timed.values())


def test_thread_count_is_restored():
    before = torch.get_num_threads()
    result = benchmark(small_net(), (3, 6, 6), batch_sizes=(1,), threads=(before + 1,),
                       variants=("eager",), warmup=1, repeats=1)  # fmt: skip
    assert result.measurements[0].threads == before + 1
    assert torch.get_num_threads() == before


def test_figure_draws_one_bar_per_measurement_at_its_p50():
    from cnnkit.deploy.plot import bench_figure

    rows = [row("eager", 1, 2.0), row("ort", 1, 0.5), row("eager", 8, 4.0), row("ort", 8, 8.0)]
    result = BenchResult("m", (1,), rows, {}, {}, {}, {}, (0, 0, 0), (0, 0, 0))
    figure = bench_figure(result)
    assert len(figure.axes) == 2
    widths = [[bar.get_width() for bar in ax.patches] for ax in figure.axes]
    assert widths == [[2.0, 0.5], [4.0, 8.0]]
    assert [ax.get_title() for ax in figure.axes] == [
        "batch 1, 1 thread(s)",
        "batch 8, 1 thread(s)",
    ]
