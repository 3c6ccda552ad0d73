"""Benchmark: ``cnnkit summary`` against torchinfo and fvcore, and a model larger than memory.

Speed: the same cnnkit zoo models (torchvision's architectures and module names) at 3x224x224,
batch 1, summarised by cnnkit (one capture on the meta device), torchinfo (``summary``: hooks on
a real forward) and fvcore (``FlopCountAnalysis``: a JIT trace of a real forward), each after
one warm-up call, median of ``--repeats`` runs, with one torch thread; wall time and the
process's CPU time (which other jobs on a shared machine do not inflate). Each tool's MAC count
is recorded beside the oracle, torch.utils.flop_counter's FLOPs / 2.

Scale: ``cnnkit summary vgg19 --input 3,2048,2048 --batch 64 --format json`` in a fresh process
(far more activation memory than the machine has): wall time from start to exit, CPU time, peak RSS.
Goals: not slower than the peers; the large model in under 10 s and 1 GB.

Writes ``benchmarks/results/summary.json`` and the section "## Analysis: summary speed and
scale" of ``docs/benchmarks.md`` (only that section; the file is created if missing).

    python benchmarks/summary.py [--repeats 3] [--models resnet18,resnet50]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from cnnkit._io import atomic_write_text
from cnnkit.runtime import cpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from recording import load_average, write_markdown_section  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "summary.json"
PAGE = ROOT / "docs" / "benchmarks.md"
SECTION = "## Analysis: summary speed and scale"
MODELS = (
    "resnet18",
    "resnet50",
    "densenet121",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "convnext_tiny",
    "vgg16",
)
# timm's light models with many small ops (issue 15: where cnnkit was slower than torchinfo),
# named "timm:NAME"; timm is a dev-only oracle, imported as tests/analysis/timm_corpus.py does.
TIMM_MODELS = (
    "timm:levit_128",
    "timm:eva02_tiny_patch14_224",
    "timm:xcit_tiny_12_p16_224",
    "timm:crossvit_tiny_240",
    "timm:mobilenetv2_100",
)
SCALE_COMMAND = ["summary", "vgg19", "--input", "3,2048,2048", "--batch", "64", "--format", "json"]
SCALE_GOALS = {"seconds": 10.0, "rss_bytes": 10**9}

# Runs in the child process: the CLI, then its own wall time, CPU time and peak RSS on stderr.
_CHILD = """
import json, resource, sys, time
start = time.perf_counter()
from cnnkit.cli.main import main
code = main(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"code": code, "inner_seconds": time.perf_counter() - start,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "rss_bytes": usage.ru_maxrss * 1024}), file=sys.stderr)
"""


def _tools(shape: tuple[int, ...]) -> dict[str, Callable[[torch.nn.Module], int]]:
    """Each tool as model -> MACs it reports for one image of ``shape`` (C, H, W)."""
    import torchinfo
    from fvcore.nn import FlopCountAnalysis

    from cnnkit.analysis import summarize

    def cnnkit(model: torch.nn.Module) -> int:
        return summarize(model, shape).total.macs

    def cnnkit_cold(model: torch.nn.Module) -> int:
        # the meta outputs remembered by earlier summaries forgotten: a first summarize
        from cnnkit.analysis._meta_cache import clear_shared_meta_cache

        clear_shared_meta_cache()
        return summarize(model, shape).total.macs

    def with_torchinfo(model: torch.nn.Module) -> int:
        return int(torchinfo.summary(model, input_size=(1, *shape), verbose=0).total_mult_adds)

    def with_fvcore(model: torch.nn.Module) -> int:
        analysis = FlopCountAnalysis(model, torch.randn(1, *shape))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        try:
            return int(analysis.total())  # fvcore counts one "flop" per multiply-accumulate
        except Exception:  # its JIT trace refuses some timm models: recorded as failed (-1)
            return -1

    return {
        "cnnkit": cnnkit,
        "cnnkit (cold)": cnnkit_cold,
        "torchinfo": with_torchinfo,
        "fvcore": with_fvcore,
    }


def _oracle_macs(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(model).to("meta")
    with FlopCounterMode(display=False) as counter:  # on meta, attention runs as matmuls
        meta(torch.empty(1, *shape, device="meta"))
    return counter.get_total_flops() // 2


def _build(name: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """A zoo model at 3x224x224, or ``timm:NAME`` at its own default input."""
    if not name.startswith("timm:"):
        from cnnkit.models import create_model

        return create_model(name).eval(), (3, 224, 224)
    import types

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.oracles import use_oracle_folder

    use_oracle_folder()  # the dev-only peers live in .venv/oracles, off the user's sys.path
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("_meta_stub"))
    import timm

    model = timm.create_model(name[5:], pretrained=False).eval()
    return model, tuple(model.pretrained_cfg["input_size"])


def _interleaved(fns: dict[str, Callable[[], int]], repeats: int) -> dict[str, dict]:
    """Run the tools in turn, ``repeats`` rounds after a warm-up round, so that a change of
    load on a shared machine hits every tool alike. Median and minimum wall and CPU times;
    the minimum CPU time is the cost least disturbed by other jobs (timeit's advice)."""
    for fn in fns.values():
        fn()  # warm-up: lazy imports, first-call caches
    walls: dict[str, list[float]] = {name: [] for name in fns}
    cpus: dict[str, list[float]] = {name: [] for name in fns}
    values: dict[str, int] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            values[name] = fn()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    return {
        name: {
            "seconds": statistics.median(walls[name]),
            "cpu_seconds": statistics.median(cpus[name]),
            "min_cpu_seconds": min(cpus[name]),
            "macs": values[name],
        }
        for name in fns
    }


def speed(models: list[str], repeats: int) -> list[dict]:
    rows = []
    for name in models:
        model, shape = _build(name)
        oracle = _oracle_macs(model, shape)
        calls = {tool: (lambda fn=fn, model=model: fn(model)) for tool, fn in _tools(shape).items()}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            measured = _interleaved(calls, repeats)
        for tool, figures in measured.items():
            rows.append({"model": name, "tool": tool, "oracle_macs": oracle, **figures})
            print(f"{name:20s} {tool:10s} {figures['min_cpu_seconds']:.3f} s cpu", file=sys.stderr)
    return rows


def scale() -> dict:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *SCALE_COMMAND],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - start
    child = json.loads(proc.stderr.strip().splitlines()[-1])
    summary = json.loads(proc.stdout)
    return {
        "command": "cnnkit " + " ".join(SCALE_COMMAND),
        "seconds": seconds,
        **child,
        "macs": summary["total"]["macs"],
        "params": summary["total"]["params"],
        "activation_bytes": summary["total"]["activation_bytes"],
        "device": summary["device"],
        "goals": SCALE_GOALS,
    }


def markdown(data: dict) -> str:
    env = data["environment"]
    lines = [
        SECTION,
        "",
        "`python benchmarks/summary.py` (writes `benchmarks/results/summary.json` and this "
        "section). Each tool summarises the same cnnkit zoo model at 3x224x224, batch 1, one "
        "torch thread, after a warm-up call; the tools take turns for "
        f"{data['repeats']} rounds (median wall and CPU time, and the minimum CPU time, the "
        "cost least disturbed by other jobs). cnnkit traces on the meta device; torchinfo and "
        "fvcore run a real forward. CPU is the process's CPU time (not inflated by other jobs "
        "on a shared machine); 'MACs' is what each tool reports, next to "
        "torch.utils.flop_counter's "
        "FLOPs / 2 (the oracle).",
        "",
        f"Measured on {env['cpu']} ({env['cores']} cores, shared: load average "
        f"{env['load_before']} before, {env['load_after']} after), torch {env['torch']}, "
        f"{env['date']}.",
        "",
        "| model | tool | wall s | CPU s | min CPU s | min CPU vs cnnkit | MACs reported | "
        "oracle MACs |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    base = {r["model"]: r["min_cpu_seconds"] for r in data["speed"] if r["tool"] == "cnnkit"}
    for row in data["speed"]:
        ratio = row["min_cpu_seconds"] / base[row["model"]]
        mark = "" if row["macs"] == row["oracle_macs"] else " (differs)"
        mark = " (failed)" if row["macs"] < 0 else mark
        lines.append(
            f"| {row['model']} | {row['tool']} | {row['seconds']:.3f} | {row['cpu_seconds']:.3f} "
            f"| {row['min_cpu_seconds']:.3f} | {ratio:.2f}x | {row['macs']:,}{mark} | "
            f"{row['oracle_macs']:,} |"
        )
    models = list(base)
    cold = {r["model"]: r["min_cpu_seconds"] for r in data["speed"] if r["tool"] == "cnnkit (cold)"}

    def is_peer(row: dict) -> bool:
        return not row["tool"].startswith("cnnkit")

    def beats_peers(times: dict[str, float], model: str) -> bool:
        return all(
            r["min_cpu_seconds"] >= times[model]
            for r in data["speed"]
            if r["model"] == model and is_peer(r)
        )

    faster = [m for m in models if beats_peers(base, m)]
    slower = ", ".join(m for m in models if m not in faster) or "none"
    cold_faster = [m for m in cold if beats_peers(cold, m)]
    cold_slower = ", ".join(m for m in cold if m not in cold_faster) or "none"
    close = [
        m for m in models
        if any(r["min_cpu_seconds"] < 1.1 * base[m] for r in data["speed"]
               if r["model"] == m and is_peer(r))
    ]  # fmt: skip
    exact = all(
        r["macs"] == r["oracle_macs"] for r in data["speed"] if r["tool"].startswith("cnnkit")
    )
    wrong = [
        f"{r['tool']} on {r['model']} reports {r['macs'] / r['oracle_macs']:.2f}x the oracle"
        for r in data["speed"]
        if is_peer(r) and r["macs"] >= 0 and abs(r["macs"] / r["oracle_macs"] - 1) > 0.05
    ]
    lines += [
        "",
        "'cnnkit (cold)' forgets the meta outputs that earlier summaries in the process "
        "remembered (`analysis/_meta_cache.py`) before each call: the cost of a first summary.",
        "",
        "Goal 'not slower than the peers' (minimum CPU time): met on "
        f"{len(faster)} of {len(models)} models (slower on: {slower}; a peer within 10% on: "
        f"{', '.join(close) or 'none'}, where median times can swap places); cold, met on "
        f"{len(cold_faster)} of {len(cold)} (slower on: {cold_slower}). cnnkit's MACs equal "
        f"the oracle on {'every' if exact else 'NOT every'} model; off by more than 5%: "
        f"{'; '.join(wrong) or 'none'}.",
    ]
    s = data["scale"]
    ok_time = s["seconds"] < s["goals"]["seconds"]
    ok_rss = s["rss_bytes"] < s["goals"]["rss_bytes"]
    lines += [
        "",
        f"Scale: `{s['command']}` in a fresh process (its activations would need "
        f"{s['activation_bytes'] / 1e9:,.0f} GB; traced on the {s['device']} device): "
        f"{s['seconds']:.2f} s wall from start to exit ({s['cpu_seconds']:.2f} s CPU, "
        f"{s['inner_seconds']:.2f} s inside Python, most of it importing torch), peak RSS "
        f"{s['rss_bytes'] / 1e6:.0f} MB; {s['macs']:,} MACs. Goals < 10 s: "
        f"{'met' if ok_time else 'NOT met'}; < 1 GB: {'met' if ok_rss else 'NOT met'}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per tool (default 3)")
    parser.add_argument(
        "--models",
        default=",".join((*MODELS, *TIMM_MODELS)),
        help="comma-separated zoo names and timm:NAME",
    )
    args = parser.parse_args(argv)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    load_before = load_average()
    data = {
        "repeats": args.repeats,
        "scale": scale(),
        "speed": speed([m for m in args.models.split(",") if m], args.repeats),
    }
    data["environment"] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_average(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "threads": 1,
    }
    atomic_write_text(RESULT, json.dumps(data, indent=2) + "\n")
    write_markdown_section(markdown(data), PAGE)
    print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
