"""Benchmark: CPU inference variants of three models, and what int8 costs in accuracy.

For the demo's airnet checkpoint (``cnnkit train --recipe fast``), ResNet-18 small-input
(3x32x32) and MobileNetV2 at 224, :func:`cnnkit.deploy.bench.benchmark` times eager fp32,
channels_last, bf16 autocast, folded, torch.compile, onnxruntime fp32 and static int8 per batch
size and thread count, in one process; the speed-ups over eager are ratios within that run. The
checkpoint's int8 model is scored on the whole Fashion-MNIST test set against fp32
(:func:`cnnkit.deploy.quantize.quantize_report`).

The machine's load average is recorded with every model. Default: a reduced run for a shared,
loaded machine (batch 1 and 8, one thread, 20 timed calls, no torch.compile); ``--full`` is the
configuration of the issue (batch 1, 8, 64; 1 and all threads; 30 calls; torch.compile).

Writes benchmarks/results/deploy.json and the "Deployment: CPU inference variants" section of
docs/benchmarks.md. Usage: ``python benchmarks/deploy.py --checkpoint RUN_DIR [--full]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

from fashion_table import machine_info, machine_label, write_result  # noqa: E402
from recording import write_section  # noqa: E402

TITLE = "Deployment: CPU inference variants"


def models(checkpoint: Path) -> list[tuple[str, object, tuple[int, ...], object]]:
    """(label, model, input shape, calibration images or None) of each benchmarked model."""
    from cnnkit.data import load_dataset
    from cnnkit.models import create_model
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.evaluation import model_from_checkpoint

    saved = load_checkpoint(checkpoint)
    airnet = model_from_checkpoint(saved, checkpoint, "model").eval()
    calibration, _ = normalised(load_dataset(saved["config"]["dataset"], "train"), saved, 128)
    return [
        ("airnet (demo checkpoint)", airnet, tuple(saved["image_shape"]), calibration),
        (
            "ResNet-18 small-input",
            create_model("resnet18", small_input=True, num_classes=10).eval(),
            (3, 32, 32),
            None,
        ),
        ("MobileNetV2", create_model("mobilenet_v2").eval(), (3, 224, 224), None),
    ]


def normalised(data, saved: dict, limit: int | None = None):
    """``(x/255 - mean)/std`` of a dataset's images (the first ``limit`` of a fixed shuffle)."""
    import torch

    images, labels = data.images, data.labels
    if limit is not None:
        pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:limit]
        images, labels = images[pick], labels[pick]
    mean = torch.tensor(saved["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(saved["std"]).view(1, -1, 1, 1)
    return (images.float() / 255 - mean) / std, labels


def int8_cost(checkpoint: Path, out: Path) -> dict:
    """The checkpoint's static int8 model against fp32 on the whole test set."""
    from cnnkit.data import load_dataset
    from cnnkit.deploy.quantize import quantize_report
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.evaluation import model_from_checkpoint

    saved = load_checkpoint(checkpoint)
    model = model_from_checkpoint(saved, checkpoint, "model").eval()
    dataset = saved["config"]["dataset"]
    calibration, _ = normalised(load_dataset(dataset, "train"), saved, 512)
    images, labels = normalised(load_dataset(dataset, "test"), saved)
    report = quantize_report(model, tuple(saved["image_shape"]), out, calibration, images, labels)
    return {**report.to_dict(), "load": list(os.getloadavg())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="the demo run folder")
    parser.add_argument("--full", action="store_true", help="the issue's full configuration")
    parser.add_argument("--skip-int8-accuracy", action="store_true")
    args = parser.parse_args()
    from cnnkit.deploy.bench import DEFAULT_VARIANTS, benchmark

    checkpoint = args.checkpoint / "best.pt" if args.checkpoint.is_dir() else args.checkpoint
    if args.full:
        settings = dict(batch_sizes=(1, 8, 64), threads=None, warmup=5, repeats=30)
        variants = DEFAULT_VARIANTS
    else:
        settings = dict(batch_sizes=(1, 8), threads=(1,), warmup=3, repeats=20)
        variants = tuple(v for v in DEFAULT_VARIANTS if v != "compile")
    runs = []
    for label, model, shape, calibration in models(checkpoint):
        print(f"{label} {shape} ...", flush=True)
        result = benchmark(model, shape, name=label, variants=variants,
                           calibration=calibration, **settings)  # fmt: skip
        runs.append(result.to_dict())
    result = {
        "configuration": "full" if args.full else "reduced",
        "machine": machine_info(),
        "runs": runs,
        "int8": None
        if args.skip_int8_accuracy
        else int8_cost(checkpoint, Path(tempfile.mkdtemp(prefix="cnnkit-int8-")) / "int8.onnx"),
    }
    print(write_result("deploy", result))
    write_section(TITLE, render(result))


def render(result: dict) -> str:
    """The docs section: per model the p50 table and the speed-ups over eager."""
    lines = [
        f"Measured {result['machine']['date']} on {machine_label(result['machine'])}, "
        f"{result['configuration']} configuration (`python benchmarks/deploy.py --checkpoint "
        "RUN_DIR` reduced, `--full` for batch 1/8/64, 1 and all threads, 30 calls and "
        "torch.compile). Latency in ms per batch: p50, and the minimum (on a loaded machine a call "
        "that outlasts its time slice waits for a core, so p50 measures the queue and the minimum "
        "the work); the speed-up is eager's figure over the variant's, in the same run, the "
        "variants taking turns call by call.",
        "",
    ]
    for run in result["runs"]:
        rows = run["measurements"]
        batches = sorted({r["batch_size"] for r in rows})
        threads = sorted({r["threads"] for r in rows})
        load = ", ".join(f"{v:.1f}" for v in run["load_before"])
        after = ", ".join(f"{v:.1f}" for v in run["load_after"])
        lines += [f"**{run['model']}** {tuple(run['input_shape'])}, load {load} -> {after}", ""]
        head = "| variant | precision | threads | " + " | ".join(
            f"batch {b}: p50 ms (speed-up), min ms (speed-up)" for b in batches
        )
        lines += [head + " |", "|" + "---|" * (3 + len(batches))]
        eager = {(r["batch_size"], r["threads"]): r for r in rows if r["variant"] == "eager"}
        for variant in dict.fromkeys(r["variant"] for r in rows):
            for count in threads:
                cells = []
                for b in batches:
                    row = next((r for r in rows if (r["variant"], r["batch_size"], r["threads"])
                                == (variant, b, count)), None)  # fmt: skip
                    if row is None:
                        cells.append("-")
                        continue
                    base = eager.get((b, count))
                    ratio = base["p50_ms"] / row["p50_ms"] if base else 0.0
                    best = base["min_ms"] / row["min_ms"] if base and row["min_ms"] else 0.0
                    cells.append(
                        f"{row['p50_ms']:.3f} ({ratio:.2f}x), {row['min_ms']:.3f} ({best:.2f}x)"
                    )
                precision = next(r["precision"] for r in rows if r["variant"] == variant)
                lines.append(f"| {variant} | {precision} | {count} | " + " | ".join(cells) + " |")
        fastest = ", ".join(
            f"batch {f['batch_size']}/{f['threads']} thr: {f['variant']}" for f in run["fastest"]
        )
        lines += ["", f"Fastest: {fastest}."]
        for name, reason in run["skipped"].items():
            lines.append(f"Skipped {name}: {reason}.")
        for name, seconds in run["setup_seconds"].items():
            if seconds >= 0.1:
                lines.append(f"Setup {name}: {seconds:.1f} s.")
        lines.append("")
    int8 = result.get("int8")
    if int8:
        lines += [
            "**int8 on Fashion-MNIST** (airnet demo checkpoint, static QDQ, per-channel weights, "
            f"{int8['calibration_images']} training images to calibrate; "
            f"load {', '.join(f'{v:.1f}' for v in int8['load'])}): test top-1 PyTorch "
            f"{int8['torch_top1']:.2f}%, onnxruntime fp32 {int8['fp32_top1']:.2f}%, int8 "
            f"{int8['int8_top1']:.2f}% ({int8['int8_top1'] - int8['fp32_top1']:+.2f} points); "
            f"file {int8['fp32_bytes'] / 1e6:.2f} MB -> {int8['int8_bytes'] / 1e6:.2f} MB; "
            f"batch-1 one-thread p50 {int8['fp32_ms']:.3f} ms fp32, {int8['int8_ms']:.3f} ms int8.",
            "",
        ]
    return "\n".join(lines).rstrip("\n")


if __name__ == "__main__":
    main()
