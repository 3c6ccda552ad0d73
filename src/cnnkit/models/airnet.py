"""Model family: airnet, an airbench-style network that trains to high accuracy in minutes on CPU.

Layout (for a 1x28x28 input, default widths 32-64-128, about 0.29 M parameters)::

    whiten   frozen 3x3 conv, 2*C*9 channels: +/- the patch-covariance eigenvectors (PCA whitening)
    GELU
    layer1   conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU      (32 channels)
    layer2   same                                                           (64 channels)
    layer3   same                                                           (128 channels)
             (``depth=3``: a third conv3x3 -> BN per group, added to the first block's output)
    pool     global max pool
    fc       linear, no bias, logits multiplied by ``logit_scale``

The design follows Keller Jordan's airbench (CIFAR-10 in seconds on a GPU): a whitening layer
initialised from the data so the first trainable conv sees decorrelated inputs, partial identity
(Dirac) initialisation of every conv so the untrained network already passes its input through,
BatchNorm with a frozen scale, and a down-scaled output layer. The trainer calls
:func:`init_whitening` with a batch of training images before the first step.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from cnnkit.errors import ConfigError, ShapeError
from cnnkit.models._registry import ModelInfo, register_model


class ConvGroup(nn.Module):
    """conv3x3 -> maxpool 2x2 -> BN -> GELU, then ``depth - 1`` times conv3x3 -> BN -> GELU.

    Halves H and W. With ``depth >= 3`` the output of the first block is added back before the
    last GELU (airbench96's group: ``x0 = GELU(BN(pool(conv1(x))))``, then
    ``GELU(BN(conv3(GELU(BN(conv2(x0))))) + x0)``): the extra convs learn a correction to the
    first block's output. ``depth == 2`` is airbench94's group, with no residual.
    """

    def __init__(
        self, in_channels: int, out_channels: int, batchnorm_momentum: float, depth: int = 2
    ) -> None:
        super().__init__()
        self.depth = depth
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.bn1 = nn.BatchNorm2d(out_channels, momentum=batchnorm_momentum)
        # conv2, bn2, conv3, bn3, ...: the names of airbench and of depth-2 checkpoints
        for index in range(2, depth + 1):
            conv = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
            self.add_module(f"conv{index}", conv)
            self.add_module(f"bn{index}", nn.BatchNorm2d(out_channels, momentum=batchnorm_momentum))
        self.act = nn.GELU()
        for index in range(1, depth + 1):
            # Scale frozen at 1 (airbench): the following conv absorbs any scale, and a trainable
            # scale under weight decay only slows the first epochs.
            getattr(self, f"bn{index}").weight.requires_grad_(False)
            # Identity on the first in_channels outputs: the untrained group passes its input
            # on, which lets a high learning rate work from step one.
            conv = getattr(self, f"conv{index}")
            with torch.no_grad():
                nn.init.dirac_(conv.weight[: conv.in_channels])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = first = self.act(self.bn1(self.pool(self.conv1(x))))
        for index in range(2, self.depth + 1):
            x = getattr(self, f"bn{index}")(getattr(self, f"conv{index}")(x))
            if index == self.depth and self.depth >= 3:
                x = x + first
            x = self.act(x)
        return x


class AirNet(nn.Module):
    """The airbench-style network described in the module docstring.

    Args:
        num_classes: number of output logits.
        in_channels: input image channels.
        widths: channels of the three conv groups.
        whitening_kernel_size: kernel of the frozen whitening conv (no padding, stride 1).
        whitening_components: how many principal directions of the patches it keeps (default:
            all ``in_channels * whitening_kernel_size**2``); the conv has twice as many outputs.
        logit_scale: the logits are ``fc(features) * logit_scale`` (airbench uses 1/9).
        batchnorm_momentum: PyTorch's BatchNorm momentum (weight of the newest batch).
        depth: convs per group (2: airbench94's group; 3 or more: airbench96's, with a
            residual, see :class:`ConvGroup`).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        widths: tuple[int, int, int] = (32, 64, 128),
        whitening_kernel_size: int = 3,
        logit_scale: float = 1 / 9,
        batchnorm_momentum: float = 0.4,
        whitening_components: int | None = None,
        depth: int = 2,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)  # type: ignore[assignment]  # checked next line
        if len(widths) != 3 or any(w < 1 for w in widths):
            raise ConfigError(f"airnet: widths must be three positive integers, got {widths!r}")
        if whitening_kernel_size < 1:
            raise ConfigError(
                f"airnet: whitening_kernel_size must be >= 1, got {whitening_kernel_size}"
            )
        depth = int(depth)
        if depth < 2:
            raise ConfigError(f"airnet: depth (convs per group) must be >= 2, got {depth}")
        patch_size = in_channels * whitening_kernel_size**2
        components = patch_size if whitening_components is None else int(whitening_components)
        if not 1 <= components <= patch_size:
            raise ConfigError(
                f"airnet: whitening_components must be in [1, {patch_size}] for "
                f"{in_channels}-channel {whitening_kernel_size}x{whitening_kernel_size} "
                f"patches, got {whitening_components}"
            )
        whiten_channels = 2 * components
        self.whitening_kernel_size = whitening_kernel_size
        self.whiten = nn.Conv2d(in_channels, whiten_channels, whitening_kernel_size, bias=True)
        # Frozen: set from the data by init_whitening; only its bias trains.
        self.whiten.weight.requires_grad_(False)
        self.act = nn.GELU()
        self.layer1 = ConvGroup(whiten_channels, widths[0], batchnorm_momentum, depth)
        self.layer2 = ConvGroup(widths[0], widths[1], batchnorm_momentum, depth)
        self.layer3 = ConvGroup(widths[1], widths[2], batchnorm_momentum, depth)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(widths[2], num_classes, bias=False)
        self.logit_scale = float(logit_scale)

    # What the trainer asks a model (cnnkit.train.setup): parameters that a config field
    # freezes from the epoch it holds (airbench trains the whitening bias for 3 of 10 epochs).
    cnnkit_freeze_fields: ClassVar[dict[str, str]] = {"whiten.bias": "whiten_bias_epochs"}

    def cnnkit_init_from_data(self, images: torch.Tensor) -> None:
        """Data-dependent initialisation before training: :func:`init_whitening` on ``images``."""
        init_whitening(self, images)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        minimum = self.whitening_kernel_size - 1 + 8  # three 2x2 pools need 8 pixels after whiten
        if x.shape[-1] < minimum or x.shape[-2] < minimum:
            raise ShapeError(
                f"airnet: input {tuple(x.shape[-2:])} is smaller than the minimum "
                f"{minimum}x{minimum} (whiten conv then three 2x2 max pools)"
            )
        x = self.act(self.whiten(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x) * self.logit_scale


@torch.no_grad()
def init_whitening(model: AirNet, images: torch.Tensor, eps: float = 5e-4) -> None:
    """Set ``model.whiten`` to PCA-whiten the k x k patches of ``images`` (airbench's init).

    With patch vectors p (d = C*k*k values), mean m and covariance S = V diag(l) V^T (l sorted
    largest first), the first n filters (n = the conv's outputs / 2, at most d) are
    w_i = v_i / sqrt(l_i + eps) with bias -w_i . m, so that their outputs over the data have
    mean 0 and variance l_i / (l_i + eps) (about 1) and are uncorrelated; the other n filters
    are their negatives, so the GELU that follows keeps both signs.

    Args:
        model: an :class:`AirNet`.
        images: (N, C, H, W) training images, normalised as the model will see them.
        eps: added to every eigenvalue, so near-constant directions are not amplified.
    """
    conv = model.whiten
    k = model.whitening_kernel_size
    if images.dim() != 4 or images.shape[1] != conv.in_channels:
        raise ShapeError(
            f"init_whitening: expected images of shape (N, {conv.in_channels}, H, W), "
            f"got {tuple(images.shape)}"
        )
    x = images.detach().to("cpu", torch.float64)
    rows, cols = x.shape[2] - k + 1, x.shape[3] - k + 1
    # One row per patch coordinate (channel, i, j), the order of conv.weight's (C, k, k): a
    # (d, M) matrix whose Gram product is far faster than that of its (M, d) transpose.
    patches = torch.stack(
        [
            x[:, c, i : i + rows, j : j + cols]
            for c in range(x.shape[1])
            for i in range(k)
            for j in range(k)
        ]
    ).reshape(conv.in_channels * k * k, -1)
    mean = patches.mean(1)
    patches -= mean[:, None]
    covariance = patches @ patches.T / max(patches.shape[1] - 1, 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    order = eigenvalues.flip(0).clamp_min(0), eigenvectors.flip(1)  # largest variance first
    components = conv.out_channels // 2
    filters = (order[1] / torch.sqrt(order[0] + eps)).T[:components]  # one filter per row
    weight = torch.cat([filters, -filters]).reshape_as(conv.weight)
    conv.weight.copy_(weight.to(conv.weight))
    bias = -(filters @ mean)
    if conv.bias is not None:  # the whitening conv has a bias (AirNet.__init__)
        conv.bias.copy_(torch.cat([bias, -bias]).to(conv.bias))


_INFO = ModelInfo(
    family="airnet",
    default_input=(1, 28, 28),
    min_input=(10, 10),
    first_conv="whiten",
    classifier="fc",
    cam_layer="layer3",
)


@register_model(info=_INFO)
def airnet(
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    widths: tuple[int, int, int] = (32, 64, 128),
    **kwargs: object,
) -> AirNet:
    """Airbench-style network (about 0.29 M parameters for 1x28x28, 10 classes).

    Other keywords (``whitening_kernel_size``, ``whitening_components``, ``logit_scale``,
    ``batchnorm_momentum``, ``depth``) go to :class:`AirNet`. Call :func:`init_whitening` with
    training images before training.
    """
    return AirNet(num_classes=num_classes, in_channels=in_channels, widths=widths, **kwargs)  # type: ignore[arg-type]  # widths are checked inside AirNet.__init__
