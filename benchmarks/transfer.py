"""Benchmark: when does transfer learning pay? (issue 21, E4; the split-class protocol).

Pre-train a small model on real Fashion-MNIST's classes 0-4 (T-shirt/top .. Coat), then
train on its classes 5-9 (Sandal .. Ankle boot) with 10, 100 and 1,000 labelled images per
class: in the three fine-tuning modes (``features``: head only; ``partial``: from the stage
before the head; ``full``) and from scratch, every run with the same budget (the same number
of optimiser steps, batch size, optimiser and schedule: the lenet5 recipe's AdamW, cosine). Test
top-1 on all 5,000 test images of classes 5-9. With ``--digits``, the same against
scikit-learn's bundled handwritten digits (1,797 8x8 images, upsampled to 28x28 by the ``digits``
dataset source; 1,438 for training, 359 for the test).

Writes ``benchmarks/results/transfer.json`` (``transfer_quick.json`` with ``--quick``): every
top-1, the settings, the machine, its load average and the command; prints a markdown table.

    # the smoke configuration recorded in docs/benchmarks.md (a loaded 2-core machine):
    python benchmarks/transfer.py --quick
    # the full configuration recorded there: all 30,000 source images for 10 epochs, 300 steps
    # per transfer run, the new head at 10x the recipe's rate, three seeds
    python benchmarks/transfer.py --seeds 0,1,2 --head-lr 0.01
    # the same source models, transferred to sklearn's digits only (10, 50 and 130 labels a class)
    python benchmarks/transfer.py --seeds 0,1,2 --head-lr 0.01 --digits --no-fashion \
        --out benchmarks/results/transfer_digits.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

MODES = ("scratch", "features", "partial", "full")
# a peer for context: scikit-learn's logistic regression on the raw pixels, trained to convergence
PEER = "pixels_logreg"
# and on the pre-trained model's frozen features (the head's input): what the features allow
PROBE = "features_logreg"
SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)


def split_classes(dataset, classes, per_class=None, seed=0):
    """The images of ``classes`` (relabelled 0..len-1, named as before); with ``per_class``,
    the first ``per_class`` of each class in a permutation seeded by ``seed``."""
    import torch

    from cnnkit.data import ImageDataset

    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    chosen = []
    for cls in classes:
        members = order[dataset.labels[order] == cls]
        chosen.append(members if per_class is None else members[:per_class])
    index = torch.cat(chosen).sort().values
    mapping = torch.full((len(dataset.classes),), -1, dtype=torch.int64)
    mapping[list(classes)] = torch.arange(len(classes))
    return ImageDataset(
        dataset.images[index],
        mapping[dataset.labels[index]],
        [dataset.classes[c] for c in classes],
        f"{dataset.name}[{','.join(map(str, classes))}]",
        dataset.split,
    )


def common(args, out: Path, **changes):
    from cnnkit.train import TrainConfig
    from cnnkit.train.recipes import RECIPES

    base = RECIPES.get(args.recipe).to_dict()
    base.update(
        model=args.model,
        val_size=0,
        out_dir=str(out),
        progress=False,
        tensorboard=False,
        plots=False,
        threads=args.threads,
        seed=changes.pop("seed", 0),
    )
    base.update(changes)
    return TrainConfig.from_dict(base)


def pretrain(args, source_train, source_test, work: Path, seed: int) -> tuple[Path, float]:
    from cnnkit.train import fit

    train = source_train
    if args.source_images:
        train = train.subset(range(min(args.source_images, len(train))))
    config = common(args, work / f"source-{seed}", epochs=args.source_epochs, seed=seed)
    result = fit(config, train_set=train, test_set=source_test)
    return result.out_dir, result.final["test_top1"]


def transfer_run(args, checkpoint, mode, train, test, work: Path, seed: int) -> dict:
    from cnnkit.train import fit

    batch = min(args.batch_size, len(train))
    steps_per_epoch = math.ceil(len(train) / batch)
    epochs = math.ceil(args.steps / steps_per_epoch)
    changes = dict(epochs=epochs, batch_size=batch, drop_last=False, seed=seed)
    if mode != "scratch":
        changes.update(init_from=str(checkpoint), finetune_mode=mode, head_lr=args.head_lr)
    label = f"{train.name}-{len(train)}-{mode}-{seed}".replace("/", "_")
    started = time.perf_counter()
    result = fit(common(args, work / label, **changes), train_set=train, test_set=test)
    return {
        "mode": mode,
        "seed": seed,
        "labels_per_class": len(train) // len(train.classes),
        "train_images": len(train),
        "epochs": epochs,
        "steps": epochs * steps_per_epoch,
        "test_top1": result.final["test_top1"],
        "seconds": round(time.perf_counter() - started, 2),
    }


def pixel_logistic_regression(train, test, seed: int) -> dict:
    """Test top-1 of sklearn's LogisticRegression on raw pixels (scaled to [0, 1])."""
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    x = train.images.flatten(1).numpy() / 255.0
    clf = LogisticRegression(max_iter=3000, random_state=seed).fit(x, train.labels.numpy())
    predicted = clf.predict(test.images.flatten(1).numpy() / 255.0)
    top1 = 100.0 * float((predicted == test.labels.numpy()).mean())
    return {
        "mode": PEER,
        "seed": seed,
        "labels_per_class": len(train) // len(train.classes),
        "train_images": len(train),
        "test_top1": round(top1, 2),
        "seconds": round(time.perf_counter() - started, 2),
    }


def feature_probe(checkpoint: Path, train, test, seed: int) -> dict:
    """Test top-1 of sklearn's LogisticRegression on the pre-trained model's head inputs.

    The features are taken by a forward hook on the head (``model_stages``/``head_stage``), with
    the checkpoint's normalisation, in eval mode: a converged linear probe, the ceiling of the
    ``features`` mode.
    """
    import torch
    from sklearn.linear_model import LogisticRegression

    from cnnkit.models import MODELS, instantiate, model_info
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.transfer import head_stage, model_stages

    started = time.perf_counter()
    saved = load_checkpoint(checkpoint / "best.pt")
    name = saved["model_name"]  # the benchmark's own --model (named by its user)
    model = instantiate(name, dict(saved["model_kwargs"]))[0]
    model.load_state_dict(saved["model"])
    model.eval()
    classifier = model_info(name).classifier if name in MODELS.names() else None
    head = model.get_submodule(head_stage(model, model_stages(model), classifier))
    mean = torch.tensor(saved["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(saved["std"]).view(1, -1, 1, 1)

    def features(dataset):
        taken = []
        hook = head.register_forward_pre_hook(lambda m, args: taken.append(args[0].flatten(1)))
        with torch.no_grad():
            for start in range(0, len(dataset), 1000):
                images = dataset.images[start : start + 1000].float().div(255)
                model(images.sub(mean).div(std))
        hook.remove()
        return torch.cat(taken).numpy()

    clf = LogisticRegression(max_iter=3000, random_state=seed)
    clf.fit(features(train), train.labels.numpy())
    top1 = 100.0 * float((clf.predict(features(test)) == test.labels.numpy()).mean())
    return {
        "mode": PROBE,
        "seed": seed,
        "labels_per_class": len(train) // len(train.classes),
        "train_images": len(train),
        "test_top1": round(top1, 2),
        "seconds": round(time.perf_counter() - started, 2),
    }


def digits_target():
    """scikit-learn's digits as (train, test), upsampled to 28x28, or None without the source."""
    from cnnkit.data import load_dataset
    from cnnkit.errors import CnnkitError

    try:
        train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    except CnnkitError:
        return None
    import torch.nn.functional as F

    from cnnkit.data import ImageDataset

    def upsample(d):
        images = F.interpolate(d.images.float(), size=(28, 28), mode="bilinear")
        images = images.round().clamp(0, 255).to(d.images.dtype)
        return ImageDataset(images, d.labels, d.classes, d.name, d.split)

    return upsample(train), upsample(test)


def table(rows: list[dict], sizes: list[int], target: str) -> str:
    lines = [
        f"| {target}: labels per class | " + " | ".join((*MODES, PROBE, PEER)) + " |",
        "|---" * (len(MODES) + 3) + "|",
    ]
    for size in sizes:
        cells = []
        for mode in (*MODES, PROBE, PEER):
            values = [
                r["test_top1"]
                for r in rows
                if r["mode"] == mode and r["labels_per_class"] == size and r["target"] == target
            ]
            if not values:
                cells.append("-")
            elif len(values) == 1:
                cells.append(f"{values[0]:.2f}")
            else:
                cells.append(f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}")
        lines.append(f"| {size:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke configuration")
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--recipe", default="lenet5", help="the optimisation of every run")
    parser.add_argument("--sizes", default="10,100,1000", help="labels per target class")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--source-images", type=int, default=0, help="0: all 30,000")
    parser.add_argument("--source-epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps per transfer run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--head-lr",
        type=float,
        default=None,
        help="peak rate of the new head when transferring (default: the recipe's --lr)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--digits", action="store_true", help="also transfer to sklearn digits")
    parser.add_argument(
        "--digits-sizes",
        default="10,50,130",
        help="labels per class for the digits target (its training split has 139-146 a class)",
    )
    parser.add_argument(
        "--no-fashion", action="store_true", help="skip the Fashion-MNIST 5-9 target"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.source_images, args.source_epochs, args.steps = args.source_images or 6000, 3, 60
    out = args.out or ROOT / "benchmarks" / "results" / (
        "transfer_quick.json" if args.quick else "transfer.json"
    )
    from cnnkit.data import load_dataset

    full_train, full_test = (
        load_dataset("fashion_mnist", "train"),
        load_dataset("fashion_mnist", "test"),
    )
    source = split_classes(full_train, SOURCE_CLASSES), split_classes(full_test, SOURCE_CLASSES)
    target_test = split_classes(full_test, TARGET_CLASSES)
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    digit_sizes = [int(s) for s in args.digits_sizes.split(",")]
    load_before = list(os.getloadavg())
    digits = digits_target() if args.digits else None
    rows, sources = [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cnnkit-transfer-") as tmp:
        work = Path(tmp)
        for seed in seeds:
            checkpoint, source_top1 = pretrain(args, *source, work, seed)
            sources.append({"seed": seed, "source_test_top1": source_top1})
            for size in [] if args.no_fashion else sizes:
                train = split_classes(full_train, TARGET_CLASSES, per_class=size, seed=seed)
                for mode in MODES:
                    row = transfer_run(args, checkpoint, mode, train, target_test, work, seed)
                    rows.append({"target": "fashion_mnist 5-9", **row})
                    print(json.dumps(rows[-1]), flush=True)
                row = pixel_logistic_regression(train, target_test, seed)
                rows.append({"target": "fashion_mnist 5-9", **row})
                row = feature_probe(checkpoint, train, target_test, seed)
                rows.append({"target": "fashion_mnist 5-9", **row})
            if digits is not None:
                for size in digit_sizes:
                    train = split_classes(digits[0], tuple(range(10)), per_class=size, seed=seed)
                    for mode in MODES:
                        row = transfer_run(args, checkpoint, mode, train, digits[1], work, seed)
                        rows.append({"target": "sklearn digits", **row})
                        print(json.dumps(rows[-1]), flush=True)
                    row = pixel_logistic_regression(train, digits[1], seed)
                    rows.append({"target": "sklearn digits", **row})
                    row = feature_probe(checkpoint, train, digits[1], seed)
                    rows.append({"target": "sklearn digits", **row})
    from cnnkit.runtime import cpu_model

    result = {
        "benchmark": "transfer (split-class protocol, issue 21 E4)",
        "command": "python benchmarks/transfer.py " + " ".join(argv or sys.argv[1:]),
        "model": args.model,
        "recipe": args.recipe,
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
        "load_average": {"before": load_before, "after": list(os.getloadavg())},
        "digits": "measured" if digits is not None else "skipped: no 'digits' dataset source",
        "wall_seconds": round(time.perf_counter() - started, 1),
        "source": sources,
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if not args.no_fashion:
        print(table(rows, sizes, "fashion_mnist 5-9"))
    if digits is not None:
        print(table(rows, digit_sizes, "sklearn digits"))
    print(f"source (classes 0-4) test top-1: {[s['source_test_top1'] for s in sources]}")
    print(f"load average before/after: {load_before} / {result['load_average']['after']}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
