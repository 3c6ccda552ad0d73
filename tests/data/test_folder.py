"""ImageFolder trees of generated PNGs read with Pillow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.data import image_folder, load_dataset
from cnnkit.errors import ConfigError, DataError


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _tree(root, mode="RGB", size=(5, 4), per_class=2, seed=0):
    """{class: [arrays]} written as <root>/<class>/<i>.png (classes deliberately unsorted)."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    made = {}
    for name in ["zebra", "apple", "mango"]:
        made[name] = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(per_class)]
        for index, array in enumerate(made[name]):
            _save(root / name / f"{index}.png", array)
    return made


def test_rgb_tree_classes_sorted_labels_and_pixels(tmp_path):
    made = _tree(tmp_path)
    dataset = image_folder(tmp_path)
    assert dataset.classes == ["apple", "mango", "zebra"]
    assert dataset.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert dataset.images.shape == (6, 3, 4, 5) and dataset.images.dtype == torch.uint8
    expected = np.stack([a.transpose(2, 0, 1) for c in dataset.classes for a in made[c]])
    np.testing.assert_array_equal(dataset.images.numpy(), expected)


def test_greyscale_tree_has_one_channel(tmp_path):
    made = _tree(tmp_path, mode="L")
    dataset = load_dataset(f"folder:{tmp_path}")
    assert dataset.images.shape == (6, 1, 4, 5)
    np.testing.assert_array_equal(dataset.images[0, 0].numpy(), made["apple"][0])


def test_mixed_grey_and_colour_become_rgb(tmp_path):
    _tree(tmp_path, mode="L")
    grey = np.full((4, 5), 77, np.uint8)
    _save(tmp_path / "apple" / "9.png", np.stack([grey] * 3, axis=-1))
    dataset = image_folder(tmp_path)
    assert dataset.images.shape[1] == 3
    assert torch.all(dataset.images[2] == 77)  # apple/9.png sorts last in its class


def test_split_subfolders(tmp_path):
    _tree(tmp_path / "train")
    _tree(tmp_path / "val", per_class=1)
    assert len(load_dataset(f"folder:{tmp_path}", "val")) == 3
    assert len(load_dataset(f"folder:{tmp_path}", "train")) == 6
    with pytest.raises(DataError, match="no 'test' sub-folder"):
        load_dataset(f"folder:{tmp_path}", "test")


def test_different_sizes_name_the_file_unless_resized(tmp_path):
    _tree(tmp_path)
    _save(tmp_path / "mango" / "odd.png", np.zeros((7, 9, 3), np.uint8))
    with pytest.raises(DataError) as info:
        image_folder(tmp_path)
    assert "odd.png" in str(info.value) and "9x7" in str(info.value)
    resized = image_folder(tmp_path, size=(8, 6))
    assert resized.images.shape == (7, 3, 8, 6)


def test_resize_of_a_constant_image_keeps_its_value(tmp_path):
    _save(tmp_path / "one" / "a.png", np.full((10, 10), 200, np.uint8))
    assert torch.all(image_folder(tmp_path, size=4).images == 200)


def test_unreadable_image_is_named(tmp_path):
    _tree(tmp_path)
    (tmp_path / "apple" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"broken\.png: cannot read image"):
        image_folder(tmp_path)


def test_empty_class_folder_and_missing_root(tmp_path):
    _tree(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(DataError, match="empty: class folder holds no images"):
        image_folder(tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        image_folder(tmp_path / "nope")
    with pytest.raises(ConfigError, match="size"):
        image_folder(tmp_path, size=0)
