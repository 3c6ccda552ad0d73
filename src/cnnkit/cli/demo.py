"""``cnnkit demo``: the main job. Real Fashion-MNIST, the ``fast`` recipe, test accuracy at the end.

It introduces the model (parameters and MACs from the analyzer), finds or downloads the data,
trains with a progress bar and reports the test accuracy and the run folder. The run folder is
``runs/demo-<YYYYmmdd-HHMMSS>`` unless ``--out`` names another; an existing run is never
overwritten.
"""

from __future__ import annotations

import argparse
import time


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the main job: train on real Fashion-MNIST (about a minute) and report test accuracy",
        description="Train the `fast` recipe (airnet) on real Fashion-MNIST and report the test "
        "accuracy and where the run's files are.",
    )
    parser.add_argument("--out", metavar="DIR", help="run folder (default: runs/demo-<time>)")
    parser.add_argument("--recipe", default="fast", help="training recipe (default: fast)")
    parser.add_argument(
        "--time-budget", type=float, metavar="SECONDS", help="seconds of training (recipe's)"
    )
    parser.add_argument("--data-dir", metavar="DIR", help="where the Fashion-MNIST files are")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnkit.train.config import resolve_config

    out_dir = args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}"
    overrides = {"out_dir": out_dir, "dataset": "fashion_mnist", "data_dir": args.data_dir}
    if args.time_budget is not None:
        overrides["time_budget"] = args.time_budget
    config = resolve_config(args.recipe, overrides=overrides)
    print(
        f"cnnkit demo: train {config.model.model} on real Fashion-MNIST with the "
        f"{args.recipe!r} recipe"
        + (
            f" ({config.schedule.time_budget:g} s of training)"
            if config.schedule.time_budget
            else ""
        )
    )
    print(describe_model(config.model.model, config.model.model_kwargs))

    from cnnkit.data import load_dataset
    from cnnkit.train.loop import fit

    started = time.perf_counter()
    train_set = load_dataset("fashion_mnist", "train", data_dir=args.data_dir)
    test_set = load_dataset("fashion_mnist", "test", data_dir=args.data_dir)
    print(
        f"data: Fashion-MNIST, {len(train_set):,} train and {len(test_set):,} test images "
        f"from {train_set.source or 'the cache'} ({time.perf_counter() - started:.1f} s)"
    )
    result = fit(config, train_set=train_set, test_set=test_set)
    print(
        f"\ndone: test accuracy {result.final['test_top1']:.2f}% "
        f"(top-5 {result.final['test_top5']:.2f}%) after {result.final['wall_seconds']:.0f} s "
        "of training and evaluation.\n"
        f"files in {result.out_dir}/: final.json, metrics.csv, config.json, environment.json, "
        "best.pt, last.pt"
        f"{', curves.png, confusion.png, hardest.png' if config.output.plots else ''}\n"
        f"next: cnnkit eval {result.out_dir}/best.pt"
    )
    return 0


def describe_model(name: str, kwargs: dict) -> str:
    """One line: the model's parameters and MACs per image (cnnkit.analysis.summarize)."""
    from cnnkit.models import create_model, model_info

    info = model_info(name)
    model = create_model(name, **kwargs)
    params = sum(p.numel() for p in model.parameters())
    text = f"model: {name}, {params:,} parameters"
    try:
        from cnnkit.analysis import summarize
    except ImportError:  # the analyzer is optional for the demo
        return text
    summary = summarize(model, info.default_input)
    channels, height, width = info.default_input
    return f"{text}, {summary.total.macs / 1e6:.1f} M MACs per {channels}x{height}x{width} image"
