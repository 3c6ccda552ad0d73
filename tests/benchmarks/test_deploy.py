"""benchmarks/deploy.py renders what cnnkit.deploy.bench measured, speed-ups from the same run."""

from __future__ import annotations

from torch import nn

from cnnkit.deploy.bench import benchmark


def test_the_section_has_a_row_per_variant_and_eager_ratios(deploy_script):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten()).eval()
    run = benchmark(model, (1, 6, 6), batch_sizes=(1, 2), threads=(1,),
                    variants=("eager", "folded"), warmup=1, repeats=2).to_dict()  # fmt: skip
    machine = {"cpu": "x", "cores": 2, "avx512_bf16": False, "amx_bf16": False, "date": "d"}
    text = deploy_script.render({"configuration": "reduced", "machine": machine, "runs": [run]})
    eager = {r["batch_size"]: r for r in run["measurements"] if r["variant"] == "eager"}
    folded = {r["batch_size"]: r for r in run["measurements"] if r["variant"] == "folded"}
    row = next(line for line in text.splitlines() if line.startswith("| folded |"))
    for batch in (1, 2):
        for key in ("p50_ms", "min_ms"):
            ratio = eager[batch][key] / folded[batch][key]
            assert f"{folded[batch][key]:.3f} ({ratio:.2f}x)" in row
    assert "| eager | fp32 | 1 |" in text and "Fastest: " in text
