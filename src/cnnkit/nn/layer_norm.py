"""LayerNorm over the channel axis of an (N, C, H, W) tensor (ConvNeXt's norm, C1).

Liu et al., "A ConvNet for the 2020s" (arXiv:2201.03545), section 2.6: each pixel's C values are
normalised, ``y = (x - mean_c) / sqrt(var_c + eps) * weight + bias`` with the biased variance.
It subclasses ``nn.LayerNorm`` so the parameters are ``weight`` and ``bias`` of shape (C,), as in
torchvision's ``LayerNorm2d``.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from cnnkit.errors import ShapeError


class LayerNorm2d(nn.LayerNorm):
    """``nn.LayerNorm(C)`` applied at every pixel of an (N, C, H, W) input."""

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim != 4:
            raise ShapeError(f"LayerNorm2d expects (N, C, H, W), got shape {tuple(input.shape)}")
        # Channels-last view: layer_norm normalises the last axis; for a channels_last input the
        # permuted view is already contiguous, so no copy is made.
        channels_last = input.permute(0, 2, 3, 1)
        normalised = F.layer_norm(
            channels_last, self.normalized_shape, self.weight, self.bias, self.eps
        )
        return normalised.permute(0, 3, 1, 2)
