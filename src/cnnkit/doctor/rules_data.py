"""Rules on the data (evidence: ``data``): normalisation statistics, class balance, and
images shared between train and test.
"""

from __future__ import annotations

from collections.abc import Iterator

from cnnkit.doctor.checks import Hit, check
from cnnkit.doctor.context import Context

MEAN_TOLERANCE = 0.05  # pixel values in [0, 1]
STD_RATIO = 1.25
IMBALANCE = 2.0
NEAR_RMS = 0.02  # root-mean-square pixel difference, pixels in [0, 1]


@check(
    "normalisation-mismatch",
    severity="warning",
    evidence=("data",),
    source="001 常见误区 / 排错清单 (preprocessing differs from pre-training)",
    checks=f"the data's per-channel mean/std differ from the normalisation the model expects "
    f"(a checkpoint's) by more than {MEAN_TOLERANCE} in mean or {STD_RATIO}x in std",
    fix="normalise with the statistics the weights were trained with, or fine-tune on the "
    "new statistics",
)
def normalisation_mismatch(ctx: Context) -> Iterator[Hit]:
    from cnnkit.data import channel_stats

    data = ctx.data
    assert data is not None
    if data.mean is None or data.std is None:
        return
    mean, std = channel_stats(data.train)
    for channel, (m, s, em, es) in enumerate(zip(mean, std, data.mean, data.std, strict=False)):
        ratio = max(s / es, es / s) if s > 0 and es > 0 else float("inf")
        if abs(m - em) > MEAN_TOLERANCE or ratio > STD_RATIO:
            yield Hit(
                "mean",
                f"channel {channel} of {data.train.name} has mean {m:.4f} and std {s:.4f}; "
                f"the model expects {em:.4f} and {es:.4f}",
            )
            return


@check(
    "class-imbalance",
    severity="warning",
    evidence=("data",),
    source="001 排错清单 (one class poor: check its sample count, weighted loss)",
    checks=f"the most frequent class has {IMBALANCE:g}x or more the images of the rarest, and "
    "the config sets no class weights",
    fix="set class_weights (inverse frequency) or resample the rare classes",
)
def class_imbalance(ctx: Context) -> Iterator[Hit]:
    import torch

    data = ctx.data
    assert data is not None
    if ctx.config is not None and ctx.config.optimisation.class_weights is not None:
        return
    counts = torch.bincount(data.train.labels, minlength=len(data.train.classes))
    rare, common = int(counts.argmin()), int(counts.argmax())
    low, high = int(counts[rare]), int(counts[common])
    if low == 0 or high / low >= IMBALANCE:
        yield Hit(
            data.train.name,
            f"class {data.train.classes[common]!r} has {high} images, "
            f"{data.train.classes[rare]!r} {low}: the loss is dominated by the common classes",
        )


@check(
    "train-test-overlap",
    severity="warning",
    evidence=("data",),
    source="001 落地建议 (validate honestly); measured on Fashion-MNIST in docs/doctor.md",
    checks=f"test images identical to a training image (by hash), and near-duplicates "
    f"(RMS difference below {NEAR_RMS}, pixels in [0, 1]) as info",
    fix="remove the shared images from the test set (or from train) before reporting accuracy",
)
def train_test_overlap(ctx: Context) -> Iterator[Hit]:
    data = ctx.data
    assert data is not None
    if data.test is None:
        return
    identical, near = overlap(data.train.images, data.test.images, NEAR_RMS)
    if identical:
        yield Hit(
            data.test.name,
            f"{len(identical)} test images are identical to a training image (first: test "
            f"{identical[0][0]} = train {identical[0][1]}): test accuracy overstates",
        )
    if near:
        yield Hit(
            data.test.name,
            f"{len(near)} test images are within {NEAR_RMS} RMS of a training image (first: "
            f"test {near[0][0]} ~ train {near[0][1]}, {near[0][2]:.4f})",
            severity="info",
        )


def overlap(
    train: object, test: object, threshold: float, chunk: int = 1024
) -> tuple[list[tuple[int, int]], list[tuple[int, int, float]]]:
    """Pairs (test index, train index) of identical images (SHA-1 of the bytes) and of
    near-duplicates: RMS(test - train) < threshold with pixels scaled to [0, 1].

    Cheap distance: 4x4 average pooling can only lower the RMS of a difference
    (mean((avg d)^2) <= mean(d^2), Jensen), so pairs whose pooled RMS is below the threshold
    are the only candidates; each candidate is then measured on the full images.
    """
    import hashlib

    import torch
    from torch.nn import functional as F

    train_images: torch.Tensor = train  # type: ignore[assignment]  # the data check ran first: both are tensors here
    test_images: torch.Tensor = test  # type: ignore[assignment]  # the data check ran first: both are tensors here
    hashes: dict[bytes, int] = {}
    for i, image in enumerate(train_images):
        hashes.setdefault(hashlib.sha1(image.numpy().tobytes()).digest(), i)
    identical = []
    for j, image in enumerate(test_images):
        found = hashes.get(hashlib.sha1(image.numpy().tobytes()).digest())
        if found is not None:
            identical.append((j, found))
    if train_images.shape[1:] != test_images.shape[1:]:
        return identical, []
    same = {j for j, _ in identical}

    def pooled(images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255
        if min(x.shape[-2:]) >= 8:
            x = F.avg_pool2d(x, 4, ceil_mode=True)
        return x.flatten(1)

    small_train = pooled(train_images)
    dims = small_train.shape[1]
    near = []
    for start in range(0, len(test_images), chunk):
        small_test = pooled(test_images[start : start + chunk])
        squared = torch.cdist(small_test, small_train).pow(2) / dims
        rows, cols = torch.nonzero(squared < threshold**2, as_tuple=True)
        candidates: dict[int, list[int]] = {}
        for k, i in zip(rows.tolist(), cols.tolist(), strict=True):
            candidates.setdefault(start + k, []).append(i)
        for j, indices in sorted(candidates.items()):
            if j in same:
                continue
            a = test_images[j].float() / 255
            b = train_images[indices].float() / 255
            diffs = (b - a).flatten(1).pow(2).mean(1).sqrt()
            rms, best = float(diffs.min()), indices[int(diffs.argmin())]
            if rms < threshold:
                near.append((j, best, rms))
    return identical, near
