"""`cnnkit finetune` and `cnnkit train --init-from`: the checkpoint's model, the group table,
one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest
import torch

from cnnkit.cli.main import main
from tests.cli.test_train import one_line_error
from tests.train.tiny import quadrant_dataset

FLAGS = [
    "--val-size", "0", "--batch-size", "32", "--epochs", "1", "--precision", "off",
    "--no-channels-last", "--device", "cpu", "--no-progress", "--no-tensorboard", "--no-plots",
    "--no-report", "--no-doctor",
]  # fmt: skip
AIRNET = ["--model", "airnet", "--model-kwargs", '{"widths": [8, 8, 8]}']


@pytest.fixture
def pretrained(tmp_path, monkeypatch, capsys):
    import cnnkit.data

    data = {"train": quadrant_dataset(96, seed=1), "test": quadrant_dataset(32, seed=2)}
    monkeypatch.setattr(cnnkit.data, "load_dataset", lambda name, split, data_dir=None: data[split])
    run = tmp_path / "pre"
    assert main(["train", *AIRNET, *FLAGS, "--out", str(run)]) == 0
    capsys.readouterr()
    return run


def test_finetune_takes_the_checkpoints_model_and_prints_the_group_table(
    pretrained, tmp_path, capsys
):
    out = tmp_path / "ft"
    argv = ["finetune", str(pretrained / "best.pt"), "--mode", "partial"]
    assert (
        main([*argv, "--unfreeze-from", "layer3", "--head-lr", "0.2", *FLAGS, "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "fine-tuning (partial): head fc" in printed
    rows = {line.split()[0]: line.split() for line in printed.splitlines() if line.startswith("  ")}
    assert rows["layer2"][3] == "frozen" and rows["layer3"][3] != "frozen"
    assert rows["fc"][3] == "0.2"
    config = json.loads((out / "config.json").read_text())
    model = config["model"]
    assert model["model"] == "airnet" and model["model_kwargs"] == {"widths": [8, 8, 8]}
    assert config["transfer"]["init_from"] == str(pretrained / "best.pt")
    assert config["transfer"]["finetune_mode"] == "partial"
    # the frozen stage is the checkpoint's, bit for bit
    before = torch.load(pretrained / "best.pt", weights_only=True)["model"]
    after = torch.load(out / "last.pt", weights_only=True)["model"]
    assert torch.equal(before["layer1.conv1.weight"], after["layer1.conv1.weight"])
    # and the same through cnnkit train --init-from; the run resumes with cnnkit train
    out2 = tmp_path / "ft2"
    argv = ["train", "--init-from", str(pretrained), "--finetune-mode", "features"]
    assert main([*argv, *FLAGS, "--out", str(out2)]) == 0
    assert "fine-tuning (features): head fc" in capsys.readouterr().out
    assert main(["train", "--resume", str(out2), "--epochs", "2", "--no-report"]) == 0
    assert f"resuming from epoch 1 of 2: {out2}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--unfreeze-from", "layer9"], "--unfreeze-from layer9: no such stage; the model's "
         "stages are whiten, layer1, layer2, layer3, fc"),
        (["--layer-decay", "0.5", "--head-lr", "0.1"], "give either --layer-decay or"),
        (["--mode", "full", "--unfreeze-from", "layer1"], "--unfreeze-from: only with"),
        (["--mode", "features", "--backbone-lr", "0.1"], "--backbone-lr: --finetune-mode features"),
        (["--resume", "x"], "cnnkit train --resume x"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_exit_2(pretrained, tmp_path, capsys, extra, needle):
    out = tmp_path / "bad"
    err = one_line_error(capsys, ["finetune", str(pretrained), *extra, *FLAGS, "--out", str(out)])
    assert needle in err
    assert not out.exists()


def test_files_that_are_not_checkpoints_are_one_line(tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    err = one_line_error(capsys, ["finetune", str(text), "--dataset", "fashion_mnist"])
    assert str(text) in err and "not a readable checkpoint" in err
    err = one_line_error(capsys, ["finetune", str(tmp_path / "none.pt")])
    assert "no such checkpoint file" in err
    plain = tmp_path / "plain.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, plain)
    err = one_line_error(capsys, ["finetune", str(plain)])
    assert "a plain state dict records no model; name it with --model" in err
    err = one_line_error(capsys, ["finetune", str(plain), "--model", "lenet5", *FLAGS])
    assert f"--init-from {plain}: missing key 'features.0.weight' for the model" in err


def test_a_checkpoint_of_code_is_fine_tuned_only_when_the_code_is_named(
    tmp_path, monkeypatch, capsys
):
    import cnnkit.data

    data = {"train": quadrant_dataset(96, seed=1), "test": quadrant_dataset(32, seed=2)}
    monkeypatch.setattr(cnnkit.data, "load_dataset", lambda name, split, data_dir=None: data[split])
    run = tmp_path / "code"
    assert main(["train", "--model", "tests.train.tiny:tiny_cnn", *FLAGS, "--out", str(run)]) == 0
    capsys.readouterr()
    err = one_line_error(capsys, ["finetune", str(run), *FLAGS, "--out", str(tmp_path / "x")])
    assert "name it yourself" in err and not (tmp_path / "x").exists()
    named = ["--model", "tests.train.tiny:tiny_cnn", "--mode", "features"]
    assert main(["finetune", str(run), *named, *FLAGS, "--out", str(tmp_path / "y")]) == 0
    assert "fine-tuning (features): head 6" in capsys.readouterr().out


def seeded_cnn(num_classes: int = 4, in_channels: int = 1) -> torch.nn.Module:
    """The tiny CNN with the same weights at every call (the global RNG left alone)."""
    from tests.train.tiny import tiny_cnn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return tiny_cnn(num_classes, in_channels)


def seeded_weights() -> dict[str, torch.Tensor]:
    return seeded_cnn().state_dict()


def test_code_that_builds_a_model_is_the_model_and_a_state_dict_needs_model(
    tmp_path, monkeypatch, capsys
):
    """`cnnkit finetune package.module:callable` without --model fine-tunes the model the code
    builds, from its weights (it used to build the default model and fail on a missing key)."""
    import cnnkit.data

    data = {"train": quadrant_dataset(96, seed=1), "test": quadrant_dataset(32, seed=2)}
    monkeypatch.setattr(cnnkit.data, "load_dataset", lambda name, split, data_dir=None: data[split])
    spec = "tests.cli.test_finetune:seeded_cnn"
    out = tmp_path / "code"
    assert main(["finetune", spec, "--mode", "features", *FLAGS, "--out", str(out)]) == 0
    assert f"init from {spec}" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["model"] == spec
    after = torch.load(out / "last.pt", weights_only=True)["model"]
    assert torch.equal(after["0.weight"], seeded_weights()["0.weight"])  # frozen, the code's
    assert not torch.equal(after["6.weight"], seeded_weights()["6.weight"])  # the head trained
    weights = "tests.cli.test_finetune:seeded_weights"
    err = one_line_error(capsys, ["finetune", weights, *FLAGS, "--out", str(tmp_path / "x")])
    assert f"--init-from {weights}: returns OrderedDict, which records no model" in err
    assert not (tmp_path / "x").exists()
    argv = ["train", "--init-from", weights, "--model", spec, *FLAGS, "--out", str(tmp_path / "y")]
    assert main(argv) == 0


PUBLISHED = "mobilenet_v3_small"  # a small published model that takes 12x12 images


@pytest.fixture
def published(tmp_path, monkeypatch):
    """Empty caches, the bands data for every dataset name, and the table's entry for
    PUBLISHED restored afterwards; yields a function that serves ``state`` from 127.0.0.1."""
    import dataclasses
    import hashlib
    import io

    import cnnkit.data
    from cnnkit.models.pretrained import PRETRAINED

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    grey = {"train": quadrant_dataset(64, seed=1), "test": quadrant_dataset(32, seed=2)}
    monkeypatch.setattr(cnnkit.data, "load_dataset", lambda name, split, data_dir=None: grey[split])
    saved = PRETRAINED.get(PUBLISHED)

    def publish(state, base_url):
        buffer = io.BytesIO()
        torch.save(state, buffer)
        data = buffer.getvalue()
        name = f"{PUBLISHED}-{hashlib.sha256(data).hexdigest()[:8]}.pth"
        entry = dataclasses.replace(saved, file=name, base_url=base_url)
        PRETRAINED.add(PUBLISHED, entry, override=True)
        return name, data

    yield publish
    PRETRAINED.add(PUBLISHED, saved, override=True)


def test_pretrained_starts_from_torchvisions_published_weights(published, tmp_path, capsys):
    """`--pretrained`: the published file, downloaded from a server on 127.0.0.1, checked and
    cached, is the run's start: the head re-initialised, the stem summed for grey images,
    every other tensor the file's, bit for bit (features mode: nothing else trains)."""
    from cnnkit.models import create_model
    from cnnkit.models.pretrained import IMAGENET_MEAN, weights_folder
    from tests.data.fakes import Served, http_server

    state = create_model(PUBLISHED).state_dict()
    served = Served()
    argv = ["--pretrained", "--model", PUBLISHED, "--mode", "features", *FLAGS]
    with http_server(served) as base:
        name, data = published(state, base)
        served.files[name] = data
        assert main(["finetune", *argv, "--out", str(tmp_path / "ft")]) == 0
    captured = capsys.readouterr()
    assert f"downloading {base}{name}" in captured.err
    assert f"init from torchvision's {name} ({weights_folder()})" in captured.out
    assert "head classifier.3 re-initialised for 4 classes" in captured.out
    assert "stem features.0.0 adapted from 3 to 1 input channels" in captured.out
    assert (weights_folder() / name).is_file() and len(served.requests) == 1
    after = torch.load(tmp_path / "ft" / "last.pt", weights_only=True)["model"]
    stem = "features.0.0.weight"
    assert torch.equal(after[stem], state[stem].sum(1, keepdim=True))
    assert not torch.equal(after["classifier.3.weight"][:4], state["classifier.3.weight"][:4])
    for key, value in after.items():
        if key != stem and not key.startswith("classifier.3."):
            assert torch.equal(value, state[key]), key
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert config["transfer"]["pretrained"] is True and config["transfer"]["init_from"] is None
    assert config["data"]["mean"] != list(IMAGENET_MEAN)  # grey: the data's own statistics
    # the server is gone: the cached file is used (cnnkit train --pretrained does the same)
    published(state, "http://127.0.0.1:9/models/")
    out = tmp_path / "again"
    assert main(["train", *argv[:3], *FLAGS, "--out", str(out)]) == 0
    assert "downloading" not in capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["transfer"]["finetune_mode"] is None


def test_pretrained_errors_are_one_line(published, tmp_path, capsys):
    from cnnkit.models import create_model

    published(create_model(PUBLISHED).state_dict(), "http://127.0.0.1:9/models/")  # no server
    out = tmp_path / "x"
    assert main(["finetune", "--pretrained", "--model", PUBLISHED, *FLAGS]) == 2
    progress, err = capsys.readouterr().err.splitlines()  # the attempt, then one line why
    assert progress.startswith("downloading http://127.0.0.1:9/models/")
    assert err.startswith(f"cnnkit: error: {PUBLISHED}: could not download pretrained weights")
    assert "without network, download" in err
    err = one_line_error(capsys, ["finetune", "--pretrained", *AIRNET, *FLAGS])
    assert err.startswith("cnnkit: error: --pretrained: airnet: no published pretrained weights")
    err = one_line_error(capsys, ["finetune", "--pretrained", *FLAGS, "--out", str(out)])
    assert "--pretrained: name the zoo model with --model" in err
    err = one_line_error(capsys, ["finetune", "x.pt", "--pretrained", "--model", PUBLISHED])
    assert "--pretrained: starts from torchvision's published weights; CHECKPOINT x.pt" in err
    err = one_line_error(capsys, ["train", "--pretrained", "--init-from", "x.pt"])
    assert "--pretrained: starts from torchvision's published weights; --init-from x.pt" in err
    err = one_line_error(capsys, ["finetune", *FLAGS])
    assert "CHECKPOINT: give the weights to start from, or --pretrained with --model" in err
    assert not out.exists()


def test_pretrained_in_python_normalises_rgb_images_as_imagenet(published, tmp_path, capsys):
    """fit with pretrained=True: RGB data keeps the stem and is normalised with ImageNet's
    mean and std, what torchvision's weights were trained with."""
    from cnnkit.data import ImageDataset
    from cnnkit.models import create_model
    from cnnkit.models.pretrained import IMAGENET_MEAN, IMAGENET_STD
    from cnnkit.train import TrainConfig, fit
    from tests.data.fakes import Served, http_server

    def rgb(dataset):
        images = dataset.images.repeat(1, 3, 1, 1)
        return ImageDataset(images, dataset.labels, dataset.classes, "rgb", dataset.split)

    state = create_model(PUBLISHED).state_dict()
    config = TrainConfig.from_flat(
        model=PUBLISHED, pretrained=True, finetune_mode="features", val_size=0, epochs=1,
        batch_size=32, precision="off", channels_last=False, device="cpu", progress=False,
        tensorboard=False, plots=False, out_dir=str(tmp_path / "rgb"),
    )  # fmt: skip
    served = Served()
    with http_server(served) as base:
        name, data = published(state, base)
        served.files[name] = data
        train, test = rgb(quadrant_dataset(64, seed=1)), rgb(quadrant_dataset(32, seed=2))
        result = fit(config, train_set=train, test_set=test)
    assert "adapted" not in capsys.readouterr().out
    assert result.config.data.mean == list(IMAGENET_MEAN)
    assert result.config.data.std == list(IMAGENET_STD)
    after = torch.load(tmp_path / "rgb" / "last.pt", weights_only=True)["model"]
    assert torch.equal(after["features.0.0.weight"], state["features.0.0.weight"])
