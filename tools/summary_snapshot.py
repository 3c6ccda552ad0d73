"""Snapshot every figure ``summarize`` reports, to prove a speed change left them all alone.

    PYTHONPATH=<a checkout's src> python tools/summary_snapshot.py dump OUT_DIR [NAME_FILTER]
    python tools/summary_snapshot.py diff BEFORE_DIR AFTER_DIR

``dump`` writes one JSON file per run: ``Summary.to_dict()``, the rows at depth 1 and cnnkit's
warnings, for every zoo model in eval and train mode, timm's five light benchmark models at
their own input size and the timm corpus sample of tests/analysis/timm_corpus.py (timm from the
dev-only oracle folder). Run it once with the old code and once with the new (``PYTHONPATH``
chooses which cnnkit is imported), then ``diff`` lists the runs whose JSON differs.
"""

from __future__ import annotations

import json
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ZOO_SIZES = {
    "lenet5": (1, 28, 28),
    "mlp": (1, 28, 28),
    "softmax_regression": (1, 28, 28),
    "airnet": (1, 28, 28),
    "alexnet_small": (1, 28, 28),
    "simple_cnn": (3, 32, 32),
}
TIMM_LIGHT = (
    "levit_128",
    "eva02_tiny_patch14_224",
    "xcit_tiny_12_p16_224",
    "crossvit_tiny_240",
    "mobilenetv2_100",
)

Job = tuple[str, Callable[[], Any], tuple[int, ...] | None, str]


def _jobs() -> list[Job]:
    sys.path.insert(0, str(ROOT))
    from tests.oracles import use_oracle_folder

    use_oracle_folder()
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("_meta_stub"))
    import timm
    from tests.analysis.timm_corpus import SAMPLE

    from cnnkit.models import create_model, list_models

    jobs: list[Job] = []
    for name in list_models():
        size = ZOO_SIZES.get(name, (3, 224, 224))
        for mode in ("eval", "train"):
            jobs.append((f"zoo_{name}_{mode}", lambda n=name: create_model(n), size, mode))
    for name in TIMM_LIGHT:
        jobs.append((f"timm_light_{name}", lambda n=name: timm.create_model(n), None, "eval"))
    for name, (kwargs, side) in SAMPLE.items():
        make = lambda n=name, k=kwargs: timm.create_model(n, **k)  # noqa: E731
        jobs.append((f"timm_{name}", make, (3, side, side), "eval"))
    return jobs


def dump(out: Path, only: str | None) -> None:
    import torch

    from cnnkit.analysis import summarize

    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    for key, make, shape, mode in _jobs():
        if only and only not in key:
            continue
        torch.manual_seed(0)
        try:
            model = make()
            size = shape or tuple(model.pretrained_cfg["input_size"])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                summary = summarize(model, size, mode=mode)
            record = summary.to_dict()
            record["depth1"] = summary.at_depth(1).to_dict()["layers"]
            record["warnings"] = sorted(
                str(w.message) for w in caught if "cnnkit" in str(w.message)
            )
        except Exception as error:  # an error is a figure too: it must not change either
            record = {"error": f"{type(error).__name__}: {error}"}
        text = json.dumps(record, indent=0, sort_keys=True, default=str)
        (out / f"{key}.json").write_text(text, encoding="utf-8")
        print(key, "error" if "error" in record else "ok", flush=True)


def diff(before: Path, after: Path) -> int:
    names = sorted({p.name for p in before.glob("*.json")} | {p.name for p in after.glob("*.json")})
    differ = 0
    for name in names:
        old, new = before / name, after / name
        if not (old.exists() and new.exists()) or json.loads(old.read_text()) != json.loads(
            new.read_text()
        ):
            print("differs:", name)
            differ += 1
    print(f"{len(names)} runs, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "dump":
        dump(Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
    elif len(sys.argv) == 4 and sys.argv[1] == "diff":
        sys.exit(diff(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
