"""ONNX export checked against PyTorch by an independent runtime (onnxruntime)."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

from cnnkit.deploy.onnx_export import export_onnx
from cnnkit.errors import ConfigError, UnsupportedError
from tests.deploy.test_fold import randomise_norms
from tests.model_guard import model_left_as_found

# One small model per zoo family, at a small input it accepts.
FAMILIES = {
    "airnet": (3, 32, 32),
    "alexnet_small": (3, 32, 32),
    "convnext_tiny": (3, 32, 32),
    "densenet121": (3, 32, 32),
    "efficientnet_b0": (3, 32, 32),
    "googlenet": (3, 32, 32),
    "lenet5": (1, 28, 28),
    "simple_cnn": (1, 28, 28),
    "mobilenet_v3_small": (3, 32, 32),
    "resnet18": (3, 32, 32),
    "regnet_y_400mf": (3, 32, 32),
    "shufflenet_v2_x1_0": (3, 32, 32),
    "squeezenet1_0": (3, 64, 64),
    "vgg": (3, 32, 32),
}


def build(name: str, in_channels: int) -> nn.Module:
    from cnnkit.models import create_model
    from cnnkit.models.vgg import VGG

    if name == "vgg":  # VGG-11's layout at 1/16 width: the 4096-wide classifier stays
        return VGG([(1, 4), (1, 8), (2, 16), (2, 32), (2, 32)], batch_norm=True)
    return create_model(name, in_channels=in_channels)


def run_onnx(path, x):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_exports_and_matches_torch(name, tmp_path):
    shape = FAMILIES[name]
    model = build(name, shape[0]).eval()
    randomise_norms(model, torch.Generator().manual_seed(0))
    path = tmp_path / f"{name}.onnx"
    with model_left_as_found(model):
        result = export_onnx(model, shape, path, dynamic_batch=False)
    assert result.exporter == "dynamo" and result.max_error < 1e-4
    x = torch.randn(1, *shape)  # an input of our own, run by onnxruntime: the oracle
    with torch.no_grad():
        want = model(x).numpy()
    assert np.abs(run_onnx(path, x) - want).max() < 1e-4
    assert np.abs(want).max() > 1e-3  # outputs that are not all ~0, or the check is empty


def test_dynamic_batch_runs_an_unseen_batch_size_and_writes_the_sidecar(tmp_path):
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    ).eval()  # fmt: skip
    randomise_norms(model, torch.Generator().manual_seed(1))
    path = tmp_path / "net.onnx"
    result = export_onnx(
        model, (3, 8, 8), path, fold=True, mean=(0.5,), std=(0.25,), classes="abcd"
    )
    assert result.folded == 1 and result.max_error < 1e-5
    assert result.checked_batches == [2, 3]
    x = torch.randn(7, 3, 8, 8)  # neither 2 (export) nor 3 (check)
    with torch.no_grad():
        np.testing.assert_allclose(run_onnx(path, x), model(x).numpy(), atol=1e-5, rtol=0)
    sidecar = json.loads(result.sidecar.read_text())
    assert sidecar["input_name"] == "input"
    assert sidecar["input_shape"] == ["batch", 3, 8, 8]
    assert sidecar["mean"] == [0.5] and sidecar["classes"] == ["a", "b", "c", "d"]


def _unexportable_op():
    lib = torch.library.Library("cnnkit_deploy_test", "FRAGMENT")
    lib.define("mystery(Tensor x) -> Tensor")
    lib.impl("mystery", lambda x: x * 2, "CPU")
    lib.impl("mystery", lambda x: torch.empty_like(x), "Meta")
    return lib


class Mystery(nn.Module):
    def forward(self, x):
        return torch.ops.cnnkit_deploy_test.mystery(x)


def test_unexportable_model_names_the_op_and_leaves_no_file(tmp_path):
    lib = _unexportable_op()
    model = Mystery().eval()
    path = tmp_path / "bad.onnx"
    with model_left_as_found(model), pytest.raises(UnsupportedError, match="mystery") as error:
        export_onnx(model, (3, 4, 4), path)
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
    del lib


def test_bad_path_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"\.onnx"):
        export_onnx(nn.Linear(2, 2).eval(), (2,), tmp_path / "x.bin")


def test_legacy_exporter_is_a_fallback_that_says_so(tmp_path, monkeypatch):
    import cnnkit.deploy.onnx_export as onnx_export

    def refuse(*args, **kwargs):
        raise RuntimeError("dynamo says no")

    monkeypatch.setattr(onnx_export, "_export_dynamo", refuse)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU()).eval()
    result = export_onnx(model, (2, 5, 5), tmp_path / "m.onnx")
    assert result.exporter == "legacy" and "dynamo says no" in result.notes[0]
    x = torch.randn(4, 2, 5, 5)
    with torch.no_grad():
        np.testing.assert_allclose(run_onnx(result.path, x), model(x).numpy(), atol=1e-5, rtol=0)
