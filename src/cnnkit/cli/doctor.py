"""``cnnkit doctor MODEL_OR_CHECKPOINT --input C,H,W``: the seeds' checklists as automatic
checks on a model, its data and its training config (H1).

MODEL is a zoo name, ``package.module:callable``, or a cnnkit checkpoint (a ``.pt`` file or a
run folder: its model, weights and normalisation). Static rules always run (on the meta device
when the model can); ``--dataset`` adds the data rules, ``--config``/``--recipe`` the config
rules, ``--probe-steps N`` the probe rules. Exit 0 when nothing at or above ``--fail-on`` was
found, 1 otherwise (for CI).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cnnkit.cli._common import add_format, add_trust_code, parse_ints
from cnnkit.cli.summary import parse_model_kwargs
from cnnkit.errors import ConfigError

FORMATS = ("table", "json", "sarif")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check a model (and its data and config) for the seeds' known pitfalls",
        description=__doc__.split("\n\n")[0].replace("``", ""),
    )
    parser.add_argument(
        "model",
        metavar="MODEL_OR_CHECKPOINT",
        help="zoo name, package.module:callable, or a checkpoint file / run folder",
    )
    parser.add_argument(
        "--input",
        metavar="C,H,W",
        help="one sample's shape (default: the zoo model's or the checkpoint's)",
    )
    parser.add_argument(
        "--model-kwargs",
        metavar="JSON",
        help='keyword arguments for the model, e.g. \'{"small_input": true, "in_channels": 1}\'',
    )
    parser.add_argument("--dataset", metavar="NAME", help="run the data rules on this dataset")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", metavar="FILE", help="run the config rules on this JSON file")
    group.add_argument("--recipe", metavar="NAME", help="run the config rules on this recipe")
    parser.add_argument(
        "--probe-steps",
        type=int,
        default=0,
        metavar="N",
        help="run the probe rules: N training steps on a copy (default 0: off)",
    )
    parser.add_argument(
        "--object-size",
        type=int,
        metavar="N",
        help="pixels the receptive field must cover (default: half the input)",
    )
    parser.add_argument(
        "--fail-on",
        choices=("warning", "error"),
        default="error",
        help="exit 1 when a finding at or above this severity is found",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="where the dataset files are")
    add_format(parser, FORMATS, "table")
    add_trust_code(parser)
    parser.set_defaults(func=run)


def _is_checkpoint(spec: str) -> bool:
    path = Path(spec)
    return path.suffix in (".pt", ".pth") or path.is_dir() or (path.is_file() and ":" not in spec)


def run(args: argparse.Namespace) -> int:
    from cnnkit.doctor import DataEvidence, examine
    from cnnkit.doctor.render import RENDERERS

    if args.probe_steps < 0:
        raise ConfigError(f"--probe-steps: must be >= 0, got {args.probe_steps}")
    if args.object_size is not None and args.object_size < 1:
        raise ConfigError(f"--object-size: must be >= 1, got {args.object_size}")
    kwargs = parse_model_kwargs(args.model_kwargs)
    config = _config(args)
    if config is not None and args.model_kwargs is None and args.model == config.model:
        kwargs = dict(config.model_kwargs)  # the model the config would train
    mean = std = None
    input_shape = parse_ints(args.input, "--input") if args.input else None
    if _is_checkpoint(args.model):
        from cnnkit.train.checkpoint import load_checkpoint
        from cnnkit.train.evaluation import model_from_checkpoint

        if kwargs:
            raise ConfigError("--model-kwargs: a checkpoint names its own model arguments")
        saved = load_checkpoint(args.model)
        model: Any = model_from_checkpoint(saved, Path(args.model), "model", args.trust_code)
        mean, std = saved.get("mean"), saved.get("std")
        if input_shape is None and saved.get("image_shape") is not None:
            input_shape = tuple(int(v) for v in saved["image_shape"])
        name = f"{saved['model_name']} ({args.model})"
    else:
        from cnnkit.models import model_info, resolve_model

        spec = args.model
        if input_shape is None:
            if ":" in spec:
                raise ConfigError(f"--input is required for {spec!r} (e.g. --input 3,224,224)")
            input_shape = model_info(spec).default_input
            if "in_channels" in kwargs:
                input_shape = (int(kwargs["in_channels"]), *input_shape[1:])

        def model() -> Any:
            return resolve_model(spec, **kwargs)

        name = spec
    if input_shape is None:
        raise ConfigError("--input is required (the checkpoint records no image shape)")
    data = None
    if args.dataset:
        from cnnkit.data import load_dataset

        train = load_dataset(args.dataset, "train", data_dir=args.data_dir)
        test = load_dataset(args.dataset, "test", data_dir=args.data_dir)
        if mean is None and config is not None and config.mean is not None:
            mean, std = config.mean, config.std
        data = DataEvidence(
            train,
            test,
            tuple(mean) if mean is not None else None,
            tuple(std) if std is not None else None,
        )
    report = examine(
        model,
        input_shape,
        data=data,
        config=config,
        probe_steps=args.probe_steps,
        object_size=args.object_size,
        name=name,
    )
    sys.stdout.write(RENDERERS[args.format](report))
    return 1 if report.at_least(args.fail_on) else 0


def _config(args: argparse.Namespace) -> Any:
    if args.config is None and args.recipe is None:
        return None
    from cnnkit.train.config import resolve_config

    return resolve_config(args.recipe, args.config)
