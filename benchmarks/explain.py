"""Benchmark: cnnkit's CAM methods against pytorch-grad-cam, and the faithfulness ranking.

1. ``peer``: for each CAM method, cnnkit (``cam(...).upsampled()``) and pytorch-grad-cam
   (``METHOD(model, [layer])(images, targets)``) on the same model, batch, layer and targets, in
   one process: median wall time of each, their ratio, and the largest difference of the maps
   (both min-max normalised per image at the input size: the peer only returns those). The
   peer needs OpenCV for ``cv2.resize``; where ``cv2`` is not installed a stand-in module gives
   it ``resize`` by torch's bilinear interpolation (align_corners=False, OpenCV's INTER_LINEAR
   convention), and says so in the result. A second Grad-CAM row takes a layer followed by an
   in-place op (ResNet's ``layer4.1.bn1``, then the block's ``ReLU(inplace=True)``), where the
   peer keeps the activation without a clone.
2. ``ranking``: ``compare_methods`` (deletion/insertion AUC, ROAD MoRF/LeRF) for every method and
   the random baseline on Fashion-MNIST test images, for each trained checkpoint given.
3. ``--pictures DIR``: CAM overlays on real test images and the ERF trained vs init (PNG).

Writes benchmarks/results/explain.json and two sections of docs/benchmarks.md. Smoke run (the
figures in docs/benchmarks.md)::

    python -m cnnkit train --recipe fast --out /tmp/i17-fast
    python benchmarks/explain.py --checkpoint fast=/tmp/i17-fast/best.pt --peer-resnet \\
        --pictures docs/images --repeats 3
    python -m cnnkit train --recipe seed003 --train-subset 4000 --val-size 500 --epochs 1 \\
        --out /tmp/i17-resnet2   # stopped once best.pt existed (its test pass was too slow)
    python benchmarks/explain.py --rank-checkpoint resnet18=/tmp/i17-resnet2/best.pt \\
        --rank-images 4 --merge
    python -m cnnkit train --recipe best --out /tmp/i17-best
    python benchmarks/explain.py --rank-checkpoint best=/tmp/i17-best/best.pt \\
        --rank-images 16 --merge

Full run on an idle machine: one call with ``--images 32 --rank-images 100 --repeats 5``,
``--checkpoint`` for each run (fast, best, and a ResNet-18 small-input trained for longer:
``python -m cnnkit train --recipe seed003 --epochs 5 --out /tmp/resnet``) and ``--peer-resnet``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from fashion_table import machine_info, machine_label, write_result  # noqa: E402
from recording import write_section  # noqa: E402

# Fashion-MNIST's training-set mean and std (cnnkit.data.channel_stats)
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530

PEER_NAMES = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "scorecam": "ScoreCAM",
    "eigencam": "EigenCAM",
    "ablationcam": "AblationCAM",
}


def load_peer() -> tuple[types.ModuleType | None, str]:
    """pytorch_grad_cam, with torchvision's compiled-op module stubbed (as tests/oracles.py
    does) and a torch stand-in for cv2 where OpenCV is absent; and a note saying which."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.oracles import use_oracle_folder

    use_oracle_folder()  # the dev-only peers live in .venv/oracles, off the user's sys.path
    note = "OpenCV"
    try:
        import cv2  # noqa: F401
    except ImportError:
        stub = types.ModuleType("cv2")
        stub.COLORMAP_JET = 2

        def resize(image, size):  # OpenCV's (width, height) order
            tensor = torch.from_numpy(image)[None, None].float()
            out = F.interpolate(
                tensor, size=(size[1], size[0]), mode="bilinear", align_corners=False
            )
            return out[0, 0].numpy()

        stub.resize = resize
        sys.modules["cv2"] = stub
        note = "no OpenCV here: cv2.resize stood in by torch bilinear (INTER_LINEAR convention)"
    try:
        import pytorch_grad_cam
    except Exception as exc:  # any failure: report why the peer is missing
        return None, f"pytorch_grad_cam does not import: {type(exc).__name__}: {exc}"
    return pytorch_grad_cam, note


def peer_version() -> str:
    from importlib.metadata import version

    return version("grad-cam")


def paired_seconds(first, second, repeats: int) -> tuple[float, float]:
    """Median wall time of ``first`` and of ``second``, called alternately (after one warm-up
    call each) so that both see the same load on a shared machine."""
    first()
    second()
    a, b = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        first()
        a.append(time.perf_counter() - start)
        start = time.perf_counter()
        second()
        b.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def load(path: str, images: int):
    """Model, normalised test images, [0, 1] pictures, labels, checkpoint dict."""
    sys.path.insert(0, str(ROOT / "src"))
    from cnnkit.data import load_dataset
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.evaluation import model_from_checkpoint

    saved = load_checkpoint(path)
    model = model_from_checkpoint(saved, Path(path), "model").eval()
    test = load_dataset(saved["config"]["dataset"], "test")
    pictures = test.images[:images].float() / 255
    mean = torch.tensor(saved["mean"]).view(-1, 1, 1)
    std = torch.tensor(saved["std"]).view(-1, 1, 1)
    labels = [saved["classes"][int(i)] for i in test.labels[:images]]
    return model, (pictures - mean) / std, pictures, labels, saved


def peer_rows(peer, model, images, layer: str, methods, repeats: int, label: str) -> list[dict]:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from cnnkit.explain import cam

    module = model.get_submodule(layer)
    rows = []
    for name in methods:
        ours = cam(model, images, name, layer)
        targets = [ClassifierOutputTarget(int(t)) for t in ours.targets]
        theirs_cls = getattr(peer, PEER_NAMES[name])
        peer_cam = theirs_cls(model=model, target_layers=[module])
        theirs = torch.from_numpy(peer_cam(input_tensor=images, targets=targets))
        ours_up = ours.upsampled(tuple(images.shape[-2:]))
        ours_s, theirs_s = paired_seconds(
            lambda n=name: cam(model, images, n, layer).upsampled(tuple(images.shape[-2:])),
            lambda c=peer_cam, t=targets: c(input_tensor=images, targets=t),
            repeats,
        )
        rows.append(
            {
                "model": label,
                "layer": layer,
                "method": name,
                "images": int(images.shape[0]),
                "cnnkit_s": ours_s,
                "peer_s": theirs_s,
                "ratio": theirs_s / ours_s,
                "max_abs_diff": float((ours_up - theirs).abs().max()),
            }
        )
        print(rows[-1], flush=True)
    return rows


def checkpoint_note(path: Path, saved: dict) -> str:
    """Model, epochs and accuracy of a run: test top-1 from final.json, else the last
    validation top-1 from metrics.csv (a run stopped before its test evaluation)."""
    final, metrics = path.parent / "final.json", path.parent / "metrics.csv"
    note = f"{saved['model_name']}, {saved['epoch']} epoch(s)"
    if final.exists():
        return f"{note}, test top-1 {json.loads(final.read_text())['test_top1']:.2f}%"
    if metrics.exists():
        import csv

        rows = list(csv.DictReader(metrics.open()))
        if rows and rows[-1].get("val_top1"):
            return f"{note}, val top-1 {float(rows[-1]['val_top1']):.2f}% (no test run)"
    return note


def ranking_rows(model, images, label: str) -> dict:
    from cnnkit.explain import compare_methods

    result = compare_methods(model, images)
    print(label, result.to_dict(), flush=True)
    return {"model": label, **result.to_dict()}


def pictures(out: Path, model, images, pics, labels, saved, label: str) -> list[str]:
    from cnnkit.explain import cam, effective_receptive_field, feature_maps, filters
    from cnnkit.explain.render import cam_overlay_png, erf_png, feature_grid_png, filters_png
    from cnnkit.models import resolve_model

    out.mkdir(parents=True, exist_ok=True)
    methods = ["gradcam", "gradcam++", "layercam", "scorecam", "eigencam", "random"]
    results = [cam(model, images[:4], m) for m in methods]
    written = [
        cam_overlay_png(pics[:4], results, out / f"explain-cam-{label}.png", labels=labels[:4])
    ]
    shape = tuple(images.shape[1:])
    trained = effective_receptive_field(model, shape, images=images)
    torch.manual_seed(0)
    initial = resolve_model(saved["model_name"], **saved["model_kwargs"])
    init = effective_receptive_field(initial, shape, trained.layer, images=images)
    written.append(
        erf_png(
            {f"{label} trained": trained, f"{label} at init": init},
            out / f"explain-erf-{label}.png",
        )
    )
    written.append(filters_png(filters(model, shape), out / f"explain-filters-{label}.png"))
    first_stage = feature_maps(model, images[:3]).layers[0]
    written.append(feature_grid_png(first_stage, out / f"explain-features-{label}.png", channels=8))
    return [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in written]


def render_peer(result: dict) -> str:
    lines = [
        f"`python benchmarks/explain.py {result['argv']}` on {result['machine']}, "
        f"load average {result['load']} (shared, busy machine: a smoke configuration). "
        f"Peer: pytorch-grad-cam {result['peer_version']} ({result['peer_note']}). "
        "Time: median wall seconds of one call on the batch, the two tools called alternately "
        "(maps upsampled and normalised as the peer returns them); ratio > 1: cnnkit faster. "
        "Diff: largest |difference| of the two normalised maps. On a shared machine the times "
        "of the slow methods (ScoreCAM, AblationCAM: hundreds of forward passes) swing between "
        "runs by several times either way; the differences do not.",
        "",
        "| model | layer | method | images | cnnkit s | peer s | peer/cnnkit | max diff |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["peer"]:
        lines.append(
            f"| {r['model']} | {r['layer']} | {r['method']} | {r['images']} | "
            f"{r['cnnkit_s']:.3f} | {r['peer_s']:.3f} | {r['ratio']:.2f} | "
            f"{r['max_abs_diff']:.2g} |"
        )
    lines += [
        "",
        "Where the maps differ, the peer computes something else (read in its source, 1.5.7): "
        "its EigenCAM centres the activations before the SVD (a PCA; Eigen-CAM's paper and "
        "cnnkit project the raw activations) and leaves the sign of the component arbitrary; "
        "its ScoreCAM weighs channels by a softmax over the channels of the raw target logits "
        "(Score-CAM's Algorithm 1 and cnnkit: the class's softmax probability of each masked "
        "input); its AblationCAM sets an ablated channel to min(output) - 1e7 where the layer's "
        "minimum is not 0 (cnnkit and the paper: 0); its Grad-CAM++ adds 1e-7 to the "
        "denominator. cnnkit's maps equal captum and each paper's formula (tests/explain). "
        "An 'in-place after' row takes a layer whose output a `ReLU(inplace=True)` modifies "
        "next (ResNet's `layer4.1.bn1`): the peer stores the activation without a clone, so "
        "it pairs the post-ReLU activation with the pre-ReLU gradient.",
    ]
    return "\n".join(lines)


def render_ranking(result: dict) -> str:
    lines = [
        "`cnnkit explain compare` on Fashion-MNIST test images (the first N): "
        "deletion/insertion AUC (Petsiuk et al. 2018) and ROAD MoRF/LeRF (Rong et al. 2022) "
        "of the predicted class's probability; lower deletion/MoRF and higher insertion/LeRF "
        "are more faithful; rank by the mean rank over the four; 'beats random': on how many "
        f"of the four a method does better than the random map. Same run as above "
        f"(load average {result['load']}).",
    ]
    for block in result["ranking"]:
        lines += [
            "",
            f"**{block['model']}** (layer `{block['layer']}`, {block['images']} images, "
            f"{block['checkpoint_note']}"
            + (f"; load average {block['load']}" if "load" in block else "")
            + ")",
            "",
            "| rank | method | deletion | insertion | MoRF | LeRF | beats random | cam s |",
            "|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for rank, r in enumerate(block["rows"], 1):
            lines.append(
                f"| {rank} | {r['method']} | {r['deletion_auc']:.3f} | {r['insertion_auc']:.3f} "
                f"| {r['road_morf']:.3f} | {r['road_lerf']:.3f} | {r['beats_random']}/4 | "
                f"{r['seconds']:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="a trained checkpoint to explain (repeatable)",
    )
    parser.add_argument("--images", type=int, default=4, help="batch of the peer comparison")
    parser.add_argument("--rank-images", type=int, default=16, help="images of the ranking")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--methods", default=",".join(PEER_NAMES))
    parser.add_argument(
        "--slow-images",
        type=int,
        default=2,
        help="batch for scorecam/ablationcam in the peer comparison",
    )
    parser.add_argument("--pictures", metavar="DIR", help="write CAM/ERF pictures into DIR")
    parser.add_argument(
        "--peer-resnet",
        action="store_true",
        help="also compare with the peer on ResNet-18 small-input at init",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument(
        "--rank-checkpoint",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="a checkpoint for the ranking only (no peer)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="add to benchmarks/results/explain.json instead of replacing it",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the docs sections from benchmarks/results/explain.json",
    )
    args = parser.parse_args()
    if args.render_only:
        result = json.loads((ROOT / "benchmarks" / "results" / "explain.json").read_text())
        write_section("Explain: CAM methods against pytorch-grad-cam", render_peer(result))
        write_section(
            "Explain: which CAM to believe (faithfulness ranking)", render_ranking(result)
        )
        return
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    peer, note = load_peer()
    methods = [m for m in args.methods.split(",") if m]
    result = {
        "argv": " ".join(sys.argv[1:]).replace(str(ROOT) + "/", ""),
        "machine": machine_label(machine_info()),
        "load": " ".join(f"{v:.1f}" for v in os.getloadavg()),
        "date": time.strftime("%Y-%m-%d"),
        "threads": torch.get_num_threads(),
        "peer_note": note,
        "peer_version": peer_version() if peer else None,
        "peer": [],
        "ranking": [],
        "pictures": [],
    }
    if args.merge:  # keep the rows of an earlier run, replacing those measured again
        earlier = json.loads((ROOT / "benchmarks" / "results" / "explain.json").read_text())
        result = {
            **earlier,
            "ranking": list(earlier["ranking"]),
            "pictures": list(earlier["pictures"]),
        }
    runs = [(spec, False) for spec in args.checkpoint]
    runs += [(spec, True) for spec in args.rank_checkpoint]
    for spec, rank_only in runs:
        label, _, path = spec.partition("=")
        count = max(args.images, args.rank_images)
        model, images, pics, labels, saved = load(path, count)
        from cnnkit.explain import last_conv_layer

        layer = last_conv_layer(model, (1, *images.shape[1:]))
        if peer is not None and not rank_only:
            fast = [m for m in methods if m not in ("scorecam", "ablationcam")]
            slow = [m for m in methods if m in ("scorecam", "ablationcam")]
            result["peer"] += peer_rows(
                peer, model, images[: args.images], layer, fast, args.repeats, label
            )
            result["peer"] += peer_rows(
                peer, model, images[: args.slow_images], layer, slow, args.repeats, label
            )
            if "layer4.1.bn1" in dict(model.named_modules()):
                result["peer"] += peer_rows(
                    peer,
                    model,
                    images[: args.images],
                    "layer4.1.bn1",
                    ["gradcam"],
                    args.repeats,
                    label + " (in-place after)",
                )
        block = ranking_rows(model, images[: args.rank_images], label)
        block["checkpoint_note"] = checkpoint_note(Path(path), saved)
        block["load"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
        result["ranking"] = [b for b in result["ranking"] if b["model"] != label] + [block]
        if args.pictures:
            result["pictures"] += pictures(
                Path(args.pictures), model, images, pics, labels, saved, label
            )
    if args.peer_resnet and peer is not None:
        # ResNet-18 small-input at initialisation (seed 0) on Fashion-MNIST test images: the
        # peer comparison needs no training, and its blocks end with an in-place add + ReLU
        from cnnkit.data import load_dataset
        from cnnkit.models import create_model

        torch.manual_seed(0)
        model = create_model("resnet18", num_classes=10, in_channels=1, small_input=True).eval()
        pictures_ = load_dataset("fashion_mnist", "test").images[: args.images].float() / 255
        images = (pictures_ - FASHION_MEAN) / FASHION_STD
        fast = [m for m in methods if m not in ("scorecam", "ablationcam")]
        label = "resnet18 small-input, init"
        result["peer"] += peer_rows(peer, model, images, "layer4", fast, args.repeats, label)
        result["peer"] += peer_rows(
            peer,
            model,
            images,
            "layer4.1.bn1",
            ["gradcam"],
            args.repeats,
            label + " (in-place after)",
        )
    path = write_result("explain", result)
    print(f"wrote {path}")
    if not args.no_docs:
        write_section("Explain: CAM methods against pytorch-grad-cam", render_peer(result))
        write_section(
            "Explain: which CAM to believe (faithfulness ranking)", render_ranking(result)
        )


if __name__ == "__main__":
    main()
