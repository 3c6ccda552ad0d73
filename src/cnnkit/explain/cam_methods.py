"""The CAM methods: each defines only its channel weights or its element-wise combination.

Notation: ``A`` (B, K, h, w) the target layer's activations, ``G = dS/dA`` the gradient of the
explained score ``S`` (a logit, or a callable's value), sums over ``i, j`` run over the h x w
positions. Every map is ``ReLU(.)`` of the expression given, except EigenCAM's and the
random baseline's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnkit.explain.cam import CAM_METHODS, CamMethod, LayerRun, target_scores


@CAM_METHODS.register("gradcam")
class GradCAM(CamMethod):
    """Grad-CAM (Selvaraju et al. 2017, eq. 1-2): ``w_k = mean_ij G_kij``."""

    name = "gradcam"

    def weights(self, run: LayerRun) -> torch.Tensor:
        return run.grads.mean(dim=(2, 3))


@CAM_METHODS.register("gradcam++")
class GradCAMPlusPlus(CamMethod):
    """Grad-CAM++ (Chattopadhay et al. 2018, eq. 19 with the exponential's factor dropped):
    ``a_kij = G^2 / (2 G^2 + sum_ab A_kab G^3)`` (0 where the denominator is 0),
    ``w_k = sum_ij a_kij ReLU(G_kij)``."""

    name = "gradcam++"

    def weights(self, run: LayerRun) -> torch.Tensor:
        g = run.grads
        total = run.activations.sum(dim=(2, 3), keepdim=True)
        denominator = 2 * g**2 + total * g**3
        alpha = torch.where(
            denominator != 0, g**2 / torch.where(denominator != 0, denominator, 1), 0
        )
        return (alpha * g.clamp_min(0)).sum(dim=(2, 3))


@CAM_METHODS.register("hirescam")
class HiResCAM(CamMethod):
    """HiResCAM (Draelos & Carin 2020): ``sum_k G_k * A_k`` element-wise."""

    name = "hirescam"

    def combine(self, run: LayerRun) -> torch.Tensor:
        return (run.grads * run.activations).sum(dim=1).clamp_min(0)


@CAM_METHODS.register("xgradcam")
class XGradCAM(CamMethod):
    """XGrad-CAM (Fu et al. 2020, eq. 8): ``w_k = sum_ij (A_kij / sum_ab A_kab) G_kij``
    (0 for a channel whose activations sum to 0)."""

    name = "xgradcam"

    def weights(self, run: LayerRun) -> torch.Tensor:
        a = run.activations
        total = a.sum(dim=(2, 3), keepdim=True)
        share = torch.where(total != 0, a / torch.where(total != 0, total, 1), 0)
        return (share * run.grads).sum(dim=(2, 3))


@CAM_METHODS.register("layercam")
class LayerCAM(CamMethod):
    """LayerCAM (Jiang et al. 2021, eq. 5-6): ``sum_k ReLU(G_k) * A_k`` element-wise."""

    name = "layercam"

    def combine(self, run: LayerRun) -> torch.Tensor:
        return (run.grads.clamp_min(0) * run.activations).sum(dim=1).clamp_min(0)


def _unit_masks(activations: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Each channel bilinearly upsampled to ``size`` and min-max scaled to [0, 1] (0 if flat)."""
    up = F.interpolate(activations, size=size, mode="bilinear", align_corners=False)
    low = up.amin(dim=(2, 3), keepdim=True)
    span = up.amax(dim=(2, 3), keepdim=True) - low
    return torch.where(span > 0, (up - low) / torch.where(span > 0, span, 1), 0)


@CAM_METHODS.register("scorecam")
class ScoreCAM(CamMethod):
    """Score-CAM (Wang et al. 2020, Algorithm 1): ``H_k`` = channel k upsampled to the input and
    min-max scaled, ``w_k = softmax(f(X * H_k))_c`` (a callable target: its value on the masked
    image's logits). B x K forward passes, in chunks."""

    name = "scorecam"
    uses_gradients = False

    def weights(self, run: LayerRun) -> torch.Tensor:
        batch, channels = run.activations.shape[:2]
        masks = _unit_masks(run.activations, (run.images.shape[-2], run.images.shape[-1]))
        rows = []
        for i in range(batch):
            masked = run.images[i : i + 1] * masks[i][:, None]  # (K, C, H, W)
            logits = run.logits_for(masked)
            target = run.targets[i]
            if isinstance(target, int):
                rows.append(logits.softmax(dim=1)[:, target])
            else:
                rows.append(torch.stack([target(row).reshape(()) for row in logits]))
        return torch.stack(rows).reshape(batch, channels)


@CAM_METHODS.register("ablationcam")
class AblationCAM(CamMethod):
    """Ablation-CAM (Desai & Ramaswamy 2020, eq. 3): ``w_k = (S - S_k) / S`` with ``S_k`` the
    score when channel k of the layer's output is set to 0. B x K forward passes, in chunks."""

    name = "ablationcam"
    uses_gradients = False

    def weights(self, run: LayerRun) -> torch.Tensor:
        batch, channels = run.activations.shape[:2]
        rows = []
        for i in range(batch):
            images = run.images[i : i + 1].expand(channels, *run.images.shape[1:])

            def ablate(output: torch.Tensor, rows_: slice) -> torch.Tensor:
                keep = torch.ones_like(output)
                index = torch.arange(rows_.start, rows_.stop, device=output.device)
                keep[torch.arange(len(index)), index] = 0
                return output * keep

            logits = run.logits_replacing(images, ablate)
            ablated = target_scores(logits, [run.targets[i]] * channels)
            rows.append((run.scores[i] - ablated) / run.scores[i])
        return torch.stack(rows)


@CAM_METHODS.register("eigencam")
class EigenCAM(CamMethod):
    """Eigen-CAM (Muhammad & Yeasin 2020): the projection of the activations (h w positions x K
    channels, not centred) on their first right singular vector; its sign is chosen so that the
    map sums to a positive value. Class-agnostic; no ReLU."""

    name = "eigencam"
    uses_gradients = False
    relu = False

    def combine(self, run: LayerRun) -> torch.Tensor:
        batch, channels, height, width = run.activations.shape
        positions = run.activations.reshape(batch, channels, -1).transpose(1, 2)  # (B, hw, K)
        _, _, vh = torch.linalg.svd(positions, full_matrices=False)
        projection = positions @ vh[:, 0, :, None]  # (B, hw, 1)
        sign = torch.where(projection.sum(dim=(1, 2), keepdim=True) < 0, -1.0, 1.0)
        return (projection * sign).reshape(batch, height, width)


@CAM_METHODS.register("random")
class RandomMap(CamMethod):
    """The baseline every method must beat: i.i.d. uniform [0, 1) values at the layer's
    resolution, from a generator seeded with 0 (the same maps on every call)."""

    name = "random"
    uses_gradients = False
    relu = False

    def combine(self, run: LayerRun) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        batch, _, height, width = run.activations.shape
        maps = torch.rand(batch, height, width, generator=generator, dtype=torch.float64)
        return maps.to(run.activations.device)
