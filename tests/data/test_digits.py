"""scikit-learn's digits as a source: checked against sklearn's own arrays, the fixed split,
the upsampling against a bilinear written out here, and the errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from cnnkit.cli.main import main
from cnnkit.data import dataset_info, load_dataset
from cnnkit.data import digits as digits_module
from cnnkit.data.digits import held_out_mask
from cnnkit.errors import ChecksumError, DataError

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def sklearn_digits():
    bunch = sklearn_datasets.load_digits()
    return bunch.images, bunch.target


def _bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize (edge clamped), written from its definition."""
    n = image.shape[0]
    coords = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, None)
    low = np.floor(coords).astype(int)
    high = np.minimum(low + 1, n - 1)
    frac = coords - low
    rows = image[low] * (1 - frac)[:, None] + image[high] * frac[:, None]
    return rows[:, low] * (1 - frac)[None, :] + rows[:, high] * frac[None, :]


def test_the_8x8_source_is_sklearns_images_scaled_to_0_255_in_a_stratified_split(sklearn_digits):
    images, target = sklearn_digits
    train = load_dataset("digits_8x8", "train")
    test = load_dataset("digits_8x8", "test")
    assert (len(train), len(test)) == (1438, 359)
    assert train.image_shape == test.image_shape == (1, 8, 8)
    assert train.images.dtype == torch.uint8 and train.classes == [str(d) for d in range(10)]
    mask = held_out_mask(target)
    expected = np.floor(images * 255 / 16 + 0.5)  # round(v * 255 / 16), halves up
    np.testing.assert_array_equal(test.images[:, 0].numpy(), expected[mask])
    np.testing.assert_array_equal(train.images[:, 0].numpy(), expected[~mask])
    np.testing.assert_array_equal(test.labels.numpy(), target[mask])
    np.testing.assert_array_equal(train.labels.numpy(), target[~mask])
    assert int(train.images.max()) == 255 and int(train.images.min()) == 0
    # stratified: each class 20% in test, to the nearest image
    for label in range(10):
        count = int((target == label).sum())
        assert int((test.labels == label).sum()) == round(0.2 * count)


def test_the_split_is_fixed_by_its_seed(sklearn_digits):
    _, target = sklearn_digits
    assert np.array_equal(held_out_mask(target), held_out_mask(target))
    assert not np.array_equal(held_out_mask(target), held_out_mask(target, seed=1))
    assert held_out_mask(target, seed=1).sum() == held_out_mask(target).sum()


def test_the_default_source_is_upsampled_to_28x28_bilinearly(sklearn_digits):
    images, target = sklearn_digits
    test = load_dataset("digits", "test")
    assert test.image_shape == (1, 28, 28) and len(test) == 359
    scaled = np.floor(images[held_out_mask(target)] * 255 / 16 + 0.5)
    expected = np.stack([_bilinear(image, 28) for image in scaled])
    got = test.images[:, 0].numpy().astype(np.float64)
    # rounded to the nearest integer; float32 in cnnkit, float64 here: the many values that
    # lie on a .5 boundary (weights are multiples of 1/14) may round either way
    assert np.abs(got - expected).max() <= 0.5 + 1e-4
    np.testing.assert_array_equal(test.labels.numpy(), target[held_out_mask(target)])


def test_info_and_fetch_find_the_bundled_file(capsys):
    info = dataset_info("digits")
    assert info.location.endswith("sklearn/datasets/data")
    assert [split.count for split in info.splits] == [1438, 359]
    assert main(["data", "info", "digits_8x8"]) == 0
    out = capsys.readouterr().out
    assert "digits.csv.gz" in out and "1x8x8" in out and "1,438" in out
    assert main(["data", "fetch", "digits"]) == 0
    assert "downloaded 0 file(s)" in capsys.readouterr().out


def test_without_scikit_learn_the_error_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import raises ImportError
    with pytest.raises(DataError, match=r"digits: needs scikit-learn, .*pip install"):
        load_dataset("digits")
    assert main(["data", "info", "digits"]) == 2
    err = capsys.readouterr().err
    assert "needs scikit-learn" in err and err.count("\n") == 1


def test_a_changed_copy_is_refused(monkeypatch, sklearn_digits):
    images, target = sklearn_digits
    changed = images.copy()
    changed[0, 0, 0] = 16 - changed[0, 0, 0]

    class Bunch:
        pass

    bunch = Bunch()
    bunch.images, bunch.target = changed, target
    monkeypatch.setattr(sklearn_datasets, "load_digits", lambda: bunch)
    with pytest.raises(ChecksumError, match="digits: sha256"):
        load_dataset("digits_8x8", "test")
    bunch.images = changed + 0.5
    with pytest.raises(DataError, match="not counts 0-16"):
        digits_module.digits_arrays()
