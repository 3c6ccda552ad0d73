"""`predict`: real Fashion-MNIST test images written as PNG/JPEG get what `cnnkit eval` computes.

The oracle is the evaluation path on an image folder of the same files: the data layer's folder
reader, the device loader's normalisation and `run_evaluation` with the run's own TTA and
precision (its hardest-sample list, asked for every image, gives each image's predicted class and
probability), plus Pillow's own conversions and resizing written to disk. `cnnkit eval` itself
refuses the folder: its one class is not the checkpoint's ten.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnnkit.cli.main import main
from cnnkit.errors import ConfigError, DataError
from cnnkit.train.predict import predict, read_image
from tests.train.fashion_run import needs_fashion_mnist, trained_run

pytestmark = [needs_fashion_mnist, pytest.mark.slow]
COUNT = 12


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp())[0]


@pytest.fixture(scope="module")
def test_images():
    from cnnkit.data import load_dataset

    test = load_dataset("fashion_mnist", "test", download=False)
    return test.images[:COUNT, 0].numpy(), test.labels[:COUNT].tolist()


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, test_images):
    """<root>/test/c0/NN.png and NN.jpg: the first test images, lossless and lossy."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    folder = root / "test" / "c0"
    folder.mkdir(parents=True)
    pixels, _ = test_images
    for index, image in enumerate(pixels):
        Image.fromarray(image).save(folder / f"{index:02d}.png")
        Image.fromarray(image).save(folder / f"{index:02d}.jpg", quality=75)
    return root, sorted(folder.iterdir())


def _evaluated_folder(run_dir, root, count: int) -> tuple[dict, dict]:
    """The run's config and {index: HardSample} of evaluating every image of the folder."""
    from cnnkit.data import DeviceLoader, image_folder
    from cnnkit.runtime import resolve_precision
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.config import flatten_settings
    from cnnkit.train.evaluation import model_from_checkpoint, run_evaluation

    path = run_dir / "best.pt"
    saved = load_checkpoint(path)
    config, cpu = flatten_settings(saved["config"]), torch.device("cpu")
    model = model_from_checkpoint(saved, path, "model")
    if config["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    loader = DeviceLoader(
        image_folder(root, "test"),
        500,
        shuffle=False,
        drop_last=False,
        device=cpu,
        seed=0,
        transform=None,
        channels_last=config["channels_last"],
        mean=tuple(saved["mean"]),
        std=tuple(saved["std"]),
    )
    metrics = run_evaluation(
        model,
        loader,
        num_classes=len(saved["classes"]),
        dtype=resolve_precision(config["precision"], cpu),
        tta=config["tta"],
        hardest=count,
    )
    return config, {h.index: h for h in metrics.hardest}


def test_predict_equals_the_evaluation_of_the_same_png_and_jpeg_files(run_dir, image_folder):
    root, files = image_folder
    config, by_index = _evaluated_folder(run_dir, root, len(files))
    assert config["tta"] == 1  # the run's flip TTA, which predict must use as well
    predictions = predict(run_dir, files, top_k=3)
    assert [p.image for p in predictions] == [str(f) for f in files]
    for index, prediction in enumerate(predictions):
        assert prediction.top[0].index == by_index[index].predicted, files[index]
        assert prediction.probability == pytest.approx(by_index[index].confidence, abs=1e-6)
    # JPEG is lossy: its pixels differ from the PNG's, and so (slightly) do its probabilities
    jpeg, png = predictions[0], predictions[1]
    assert jpeg.image.endswith(".jpg") and png.image.endswith(".png")
    assert jpeg.probability != png.probability


def test_png_predictions_are_the_true_classes_for_most_images(run_dir, image_folder, test_images):
    _, files = image_folder
    _, labels = test_images
    pngs = [f for f in files if f.suffix == ".png"]
    predictions = predict(run_dir, pngs, top_k=1)
    correct = sum(p.top[0].index == label for p, label in zip(predictions, labels, strict=True))
    assert correct >= COUNT // 2  # 2,000 images, one epoch: far above chance (10%)


def test_top_k_are_sorted_probabilities_of_a_softmax_over_every_class(run_dir, image_folder):
    from cnnkit.data.sources import DATASETS

    _, files = image_folder
    (prediction,) = predict(run_dir, files[:1], top_k=50)  # more than the 10 classes
    probabilities = [c.probability for c in prediction.top]
    assert len(prediction.top) == 10
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    assert {c.name for c in prediction.top} == set(DATASETS.get("fashion_mnist").classes)


def test_a_colour_image_is_converted_to_the_run_s_grey_channel(run_dir, tmp_path, test_images):
    """Pillow's luma of R = G = B = v is v exactly, so the RGB copy predicts as the grey one."""
    from PIL import Image

    pixels, _ = test_images
    grey, colour = tmp_path / "grey.png", tmp_path / "colour.png"
    Image.fromarray(pixels[3]).save(grey)
    Image.fromarray(pixels[3]).convert("RGB").save(colour)
    assert Image.open(colour).mode == "RGB"
    a, b = predict(run_dir, [grey, colour])
    assert a.top == b.top


def test_a_16_bit_grey_png_is_scaled_to_8_bits_not_clipped(run_dir, tmp_path, test_images):
    from PIL import Image

    pixels, _ = test_images
    eight, sixteen = tmp_path / "eight.png", tmp_path / "sixteen.png"
    Image.fromarray(pixels[4]).save(eight)
    Image.fromarray(pixels[4].astype(np.uint16) * 257).save(sixteen)  # v * 65535 / 255
    assert Image.open(sixteen).mode.startswith("I")
    assert np.array_equal(read_image(sixteen, 1, (28, 28)), read_image(eight, 1, (28, 28)))
    a, b = predict(run_dir, [eight, sixteen])
    assert a.top == b.top


def test_a_larger_image_is_resized_bilinearly_as_pillow_does(run_dir, tmp_path, test_images):
    from PIL import Image

    pixels, _ = test_images
    large = Image.fromarray(pixels[5]).resize((56, 70), Image.Resampling.NEAREST)
    large.save(tmp_path / "large.png")
    large.resize((28, 28), Image.Resampling.BILINEAR).save(tmp_path / "resized.png")
    a, b = predict(run_dir, [tmp_path / "large.png", tmp_path / "resized.png"])
    assert a.top == b.top


def test_a_wrong_channel_count_that_cannot_be_converted_names_the_file(tmp_path):
    from PIL import Image

    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8)).save(path)
    with pytest.raises(
        DataError, match=r"cmyk\.jpg: a CMYK image has 4 channels; the model takes 2"
    ):
        read_image(path, 2, (8, 8))
    assert read_image(path, 4, (8, 8)).shape == (4, 8, 8)  # same count: taken as it is
    assert read_image(path, 3, (8, 8)).shape == (3, 8, 8)  # RGB: converted


def test_an_image_past_pillow_s_pixel_limit_is_refused_naming_the_file(tmp_path, monkeypatch):
    from PIL import Image

    path = tmp_path / "bomb.png"
    Image.new("L", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 4096 > 2 x 100: Pillow's error
    with pytest.raises(DataError, match=r"bomb\.png: refused, image too large"):
        read_image(path, 1, (28, 28))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.png", None, "missing.png: no such file"),
        ("notes.png", b"not an image at all", "notes.png: not an image"),
        ("cut.png", "truncated", "cut.png: cannot decode the image"),
    ],
)
def test_bad_image_files_are_one_line_errors_with_exit_2(
    run_dir, tmp_path, capsys, name, content, message
):
    from PIL import Image

    path = tmp_path / name
    if content == "truncated":
        Image.fromarray(np.arange(784, dtype=np.uint8).reshape(28, 28)).save(path)
        path.write_bytes(path.read_bytes()[:60])
    elif content is not None:
        path.write_bytes(content)
    before = sorted(p.name for p in run_dir.iterdir())
    assert main(["predict", str(run_dir), str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("cnnkit: error: ") and message in captured.err
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_a_folder_given_as_an_image_is_one_line(run_dir, tmp_path, capsys):
    assert main(["predict", str(run_dir), str(tmp_path)]) == 2
    assert f"{tmp_path}: is a folder, not an image" in capsys.readouterr().err


def test_one_path_is_one_image_not_a_sequence_of_characters(run_dir, image_folder):
    _, files = image_folder
    (single,) = predict(run_dir, str(files[1]), top_k=2)
    assert single == predict(run_dir, [files[1]], top_k=2)[0]


def test_top_k_must_be_positive(run_dir, image_folder):
    _, files = image_folder
    with pytest.raises(ConfigError, match="--top-k: must be a positive integer, got 0"):
        predict(run_dir, files[:1], top_k=0)


def test_predict_cli_prints_a_table_and_json_with_the_library_s_figures(
    run_dir, image_folder, capsys
):
    _, files = image_folder
    chosen = [str(f) for f in files[:3]]
    expected = predict(run_dir, chosen, top_k=2)
    assert main(["predict", str(run_dir), *chosen, "--top-k", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["image", "top-1", "top-2"]
    for line, prediction in zip(table[1:], expected, strict=True):
        assert line.startswith(prediction.image)
        first = prediction.top[0]
        assert f"{first.name} {100 * first.probability:.1f}%" in line
    assert main(["predict", str(run_dir), *chosen, "-k", "2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == [p.to_dict() for p in expected]
    assert data[0]["top"][0].keys() == {"index", "class", "probability"}


def test_predict_leaves_torch_s_grad_mode_and_threads_alone(run_dir, image_folder):
    _, files = image_folder
    threads = torch.get_num_threads()
    predict(run_dir, files[:2])
    assert torch.is_grad_enabled() and torch.get_num_threads() == threads


@pytest.mark.parametrize(
    ("mode", "suffix"),
    [
        ("1", ".png"),
        ("L", ".bmp"),
        ("LA", ".png"),
        ("P", ".gif"),
        ("RGB", ".webp"),
        ("RGBA", ".png"),
        ("CMYK", ".jpg"),
        ("I;16", ".png"),
        ("I", ".tif"),
        ("YCbCr", ".jpg"),
    ],
)
def test_every_common_pillow_mode_becomes_one_or_three_8_bit_channels(tmp_path, mode, suffix):
    from PIL import Image

    path = tmp_path / f"image{suffix}"
    Image.new(mode, (10, 6)).save(path)
    for channels in (1, 3):
        array = read_image(path, channels, (4, 5))
        assert array.dtype == np.uint8 and array.shape == (channels, 4, 5)


def test_a_floating_point_image_is_refused_naming_the_file(tmp_path):
    from PIL import Image

    path = tmp_path / "float.tif"
    Image.new("F", (4, 4)).save(path)
    with pytest.raises(DataError, match=r"float\.tif: 32-bit floating-point images"):
        read_image(path, 1, (4, 4))
