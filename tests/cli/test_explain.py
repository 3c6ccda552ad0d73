"""``cnnkit explain``: outputs on a tiny model and a saved checkpoint, one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from cnnkit.cli.main import main
from cnnkit.models import create_model
from cnnkit.train.checkpoint import save_checkpoint
from cnnkit.train.config import TrainConfig

TINY = ["tests.explain.tiny:tiny", "--input", "2,6,6", "--images", "2"]


def run(capsys, *argv):
    code = main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cam_json_on_a_module_callable(capsys):
    code, out, _ = run(capsys, "cam", *TINY, "--layer", "features.2", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["layer"] == "features.2"
    assert torch.tensor(data["results"][0]["maps"]).shape == (2, 6, 6)


def test_compare_table_lists_every_method_and_random(capsys):
    code, out, _ = run(capsys, "compare", *TINY, "--method", "gradcam,eigencam")
    assert code == 0
    assert "random" in out and "gradcam" in out and "eigencam" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--layer", "features.9"], "unknown layer 'features.9'; did you mean: features.3"),
        (["--layer", "head.1"], "layer head.1 (Linear) has no spatial output"),
        (["--method", "gradcamm"], "unknown CAM method 'gradcamm'; did you mean: gradcam"),
    ],
)
def test_bad_layer_or_method_is_one_line(capsys, argv, message):
    code, out, err = run(capsys, "cam", *TINY, *argv)
    assert code == 2 and out == ""
    assert err.startswith("cnnkit: error: ") and message in err and err.count("\n") == 1


def test_bad_image_files_are_named(capsys, tmp_path):
    from PIL import Image

    text = tmp_path / "notes.png"
    text.write_text("not an image")
    rgb = tmp_path / "colour.png"
    Image.new("RGB", (9, 9), (200, 10, 10)).save(rgb)
    code, _, err = run(capsys, "cam", *TINY, "--image", str(text))
    assert code == 2 and f"{text}: not an image" in err and err.count("\n") == 1
    code, _, err = run(capsys, "cam", *TINY, "--image", str(rgb))
    assert code == 2 and f"{rgb}: the image has 3 channel(s), the model takes 2" in err


def test_checkpoint_brings_its_test_images(capsys, tmp_path):
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10)
    path = tmp_path / "run" / "best.pt"
    path.parent.mkdir()
    save_checkpoint(
        path,
        {
            "model": model.state_dict(),
            "model_name": "lenet5",
            "model_kwargs": {"num_classes": 10},
            "config": TrainConfig.from_flat(model="lenet5", dataset="fashion_mnist").to_dict(),
            "epoch": 1,
            "classes": [f"c{i}" for i in range(10)],
            "mean": [0.286],
            "std": [0.353],
            "image_shape": [1, 28, 28],
        },
    )
    out_dir = tmp_path / "pictures"
    code, out, _ = run(capsys, "cam", str(path), "--images", "3", "--out", str(out_dir))
    assert code == 0, out
    # Fashion-MNIST's first test labels are 9, 2, 1 (ankle boot, pullover, trouser)
    assert [line.split()[2] for line in out.splitlines()[2:5]] == ["c9", "c2", "c1"]
    assert (out_dir / "cam-gradcam.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = run(capsys, "erf", str(path), "--images", "2", "--format", "json")
    data = json.loads(out)
    assert code == 0 and set(data) == {"trained", "init"}
    assert data["trained"]["theoretical_rf"] == data["init"]["theoretical_rf"]


def test_a_missing_checkpoint_is_named(capsys, tmp_path):
    missing = tmp_path / "run" / "best.pt"
    code, _, err = run(capsys, "cam", str(missing))
    assert code == 2 and err == f"cnnkit: error: {missing}: checkpoint not found\n"
