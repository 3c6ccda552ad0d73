"""The CAM family against captum and against each paper's formula written out here (float64)."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import ConfigError, ShapeError, UnknownNameError
from cnnkit.explain import CAM_METHODS, cam
from tests.explain.tiny import layer_and_gradient, tiny
from tests.model_guard import model_left_as_found

LAYER = "features.2"


@pytest.fixture(scope="module")
def setup():
    model = tiny()
    torch.manual_seed(1)
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64)
    targets = model(x).argmax(1).tolist()
    a, g, logits = layer_and_gradient(model, x, targets)
    return model, x, targets, a, g, logits


def relu(t):
    return t.clamp_min(0)


def gradcam(a, g):
    return relu((g.mean((2, 3))[:, :, None, None] * a).sum(1))


def gradcam_pp(a, g):
    # Chattopadhay et al. eq. 19, one (k, i, j) at a time
    b, k, h, w = a.shape
    weights = torch.zeros(b, k, dtype=a.dtype)
    for n in range(b):
        for c in range(k):
            total = a[n, c].sum()
            for i in range(h):
                for j in range(w):
                    grad = g[n, c, i, j]
                    den = 2 * grad**2 + total * grad**3
                    alpha = grad**2 / den if den != 0 else 0.0
                    weights[n, c] += alpha * max(float(grad), 0.0)
    return relu((weights[:, :, None, None] * a).sum(1))


def hirescam(a, g):
    return relu((g * a).sum(1))


def xgradcam(a, g):
    share = a / a.sum((2, 3), keepdim=True)
    return relu(((share * g).sum((2, 3))[:, :, None, None] * a).sum(1))


def layercam(a, g):
    return relu((relu(g) * a).sum(1))


FORMULAS = {
    "gradcam": gradcam,
    "gradcam++": gradcam_pp,
    "hirescam": hirescam,
    "xgradcam": xgradcam,
    "layercam": layercam,
}


@pytest.mark.parametrize("method", sorted(FORMULAS))
def test_gradient_methods_equal_their_formula(setup, method):
    model, x, targets, a, g, _ = setup
    with model_left_as_found(model):
        result = cam(model, x, method=method, layer=LAYER)
    expected = FORMULAS[method](a, g)
    assert expected.abs().max() > 0  # the oracle is not a trivial zero map
    assert result.maps.dtype == torch.float32 and result.maps.shape == (3, 6, 6)
    torch.testing.assert_close(result.maps, expected.float(), rtol=1e-5, atol=1e-6)
    assert list(result.targets) == targets and result.layer == LAYER


def test_scorecam_equals_its_formula(setup):
    model, x, targets, a, _, _ = setup
    with model_left_as_found(model):
        result = cam(model, x, method="scorecam", layer=LAYER)
    expected = []
    for n in range(x.shape[0]):
        weights = []
        for c in range(a.shape[1]):
            up = torch.nn.functional.interpolate(
                a[n : n + 1, c : c + 1], size=(6, 6), mode="bilinear", align_corners=False
            )[0, 0]
            mask = (up - up.min()) / (up.max() - up.min()) if up.max() > up.min() else up * 0
            with torch.no_grad():
                prob = model(x[n : n + 1] * mask).softmax(1)[0, targets[n]]
            weights.append(prob)
        expected.append(relu(sum(w * a[n, c] for c, w in enumerate(weights))))
    torch.testing.assert_close(result.maps, torch.stack(expected).float(), rtol=1e-5, atol=1e-6)


def test_ablationcam_equals_its_formula(setup):
    model, x, targets, a, _, logits = setup
    with model_left_as_found(model):
        result = cam(model, x, method="ablationcam", layer=LAYER)
    expected = []
    for n in range(x.shape[0]):
        score = logits[n, targets[n]]
        total = torch.zeros_like(a[n, 0])
        for c in range(a.shape[1]):
            ablated = a[n : n + 1].clone()
            ablated[0, c] = 0
            with torch.no_grad():
                drop = model.head(torch.relu(ablated))[0, targets[n]]
            total = total + (score - drop) / score * a[n, c]
        expected.append(relu(total))
    torch.testing.assert_close(result.maps, torch.stack(expected).float(), rtol=1e-5, atol=1e-6)


def test_eigencam_is_the_first_principal_component(setup):
    model, x, _, a, _, _ = setup
    result = cam(model, x, method="eigencam", layer=LAYER)
    for n in range(x.shape[0]):
        positions = a[n].reshape(a.shape[1], -1).T  # (h w, K)
        u, s, _ = torch.linalg.svd(positions, full_matrices=False)
        component = (u[:, 0] * s[0]).reshape(6, 6)
        component = component if component.sum() >= 0 else -component
        torch.testing.assert_close(result.maps[n], component.float(), rtol=1e-5, atol=1e-6)


def test_random_baseline_is_uniform_and_repeatable(setup):
    model, x, *_ = setup
    first = cam(model, x, method="random", layer=LAYER).maps
    assert torch.equal(first, cam(model, x, method="random", layer=LAYER).maps)
    assert first.min() >= 0 and first.max() < 1 and first.std() > 0.1


@pytest.mark.parametrize("method", ["gradcam", "layercam", "scorecam", "ablationcam", "eigencam"])
def test_batched_maps_equal_one_image_at_a_time(setup, method):
    model, x, *_ = setup
    batch = cam(model, x, method=method, layer=LAYER).maps
    single = [cam(model, x[i : i + 1], method=method, layer=LAYER).maps for i in range(3)]
    torch.testing.assert_close(batch, torch.cat(single), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_gradcam_equals_captum_after_an_inplace_relu():
    LayerGradCam = pytest.importorskip("captum.attr").LayerGradCam  # dev-only oracle

    from cnnkit.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=10, in_channels=1, small_input=True)
    x = torch.randn(2, 1, 20, 20)
    with model_left_as_found(model):
        default = cam(model, x)  # layer=None: the last conv-like layer from the capture graph
    assert default.layer == "layer4"
    # layer4.1.bn1 is followed by the block's ReLU(inplace=True); layer4.1.bn2 by an add
    for layer in ("layer4", "layer4.1.bn1", "layer4.1.bn2"):
        with model_left_as_found(model):
            result = cam(model, x, layer=layer)
        model.eval()
        oracle = LayerGradCam(model, model.get_submodule(layer)).attribute(
            x, target=list(result.targets), relu_attributions=True
        )
        model.train()
        assert oracle.abs().max() > 0
        torch.testing.assert_close(result.maps, oracle[:, 0].detach(), rtol=0, atol=1e-5)


def test_targets_int_list_and_callable(setup):
    model, x, _, a, _, _ = setup
    fixed = cam(model, x, layer=LAYER, targets=2)
    _, g, _ = layer_and_gradient(model, x, [2, 2, 2])
    torch.testing.assert_close(fixed.maps, gradcam(a, g).float(), rtol=1e-5, atol=1e-6)
    by_callable = cam(model, x, layer=LAYER, targets=[lambda row: row[2]] * 3)
    torch.testing.assert_close(by_callable.maps, fixed.maps)
    with pytest.raises(ConfigError, match="targets"):
        cam(model, x, layer=LAYER, targets=[0, 7, 1])


def test_frozen_model_still_explained_and_untouched(setup):
    model, x, *_ = setup
    frozen = tiny()
    for p in frozen.parameters():
        p.requires_grad_(False)
    frozen.train()
    with model_left_as_found(frozen):
        result = cam(frozen, x, layer=LAYER)
    torch.testing.assert_close(result.maps, cam(model, x, layer=LAYER).maps)


def test_upsampled_is_normalised_per_image(setup):
    model, x, *_ = setup
    up = cam(model, x, layer=LAYER).upsampled((12, 12))
    assert up.shape == (3, 12, 12)
    assert torch.all(up.amax((1, 2)) == 1) and torch.all(up.amin((1, 2)) == 0)


def test_bad_layers_raise_and_leave_the_model(setup):
    model, x, *_ = setup
    with model_left_as_found(model), pytest.raises(UnknownNameError, match=r"features\.2"):
        cam(model, x, layer="features.9")
    with model_left_as_found(model), pytest.raises(ShapeError, match="no spatial output"):
        cam(model, x, layer="head.1")
    with model_left_as_found(model), pytest.raises(UnknownNameError, match="CAM method"):
        cam(model, x, method="gradcamm", layer=LAYER)
    with model_left_as_found(model), pytest.raises(ConfigError, match="B, C, H, W"):
        cam(model, x[0])
    with model_left_as_found(model), pytest.raises(ConfigError, match="targets"):
        cam(model, x, layer=LAYER, targets=[lambda row: row[:2]] * 3)


def test_every_registered_method_runs(setup):
    model, x, *_ = setup
    for name in CAM_METHODS.names():
        with model_left_as_found(model):
            maps = cam(model, x, method=name, layer=LAYER).maps
        assert maps.shape == (3, 6, 6) and torch.isfinite(maps).all()
