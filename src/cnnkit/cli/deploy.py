"""``cnnkit deploy fold|export|quantize|bench``: folding, ONNX, int8 and inference timing."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit.cli._common import add_format, add_trust_code, parse_ints

if TYPE_CHECKING:
    import torch
    from torch import nn

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help="fold Conv-BN exactly, export to ONNX (checked in onnxruntime), int8, benchmark",
        description="Deployment tools. MODEL_OR_CHECKPOINT is a zoo name, package.module:callable, "
        "or a cnnkit checkpoint file or run folder.",
    )
    commands = parser.add_subparsers(dest="deploy_command", metavar="COMMAND")

    fold = commands.add_parser("fold", help="fold every BatchNorm that folds exactly; say why not")
    _add_source(fold)
    fold.add_argument("--out", help="save the folded model's state_dict here (.pt)")
    add_format(fold, ("text", "json"), "text")
    fold.set_defaults(func=run_fold)

    export = commands.add_parser("export", help="export to ONNX and check it in onnxruntime")
    _add_source(export)
    export.add_argument("--out", required=True, help="the .onnx file to write")
    export.add_argument("--fold", action="store_true", help="fold Conv-BN pairs first")
    export.add_argument(
        "--dynamic-batch", action=argparse.BooleanOptionalAction, default=True,
        help="a batch dimension of any size (default: on)",
    )  # fmt: skip
    export.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    add_format(export, ("text", "json"), "text")
    export.set_defaults(func=run_export)

    quantize = commands.add_parser("quantize", help="static int8 ONNX, accuracy and latency cost")
    _add_source(quantize)
    quantize.add_argument("--out", required=True, help="the int8 .onnx file to write")
    quantize.add_argument(
        "--calibration", type=int, default=512, metavar="N",
        help="training images to calibrate on (default 512)",
    )  # fmt: skip
    add_format(quantize, ("text", "json"), "text")
    quantize.set_defaults(func=run_quantize)

    bench = commands.add_parser("bench", help="latency and throughput per variant, batch, threads")
    _add_source(bench)
    bench.add_argument("--batch-sizes", default="1,8,64", help="comma-separated (default 1,8,64)")
    bench.add_argument("--threads", help="comma-separated thread counts (default: 1 and all)")
    bench.add_argument(
        "--variants", help="comma-separated subset of: eager, channels_last, bf16, folded, "
        "compile, ort_fp32, ort_int8 (default: all)",
    )  # fmt: skip
    bench.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow)")
    bench.add_argument("--warmup", type=int, default=5, help="untimed calls first (default 5)")
    bench.add_argument("--repeats", type=int, default=30, help="timed calls (default 30)")
    bench.add_argument("--plot", metavar="PNG", help="also draw the latencies into this PNG")
    add_format(bench, ("table", "json"), "table")
    bench.set_defaults(func=run_bench)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="MODEL_OR_CHECKPOINT")
    add_trust_code(parser)
    parser.add_argument("--input", help="one sample's shape C,H,W (default: the checkpoint's, "
                        "or the zoo model's default input)")  # fmt: skip
    parser.add_argument(
        "--model-kwargs", default="{}", metavar="JSON",
        help="keyword arguments for the model factory, as a JSON object",
    )  # fmt: skip
    parser.add_argument("--data-dir", help="where the checkpoint's dataset files are")


@dataclass
class Source:
    """A model to deploy and, for a checkpoint, its normalisation, classes and data."""

    model: nn.Module
    name: str
    input_shape: tuple[int, ...]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    classes: list[str] | None = None
    dataset: str | None = None
    data_dir: str | None = None

    @property
    def is_checkpoint(self) -> bool:
        return self.dataset is not None

    def images(self, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised float32 images ``(x/255 - mean)/std`` and labels of a split."""
        import torch

        from cnnkit.data import load_dataset

        assert self.dataset is not None and self.mean is not None and self.std is not None
        data = load_dataset(self.dataset, split, data_dir=self.data_dir)
        images, labels = data.images, data.labels
        if limit is not None:
            generator = torch.Generator().manual_seed(0)
            pick = torch.randperm(len(labels), generator=generator)[:limit]
            images, labels = images[pick], labels[pick]
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.mean).view(shape)
        std = torch.tensor(self.std).view(shape)
        return (images.float() / 255.0 - mean) / std, labels


def load_source(args: argparse.Namespace) -> Source:
    """The model named by MODEL_OR_CHECKPOINT, in eval mode, with its input shape."""
    from cnnkit.errors import CheckpointError, ConfigError

    spec = args.source
    shape = parse_ints(args.input, "--input") if args.input else None
    path = Path(spec)
    if path.exists() or path.suffix in _CHECKPOINT_SUFFIXES:
        if not path.exists():
            raise CheckpointError(f"{path}: checkpoint not found")
        return _checkpoint_source(path, shape, args.data_dir, args.trust_code)
    try:
        kwargs = json.loads(args.model_kwargs)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--model-kwargs: not JSON ({error.msg})") from None
    if not isinstance(kwargs, dict):
        raise ConfigError("--model-kwargs: must be a JSON object")
    from cnnkit.models import model_info, resolve_model

    model = resolve_model(spec, **kwargs).eval()
    if shape is None:
        if ":" in spec:
            raise ConfigError("--input: needed for a package.module:callable model")
        default = model_info(spec).default_input
        shape = (kwargs.get("in_channels", default[0]), *default[1:])
    return Source(model, spec, tuple(shape))


def _checkpoint_source(
    path: Path, shape: tuple[int, ...] | None, data_dir: str | None, code: str | None = None
) -> Source:
    from cnnkit.errors import ConfigError
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.config import saved_config
    from cnnkit.train.evaluation import model_from_checkpoint

    saved = load_checkpoint(path)
    model = model_from_checkpoint(saved, path, "model", code).eval()
    saved_shape = tuple(int(v) for v in saved["image_shape"])
    if shape is not None and tuple(shape) != saved_shape:
        raise ConfigError(f"--input: {shape} differs from the checkpoint's images {saved_shape}")
    config = saved_config(saved, str(path)).data
    return Source(
        model=model,
        name=f"{saved['model_name']} ({path})",
        input_shape=saved_shape,
        mean=tuple(saved["mean"]),
        std=tuple(saved["std"]),
        classes=list(saved["classes"]),
        dataset=config.dataset,
        data_dir=data_dir or config.data_dir,
    )


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> int:
    print(json.dumps(data, indent=2) if args.format == "json" else text)
    return 0


def run_fold(args: argparse.Namespace) -> int:
    from cnnkit._io import atomic_torch_save
    from cnnkit.analysis import summarize
    from cnnkit.deploy import fold_batchnorm
    from cnnkit.deploy.render import fold_text

    source = load_source(args)
    result = fold_batchnorm(source.model, source.input_shape)
    before = summarize(source.model, source.input_shape).total
    after = summarize(result.model, source.input_shape).total
    sizes = {"parameters": (before.params, after.params), "MACs": (before.macs, after.macs)}
    if args.out:
        atomic_torch_save(result.model.state_dict(), args.out)
    data = {**result.to_dict(), **{k: list(v) for k, v in sizes.items()}}
    return _print(args, data, fold_text(result, sizes))


def run_export(args: argparse.Namespace) -> int:
    from cnnkit.deploy.onnx_export import export_onnx

    source = load_source(args)
    result = export_onnx(
        source.model, source.input_shape, args.out, dynamic_batch=args.dynamic_batch,
        fold=args.fold, opset=args.opset, mean=source.mean, std=source.std,
        classes=source.classes,
    )  # fmt: skip
    data = result.to_dict()
    lines = [
        f"wrote {result.path} ({result.file_bytes:,} bytes, opset {result.opset}, "
        f"{result.exporter} exporter) and {result.sidecar}",
        f"onnxruntime vs PyTorch on random inputs (batch {result.checked_batches}): "
        f"max abs difference {result.max_error:.2e}",
        *result.notes,
    ]
    if source.is_checkpoint:
        from cnnkit.deploy.accuracy import compare_on_images

        images, labels = source.images("test")
        same = compare_on_images(source.model, result.path.read_bytes(), images, labels)
        data.update(
            torch_top1=same.torch_top1, onnx_top1=same.onnx_top1,
            test_max_error=same.max_error, test_images=same.images,
        )  # fmt: skip
        lines.append(
            f"on {same.images:,} {source.dataset} test images: max abs difference "
            f"{same.max_error:.2e}; top-1 PyTorch {same.torch_top1:.2f}%, "
            f"onnxruntime {same.onnx_top1:.2f}%"
        )
    return _print(args, data, "\n".join(lines))


def run_quantize(args: argparse.Namespace) -> int:
    from cnnkit.deploy.quantize import quantize_report
    from cnnkit.errors import ConfigError

    source = load_source(args)
    if not source.is_checkpoint:
        raise ConfigError(f"{args.source}: quantize needs a checkpoint (its images calibrate int8)")
    if args.calibration < 1:
        raise ConfigError(f"--calibration: must be >= 1, got {args.calibration}")
    calibration, _ = source.images("train", limit=args.calibration)
    test_images, test_labels = source.images("test")
    report = quantize_report(
        source.model, source.input_shape, args.out, calibration, test_images, test_labels
    )
    return _print(args, report.to_dict(), report.text())


def run_bench(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cnnkit.deploy.bench import DEFAULT_VARIANTS, benchmark
    from cnnkit.deploy.render import bench_footer, bench_table

    source = load_source(args)
    variants = tuple(args.variants.split(",")) if args.variants else DEFAULT_VARIANTS
    if args.no_compile:
        variants = tuple(v for v in variants if v != "compile")
    threads = parse_ints(args.threads, "--threads") if args.threads else None
    calibration = source.images("train", limit=128)[0] if source.is_checkpoint else None
    result = benchmark(
        source.model, source.input_shape, name=source.name,
        batch_sizes=parse_ints(args.batch_sizes, "--batch-sizes"), threads=threads,
        variants=variants, warmup=args.warmup, repeats=args.repeats, calibration=calibration,
    )  # fmt: skip
    if args.plot:
        from cnnkit.deploy.plot import save_bench_figure

        save_bench_figure(result, args.plot)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    console = Console()
    console.print(bench_table(result))
    console.print(bench_footer(result), highlight=False)
    return 0
