"""``cnnkit explain features|filters|cam|compare|erf MODEL``: look inside a CNN (F1-F4).

MODEL_OR_CHECKPOINT is a zoo name, ``package.module:callable``, or a checkpoint file / run folder
of ``cnnkit train``. A checkpoint brings its own dataset: its real test images, normalised with
the run's mean and std. A model explains ``--image`` files (any Pillow format, resized to the
model's input) or seeded random pictures, scaled to [0, 1] and normalised with mean 0.5, std 0.5.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnkit.cli._common import add_format, add_trust_code, parse_ints
from cnnkit.errors import ConfigError, DataError

ACTIONS = ("features", "filters", "cam", "compare", "erf")
PLAIN_MEAN, PLAIN_STD = 0.5, 0.5


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="feature maps, filters, class activation maps, their faithfulness, effective RF",
        description=__doc__.split("\n\n")[0].replace("``", ""),
    )
    parser.add_argument("action", choices=ACTIONS, help="what to show")
    parser.add_argument(
        "model",
        metavar="MODEL_OR_CHECKPOINT",
        help="zoo name, package.module:callable, or a checkpoint file / run folder",
    )
    parser.add_argument(
        "--images", type=int, default=8, metavar="N", help="images to explain (default 8)"
    )
    parser.add_argument(
        "--layer", metavar="NAME", help="dotted layer name (default: from the graph)"
    )
    parser.add_argument(
        "--method",
        metavar="NAME",
        help="CAM method(s), comma-separated: gradcam for cam, every method for compare",
    )
    parser.add_argument("--out", metavar="DIR", help="write PNG pictures into DIR")
    add_format(parser, ("table", "json"), "table")
    parser.add_argument(
        "--image", action="append", metavar="PATH", help="an image file to explain (repeatable)"
    )
    parser.add_argument(
        "--input", metavar="C,H,W", help="input shape of a model (default: a zoo model's own)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of random pictures (default 0)")
    add_trust_code(parser)
    parser.set_defaults(func=run)


@dataclass
class Subject:
    """What is explained: the model, normalised images, [0, 1] pictures for display."""

    model: Any
    images: Any
    pictures: Any
    labels: list[str]
    classes: list[str] | None
    name: str
    model_name: str
    model_kwargs: dict[str, Any]
    from_checkpoint: bool = False


def _read_image(path: str, shape: tuple[int, ...]) -> Any:  # torch.Tensor (C, H, W) in [0, 1]
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            opened.load()
            image: Image.Image = opened
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not an image ({type(exc).__name__})") from None
    if image.mode in ("P", "RGBA", "CMYK", "YCbCr"):
        image = image.convert("RGB")
    elif image.mode in ("LA", "I", "I;16", "F", "1"):
        image = image.convert("L")
    channels = len(image.getbands())
    if channels != shape[0]:
        raise DataError(f"{path}: the image has {channels} channel(s), the model takes {shape[0]}")
    image = image.resize((shape[2], shape[1]), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32).reshape(shape[1], shape[2], channels)
    return torch.from_numpy(array.copy()).permute(2, 0, 1) / 255.0


def _normalise(pictures, mean, std):
    import torch

    mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (pictures - mean_t) / std_t


def load_subject(args: argparse.Namespace) -> Subject:
    """Build the model and the images from MODEL_OR_CHECKPOINT, --image, --images, --input."""
    import torch

    if args.images < 1:
        raise ConfigError(f"--images must be >= 1, got {args.images}")
    path = Path(args.model)
    looks_like_file = ":" not in args.model and (
        "/" in args.model or path.suffix in (".pt", ".pth")
    )
    if path.exists() or looks_like_file:  # a missing file is named as such, not as a model
        from cnnkit.data import load_dataset
        from cnnkit.train.checkpoint import load_checkpoint
        from cnnkit.train.evaluation import model_from_checkpoint

        saved = load_checkpoint(path)
        model = model_from_checkpoint(saved, path, "model", args.trust_code)
        shape = tuple(int(s) for s in saved["image_shape"])
        mean, std = list(saved["mean"]), list(saved["std"])
        classes = list(saved.get("classes") or []) or None
        if args.image:
            pictures = torch.stack([_read_image(p, shape) for p in args.image])
            labels = [Path(p).name for p in args.image]
        else:
            from cnnkit.train.config import saved_config

            data = saved_config(saved, str(path)).data
            test = load_dataset(data.dataset, "test", data_dir=data.data_dir)
            count = min(args.images, len(test))
            pictures = test.images[:count].float() / 255.0
            names = classes or [str(i) for i in range(int(test.labels.max()) + 1)]
            labels = [names[int(label)] for label in test.labels[:count]]
        return Subject(
            model,
            _normalise(pictures, mean, std),
            pictures,
            labels,
            classes,
            str(path),
            saved["model_name"],
            dict(saved["model_kwargs"]),
            from_checkpoint=True,
        )
    from cnnkit.models import model_info, resolve_model

    model = resolve_model(args.model)
    if args.input is not None:
        shape = parse_ints(args.input, "--input", length=3)
    elif ":" not in args.model:
        shape = tuple(model_info(args.model).default_input)
    else:
        raise ConfigError(f"--input is required for {args.model!r} (e.g. --input 3,32,32)")
    if args.image:
        pictures = torch.stack([_read_image(p, shape) for p in args.image])
        labels = [Path(p).name for p in args.image]
    else:
        generator = torch.Generator().manual_seed(args.seed)
        pictures = torch.rand((args.images, *shape), generator=generator)
        labels = [f"random {i}" for i in range(args.images)]
    images = _normalise(pictures, [PLAIN_MEAN] * shape[0], [PLAIN_STD] * shape[0])
    return Subject(model, images, pictures, labels, None, args.model, args.model, {})


def _methods(args: argparse.Namespace, default: list[str]) -> list[str]:
    from cnnkit.explain import CAM_METHODS

    if not args.method:
        return default
    names = [m.strip() for m in args.method.split(",") if m.strip()]
    for name in names:
        CAM_METHODS.get(name)  # unknown names fail here, with close matches
    return names


def _out(args: argparse.Namespace) -> Path | None:
    if args.out is None:
        return None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _table(headers: list[str], rows: list[list[str]]) -> str:
    from cnnkit._text import aligned_rows

    return "\n".join(aligned_rows([headers, *rows])) + "\n"


def _emit(args: argparse.Namespace, data: Any, table: str, written: list[Path]) -> None:
    if args.format == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    sys.stdout.write(table)
    for path in written:
        sys.stdout.write(f"wrote {path}\n")


def run(args: argparse.Namespace) -> int:
    subject = load_subject(args)
    return {
        "features": _features,
        "filters": _filters,
        "cam": _cam,
        "compare": _compare,
        "erf": _erf,
    }[args.action](args, subject)


def _features(args: argparse.Namespace, subject: Subject) -> int:
    from cnnkit.explain import feature_maps
    from cnnkit.explain.render import feature_grid_png

    layers = [args.layer] if args.layer else None
    result = feature_maps(subject.model, subject.images, layers=layers)
    rows, written = [], []
    out = _out(args)
    for layer in result.layers:
        stats = layer.stats
        dead = int((stats.zero_fraction == 1).sum())
        rows.append(
            [
                layer.name,
                "x".join(map(str, layer.maps.shape[1:])),
                f"{stats.mean.mean():.4g}",
                f"{stats.std.mean():.4g}",
                f"{stats.max.max():.4g}",
                f"{stats.zero_fraction.mean():.1%}",
                f"{dead}/{len(stats.mean)}",
            ]
        )
        if out is not None:
            written.append(feature_grid_png(layer, out / f"features-{layer.name}.png"))
    headers = ["layer", "shape", "mean", "std", "max", "zeros", "dead"]
    _emit(args, result.to_dict(), _table(headers, rows), written)
    return 0


def _filters(args: argparse.Namespace, subject: Subject) -> int:
    from cnnkit.explain import filters
    from cnnkit.explain.render import filters_png

    result = filters(subject.model, tuple(subject.images.shape[1:]))
    rows = []
    for name, norms in result.norms.items():
        rows.append(
            [
                name,
                str(len(norms)),
                f"{norms.min():.4g}",
                f"{norms.median():.4g}",
                f"{norms.max():.4g}",
            ]
        )
    out = _out(args)
    written = [filters_png(result, out / "filters.png")] if out is not None else []
    _emit(
        args, result.to_dict(), _table(["layer", "filters", "min", "median", "max"], rows), written
    )
    return 0


def _cam(args: argparse.Namespace, subject: Subject) -> int:
    from cnnkit.explain import cam
    from cnnkit.explain.layers import last_conv_layer
    from cnnkit.explain.render import cam_overlay_png

    methods = _methods(args, ["gradcam"])
    layer = args.layer or last_conv_layer(subject.model, (1, *subject.images.shape[1:]))
    results = [cam(subject.model, subject.images, m, layer) for m in methods]
    rows = []
    for result in results:
        width = result.maps.shape[2]
        for i, target in enumerate(result.targets):
            peak = int(result.maps[i].flatten().argmax())
            name = (
                subject.classes[target]
                if subject.classes and isinstance(target, int)
                else str(target)
            )
            rows.append(
                [
                    result.method,
                    str(i),
                    subject.labels[i],
                    name,
                    f"{result.maps[i].max():.4g}",
                    f"({peak // width}, {peak % width})",
                ]
            )
    out = _out(args)
    written = []
    if out is not None:
        path = out / f"cam-{'-'.join(methods).replace('+', 'p')}.png"
        written.append(cam_overlay_png(subject.pictures, results, path, labels=subject.labels))
    table = f"layer {layer}, maps {tuple(results[0].maps.shape[1:])}\n" + _table(
        ["method", "image", "label", "explained", "max", "peak (row, col)"], rows
    )
    data = {"layer": layer, "results": [r.to_dict() for r in results]}
    _emit(args, data, table, written)
    return 0


def _compare(args: argparse.Namespace, subject: Subject) -> int:
    from cnnkit.explain import CAM_METHODS, compare_methods

    methods = _methods(args, CAM_METHODS.names())
    result = compare_methods(subject.model, subject.images, methods, layer=args.layer)
    rows = [
        [
            str(rank),
            row.method,
            f"{row.deletion_auc:.3f}",
            f"{row.insertion_auc:.3f}",
            f"{row.road_morf:.3f}",
            f"{row.road_lerf:.3f}",
            f"{row.beats_random}/4",
            f"{row.seconds:.2f}",
        ]
        for rank, row in enumerate(result.rows, 1)
    ]
    headers = ["rank", "method", "deletion", "insertion", "MoRF", "LeRF", "beats random", "s"]
    table = (
        f"layer {result.layer}, {result.images} images; lower deletion/MoRF and higher "
        "insertion/LeRF are more faithful\n" + _table(headers, rows)
    )
    _emit(args, result.to_dict(), table, [])
    return 0


def _erf(args: argparse.Namespace, subject: Subject) -> int:
    import torch

    from cnnkit.explain import effective_receptive_field
    from cnnkit.explain.render import erf_png

    shape = tuple(subject.images.shape[1:])
    results = {}
    if subject.from_checkpoint:  # real images, the trained weights and the same net at init
        from cnnkit.models import resolve_model

        results["trained"] = effective_receptive_field(
            subject.model, shape, args.layer, images=subject.images
        )
        torch.manual_seed(args.seed)
        initial = resolve_model(subject.model_name, **subject.model_kwargs)
        results["init"] = effective_receptive_field(
            initial, shape, results["trained"].layer, images=subject.images
        )
    else:
        results["model"] = effective_receptive_field(
            subject.model, shape, args.layer, samples=args.images, seed=args.seed
        )
    rows = []
    for label, result in results.items():
        rf = "?" if result.theoretical_rf is None else "x".join(map(str, result.theoretical_rf))
        rows.append(
            [
                label,
                result.layer,
                str(result.samples),
                *(f"{result.radii[k]:.1f}" for k in (0.5, 0.9, 0.99)),
                rf,
            ]
        )
    out = _out(args)
    written = [erf_png(results, out / "erf.png")] if out is not None else []
    headers = ["weights", "layer", "inputs", "r50", "r90", "r99", "theoretical rf"]
    _emit(args, {k: v.to_dict() for k, v in results.items()}, _table(headers, rows), written)
    return 0
