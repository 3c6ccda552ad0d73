"""``cnnkit calc``: worked problems, the formulas with the numbers substituted (A1-A5, A7).

Each problem calls one function of :mod:`cnnkit.arith.worked` and prints its steps. Per-axis
flags take one number or one per axis (``224`` or ``224,224``); the number of spatial axes is
``--ndim``, else the longest list, else 2 (images). ``--format json`` prints the same problem
as JSON.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from typing import Any

from cnnkit.cli._common import add_format
from cnnkit.errors import CnnkitError, ConfigError, ShapeError

PROBLEMS = ("conv", "pool", "transpose", "rf", "im2col", "params", "macs", "compare", "seed")

# Flags whose value is one int per spatial axis, and the smallest value each accepts.
_PER_AXIS = {
    "input_size": 1,
    "kernel_size": 1,
    "stride": 1,
    "dilation": 1,
    "padding": 0,
    "output_padding": 0,
    "output_size": 1,
}
_COUNTS = {"in_channels": 1, "out_channels": 1, "groups": 1, "batch_size": 1, "depth": 1}
_NAMES = re.compile(
    r"\b(" + "|".join(sorted({*_PER_AXIS, *_COUNTS}, key=len, reverse=True)) + r")\b"
)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _flag_names(message: str) -> str:
    """Say ``--kernel-size`` where an arith message says ``kernel_size``."""
    return _NAMES.sub(lambda match: _flag(match.group(1)), message)


def _int(text: str, flag: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{flag}: expected an integer, got {text!r}") from None
    if value < minimum:
        raise ConfigError(f"{flag}: must be >= {minimum}, got {value}")
    return value


def _per_axis(text: str, flag: str, minimum: int) -> tuple[object, ...]:
    """``"224"``, ``"224,224"`` or ``"224x224"``; padding also ``same``, ``valid``, ``0:1,1:2``."""
    if flag == "--padding" and text in ("same", "valid"):
        return (text,)
    parts = [p for p in re.split(r"[,x]", text.replace(" ", "")) if p]
    if not parts:
        raise ConfigError(f"{flag}: expected one integer or one per axis, got {text!r}")
    values: list[object] = []
    for part in parts:
        if flag == "--padding" and ":" in part:
            before, _, after = part.partition(":")
            values.append((_int(before, flag, minimum), _int(after, flag, minimum)))
        else:
            values.append(_int(part, flag, minimum))
    return tuple(values)


def _spatial(args: argparse.Namespace) -> dict[str, Any]:
    """Per-axis flags as values with one entry per axis (ints repeated), plus the counts."""
    parsed = {
        name: _per_axis(getattr(args, name), _flag(name), minimum)
        for name, minimum in _PER_AXIS.items()
        if getattr(args, name, None) is not None
    }
    longest = max((len(v) for v in parsed.values()), default=1)
    ndim = args.ndim or (longest if longest > 1 else 2)
    values: dict[str, object] = {}
    for name, value in parsed.items():
        if isinstance(value[0], str):
            values[name] = value[0]
        elif len(value) == 1:
            values[name] = value * ndim
        elif len(value) == ndim:
            values[name] = value
        else:
            wanted = "1 value" if ndim == 1 else f"1 or {ndim} values"
            raise ConfigError(f"{_flag(name)}: expected {wanted}, got {len(value)}")
    for name, minimum in _COUNTS.items():
        if getattr(args, name, None) is not None:
            values[name] = _int(getattr(args, name), _flag(name), minimum)
    return values


def _pick(values: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: values[name] for name in names if name in values}


def _problem(args: argparse.Namespace) -> Any:  # a worked problem, or a list of them
    from cnnkit.arith import worked, worked_compare
    from cnnkit.arith.layer_spec import parse_layers

    if args.problem == "seed":
        return worked.seed_problems()
    if args.problem == "rf":
        try:
            layers = parse_layers(args.layers)
        except ConfigError as exc:
            raise ConfigError(f"--layers: {exc}") from None
        return worked.worked_receptive_field(layers)
    v = _spatial(args)
    bias = not getattr(args, "no_bias", False)
    builders: dict[str, Callable[[], object]] = {
        "conv": lambda: worked.worked_conv(
            **_pick(v, "input_size", "kernel_size", "stride", "padding", "dilation"),
            **_pick(v, "in_channels", "out_channels", "groups", "batch_size"),
            bias=bias,
        ),
        "pool": lambda: worked.worked_pool(
            **_pick(v, "input_size", "kernel_size", "stride", "padding", "dilation"),
            ceil_mode=args.ceil_mode,
        ),
        "transpose": lambda: worked.worked_transpose(
            **_pick(v, "input_size", "kernel_size", "stride", "padding", "output_padding"),
            **_pick(v, "dilation", "in_channels", "out_channels", "groups", "batch_size"),
        ),
        "im2col": lambda: worked.worked_im2col(
            **_pick(v, "batch_size", "in_channels", "kernel_size", "input_size", "stride"),
            **_pick(v, "padding", "dilation"),
            dtype=_dtype(args.dtype),
        ),
        "params": lambda: worked.worked_params(
            **_pick(v, "in_channels", "out_channels", "kernel_size", "groups"), bias=bias
        ),
        "macs": lambda: worked.worked_macs(
            **_pick(v, "in_channels", "out_channels", "kernel_size", "output_size"),
            **_pick(v, "groups", "batch_size"),
        ),
        "compare": lambda: _compare(worked_compare, v, bias),
    }
    return builders[args.problem]()


def _compare(module: Any, v: dict[str, Any], bias: bool) -> list[Any]:
    problems = [
        module.worked_compare_conv_types(
            **_pick(v, "in_channels", "out_channels", "kernel_size", "groups", "output_size"),
            bias=bias,
        )
    ]
    if "depth" in v:
        problems.append(
            module.worked_stacked_kernels(
                depth=v["depth"],
                kernel_size=v["kernel_size"],
                channels=v["in_channels"],
                output_size=v.get("output_size", (1,) * len(v["kernel_size"])),
            )
        )
    return problems


def _dtype(name: str) -> str:
    from cnnkit.arith.memory import dtype_bytes

    try:
        dtype_bytes(name)
    except CnnkitError as exc:
        raise ConfigError(f"--dtype: {exc}") from None
    return name


def run(args: argparse.Namespace) -> int:
    if args.problem is None:
        raise ConfigError(f"calc: choose a problem: {', '.join(PROBLEMS)}")
    try:
        result = _problem(args)
    except (ConfigError, ShapeError) as exc:
        message = str(exc)
        if message.startswith("--"):
            raise
        raise type(exc)(_flag_names(message)) from None
    problems = result if isinstance(result, list) else [result]
    if args.format == "json":
        data = [p.to_dict() for p in problems]
        print(
            json.dumps(data if isinstance(result, list) else data[0], indent=2, ensure_ascii=False)
        )
    else:
        print("\n\n".join(p.text() for p in problems))
    return 0


def _add(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    add_format(parser, ("text", "json"), "text")
    parser.set_defaults(problem=name)
    return parser


def _geometry(parser: argparse.ArgumentParser, *, padding_help: str) -> None:
    parser.add_argument("--input-size", required=True, help="input size, e.g. 224 or 224,224")
    parser.add_argument("--kernel-size", required=True, help="kernel size, e.g. 3 or 1,7")
    parser.add_argument("--stride", help="stride (default 1; a pool's: the kernel size)")
    parser.add_argument("--padding", help=padding_help)
    parser.add_argument("--dilation", help="dilation (default 1)")
    parser.add_argument("--ndim", type=int, choices=(1, 2, 3), help="spatial axes (default 2)")


def _channels(
    parser: argparse.ArgumentParser, *, required: bool = False, groups_required: bool = False
) -> None:
    parser.add_argument("--in-channels", required=required, help="input channels")
    parser.add_argument("--out-channels", required=required, help="output channels")
    parser.add_argument("--groups", required=groups_required, help="groups (default 1)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calc",
        help="worked problems: output sizes, params, MACs, receptive field, im2col",
        description="Formulas with the numbers substituted step by step (docs/arith.md).",
    )
    parser.set_defaults(func=run, problem=None)
    sub = parser.add_subparsers(dest="problem", metavar="PROBLEM")

    conv = _add(sub, "conv", "output size of a convolution; params and MACs with channels")
    _geometry(conv, padding_help="padding: 1, 1,2 (per axis), 0:1,0:1 (before:after), same, valid")
    _channels(conv)
    conv.add_argument("--batch-size", help="batch size for MACs (default 1)")
    conv.add_argument("--no-bias", action="store_true", help="count no bias parameters")

    pool = _add(sub, "pool", "output size of MaxPool/AvgPool (PyTorch's ceil_mode rule)")
    _geometry(pool, padding_help="padding per side, at most half the kernel (default 0)")
    pool.add_argument("--ceil-mode", action="store_true", help="round up, as ceil_mode=True")

    transpose = _add(sub, "transpose", "output size of a transposed convolution")
    _geometry(transpose, padding_help="padding (default 0)")
    transpose.add_argument("--output-padding", help="output_padding (default 0)")
    _channels(transpose)
    transpose.add_argument("--batch-size", help="batch size for MACs (default 1)")

    rf = _add(sub, "rf", "receptive field, jump and start of a layer stack")
    rf.add_argument(
        "--layers",
        required=True,
        help="layers, e.g. k3s1p1,poolk2s2,k3d2p2,tconvk4s2p1,up2 (k kernel, s stride, "
        "p padding, d dilation; pool/tconv/up prefixes)",
    )

    im2col = _add(sub, "im2col", "memory of the explicit im2col matrix")
    _geometry(im2col, padding_help="padding: an int, per axis, same or valid")
    im2col.add_argument("--batch-size", required=True, help="batch size")
    im2col.add_argument("--in-channels", required=True, help="input channels")
    im2col.add_argument("--dtype", default="float32", help="element type (default float32)")

    params = _add(sub, "params", "parameters of a convolution")
    _channels(params, required=True)
    params.add_argument("--kernel-size", required=True, help="kernel size, e.g. 3 or 3,3")
    params.add_argument("--no-bias", action="store_true", help="count no bias parameters")
    params.add_argument("--ndim", type=int, choices=(1, 2, 3), help="spatial axes (default 2)")

    macs = _add(sub, "macs", "multiply-accumulates (and FLOPs = 2 x MACs) of a convolution")
    _channels(macs, required=True)
    macs.add_argument("--kernel-size", required=True, help="kernel size")
    macs.add_argument("--output-size", required=True, help="output size, e.g. 56 or 56,56")
    macs.add_argument("--batch-size", help="batch size (default 1)")
    macs.add_argument("--ndim", type=int, choices=(1, 2, 3), help="spatial axes (default 2)")

    compare = _add(sub, "compare", "standard vs depthwise-separable vs grouped conv")
    _channels(compare, required=True, groups_required=True)
    compare.add_argument("--kernel-size", required=True, help="kernel size")
    compare.add_argument("--output-size", help="output size for MACs (default 1 per axis)")
    compare.add_argument("--depth", help="also compare this many stacked kernels with one")
    compare.add_argument("--no-bias", action="store_true", help="count no bias parameters")
    compare.add_argument("--ndim", type=int, choices=(1, 2, 3), help="spatial axes (default 2)")

    _add(sub, "seed", "every worked problem of the seeds, recomputed")
