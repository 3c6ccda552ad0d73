"""Data and config rules: each fires on a defect and not on its twin."""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.data import ImageDataset, channel_stats
from cnnkit.doctor import DataEvidence, examine
from cnnkit.doctor.rules_data import overlap
from cnnkit.train.config import TrainConfig
from tests.doctor.defects import conv_bn


def dataset(counts: list[int], seed: int = 0, name: str = "toy") -> ImageDataset:
    generator = torch.Generator().manual_seed(seed)
    n = sum(counts)
    images = torch.randint(0, 256, (n, 1, 8, 8), generator=generator, dtype=torch.uint8)
    labels = torch.cat([torch.full((c,), k, dtype=torch.int64) for k, c in enumerate(counts)])
    return ImageDataset(images, labels, [f"c{k}" for k in range(len(counts))], name)


def run(rule: str, model: nn.Module | None = None, **options):  # type: ignore[no-untyped-def]
    model = model if model is not None else nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU())
    report = examine(model, (1, 8, 8), rules=[rule], **options)
    assert report.checked == (rule,)
    return [(f.where, f.severity) for f in report.findings]


def test_bn_small_batch() -> None:
    model = conv_bn(False)
    found = examine(
        model, (3, 8, 8), config=TrainConfig.from_flat(batch_size=4), rules=["bn-small-batch"]
    )
    assert [f.where for f in found.findings] == ["1"]
    twin = examine(
        model, (3, 8, 8), config=TrainConfig.from_flat(batch_size=8), rules=["bn-small-batch"]
    )
    assert twin.findings == ()


def test_no_augmentation() -> None:
    assert run("no-augmentation", config=TrainConfig.from_flat(flip=False)) == [("flip", "warning")]
    assert run("no-augmentation", config=TrainConfig.from_flat(flip=False, crop_padding=2)) == []


def test_lr_warmup_missing() -> None:
    deep = nn.Sequential(nn.Flatten(), *[nn.Sequential(nn.Linear(64, 64), nn.ReLU())] * 1)
    deep = nn.Sequential(
        nn.Flatten(), *[m for _ in range(12) for m in (nn.Linear(64, 64), nn.ReLU())]
    )
    config = TrainConfig.from_flat(lr=0.1, warmup=0.0)
    assert run("lr-warmup-missing", deep, config=config) == [("warmup", "warning")]
    assert run("lr-warmup-missing", deep, config=TrainConfig.from_flat(lr=0.1, warmup=0.05)) == []
    assert run("lr-warmup-missing", deep, config=TrainConfig.from_flat(lr=0.01, warmup=0.0)) == []
    normed = nn.Sequential(deep, nn.LayerNorm(64))
    assert run("lr-warmup-missing", normed, config=config) == []


def test_normalisation_mismatch() -> None:
    train = dataset([50, 50])
    mean, std = channel_stats(train)
    data = DataEvidence(train, mean=(0.1,), std=std)
    assert run("normalisation-mismatch", data=data) == [("mean", "warning")]
    assert run("normalisation-mismatch", data=DataEvidence(train, mean=mean, std=std)) == []


def test_class_imbalance() -> None:
    assert run("class-imbalance", data=dataset([90, 10])) == [("toy", "warning")]
    assert run("class-imbalance", data=dataset([55, 45])) == []
    weighted = TrainConfig.from_flat(class_weights=[1.0, 9.0])
    assert run("class-imbalance", data=dataset([90, 10]), config=weighted) == []


def test_train_test_overlap_identical_and_near() -> None:
    train = dataset([40, 40], seed=1)
    test_images = dataset([10, 10], seed=2).images.clone()
    test_images[3] = train.images[7]  # identical
    near = train.images[11].clone().to(torch.int16)
    near[0, 0, :4] += 3  # 4 pixels off by 3/255: RMS 3/255 * sqrt(4/64) = 0.0029
    test_images[5] = near.clamp(0, 255).to(torch.uint8)
    test = ImageDataset(test_images, dataset([10, 10]).labels, ["c0", "c1"], "toy-test")
    found = run("train-test-overlap", data=DataEvidence(train, test))
    assert found == [("toy-test", "warning"), ("toy-test", "info")]
    identical, close = overlap(train.images, test.images, 0.02)
    assert identical == [(3, 7)]
    assert [(j, i) for j, i, _ in close] == [(5, 11)]
    assert abs(close[0][2] - (3 / 255) * 0.25) < 1e-6
    twin = ImageDataset(dataset([10, 10], seed=2).images, test.labels, ["c0", "c1"], "toy-test")
    assert run("train-test-overlap", data=DataEvidence(train, twin)) == []


def test_overlap_matches_brute_force() -> None:
    # The oracle: every pair's RMS computed directly.
    train = dataset([30, 30], seed=3).images
    test = train[:10].clone().to(torch.int16)
    test[:, :, :, :2] += torch.arange(10).view(10, 1, 1, 1)  # growing perturbations
    test = test.clamp(0, 255).to(torch.uint8)
    _, close = overlap(train, test, 0.02)
    a = test.float().div(255).flatten(1)
    b = train.float().div(255).flatten(1)
    rms = ((a[:, None] - b[None]) ** 2).mean(-1).sqrt()
    expected = [(j, int(rms[j].argmin())) for j in range(10) if 0 < rms[j].min() < 0.02]
    assert [(j, i) for j, i, _ in close] == expected


def test_data_rules_do_not_run_without_data() -> None:
    report = examine(nn.Conv2d(1, 8, 3), (1, 8, 8))
    assert "class-imbalance" not in report.checked and "no-augmentation" not in report.checked


def test_training_memory(monkeypatch) -> None:
    import cnnkit.doctor.rules_config as rules_config
    from cnnkit.analysis import summarize

    model = nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.ReLU())
    # The oracle: seed 000's estimate as cnnkit summary computes it, per sample, x batch.
    per_sample = summarize(model, (1, 32, 32)).total.training_activation_bytes
    params = 4 * (64 * 9 + 64)  # float32 weights and biases
    need = 256 * per_sample + 3 * params  # SGD: weight, gradient, momentum
    monkeypatch.setattr(rules_config, "device_memory_bytes", lambda device: int(need / 0.8) - 1)
    config = TrainConfig.from_flat(batch_size=256)
    report = examine(model, (1, 32, 32), config=config, rules=["training-memory"])
    assert [f.where for f in report.findings] == ["batch_size"]
    monkeypatch.setattr(rules_config, "device_memory_bytes", lambda device: int(need / 0.8) + 1)
    assert examine(model, (1, 32, 32), config=config, rules=["training-memory"]).findings == ()


def test_device_memory_is_this_machines() -> None:
    import os

    from cnnkit.doctor.rules_config import device_memory_bytes

    assert device_memory_bytes("cpu") == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
