"""Pretrained weights: the URL table against torchvision's, and downloads from a server on
127.0.0.1 only (a good file, a wrong hash, a cut and a truncated file, no server, cache hits)."""

from __future__ import annotations

import dataclasses
import hashlib
import io

import pytest
import torch

from cnnkit.cli.main import main
from cnnkit.errors import ChecksumError, ConfigError, DownloadError
from cnnkit.models import create_model, list_models, model_info
from cnnkit.models.pretrained import (
    PRETRAINED,
    build_kwargs,
    hub_folder,
    load_pretrained,
    pretrained_file,
    published_weights,
    weights_folder,
)
from tests.data.fakes import Served, http_server
from tests.model_guard import model_left_as_found
from tests.oracles import torchvision_models

MODEL = "squeezenet1_0"  # the smallest published file (5 MB), a torchvision oracle exists
NO_SERVER = "http://127.0.0.1:9/models/"  # the discard port: nothing listens, refused at once


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path, monkeypatch):
    """An empty cnnkit cache and torch.hub folder per test; the table restored afterwards."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    saved = PRETRAINED.get(MODEL)
    yield
    PRETRAINED.add(MODEL, saved, override=True)


@pytest.fixture(scope="module")
def reference():
    """torchvision's own squeezenet1_0 with random weights, and its file's bytes."""
    model = torchvision_models().squeezenet1_0().eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return model, buffer.getvalue()


def _publish(data: bytes, base_url: str, digest: str | None = None) -> str:
    """Point the table's entry at ``base_url`` under a name carrying ``digest``'s first 8 hex
    digits (the file's own by default); returns the file name."""
    prefix = (digest or hashlib.sha256(data).hexdigest())[:8]
    name = f"squeezenet1_0-{prefix}.pth"
    entry = dataclasses.replace(PRETRAINED.get(MODEL), file=name, base_url=base_url)
    PRETRAINED.add(MODEL, entry, override=True)
    return name


def _same_outputs(model, reference_model):
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(model.eval()(x), reference_model(x), rtol=0, atol=0)


@pytest.mark.slow
def test_the_table_is_torchvisions_v1_weights_for_every_torchvision_zoo_model():
    tv = torchvision_models()
    zoo = {name for name in list_models() if model_info(name).torchvision}
    assert set(PRETRAINED.names()) == zoo
    for name in zoo:
        entry = PRETRAINED.get(name)
        published = tv.get_model_weights(name).IMAGENET1K_V1
        assert entry.url == published.url, name
        assert entry.top1 == published.meta["_metrics"]["ImageNet-1K"]["acc@1"], name
        assert entry.num_params == published.meta["num_params"], name
        assert entry.url.startswith("https://download.pytorch.org/models/")
        assert len(entry.sha256_prefix) >= 8 and entry.file.endswith(f"-{entry.sha256_prefix}.pth")


def test_a_good_file_is_downloaded_checked_cached_and_loads_torchvisions_weights(reference):
    tv_model, data = reference
    served = Served()
    with http_server(served) as base:
        name = _publish(data, base)
        served.files[name] = data
        model = create_model(MODEL, pretrained=True)
    _same_outputs(model, tv_model)
    assert (weights_folder() / name).read_bytes() == data
    assert sorted(p.name for p in weights_folder().iterdir()) == [name]  # no .part, no lock
    assert len(served.requests) == 1
    # the server is gone: the cached file is found, checked, loaded
    offline = dataclasses.replace(PRETRAINED.get(MODEL), base_url=NO_SERVER)
    PRETRAINED.add(MODEL, offline, override=True)
    _same_outputs(create_model(MODEL, pretrained=True), tv_model)


def test_a_file_in_torch_hubs_folder_is_used_without_network(reference):
    tv_model, data = reference
    name = _publish(data, NO_SERVER)
    hub_folder().mkdir(parents=True)
    (hub_folder() / name).write_bytes(data)
    assert pretrained_file(MODEL, download=False) == hub_folder() / name
    _same_outputs(create_model(MODEL, pretrained=True), tv_model)
    assert not (weights_folder() / name).exists()


def test_a_wrong_hash_is_refused_and_nothing_is_kept(reference):
    _, data = reference
    served = Served()
    with http_server(served) as base:
        name = _publish(data, base, digest="0" * 64)
        served.files[name] = data
        with pytest.raises(ChecksumError) as info:
            create_model(MODEL, pretrained=True)
    message = str(info.value)
    assert name in message and hashlib.sha256(data).hexdigest() in message
    assert "00000000" in message and "\n" not in message
    assert list(weights_folder().iterdir()) == []


def test_a_cut_download_keeps_its_part_names_the_url_and_resumes(reference):
    _, data = reference
    served = Served()
    with http_server(served) as base:
        name = _publish(data, base)
        served.files[name] = data
        served.cut_after[name] = 100_000
        with pytest.raises(DownloadError) as info:
            pretrained_file(MODEL)
        message = str(info.value)
        assert base + name in message and "cut after 100000" in message and "\n" not in message
        assert str(weights_folder()) in message  # where to put the file by hand
        path = pretrained_file(MODEL)
    assert served.requests[-1][1] == "bytes=100000-"
    assert path.read_bytes() == data


def test_a_truncated_cached_file_is_refused_naming_it(reference):
    _, data = reference
    name = _publish(data, NO_SERVER)
    weights_folder().mkdir(parents=True)
    (weights_folder() / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ChecksumError) as info:
        create_model(MODEL, pretrained=True)
    message = str(info.value)
    assert str(weights_folder() / name) in message and "delete it" in message
    assert "\n" not in message


def test_no_server_is_one_line_naming_the_url_and_the_folder(reference):
    _, data = reference
    name = _publish(data, NO_SERVER)
    with pytest.raises(DownloadError) as info:
        create_model(MODEL, pretrained=True)
    message = str(info.value)
    assert NO_SERVER + name in message and "cannot connect" in message
    assert str(weights_folder()) in message and str(hub_folder()) in message
    assert "\n" not in message
    with pytest.raises(DownloadError, match="not found; download"):
        pretrained_file(MODEL, download=False)


def test_load_pretrained_leaves_the_model_as_found_when_it_fails(reference):
    _, data = reference
    _publish(data, NO_SERVER)
    model = create_model(MODEL)
    with model_left_as_found(model), pytest.raises(DownloadError):
        load_pretrained(model, MODEL)


def test_models_without_weights_and_other_shapes_are_one_line_errors():
    with pytest.raises(ConfigError, match="lenet5: no published pretrained weights"):
        create_model("lenet5", pretrained=True)
    with pytest.raises(ConfigError, match="num_classes=1000, not 10"):
        create_model("resnet18", pretrained=True, num_classes=10)
    with pytest.raises(ConfigError, match="in_channels=3, not 1"):
        create_model("resnet18", pretrained=True, in_channels=1)
    with pytest.raises(ConfigError, match="not both"):
        create_model("resnet18", pretrained=True, weights="x.pth")
    with pytest.raises(ConfigError, match="True or False"):
        create_model("resnet18", pretrained="yes")
    with pytest.raises(KeyError, match="resnet19"):  # UnknownNameError, close matches listed
        published_weights("resnet19")


def test_googlenet_is_built_as_torchvision_builds_it_for_its_weights():
    # torchvision: transform_input=True unless the caller says otherwise
    assert build_kwargs("googlenet", {}) == {"transform_input": True}
    assert build_kwargs("googlenet", {"transform_input": False}) == {"transform_input": False}
    assert build_kwargs("resnet18", {"num_classes": 1000}) == {"num_classes": 1000}


def test_cli_lists_and_downloads(reference, capsys):
    _, data = reference
    served = Served()
    with http_server(served) as base:
        name = _publish(data, base)
        served.files[name] = data
        assert main(["zoo", "squeezenet*", "--pretrained"]) == 0
        out = capsys.readouterr().out
        assert f"{MODEL}  58.1     {name}" in out and "squeezenet1_0" in out
        assert main(["zoo", MODEL, "--pretrained", "--download"]) == 0
        out = capsys.readouterr().out
        assert f"{MODEL}: {weights_folder() / name}" in out
    assert main(["zoo", MODEL, "--pretrained", "--format", "json"]) == 0
    assert f'"local": "{weights_folder() / name}"' in capsys.readouterr().out
    assert main(["zoo", "lenet5", "--pretrained"]) == 2
    assert "lenet5: no published pretrained weights" in capsys.readouterr().err
    assert main(["zoo", "--download"]) == 2
    assert "--download needs --pretrained" in capsys.readouterr().err


def test_cli_pattern_matching_nothing_is_one_line(capsys):
    assert main(["zoo", "nothing*", "--pretrained", "--download"]) == 2
    assert "no model with published weights matches 'nothing*'" in capsys.readouterr().err
    assert main(["zoo", "--pretrained", "--download"]) == 2
    assert "needs PATTERN" in capsys.readouterr().err
