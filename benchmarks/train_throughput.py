"""Training throughput: cnnkit's trainer against a plain PyTorch loop written like seed 003.

Both train the same model with the same batch size and optimiser on real Fashion-MNIST, in the
same process, one after the other. The baseline is 003's section 10: a per-sample ``Dataset``
(ToTensor, RandomHorizontalFlip, RandomCrop(28, padding=4), Normalize, applied image by image)
behind a ``DataLoader(num_workers=2)``, fp32, default memory format. cnnkit runs ``fit()``: the
whole dataset on the device as uint8, batched augmentation, and the precision / memory format
of each variant. Images/s is measured on the second epoch (warm: oneDNN primitives built, the
baseline's workers forked again as 003's loop does each epoch), data loading included.

Writes benchmarks/results/train_throughput.json and the "Training: throughput" section of
docs/benchmarks.md. Usage: ``python benchmarks/train_throughput.py [--images N] [--models ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from cnnkit.data import load_dataset  # noqa: E402
from cnnkit.models import create_model  # noqa: E402
from cnnkit.train import TrainConfig, fit  # noqa: E402
from fashion_table import (  # noqa: E402
    machine_info,
    machine_label,
    write_result,
)
from recording import write_section  # noqa: E402

DEFAULT_ROUNDS = 3

MEAN, STD = 0.2860, 0.3530  # 003's Normalize
MODELS = {
    "lenet5": {},
    "simple_cnn": {},
    "resnet18": {"small_input": True},
    "airnet": {},
}


class PerSampleFashion(Dataset):
    """003's pipeline, one image at a time (what torchvision's transforms do per sample)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index].float() / 255.0  # ToTensor
        if random.random() < 0.5:  # RandomHorizontalFlip
            image = image.flip(-1)
        padded = torch.nn.functional.pad(image, (4, 4, 4, 4))  # RandomCrop(28, padding=4)
        top, left = random.randint(0, 8), random.randint(0, 8)
        image = padded[:, top : top + 28, left : left + 28]
        return (image - MEAN) / STD, int(self.labels[index])  # Normalize


def baseline_images_per_second(name: str, images, labels, batch_size: int) -> float:
    """003's loop (SGD nesterov, label smoothing, clipping); images/s of the second epoch."""
    torch.manual_seed(0)
    model = create_model(name, in_channels=1, num_classes=10, **MODELS[name])
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True
    )
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    loader = DataLoader(
        PerSampleFashion(images, labels), batch_size, shuffle=True, num_workers=2, drop_last=True
    )
    rate = 0.0
    for _epoch in range(2):
        model.train()
        start, seen = time.perf_counter(), 0
        for batch, target in loader:
            optimizer.zero_grad()
            loss = criterion(model(batch), target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            seen += len(batch)
        rate = seen / (time.perf_counter() - start)
    return rate


def cnnkit_images_per_second(
    name: str,
    train_set,
    test_set,
    batch_size: int,
    precision: str,
    channels_last: bool,
    matmul_weight_grad: bool = True,
) -> float:
    """``fit()`` with 003's optimiser and augmentation; images/s of its second epoch."""
    out_dir = Path(tempfile.mkdtemp(prefix="cnnkit-throughput-"))
    config = TrainConfig(
        model=name,
        model_kwargs=MODELS[name],
        val_size=0,
        epochs=2,
        batch_size=batch_size,
        lr=0.01,
        momentum=0.9,
        nesterov=True,
        weight_decay=1e-4,
        label_smoothing=0.1,
        grad_clip=1.0,
        flip=True,
        crop_padding=4,
        mean=[MEAN],
        std=[STD],
        precision=precision,
        channels_last=channels_last,
        matmul_weight_grad=matmul_weight_grad,
        progress=False,
        tensorboard=False,
        plots=False,
        hardest=0,
        out_dir=str(out_dir / "run"),
    )
    try:
        result = fit(config, train_set=train_set, test_set=test_set)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return result.history[-1]["images_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3840, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (003: 128)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2 cores here)")
    parser.add_argument(
        "--rounds", type=int, default=DEFAULT_ROUNDS, help="interleaved repetitions (median)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    full = load_dataset("fashion_mnist", "train")
    train_set = full.subset(range(args.images))
    test_set = load_dataset("fashion_mnist", "test").subset(range(500))
    load_before = os.getloadavg()
    # the last variant turns off the im2col weight gradient (cnnkit.nn.matmul_grad), so its
    # gain is measured in the same run
    variants = (
        ("cnnkit_fp32", "off", False, True),
        ("cnnkit_fp32_channels_last", "off", True, True),
        ("cnnkit_bf16_channels_last", "bf16", True, True),
        ("cnnkit_bf16_channels_last_onednn_wgrad", "bf16", True, False),
    )
    rows = []
    for name in args.models:
        images = args.images // 4 if name == "resnet18" else args.images
        subset = train_set.subset(range(images))
        samples: dict[str, list[float]] = {"baseline_003": []}
        for label, *_ in variants:
            samples[label] = []
        # Interleaved rounds, median per variant: other work on a shared machine comes and goes,
        # and interleaving spreads it over every variant alike.
        for _round in range(args.rounds):
            samples["baseline_003"].append(
                baseline_images_per_second(name, subset.images, subset.labels, args.batch_size)
            )
            for label, precision, channels_last, matmul in variants:
                samples[label].append(
                    cnnkit_images_per_second(
                        name, subset, test_set, args.batch_size, precision, channels_last, matmul
                    )
                )
        row = {"model": name, "images_per_epoch": images, "batch_size": args.batch_size}
        row.update({label: statistics.median(values) for label, values in samples.items()})
        row["samples"] = samples
        row["speedup_bf16_channels_last"] = row["cnnkit_bf16_channels_last"] / row["baseline_003"]
        row["speedup_best_cnnkit"] = max(row[label] for label, *_ in variants) / row["baseline_003"]
        row["matmul_weight_grad_gain"] = (
            row["cnnkit_bf16_channels_last"] / row["cnnkit_bf16_channels_last_onednn_wgrad"]
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "benchmark": "train_throughput",
        "machine": {**machine_info(), "load_before": load_before, "load_after": os.getloadavg()},
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": args.threads,
        "rounds": args.rounds,
        "rows": rows,
    }
    out = write_result("train_throughput", result)
    write_section("Training: throughput", render(result))
    print(f"wrote {out.relative_to(ROOT)} and docs/benchmarks.md")


def render(result: dict) -> str:
    lines = [
        "cnnkit's trainer against a plain PyTorch loop written like seed 003 (per-sample `Dataset`",
        "and `DataLoader(num_workers=2)`, fp32), same model, batch and optimiser, measured one",
        "after the other in one run; images/s of the second epoch, data loading included; median",
        f"of {result['rounds']} interleaved rounds.",
        f"Machine: {machine_label(result['machine'])}, {result['threads']} threads, load "
        f"average {result['machine']['load_before'][0]:.1f} before and "
        f"{result['machine']['load_after'][0]:.1f} after (2 cores: above 2 means other work "
        "was running). Command: `python benchmarks/train_throughput.py"
        + (f" --rounds {result['rounds']}" if result["rounds"] != DEFAULT_ROUNDS else "")
        + "`.",
        "",
        "The bf16 columns differ only in the weight gradient of convs on maps up to 4x4: one",
        "im2col matmul (cnnkit's default on CPU, `cnnkit.nn.matmul_grad`) or oneDNN's kernel",
        "(`--no-matmul-weight-grad`).",
        "",
        "| model | 003-style baseline | cnnkit fp32 | cnnkit fp32 + channels_last | "
        "cnnkit bf16 + CL | bf16 + CL, oneDNN weight grad | matmul weight-grad gain | "
        "speed-up (bf16 + CL) | best cnnkit speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['model']} | {row['baseline_003']:.0f} | {row['cnnkit_fp32']:.0f} | "
            f"{row['cnnkit_fp32_channels_last']:.0f} | {row['cnnkit_bf16_channels_last']:.0f} | "
            f"{row['cnnkit_bf16_channels_last_onednn_wgrad']:.0f} | "
            f"{row['matmul_weight_grad_gain']:.2f}x | "
            f"{row['speedup_bf16_channels_last']:.2f}x | {row['speedup_best_cnnkit']:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
