"""``cnnkit lab NAME``: the seeds' experiments (B4-B7), one sub-command each.

Each sub-command calls one function of :mod:`cnnkit.lab` and prints its result as text or
(``--format json``) as JSON.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from cnnkit.cli._common import add_format
from cnnkit.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lab",
        help="classic CNN experiments: edges, learn-kernel, equivariance, checkerboard, ...",
        description="Run a classic CNN experiment with cnnkit's reference operations.",
    )
    labs = parser.add_subparsers(dest="lab", metavar="NAME", parser_class=type(parser))
    labs.required = True

    edges = labs.add_parser(
        "edges", help="edge detection by cross-correlation: the horizontal and vertical examples"
    )
    learn = labs.add_parser(
        "learn-kernel", help="learn the edge kernel [1, -1] by gradient descent"
    )
    learn.add_argument("--iterations", type=int, default=10, help="updates (default: 10)")
    learn.add_argument(
        "--learning-rate", type=float, default=3e-2, help="step size (default: 0.03)"
    )
    learn.add_argument("--seed", type=int, default=0, help="seed of the initial kernel")

    equivariance = labs.add_parser(
        "equivariance", help="F(Tx) = T F(x), and how padding, stride, pooling break it"
    )
    equivariance.add_argument("--size", type=int, default=16, help="image size (even)")
    equivariance.add_argument(
        "--shift", action="append", metavar="DY,DX", help="a shift to test (repeatable)"
    )
    equivariance.add_argument("--channels", type=int, default=3, help="input channels")
    equivariance.add_argument("--seed", type=int, default=0, help="seed of image and kernels")

    checker = labs.add_parser("checkerboard", help="coverage of a transposed conv and its fixes")
    checker.add_argument("--kernel-size", type=int, default=3, help="kernel size (default: 3)")
    checker.add_argument("--stride", type=int, default=2, help="stride (default: 2)")
    checker.add_argument("--size", type=int, default=8, help="input size (default: 8)")

    flow = labs.add_parser(
        "gradient-flow", help="gradient norms through deep plain vs residual stacks"
    )
    flow.add_argument("--blocks", type=int, default=50, help="blocks per stack (default: 50)")
    flow.add_argument("--seed", type=int, default=0, help="seed of weights and input")
    flow.add_argument(
        "--experiment", choices=("conv", "linear", "both"), default="both",
        help="conv blocks, linear blocks, or both (default: both)",
    )  # fmt: skip
    flow.add_argument(
        "--out", metavar="FILE", help="also write the plot to FILE (.png, .svg or .pdf)"
    )

    algorithms = labs.add_parser(
        "conv-algorithms", help="loop/im2col/fft/winograd vs torch: error, time, memory"
    )
    algorithms.add_argument(
        "--shape", action="append", metavar="N,C,H,W,C_OUT,K[,S[,P]]",
        help="a layer shape (repeatable); default: two small 3x3 layers",
    )  # fmt: skip
    algorithms.add_argument(
        "--resnet18", action="store_true", help="use the ResNet-18 layer shapes instead"
    )
    algorithms.add_argument(
        "--method", action="append", choices=("torch", "loop", "im2col", "fft", "winograd"),
        help="a method to run (repeatable; default: all)",
    )  # fmt: skip
    algorithms.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    algorithms.add_argument("--repeats", type=int, default=5, help="timed runs (default: 5)")

    for lab in (edges, learn, equivariance, checker, flow, algorithms):
        add_format(lab, ("text", "json"), "text")
        lab.add_argument(
            "--threads", type=int, help="torch intra-op threads (default: torch's choice)"
        )
    parser.set_defaults(func=run)


def _integers(text: str, flag: str, lengths: tuple[int, ...]) -> tuple[int, ...]:
    """Comma-separated non-negative integers (``0`` is a valid shift or padding)."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{flag}: expected comma-separated integers, got {text!r}") from None
    if len(values) not in lengths:
        counts = " or ".join(", ".join(str(n) for n in lengths).rsplit(", ", 1))
        raise ConfigError(f"{flag}: expected {counts} integers, got {text!r}")
    if any(v < 0 for v in values):
        raise ConfigError(f"{flag}: values must be >= 0, got {text!r}")
    return values


def _shape(text: str) -> Any:  # a ConvShape
    from cnnkit.lab import ConvShape

    values = _integers(text, "--shape", (6, 7, 8))
    if any(v < 1 for v in values[:6]) or (len(values) > 6 and values[6] < 1):
        raise ConfigError(f"--shape: sizes, channels, kernel and stride must be >= 1, got {text!r}")
    return ConvShape(*values)  # type: ignore[arg-type]  # 6 to 8 ints: the int fields, in order


def _check_out_file(text: str) -> None:
    """``--out`` must name a file that can be written: not a folder, not under a file."""
    import os
    from pathlib import Path

    path = Path(text)
    if path.is_dir():
        example = path / "flow.png"
        raise ConfigError(f"--out {path}: is a folder; give a file name such as {example}")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ConfigError(f"--out {path}: {parent} is a file, not a folder")
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {path}: the folder {parent} is not writable")


def _result(args: argparse.Namespace):
    from cnnkit import lab

    if args.lab == "edges":
        return lab.edges()
    if args.lab == "learn-kernel":
        return lab.learn_kernel(args.iterations, args.learning_rate, args.seed)
    if args.lab == "equivariance":
        options = dict(size=args.size, channels=args.channels, seed=args.seed)
        if args.shift:
            options["shifts"] = [_integers(s, "--shift", (2,)) for s in args.shift]
        return lab.equivariance(**options)
    if args.lab == "checkerboard":
        return lab.checkerboard(args.kernel_size, args.stride, args.size)
    if args.lab == "gradient-flow":
        if args.out is not None:
            _check_out_file(args.out)
        experiments = ("conv", "linear") if args.experiment == "both" else (args.experiment,)
        return lab.gradient_flow(args.blocks, args.seed, experiments, args.out)
    options = dict(dtype=args.dtype, repeats=args.repeats)
    shapes = [_shape(s) for s in args.shape or []]
    if args.resnet18:
        shapes += list(lab.RESNET18_SHAPES)
    if shapes:
        options["shapes"] = shapes
    if args.method:
        options["methods"] = tuple(dict.fromkeys(args.method))
    return lab.conv_algorithms(**options)


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        if args.threads >= 2**31:  # torch stores the count in an int32
            raise ConfigError(f"--threads must be below 2^31, got {args.threads}")
        torch.set_num_threads(args.threads)
    from cnnkit.lab.render import render_text

    result = _result(args)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(render_text(result))
    return 0
