"""torchvision's published ImageNet weights for the zoo's torchvision models: found, or fetched.

``create_model(name, pretrained=True)`` builds the model as torchvision does for its weights and
loads the file torchvision publishes for it (``IMAGENET1K_V1``, what torchvision's legacy
``pretrained=True`` loads) through the zoo's strict loader (:mod:`cnnkit.models.weights`, with
``torch.load(weights_only=True)``).

Where the file is looked for, in order: cnnkit's cache ``$XDG_CACHE_HOME/cnnkit/weights/``
(default ``~/.cache/cnnkit/weights/``), then torch.hub's ``<torch.hub.get_dir()>/checkpoints/``
(where torchvision itself downloads them, ``~/.cache/torch/hub/checkpoints/``), so a file
torchvision already fetched is reused. A file not found is downloaded from
``https://download.pytorch.org/models/<file>`` into cnnkit's cache (resumable, atomic:
:func:`cnnkit.data.download.download_file`).

Every file, found or downloaded, is checked against the hash its name carries, torch.hub's
convention (``check_hash``): the hex digits after the last ``-`` of ``resnet18-f37072fd.pth`` are
the start of the file's SHA-256. A file is hashed once per change (the digest is remembered with
the file's identity, :func:`cnnkit.data.cache.known_sha256`), so a cached load costs a ``stat``.
Without network the error is one line naming the URL that failed and the folder to put the file
in by hand.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from cnnkit._registry import Registry
from cnnkit.errors import ChecksumError, ConfigError, DownloadError

if TYPE_CHECKING:
    from torch import nn

TORCHVISION_BASE = "https://download.pytorch.org/models/"
# the normalisation every torchvision ImageNet weight was trained with (its weights' transforms)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,})\.[A-Za-z0-9]+$")


@dataclass(frozen=True)
class PublishedWeights:
    """One published weight file.

    Attributes:
        model: the zoo name the weights fit.
        file: file name as published; the hex digits after its last ``-`` start its SHA-256.
        top1: ImageNet-1k top-1 (percent) torchvision's weight table gives for the file.
        num_params: parameter count torchvision's table gives (the zoo model's must equal it).
        build: keyword arguments torchvision builds the model with for these weights.
        base_url: where the file is published (the URL is ``base_url + file``).
    """

    model: str
    file: str
    top1: float
    num_params: int
    build: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    base_url: str = TORCHVISION_BASE

    @property
    def url(self) -> str:
        return self.base_url + self.file

    @property
    def sha256_prefix(self) -> str:
        """The start of the file's SHA-256, read from its name (torch.hub's convention)."""
        match = _HASH_IN_NAME.search(self.file)
        if match is None:
            raise ConfigError(f"{self.file}: the name carries no hash (expected name-<hex>.pth)")
        return match.group(1)


PRETRAINED: Registry[PublishedWeights] = Registry("pretrained weights")

# File names, ImageNet-1k top-1 and parameter counts: torchvision 0.29's weight tables
# (torchvision/models/<family>.py, each model's ``IMAGENET1K_V1`` entry; acc@1 of its "_metrics").
_TABLE: tuple[tuple[str, str, float, int], ...] = (
    ("alexnet", "alexnet-owt-7be5be79.pth", 56.522, 61_100_840),
    ("convnext_tiny", "convnext_tiny-983f1562.pth", 82.52, 28_589_128),
    ("densenet121", "densenet121-a639ec97.pth", 74.434, 7_978_856),
    ("densenet169", "densenet169-b2777c0a.pth", 75.6, 14_149_480),
    ("efficientnet_b0", "efficientnet_b0_rwightman-7f5810bc.pth", 77.692, 5_288_548),
    ("efficientnet_b1", "efficientnet_b1_rwightman-bac287d4.pth", 78.642, 7_794_184),
    ("efficientnet_b2", "efficientnet_b2_rwightman-c35c1473.pth", 80.608, 9_109_994),
    ("efficientnet_b3", "efficientnet_b3_rwightman-b3899882.pth", 82.008, 12_233_232),
    ("efficientnet_b4", "efficientnet_b4_rwightman-23ab8bcd.pth", 83.384, 19_341_616),
    ("efficientnet_b5", "efficientnet_b5_lukemelas-1a07897c.pth", 83.444, 30_389_784),
    ("efficientnet_b6", "efficientnet_b6_lukemelas-24a108a5.pth", 84.008, 43_040_704),
    ("efficientnet_b7", "efficientnet_b7_lukemelas-c5b4e57e.pth", 84.122, 66_347_960),
    ("googlenet", "googlenet-1378be20.pth", 69.778, 6_624_904),
    ("mobilenet_v2", "mobilenet_v2-b0353104.pth", 71.878, 3_504_872),
    ("mobilenet_v3_large", "mobilenet_v3_large-8738ca79.pth", 74.042, 5_483_032),
    ("mobilenet_v3_small", "mobilenet_v3_small-047dcff4.pth", 67.668, 2_542_856),
    ("regnet_y_400mf", "regnet_y_400mf-c65dace8.pth", 74.046, 4_344_144),
    ("resnet18", "resnet18-f37072fd.pth", 69.758, 11_689_512),
    ("resnet34", "resnet34-b627a593.pth", 73.314, 21_797_672),
    ("resnet50", "resnet50-0676ba61.pth", 76.13, 25_557_032),
    ("resnet101", "resnet101-63fe2227.pth", 77.374, 44_549_160),
    ("resnet152", "resnet152-394f9c45.pth", 78.312, 60_192_808),
    ("resnext50_32x4d", "resnext50_32x4d-7cdf4587.pth", 77.618, 25_028_904),
    ("shufflenet_v2_x1_0", "shufflenetv2_x1-5666bf0f80.pth", 69.362, 2_278_604),
    ("squeezenet1_0", "squeezenet1_0-b66bff10.pth", 58.092, 1_248_424),
    ("vgg11", "vgg11-8a719046.pth", 69.02, 132_863_336),
    ("vgg11_bn", "vgg11_bn-6002323d.pth", 70.37, 132_868_840),
    ("vgg13", "vgg13-19584684.pth", 69.928, 133_047_848),
    ("vgg13_bn", "vgg13_bn-abd245e5.pth", 71.586, 133_053_736),
    ("vgg16", "vgg16-397923af.pth", 71.592, 138_357_544),
    ("vgg16_bn", "vgg16_bn-6c64b313.pth", 73.36, 138_365_992),
    ("vgg19", "vgg19-dcbb9e9d.pth", 72.376, 143_667_240),
    ("vgg19_bn", "vgg19_bn-c79401a0.pth", 74.218, 143_678_248),
    ("wide_resnet50_2", "wide_resnet50_2-95faca4d.pth", 78.468, 68_883_240),
)
# torchvision builds GoogLeNet with transform_input=True for its weights (ported from
# TensorFlow, they expect inputs rescaled from ImageNet normalisation to [-1, 1])
_BUILD: dict[str, dict[str, Any]] = {"googlenet": {"transform_input": True}}

for _name, _file, _top1, _params in _TABLE:
    PRETRAINED.add(
        _name,
        PublishedWeights(_name, _file, _top1, _params, MappingProxyType(_BUILD.get(_name, {}))),
    )


def published_weights(name: str) -> PublishedWeights:
    """The published weights of zoo model ``name``; one :class:`ConfigError` line when there
    are none (a zoo model torchvision does not publish weights for) or the name is unknown."""
    entry = PRETRAINED.find(name)
    if entry is not None:
        return entry
    from cnnkit.models._registry import MODELS

    if name in MODELS:
        raise ConfigError(
            f"{name}: no published pretrained weights (torchvision publishes ImageNet weights "
            f"for {len(PRETRAINED)} zoo models: `cnnkit zoo --pretrained` lists them)"
        )
    return PRETRAINED.get(name)  # unknown: the registry's error with close matches


def weights_folder() -> Path:
    """cnnkit's cache of weight files: ``$XDG_CACHE_HOME/cnnkit/weights``."""
    from cnnkit.data.sources import user_cache_dir

    return user_cache_dir() / "weights"


def hub_folder() -> Path:
    """torch.hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``), where torchvision
    downloads its weights."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def search_folders() -> list[Path]:
    """Where a weight file is looked for, in order (module docstring)."""
    return [weights_folder(), hub_folder()]


def cached_file(name: str) -> Path | None:
    """The file of ``name``'s published weights where one is present (not yet verified)."""
    entry = published_weights(name)
    return next((f / entry.file for f in search_folders() if (f / entry.file).is_file()), None)


def pretrained_file(
    name: str,
    *,
    download: bool = True,
    timeout: float = 30.0,
    report: Callable[[str], None] | None = None,
) -> Path:
    """The verified local file of ``name``'s published weights, downloaded when absent.

    Raises:
        ConfigError: ``name`` has no published weights.
        ChecksumError: a file (found or downloaded) whose SHA-256 does not start with the hash
            its name carries; it names the file and both digests (a downloaded one is removed).
        DownloadError: no file and no download (``download=False``, or the URL failed); the
            line names the URL and the folder to put the file in by hand.
    """
    from cnnkit.data.cache import known_sha256
    from cnnkit.data.download import Digest, download_file

    entry = published_weights(name)
    digest = Digest("sha256", entry.sha256_prefix, prefix=True)
    found = cached_file(name)
    if found is not None:
        try:
            got = known_sha256(found)
        except OSError as exc:
            raise DownloadError(f"{found}: cannot read ({exc.strerror or exc})") from None
        if not digest.matches(got):
            raise ChecksumError(
                f"{found}: sha256 {got} does not start with {entry.sha256_prefix}, the hash "
                f"its name carries (a truncated or altered file: delete it to download again)"
            )
        return found
    manual = (
        f"download {entry.url} elsewhere and put it into {weights_folder()} "
        f"(or torch.hub's {hub_folder()})"
    )
    if not download:
        raise DownloadError(f"{name}: pretrained weights {entry.file} not found; {manual}")
    try:
        return download_file(
            [entry.url], weights_folder() / entry.file, digest, timeout=timeout, report=report
        )
    except ChecksumError:
        raise
    except DownloadError as exc:
        reason = str(exc).removeprefix(f"could not download {entry.file}: ")
        raise DownloadError(
            f"{name}: could not download pretrained weights ({reason}); without network, {manual}"
        ) from None


def build_kwargs(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments to build ``name`` with for its published weights: ``kwargs`` over
    torchvision's (``build``). A different ``num_classes`` or ``in_channels`` is refused: the
    published head has 1000 ImageNet classes and the stem 3 RGB channels."""
    entry = published_weights(name)
    for key, published in (("num_classes", 1000), ("in_channels", 3)):
        value = kwargs.get(key)
        if value is not None and value != published:
            raise ConfigError(
                f"{name}: the pretrained weights have {key}={published}, not {value}; build "
                f"with pretrained=True and {key}={published}, then replace the head or stem "
                "(cnnkit finetune does)"
            )
    return {**entry.build, **kwargs}


def load_pretrained(
    model: nn.Module,
    name: str,
    *,
    download: bool = True,
    report: Callable[[str], None] | None = None,
) -> nn.Module:
    """Load ``name``'s published weights into ``model`` (strict: :func:`load_weights`)."""
    from cnnkit.models.weights import load_weights

    return load_weights(model, pretrained_file(name, download=download, report=report), name)


@dataclass(frozen=True)
class PretrainedStatus:
    """One row of ``cnnkit zoo --pretrained``: a published file and whether it is here."""

    model: str
    file: str
    url: str
    sha256_prefix: str
    top1: float
    local: str | None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def pretrained_status(pattern: str | None = None) -> list[PretrainedStatus]:
    """The published weights of the models ``pattern`` (fnmatch) names, and where each file is
    (``local``: a path, not verified here; ``None``: not downloaded)."""
    rows = []
    for name in PRETRAINED.names(pattern):
        entry = PRETRAINED.get(name)
        local = cached_file(name)
        rows.append(
            PretrainedStatus(
                name,
                entry.file,
                entry.url,
                entry.sha256_prefix,
                entry.top1,
                None if local is None else os.fspath(local),
            )
        )
    return rows
