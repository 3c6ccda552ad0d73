"""Benchmark: the bf16 weight gradient of a conv, oneDNN's kernel against one im2col matmul.

For the 3x3 convs of airnet 64-128-256 (batch 256, 28x28 Fashion-MNIST inputs) and of
ResNet-18 small-input (batch 128), in bf16 and channels_last on CPU, it times, in one process:
the forward (``F.conv2d``), oneDNN's input gradient and weight gradient
(``aten.convolution_backward`` with one output each), and
:func:`cnnkit.nn.matmul_grad.im2col_weight_grad`. The ratio says where the trainer's
``--matmul-weight-grad`` pays (maps of at most ``MAX_POSITIONS`` positions take it).

Writes benchmarks/results/conv_weight_grad.json and the "Training: the weight gradient of small
maps" section of docs/benchmarks.md. Usage: ``python benchmarks/conv_weight_grad.py
[--threads 2] [--repeats 10]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from cnnkit.nn.matmul_grad import MAX_POSITIONS, im2col_weight_grad  # noqa: E402
from fashion_table import (  # noqa: E402
    machine_info,
    machine_label,
    write_result,
)
from recording import write_section  # noqa: E402

# (network, in channels, out channels, map side, batch): the stride-1 3x3 convs of each net
SHAPES = [
    ("airnet 64-128-256", 16, 64, 26, 256),
    ("airnet 64-128-256", 64, 64, 13, 256),
    ("airnet 64-128-256", 64, 128, 13, 256),
    ("airnet 64-128-256", 128, 128, 6, 256),
    ("airnet 64-128-256", 128, 256, 6, 256),
    ("airnet 64-128-256", 256, 256, 3, 256),
    ("ResNet-18 small-input", 64, 64, 28, 128),
    ("ResNet-18 small-input", 128, 128, 14, 128),
    ("ResNet-18 small-input", 256, 256, 7, 128),
    ("ResNet-18 small-input", 512, 512, 4, 128),
]


def milliseconds(work: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``work`` over ``repeats`` calls after 3 warm-up calls."""
    for _ in range(3):
        work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def measure(cin: int, cout: int, side: int, batch: int, repeats: int) -> dict:
    def tensor(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=torch.bfloat16).contiguous(
            memory_format=torch.channels_last
        )

    x, grad = tensor(batch, cin, side, side), tensor(batch, cout, side, side)
    weight = tensor(cout, cin, 3, 3)

    def onednn(mask: list[bool]) -> Callable[[], object]:
        return lambda: torch.ops.aten.convolution_backward(
            grad, x, weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask
        )

    expected = onednn([False, True, False])()[1].float()
    ours = im2col_weight_grad(x, grad, (3, 3), (1, 1)).float()
    return {
        "forward_ms": milliseconds(lambda: F.conv2d(x, weight, padding=1), repeats),
        "input_grad_ms": milliseconds(onednn([True, False, False]), repeats),
        "onednn_weight_grad_ms": milliseconds(onednn([False, True, False]), repeats),
        "im2col_weight_grad_ms": milliseconds(
            lambda: im2col_weight_grad(x, grad, (3, 3), (1, 1)), repeats
        ),
        "relative_difference": float((ours - expected).norm() / expected.norm()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2 cores here)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per measurement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load_before = os.getloadavg()
    rows = []
    for network, cin, cout, side, batch in SHAPES:
        row = {"network": network, "in": cin, "out": cout, "side": side, "batch": batch}
        row.update(measure(cin, cout, side, batch, args.repeats))
        row["im2col_speedup"] = row["onednn_weight_grad_ms"] / row["im2col_weight_grad_ms"]
        row["takes_matmul_path"] = side * side <= MAX_POSITIONS
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "benchmark": "conv_weight_grad",
        "machine": {**machine_info(), "load_before": load_before, "load_after": os.getloadavg()},
        "torch": torch.__version__,
        "threads": args.threads,
        "repeats": args.repeats,
        "max_positions": MAX_POSITIONS,
        "rows": rows,
    }
    out = write_result("conv_weight_grad", result)
    write_section("Training: the weight gradient of small maps", render(result))
    print(f"wrote {out.relative_to(ROOT)} and docs/benchmarks.md")


def render(result: dict) -> str:
    machine = result["machine"]
    lines = [
        "The bf16 weight gradient of the stride-1 3x3 convs of airnet 64-128-256 and ResNet-18",
        "small-input, channels_last on CPU: oneDNN's kernel (`aten.convolution_backward`) against",
        "one im2col matrix product (`cnnkit.nn.matmul_grad.im2col_weight_grad`), next to",
        "oneDNN's forward and input gradient of the same conv; median of "
        f"{result['repeats']} calls.",
        f"Machine: {machine_label(machine)}, {result['threads']} threads, load average "
        f"{machine['load_before'][0]:.1f} before and {machine['load_after'][0]:.1f} after. "
        "Command: `python benchmarks/conv_weight_grad.py`. The trainer takes the matmul path on "
        f"maps of at most {result['max_positions']} positions (`--matmul-weight-grad`, on by "
        "default); whole training steps decide that limit (docs/training.md).",
        "",
        "| network | conv | map | batch | forward | input grad | oneDNN weight grad | "
        "im2col weight grad | speed-up | matmul path |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['network']} | {r['in']} -> {r['out']} | {r['side']}x{r['side']} | "
            f"{r['batch']} | {r['forward_ms']:.1f} ms | {r['input_grad_ms']:.1f} ms | "
            f"{r['onednn_weight_grad_ms']:.1f} ms | {r['im2col_weight_grad_ms']:.1f} ms | "
            f"{r['im2col_speedup']:.2f}x | {'yes' if r['takes_matmul_path'] else 'no'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
