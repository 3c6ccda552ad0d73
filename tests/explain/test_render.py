"""Every renderer writes a PNG from a real result (pictures are looked at, not compared)."""

from __future__ import annotations

import torch

from cnnkit.explain import cam, effective_receptive_field, feature_maps, filters
from cnnkit.explain.render import cam_overlay_png, erf_png, feature_grid_png, filters_png
from tests.explain.tiny import tiny

PNG = b"\x89PNG\r\n\x1a\n"


def test_renderers_write_pngs(tmp_path):
    model = tiny()
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    maps = feature_maps(model, x, layers=["features.1"])
    paths = [
        feature_grid_png(maps["features.1"], tmp_path / "features.png"),
        filters_png(filters(model, (2, 6, 6)), tmp_path / "filters.png"),
        cam_overlay_png(
            torch.rand(2, 1, 6, 6),
            [cam(model, x, layer="features.2"), cam(model, x, "layercam", "features.2")],
            tmp_path / "cam.png",
            labels=["a", "b"],
        ),
        erf_png(
            {"init": effective_receptive_field(model, (2, 6, 6), "features.2", samples=2)},
            tmp_path / "erf.png",
        ),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG
    assert not list(tmp_path.glob("*.tmp*"))
