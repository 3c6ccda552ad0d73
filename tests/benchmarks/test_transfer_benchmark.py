"""benchmarks/transfer.py: the split-class protocol's subsets, and one tiny end-to-end run."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.data import ImageDataset
from tests.benchmarks.conftest import load_script

transfer = load_script("transfer")


def dataset(labels: list[int]) -> ImageDataset:
    images = torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 4, 4)
    names = [f"class {c}" for c in range(10)]
    return ImageDataset(images.clone(), torch.tensor(labels), names, "toy", "train")


@settings(max_examples=30, deadline=None)
@given(
    labels=st.lists(st.integers(0, 9), min_size=1, max_size=80),
    per_class=st.integers(1, 5),
    seed=st.integers(0, 100),
)
def test_subsets_hold_the_chosen_classes_relabelled_with_k_each(labels, per_class, seed):
    full = dataset(labels)
    target = (5, 6, 7, 8, 9)
    part = transfer.split_classes(full, target, per_class=per_class, seed=seed)
    assert part.classes == [f"class {c}" for c in target]
    for new, old in enumerate(target):
        chosen = part.images[part.labels == new, 0, 0, 0].long()
        assert len(chosen) == min(per_class, labels.count(old))
        # each image is one of that class in the full set (images are their index)
        assert all(labels[int(i)] == old for i in chosen)
    whole = transfer.split_classes(full, target)
    assert len(whole) == sum(label in target for label in labels)


@pytest.mark.slow
def test_tiny_end_to_end_writes_the_json_and_the_table(tmp_path, monkeypatch, capsys):
    import cnnkit.data
    from tests.train.tiny import quadrant_dataset

    def fake(name, split, data_dir=None):
        d = quadrant_dataset(200 if split == "train" else 80, seed=len(split))
        labels = torch.arange(len(d)) % 10  # every class present; accuracy is not the point
        names = [f"c{i}" for i in range(10)]
        return ImageDataset(d.images, labels, names, "fake", split)

    monkeypatch.setattr(cnnkit.data, "load_dataset", fake)
    out = tmp_path / "t.json"
    argv = ["--model", "tests.train.tiny:tiny_cnn", "--recipe", "softmax", "--sizes", "2,4"]
    argv += ["--source-epochs", "1", "--steps", "2", "--out", str(out)]
    assert transfer.main(argv) == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert {r["mode"] for r in rows} == {*transfer.MODES, transfer.PEER, transfer.PROBE}
    assert {r["labels_per_class"] for r in rows} == {2, 4}
    # the same budget for every mode of one size
    for size in (2, 4):
        assert (
            len({r["steps"] for r in rows if r["labels_per_class"] == size and "steps" in r}) == 1
        )
    assert "| 2 |" in capsys.readouterr().out
