"""create_model(name, weights=path): torchvision and cnnkit checkpoints, strict, safe loading."""

from __future__ import annotations

import pickle
import re

import pytest
import torch
from torch import nn

from cnnkit.errors import CheckpointError
from cnnkit.models import create_model
from cnnkit.models.weights import load_state_strict, load_weights, read_state_dict
from tests.model_guard import model_left_as_found
from tests.oracles import torchvision_models


def _save(obj, path):
    torch.save(obj, path)
    return path


def _outputs_equal(a: nn.Module, b: nn.Module, size: int = 32, channels: int = 3) -> None:
    x = torch.randn(2, channels, size, size)
    torch.testing.assert_close(a.eval()(x), b.eval()(x))


def test_torchvision_file_loads_strictly_and_gives_torchvision_outputs(tmp_path):
    tv = torchvision_models()
    reference = tv.resnet18(num_classes=10).eval()
    path = _save(reference.state_dict(), tmp_path / "resnet18.pth")
    model = create_model("resnet18", num_classes=10, weights=str(path))
    _outputs_equal(model, reference)


@pytest.mark.parametrize("wrapper", ["model", "state_dict"])
def test_training_checkpoint_dicts_load(tmp_path, wrapper):
    source = create_model("lenet5")
    checkpoint = {wrapper: source.state_dict(), "epoch": 3, "config": {"lr": 0.1}}
    path = _save(checkpoint, tmp_path / "last.pt")
    model = create_model("lenet5", weights=path)
    _outputs_equal(model, source, size=28, channels=1)


def test_data_parallel_and_compile_prefixes_are_removed(tmp_path):
    source = create_model("simple_cnn")
    for prefix in ("module.", "_orig_mod."):
        state = {prefix + key: value for key, value in source.state_dict().items()}
        model = create_model("simple_cnn", weights=_save(state, tmp_path / "p.pt"))
        _outputs_equal(model, source)


def test_legacy_densenet_keys_are_renamed_like_torchvision_does(tmp_path):
    tv = torchvision_models()
    reference = tv.densenet121(num_classes=4).eval()
    # torchvision's published DenseNet files predate num_batches_tracked and spell
    # norm1/conv2 as norm.1/conv.2
    legacy = {
        re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key): value
        for key, value in reference.state_dict().items()
        if not key.endswith("num_batches_tracked")
    }
    assert any(".norm.1." in key for key in legacy)
    model = create_model("densenet121", num_classes=4, weights=_save(legacy, tmp_path / "d.pth"))
    _outputs_equal(model, reference)


def test_googlenet_file_with_aux_heads_loads_into_a_model_without_them(tmp_path):
    tv = torchvision_models()
    reference = tv.googlenet(num_classes=5, aux_logits=True, init_weights=True).eval()
    assert any(key.startswith("aux1.") for key in reference.state_dict())
    path = _save(reference.state_dict(), tmp_path / "g.pth")
    model = create_model("googlenet", num_classes=5, weights=path)
    assert model.aux1 is None
    _outputs_equal(model, reference)


def test_missing_num_batches_tracked_starts_at_zero(tmp_path):
    source = create_model("resnet18", num_classes=3)
    state = {k: v for k, v in source.state_dict().items() if "num_batches_tracked" not in k}
    model = create_model("resnet18", num_classes=3, weights=_save(state, tmp_path / "old.pth"))
    assert int(model.bn1.num_batches_tracked) == 0


def test_shape_mismatch_names_the_key_and_both_shapes(tmp_path):
    path = _save(create_model("resnet18").state_dict(), tmp_path / "imagenet.pth")
    with pytest.raises(CheckpointError) as caught:
        create_model("resnet18", num_classes=10, weights=path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "'fc.weight'" in message and "(1000, 512)" in message and "(10, 512)" in message


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state = create_model("resnet18").state_dict()
    del state["layer4.1.bn2.running_var"]
    state["head.weight"] = torch.zeros(2, 2)
    with pytest.raises(CheckpointError) as caught:
        create_model("resnet18", weights=_save(state, tmp_path / "bad.pth"))
    message = str(caught.value)
    assert "\n" not in message
    assert "missing key 'layer4.1.bn2.running_var' (512,)" in message
    assert "unexpected key 'head.weight' (2, 2)" in message


def test_a_failed_load_leaves_the_model_untouched(tmp_path):
    model = create_model("resnet18", num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    path = _save(create_model("resnet18").state_dict(), tmp_path / "imagenet.pth")
    with pytest.raises(CheckpointError):
        load_weights(model, path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_missing_file_and_corrupt_file_are_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"no-such\.pth: no such checkpoint file"):
        create_model("lenet5", weights=str(tmp_path / "no-such.pth"))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError) as caught:
        create_model("lenet5", weights=corrupt)
    assert str(corrupt) in str(caught.value) and "\n" not in str(caught.value)


def test_truncated_checkpoint_is_named(tmp_path):
    path = _save(create_model("lenet5").state_dict(), tmp_path / "whole.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match=r"truncated\.pth: not a loadable PyTorch checkpoint"):
        read_state_dict(truncated)


class _Payload:
    """Any class: weights_only loading must refuse to unpickle it."""


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": _Payload()}, path)
    with pytest.raises(CheckpointError, match="not a loadable PyTorch checkpoint"):
        read_state_dict(path)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError):
        read_state_dict(plain)


def test_a_dict_without_tensors_is_not_a_state_dict(tmp_path):
    path = _save({"epoch": 3, "config": {"lr": 0.1}}, tmp_path / "meta.pt")
    with pytest.raises(CheckpointError, match="without a state_dict"):
        read_state_dict(path)


def test_create_model_errors_name_the_registered_model(tmp_path):
    path = tmp_path / "lenet.pth"
    torch.save(create_model("lenet5").state_dict(), path)
    with pytest.raises(CheckpointError, match=r"does not fit lenet5: 'classifier.5.weight'"):
        create_model("lenet5", num_classes=3, weights=str(path))


def test_strict_loading_of_a_training_checkpoints_state_names_model_and_key(tmp_path):
    """The trainer's resume and ``cnnkit eval`` load through the same strict check."""
    model = nn.Linear(2, 2)
    with (
        model_left_as_found(model),
        pytest.raises(
            CheckpointError,
            match=r"c.pt does not fit lenet5: 'weight' has shape \(2, 3\) in the checkpoint "
            r"and \(2, 2\) in the model",
        ),
    ):
        load_state_strict(model, nn.Linear(3, 2).state_dict(), tmp_path / "c.pt", "lenet5")
    with model_left_as_found(model), pytest.raises(CheckpointError, match="unexpected key 'extra'"):
        load_state_strict(model, {**model.state_dict(), "extra": torch.ones(1)}, "c.pt", "m")
    source = nn.Linear(2, 2)
    load_state_strict(model, source.state_dict(), "c.pt", "m")
    torch.testing.assert_close(model.weight, source.weight)
