"""Rank every CAM method by faithfulness on one model and batch, next to the random baseline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnkit.explain.cam import CAM_METHODS, cam
from cnnkit.explain.faithfulness import faithfulness
from cnnkit.explain.layers import last_conv_layer

# metric -> True when higher is better
METRICS = {"deletion_auc": False, "insertion_auc": True, "road_morf": False, "road_lerf": True}


@dataclass(frozen=True)
class MethodScore:
    """One method's mean scores, its mean rank over the four metrics (1 = best) and how many
    of the four it does better on than the random baseline."""

    method: str
    deletion_auc: float
    insertion_auc: float
    road_morf: float
    road_lerf: float
    mean_rank: float
    beats_random: int
    seconds: float


@dataclass(frozen=True)
class Comparison:
    """Methods sorted by mean rank (best first); ``layer`` and ``images`` say what was explained."""

    layer: str
    images: int
    rows: tuple[MethodScore, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "images": self.images,
            "rows": [row.__dict__ for row in self.rows],
        }


def compare_methods(
    model: nn.Module,
    images: torch.Tensor,
    methods: Sequence[str] | None = None,
    layer: str | None = None,
    **faithfulness_options: Any,
) -> Comparison:
    """Run each CAM method (default: all, the random baseline included) on ``images`` and score
    its maps with :func:`~cnnkit.explain.faithfulness.faithfulness`; rank the methods by the
    mean of their ranks on the four scores (deletion and MoRF: lower is better; insertion and
    LeRF: higher is better)."""
    import time

    names = list(methods) if methods is not None else CAM_METHODS.names()
    if "random" not in names:
        names.append("random")
    if layer is None:
        layer = last_conv_layer(model, (1, *images.shape[1:]))
    scores: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    for name in names:
        start = time.perf_counter()
        result = cam(model, images, method=name, layer=layer)
        seconds[name] = time.perf_counter() - start
        scores[name] = faithfulness(model, images, result, **faithfulness_options).means()
    ranks = {name: 0.0 for name in names}
    for metric, higher in METRICS.items():
        ordered = sorted(names, key=lambda n: -scores[n][metric] if higher else scores[n][metric])
        for position, name in enumerate(ordered, 1):
            ranks[name] += position / len(METRICS)
    random = scores["random"]
    rows = []
    for name in names:
        beats = sum(
            (scores[name][m] > random[m]) if higher else (scores[name][m] < random[m])
            for m, higher in METRICS.items()
        )
        rows.append(
            MethodScore(
                name,
                **scores[name],
                mean_rank=ranks[name],
                beats_random=int(beats),
                seconds=seconds[name],
            )
        )
    rows.sort(key=lambda row: (row.mean_rank, row.method))
    return Comparison(layer=layer, images=int(images.shape[0]), rows=tuple(rows))
