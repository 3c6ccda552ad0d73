"""``cnnkit predict CHECKPOINT IMAGE...``: top-k classes of image files (``train.predict``)."""

from __future__ import annotations

import argparse

from cnnkit.cli._common import add_format


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify image files with a trained checkpoint: top-k classes and probabilities",
        description="Classify image files (any format Pillow reads) with a cnnkit checkpoint: "
        "each image is converted to the run's channels, resized to its image size and "
        "normalised with its mean and std, as the run's own images were.",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file or run folder")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    parser.add_argument(
        "--top-k", "-k", type=int, default=5, metavar="K", help="classes per image (default: 5)"
    )
    parser.add_argument(
        "--weights",
        choices=("model", "ema"),
        default="model",
        help="the checkpoint's model weights or its EMA (default: model)",
    )
    from dataclasses import fields

    from cnnkit.cli.train import add_setting_flags
    from cnnkit.train.config import EvaluationConfig

    tta = [item for item in fields(EvaluationConfig) if item.name == "tta"]
    add_setting_flags(parser, tta, default_text="as the run was trained")
    parser.add_argument(
        "--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)"
    )
    add_format(parser, ("table", "json"), "table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnkit.train.jsonio import dumps
    from cnnkit.train.predict import predict
    from cnnkit.train.predict_render import render_table

    predictions = predict(
        args.checkpoint,
        args.images,
        args.top_k,
        weights=args.weights,
        device=args.device,
        tta=args.tta,
    )
    if args.format == "json":
        print(dumps([p.to_dict() for p in predictions]))
    else:
        print(render_table(predictions))
    return 0
