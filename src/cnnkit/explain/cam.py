"""Class activation maps (capability F3): one pipeline, one tiny class per method.

:class:`CamMethod` owns the hooks and the pipeline; a method only says how it weighs the target
layer's activations ``A`` (B, K, h, w) and, for the gradient methods, their gradients
``G = dS/dA`` of the target score ``S`` (see :mod:`cnnkit.explain.cam_methods`).

Hooks: a forward hook on the target layer stores ``output.detach().clone()`` and registers a
tensor hook on ``output`` for its gradient. The clone matters when an in-place op (ReLU)
follows the layer: the stored activation is the layer's own output, and the tensor hook, being
registered before the in-place op, receives the gradient of that same value (captum's
``LayerGradCam`` does the same; pytorch-grad-cam 1.5.7 keeps the post-ReLU activation with the
pre-ReLU gradient). The deprecated ``register_backward_hook`` is never used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit._registry import Registry
from cnnkit.errors import ConfigError, ShapeError
from cnnkit.explain._state import as_batch, eval_mode, logits_of, removing
from cnnkit.explain.layers import get_layer, last_conv_layer

Target = int | Callable[[torch.Tensor], torch.Tensor]

CAM_METHODS: Registry[type[CamMethod]] = Registry("CAM method")

# Forward passes per chunk for the perturbation methods (ScoreCAM, AblationCAM).
CHUNK = 128


@dataclass(frozen=True)
class CamResult:
    """Maps of one method for a batch of images.

    Attributes:
        maps: (B, h, w) float32 at the target layer's resolution, raw: after the method's own
            ReLU, not normalised (so maps of one method can be compared across images).
        layer: dotted name of the target layer.
        method: the registered method name.
        targets: per image, the class index explained (or the callable given).
        input_size: (H, W) of the images, the default size of :meth:`upsampled`.
    """

    maps: torch.Tensor
    layer: str
    method: str
    targets: tuple[Target, ...]
    input_size: tuple[int, int]

    def upsampled(self, size: Sequence[int] | None = None) -> torch.Tensor:
        """(B, H, W) maps resized bilinearly to ``size`` (default: the input's) and min-max
        normalised to [0, 1] per image, for display; a constant map becomes zeros."""
        size = tuple(size) if size is not None else self.input_size
        up = F.interpolate(self.maps[:, None], size=size, mode="bilinear", align_corners=False)
        up = up[:, 0]
        low = up.amin(dim=(1, 2), keepdim=True)
        span = up.amax(dim=(1, 2), keepdim=True) - low
        return torch.where(span > 0, (up - low) / span.clamp_min(1e-30), torch.zeros_like(up))

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "layer": self.layer,
            "targets": [
                t if isinstance(t, int) else getattr(t, "__name__", repr(t)) for t in self.targets
            ],
            "input_size": list(self.input_size),
            "maps": self.maps.tolist(),
        }


@dataclass
class LayerRun:
    """What a method sees: the target layer's activations, gradients and ways to rerun the model.

    ``activations`` (B, K, h, w) and ``gradients`` (same shape; ``None`` for gradient-free
    methods) are in the model's dtype; ``images`` is the batch as the model saw it.
    """

    model: nn.Module
    layer: nn.Module
    images: torch.Tensor
    activations: torch.Tensor
    gradients: torch.Tensor | None
    logits: torch.Tensor
    targets: tuple[Target, ...]
    scores: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.scores = target_scores(self.logits, self.targets)

    @property
    def grads(self) -> torch.Tensor:
        """``gradients`` for the methods that declare they need them (never ``None`` there)."""
        if self.gradients is None:
            raise RuntimeError("a gradient-based CAM method ran without gradients")
        return self.gradients

    @torch.no_grad()
    def logits_for(self, images: torch.Tensor) -> torch.Tensor:
        """Class scores of ``images`` in chunks of :data:`CHUNK` (no hooks, no gradients)."""
        parts = [logits_of(self.model(chunk)) for chunk in images.split(CHUNK)]
        return torch.cat(parts)

    @torch.no_grad()
    def logits_replacing(
        self, images: torch.Tensor, replace: Callable[[torch.Tensor, slice], torch.Tensor]
    ) -> torch.Tensor:
        """Class scores of ``images`` with the target layer's output replaced by
        ``replace(output, rows)`` (``rows``: the chunk's slice of ``images``)."""
        parts = []
        for start in range(0, images.shape[0], CHUNK):
            rows = slice(start, min(start + CHUNK, images.shape[0]))

            def hook(module: nn.Module, args: Any, output: torch.Tensor, rows=rows) -> Any:
                return replace(output, rows)

            with removing([self.layer.register_forward_hook(hook)]):
                parts.append(logits_of(self.model(images[rows])))
        return torch.cat(parts)


def target_scores(logits: torch.Tensor, targets: Sequence[Target]) -> torch.Tensor:
    """Per image, the score explained: ``logits[i, c]`` for a class index, ``t(logits[i])`` for
    a callable (it must return a scalar tensor)."""
    scores = []
    for row, target in zip(logits, targets, strict=True):
        value = row[target] if isinstance(target, int) else target(row)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ConfigError(f"targets: a callable must return one scalar per image, got {got}")
        scores.append(value.reshape(()))
    return torch.stack(scores)


def _resolve_targets(targets: Any, logits: torch.Tensor) -> tuple[Target, ...]:
    batch, classes = logits.shape
    if targets is None:
        return tuple(int(c) for c in logits.argmax(dim=1))
    if isinstance(targets, int) and not isinstance(targets, bool):
        targets = [targets] * batch
    if isinstance(targets, torch.Tensor):
        targets = targets.tolist()
    targets = list(targets)
    if len(targets) != batch:
        raise ConfigError(f"targets: got {len(targets)} for a batch of {batch} images")
    out: list[Target] = []
    for target in targets:
        if callable(target):
            out.append(target)
        elif isinstance(target, int) and not isinstance(target, bool) and 0 <= target < classes:
            out.append(int(target))
        else:
            raise ConfigError(f"targets: {target!r} is not a class index in [0, {classes})")
    return tuple(out)


class CamMethod:
    """The pipeline shared by every CAM method.

    A subclass sets ``name`` (its registry key), ``uses_gradients``, and defines either
    :meth:`weights` (per-channel weights ``w``, the map being ``ReLU(sum_k w_k A_k)``) or, for
    element-wise methods, :meth:`combine`.
    """

    name: ClassVar[str]
    uses_gradients: ClassVar[bool] = True
    relu: ClassVar[bool] = True

    def weights(self, run: LayerRun) -> torch.Tensor:
        """(B, K) channel weights."""
        raise NotImplementedError

    def combine(self, run: LayerRun) -> torch.Tensor:
        """(B, h, w) map: ``ReLU(sum_k w_k A_k)`` by default."""
        maps = torch.einsum("bk,bkhw->bhw", self.weights(run), run.activations)
        return maps.clamp_min(0) if self.relu else maps

    def __call__(
        self, model: nn.Module, images: torch.Tensor, layer: str, targets: Any = None
    ) -> CamResult:
        module = get_layer(model, layer)
        with eval_mode(model):
            run = self._run(model, module, layer, images, targets)
            with torch.no_grad():
                maps = self.combine(run)
        return CamResult(
            maps=maps.detach().float().cpu(),
            layer=layer,
            method=self.name,
            targets=run.targets,
            input_size=(int(images.shape[-2]), int(images.shape[-1])),
        )

    def _run(
        self, model: nn.Module, module: nn.Module, layer: str, images: torch.Tensor, targets: Any
    ) -> LayerRun:
        x = as_batch(model, images)
        activations: list[torch.Tensor] = []
        gradients: dict[int, torch.Tensor] = {}

        def forward_hook(mod: nn.Module, args: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor) or output.dim() != 4:
                shape = tuple(output.shape) if isinstance(output, torch.Tensor) else "no tensor"
                raise ShapeError(
                    f"layer {layer} ({type(mod).__name__}) has no spatial output: "
                    f"its output is {shape}, a CAM needs (B, C, h, w)"
                )
            index = len(activations)
            activations.append(output.detach().clone())
            if output.requires_grad:
                output.register_hook(lambda grad: gradients.__setitem__(index, grad.detach()))

        hooks = [module.register_forward_hook(forward_hook)]
        with removing(hooks), torch.set_grad_enabled(self.uses_gradients):
            x.requires_grad_(self.uses_gradients)
            logits = logits_of(model(x))
            if not activations:
                raise ShapeError(f"layer {layer} is not called in the model's forward")
            chosen = _resolve_targets(targets, logits.detach())
            if self.uses_gradients:
                scores = target_scores(logits, chosen)
                torch.autograd.grad(scores.sum(), x)
        last = len(activations) - 1  # a reused module: its last call is explained
        grads = None
        if self.uses_gradients:
            if last not in gradients:
                raise ShapeError(f"layer {layer}: the target score does not depend on its output")
            grads = gradients[last]
        return LayerRun(
            model, module, x.detach(), activations[last], grads, logits.detach(), chosen
        )


def cam(
    model: nn.Module,
    images: torch.Tensor,
    method: str = "gradcam",
    layer: str | None = None,
    targets: Target | Sequence[Target] | None = None,
) -> CamResult:
    """Class activation maps of ``images`` (B, C, H, W) for ``model`` at ``layer``.

    Args:
        method: a name in :data:`CAM_METHODS` (``gradcam``, ``gradcam++``, ``hirescam``,
            ``xgradcam``, ``layercam``, ``scorecam``, ``eigencam``, ``ablationcam``, ``random``).
        layer: dotted module name; ``None``: the last conv-like layer with a spatial output,
            found from the analysis capture graph (:func:`~cnnkit.explain.layers.last_conv_layer`).
        targets: ``None`` explains each image's predicted class; an int, or one class index or
            callable ``f(logits_row) -> scalar`` per image.

    The gradient methods make one forward and one backward pass per batch. The model runs in eval
    mode and is left exactly as found (flags, ``requires_grad``, no ``.grad``, no hooks), even
    when the call raises.
    """
    factory = CAM_METHODS.get(method)
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(f"images must be a batch (B, C, H, W), got {shape}")
    if layer is None:
        layer = last_conv_layer(model, (1, *images.shape[1:]))
    return factory()(model, images, layer, targets)
