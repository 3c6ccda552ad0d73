"""The real Fashion-MNIST files (Debian's dataset-fashion-mnist) against the published facts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnkit.data import channel_stats, load_dataset, train_val_split
from cnnkit.data.mnist import FASHION_MNIST, VERIFIED_CONTENT

SYSTEM = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(
    not (SYSTEM / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (make install installs it)",
)


@pytest.fixture(scope="module")
def train():
    return load_dataset("fashion_mnist", "train", download=False)


def test_train_split_matches_the_published_facts(train):
    # reference-figures.md: 60000x28x28 uint8, first labels 9,0,0,3,0,2,7,2,5,5
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert torch.bincount(train.labels).tolist() == [6000] * 10  # balanced, per the README
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"


def test_mean_and_std_are_the_figures_seed_003_types(train):
    (mean,), (std,) = channel_stats(train)
    assert mean == pytest.approx(0.2860, abs=5e-5)
    assert std == pytest.approx(0.3530, abs=5e-5)


def test_files_verify_by_decompressed_content_though_their_gzip_differs():
    found = FASHION_MNIST.find_in(SYSTEM, "test")
    dataset, verified = FASHION_MNIST.read(found, "test")
    assert dataset.images.shape == (10000, 1, 28, 28)
    assert set(verified.values()) == {VERIFIED_CONTENT}


def test_split_003_equals_random_split_with_seed_42(train):
    train_part, val_part = train_val_split(train, 6000, seed=42)
    assert (len(train_part), len(val_part)) == (54000, 6000)
    oracle = torch.utils.data.random_split(
        range(60000), [54000, 6000], generator=torch.Generator().manual_seed(42)
    )
    assert torch.equal(val_part.labels, train.labels[oracle[1].indices])
    assert torch.equal(train_part.images[:100], train.images[oracle[0].indices[:100]])
