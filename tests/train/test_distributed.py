"""Data-parallel training without processes: batch slices, shards, merged metrics, refusals (E7).

The multi-process runs (weights against a 1-process run, ghost BatchNorm, killed ranks) are in
test_distributed_processes.py; here every rank is simulated in this process.
"""

from __future__ import annotations

import itertools
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.cli.main import main
from cnnkit.data import DeviceLoader, ImageDataset
from cnnkit.data import transforms as T
from cnnkit.errors import ConfigError, UnsupportedError
from cnnkit.train import TrainConfig, fit
from cnnkit.train.distributed import (
    Distributed,
    DistributedSettings,
    RankSlices,
    choose_backend,
    slice_bounds,
)
from cnnkit.train.metrics import MetricAccumulator
from tests.train.tiny import quadrant_dataset


def numbered_dataset(count: int) -> ImageDataset:
    """Image i holds i in its first two pixels (base 256): a batch says which images it holds."""
    images = torch.zeros(count, 1, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(count) % 256
    images[:, 0, 0, 1] = torch.arange(count) // 256
    labels = torch.arange(count) % 3
    return ImageDataset(images, labels, ["a", "b", "c"], "numbered", "train")


def image_numbers(images: torch.Tensor) -> list[int]:
    pixels = (images[:, 0, 0, :2] * 255).round().long()
    return (pixels[:, 0] + 256 * pixels[:, 1]).tolist()


@settings(max_examples=40, deadline=None)
@given(count=st.integers(1, 300), ranks=st.integers(1, 7), data=st.data())
def test_slice_bounds_tile_the_items_without_padding(count, ranks, data):
    rank = data.draw(st.integers(0, ranks - 1))
    bounds = [slice_bounds(count, r, ranks) for r in range(ranks)]
    assert bounds[0][0] == 0 and bounds[-1][1] == count
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [end - start for start, end in bounds]
    assert max(sizes) - min(sizes) <= 1
    assert sum(sizes) == count  # DistributedSampler pads instead (oracle below)
    assert bounds[rank][1] - bounds[rank][0] in (count // ranks, -(-count // ranks))


def test_distributed_sampler_pads_where_the_shards_do_not():
    from torch.utils.data import DistributedSampler

    padded = sum(len(list(DistributedSampler(range(10), 3, r, shuffle=False))) for r in range(3))
    assert padded == 12
    assert sum(end - start for start, end in (slice_bounds(10, r, 3) for r in range(3))) == 10


@settings(max_examples=25, deadline=None)
@given(
    count=st.integers(2, 90),
    batch=st.integers(2, 40),
    ranks=st.integers(2, 4),
    epoch=st.integers(0, 3),
    drop_last=st.booleans(),
)
def test_rank_slices_cover_every_image_once_per_epoch_and_rebuild_the_batch(
    count, batch, ranks, epoch, drop_last
):
    batch = max(batch, ranks)
    data = numbered_dataset(count)

    def loader():
        return DeviceLoader(data, batch, seed=5, drop_last=drop_last and batch <= count)

    whole = loader()
    whole.set_epoch(epoch)
    single = [image_numbers(images) for images, _ in whole]
    per_rank = []
    for rank in range(ranks):
        sliced = RankSlices(loader(), rank, ranks)
        sliced.set_epoch(epoch)
        per_rank.append([image_numbers(images) for images, _ in sliced])
        assert len(per_rank[-1]) == len(sliced)
    steps = len(per_rank[0])
    assert all(len(batches) == steps for batches in per_rank)  # every rank steps together
    for step in range(steps):  # the union over ranks, in rank order, is the 1-process batch
        assert [n for r in range(ranks) for n in per_rank[r][step]] == single[step]
    seen = [n for batches in per_rank for batch in batches for n in batch]
    assert len(seen) == len(set(seen))  # no image twice in an epoch
    left_out = [n for batch in single[steps:] for n in batch]  # only a batch < ranks is left out
    assert all(len(b) < ranks for b in single[steps:])
    if not drop_last:
        assert sorted(seen + left_out) == list(range(count))


def test_rank_slices_of_an_augmented_batch_are_the_single_process_augmentation():
    data = quadrant_dataset(64, seed=3)
    transform = T.Compose(
        [T.RandomCrop((12, 12), padding=2), T.RandomHorizontalFlip(), T.MixUp(0.4, 4)]
    )

    def loader():
        return DeviceLoader(data, 20, seed=9, transform=transform, mean=[0.3], std=[0.2])

    whole = loader()
    whole.set_epoch(2)
    expected = list(whole)
    slices = []
    for rank in range(3):
        sliced = RankSlices(loader(), rank, 3)
        sliced.set_epoch(2)
        slices.append(list(sliced))
    for step, (images, targets) in enumerate(expected):
        assert torch.equal(torch.cat([s[step][0] for s in slices]), images)
        assert torch.equal(torch.cat([s[step][1] for s in slices]), targets)


def test_uneven_slices_weigh_their_loss_to_the_global_mean():
    """``share`` times a slice's mean loss, averaged over ranks (what DDP does), is the mean."""
    data = numbered_dataset(23)
    losses = torch.rand(23, generator=torch.Generator().manual_seed(0))
    ranks, batch = 3, 10
    whole = DeviceLoader(data, batch, seed=1)
    whole.set_epoch(0)
    sliced = [RankSlices(DeviceLoader(data, batch, seed=1), r, ranks) for r in range(ranks)]
    iterators = [iter(s) for s in sliced]
    for images, _ in whole:
        expected = losses[image_numbers(images)].mean()
        averaged = 0.0
        for s, iterator in zip(sliced, iterators, strict=True):
            part, _ = next(iterator)
            averaged += s.share * losses[image_numbers(part)].mean() / ranks
        assert float(averaged) == pytest.approx(float(expected), rel=1e-6)


@settings(max_examples=20, deadline=None)
@given(count=st.integers(3, 60), ranks=st.integers(1, 3), hardest=st.integers(0, 5))
def test_merged_shard_metrics_equal_one_evaluation(count, ranks, hardest):
    generator = torch.Generator().manual_seed(count)
    logits = torch.randn(count, 6, generator=generator)
    labels = torch.randint(0, 6, (count,), generator=generator)
    whole = MetricAccumulator(6, hardest=hardest)
    whole.add(logits, labels)
    parts = []
    for rank in range(ranks):
        start, end = slice_bounds(count, rank, ranks)
        part = MetricAccumulator(6, hardest=hardest)
        for chunk in range(start, end, 4):  # batches of 4 within the shard
            part.add(logits[chunk : min(chunk + 4, end)], labels[chunk : min(chunk + 4, end)])
        parts.append(part)
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    got, want = merged.result(), whole.result()
    assert (got.count, got.top1, got.top5, got.confusion) == (
        want.count,
        want.top1,
        want.top5,
        want.confusion,
    )
    assert got.loss == pytest.approx(want.loss, rel=1e-12)
    assert [h.index for h in got.hardest] == [h.index for h in want.hardest]


def test_one_process_context_is_the_identity():
    alone = Distributed()
    loader = DeviceLoader(quadrant_dataset(8, seed=1), 4)
    data = quadrant_dataset(8, seed=1)
    assert alone.shard(loader) is loader and alone.eval_shard(data) is data
    assert alone.agree_to_stop(True) and not alone.agree_to_stop(False)
    assert alone.agree_on_clock(3.5) == 3.5 and alone.sum(1, 2.5) == [1, 2.5]
    assert alone.first_nonfinite(1.0) is None and alone.first_nonfinite(float("nan"))[0] == 0
    assert alone.decide_on_main(lambda: 7) == 7 and alone.describe(64, 2) is None


def test_backend_refusals_name_the_flag():
    cpu = torch.device("cpu")
    with pytest.raises(UnsupportedError, match="--dist-backend nccl: "):
        choose_backend(DistributedSettings(backend="nccl"), cpu, 2)
    with pytest.raises(UnsupportedError, match="--sync-bn: SyncBatchNorm needs CUDA"):
        choose_backend(DistributedSettings(sync_bn=True), cpu, 2)
    cores = os.cpu_count() or 1
    with pytest.raises(ConfigError, match=f"--nproc {cores + 1}: more processes than the"):
        choose_backend(DistributedSettings(), cpu, cores + 1)
    assert choose_backend(DistributedSettings(), cpu, 1) == "gloo"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--nproc", str((os.cpu_count() or 1) + 1)], "more processes than the"),
        (["--nproc", "2", "--dist-backend", "nccl"], "--dist-backend nccl: "),
        (["--nproc", "2", "--sync-bn"], "--sync-bn: SyncBatchNorm needs CUDA"),
        (["--nproc", "0"], "--nproc: must be >= 1"),
        (["--dist-timeout", "0"], "--dist-timeout: must be in"),
    ],
)
def test_cli_refusals_are_one_line_with_exit_2(argv, needle, capsys, tmp_path):
    code = main(["train", "--device", "cpu", "--out", str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("cnnkit: error: ") and needle in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_fit_with_nproc_outside_a_launcher_says_how_to_launch(tmp_path):
    config = TrainConfig.from_flat(nproc=2, device="cpu", out_dir=str(tmp_path / "run"))
    data = (quadrant_dataset(16, seed=1), quadrant_dataset(8, seed=2))
    with pytest.raises(ConfigError, match="--nproc 2: fit trains in the process that calls it"):
        fit(config, model="softmax_regression", data=data)
