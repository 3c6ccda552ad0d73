"""``cnnkit finetune CHECKPOINT``: ``cnnkit train --init-from CHECKPOINT`` with its own name.

Every ``cnnkit train`` flag works here too (the parser is train's); ``--mode`` is
``--finetune-mode``. The model is the checkpoint's unless ``--model`` names one (a plain
state-dict file records none, so it needs ``--model``).
"""

from __future__ import annotations

import argparse

from cnnkit.errors import CheckpointError, ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from cnnkit.cli.train import add_train_arguments

    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a trained model on another dataset (transfer learning)",
        description="Start from CHECKPOINT (a cnnkit run's best.pt or folder, a "
        "torchvision-format state_dict file, or package.module:callable; or --pretrained: "
        "torchvision's published ImageNet weights of --model) and train on "
        "--dataset: the head only (--mode features), the stages from --unfreeze-from on "
        "(partial) or everything (full, the default), at per-group rates (--head-lr/"
        "--backbone-lr or --layer-decay). Takes every cnnkit train flag.",
    )
    parser.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        nargs="?",
        help="the weights to start from (or --pretrained: torchvision's for --model)",
    )
    add_train_arguments(parser, {"finetune_mode": ("--mode",)})
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnkit.cli.train import overrides_from, train_with
    from cnnkit.train.transfer import checkpoint_model

    overrides = overrides_from(args)
    if args.resume is not None:
        raise ConfigError(
            f"--resume: continue a fine-tuning run with cnnkit train --resume {args.resume}"
        )
    if "init_from" in overrides and overrides["init_from"] != args.checkpoint:
        raise ConfigError("--init-from: the checkpoint is CHECKPOINT; give it once")
    if overrides.get("pretrained"):
        if args.checkpoint is not None:
            raise ConfigError(
                f"--pretrained: starts from torchvision's published weights; CHECKPOINT "
                f"{args.checkpoint} names other weights: give one of them"
            )
        if "model" not in overrides:
            raise ConfigError("--pretrained: name the zoo model with --model (e.g. resnet18)")
        return train_with(args, overrides)
    if args.checkpoint is None:
        raise ConfigError(
            "CHECKPOINT: give the weights to start from, or --pretrained with --model"
        )
    is_file = Path(args.checkpoint).exists()
    if not is_file and ":" not in args.checkpoint:
        raise CheckpointError(f"{args.checkpoint}: no such checkpoint file or run folder")
    if is_file and "model" not in overrides and checkpoint_model(args.checkpoint) is None:
        raise ConfigError(
            f"{args.checkpoint}: a plain state dict records no model; name it with --model "
            "(e.g. --model resnet18)"
        )
    return train_with(args, {**overrides, "init_from": args.checkpoint})
