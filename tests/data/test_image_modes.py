"""Every Pillow mode becomes uint8 by the documented conversion (cnnkit.data.folder): 16-bit
greyscale is scaled (65535 -> 255), never clipped to white; and the class lists of the split
folders must agree, or test images of an unseen class would be scored as another class."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp
from PIL import Image

from cnnkit.data import image_folder, load_dataset
from cnnkit.errors import DataError
from tests.data.hostile import cli_refuses, disk_state


def _one_image_folder(root, image: Image.Image, name: str = "a.png"):
    (root / "only").mkdir(parents=True, exist_ok=True)
    image.save(root / "only" / name)
    return image_folder(root)


@settings(max_examples=15)
@given(values=hnp.arrays(np.uint16, (3, 5)))
def test_sixteen_bit_greyscale_png_is_scaled_not_clipped(tmp_path_factory, values):
    root = tmp_path_factory.mktemp("grey16")
    dataset = _one_image_folder(root, Image.fromarray(values))
    assert Image.open(root / "only" / "a.png").mode == "I;16"  # Pillow's 16-bit greyscale
    expected = np.round(values.astype(np.float64) / 257).astype(np.uint8)  # 65535 / 255 = 257
    assert dataset.images.shape == (1, 1, 3, 5)
    np.testing.assert_array_equal(dataset.images[0, 0].numpy(), expected)


def test_sixteen_bit_extremes_and_a_mid_grey(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], np.uint16)
    dataset = _one_image_folder(tmp_path, Image.fromarray(values))
    assert dataset.images[0, 0, 0].tolist() == [0, 1, 128, 255]


def test_thirty_two_bit_integer_mode_is_read_as_sixteen_bit_clipped(tmp_path):
    values = np.array([[-5, 0, 257, 65535, 70000]], np.int32)
    dataset = _one_image_folder(tmp_path, Image.fromarray(values, "I"), "a.tif")
    assert dataset.images[0, 0, 0].tolist() == [0, 0, 1, 255, 255]


def test_float_mode_is_scaled_from_zero_one(tmp_path):
    values = np.array([[-1.0, 0.0, 0.5, 1.0, 3.0, np.nan]], np.float32)
    dataset = _one_image_folder(tmp_path, Image.fromarray(values, "F"), "a.tif")
    assert dataset.images[0, 0, 0].tolist() == [0, 0, 128, 255, 255, 0]


def test_grey_with_alpha_keeps_the_grey_level(tmp_path):
    pixels = np.array([[[10, 255], [200, 0]]], np.uint8)
    dataset = _one_image_folder(tmp_path, Image.fromarray(pixels, "LA"))
    assert dataset.images.shape == (1, 1, 1, 2)
    assert dataset.images[0, 0, 0].tolist() == [10, 200]


@pytest.mark.parametrize(
    ("mode", "name"), [("RGBA", "a.png"), ("P", "a.png"), ("CMYK", "a.jpg"), ("1", "a.png")]
)
def test_other_modes_use_pillows_conversion(tmp_path, mode, name):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (4, 6, 3), np.uint8))
    image = rgb.convert(mode)
    image.save(tmp_path / name)
    with Image.open(tmp_path / name) as reread:  # the oracle: Pillow's own conversion
        target = "L" if mode == "1" else "RGB"
        expected = np.asarray(reread.convert(target))
    dataset = _one_image_folder(tmp_path / "tree", image, name)
    got = dataset.images[0].numpy()
    got = got[0] if mode == "1" else got.transpose(1, 2, 0)
    np.testing.assert_array_equal(got, expected)


def _class_tree(root, classes):
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((3, 3), np.uint8)).save(root / name / "0.png")


def test_train_and_test_class_lists_must_match_naming_the_classes(tmp_path, capsys):
    _class_tree(tmp_path / "train", ["cat", "dog", "fox"])
    _class_tree(tmp_path / "test", ["cat", "fox", "owl"])
    with pytest.raises(DataError) as info:
        load_dataset(f"folder:{tmp_path}", "test")
    message = str(info.value)
    assert "only in test: owl" in message and "only in train: dog" in message
    assert "\n" not in message
    before = disk_state(tmp_path)
    cli_refuses(capsys, ["data", "info", f"folder:{tmp_path}"], "the class folders of",
                "only in train: dog", "only in test: owl")  # fmt: skip
    assert disk_state(tmp_path) == before


def test_a_val_split_missing_a_class_is_refused_too(tmp_path):
    _class_tree(tmp_path / "train", ["cat", "dog"])
    _class_tree(tmp_path / "val", ["cat"])
    with pytest.raises(DataError, match="only in train: dog"):
        load_dataset(f"folder:{tmp_path}", "train")


def test_matching_class_lists_load_with_the_same_labels(tmp_path):
    _class_tree(tmp_path / "train", ["cat", "dog"])
    _class_tree(tmp_path / "test", ["cat", "dog"])
    train, test = (load_dataset(f"folder:{tmp_path}", s) for s in ("train", "test"))
    assert train.classes == test.classes == ["cat", "dog"]
