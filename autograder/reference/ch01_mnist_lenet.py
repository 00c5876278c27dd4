"""Reference Grad-CAM (Selvaraju et al. 2017), the canonical map of the course.

One forward pass, then ``torch.autograd.grad`` of the summed target logits with respect to
the hooked activation only: the backward stops at the target layer, no parameter gradient
is computed, nothing loops over images and nothing leaves the device.

    weights  α_k^c = mean_ij ∂y^c/∂A^k_ij                     (Eq. 1)
    map      L^c   = ReLU(Σ_k α_k^c A^k)                       (Eq. 2)
    then bilinear upsampling (align_corners=False) and per-image min-max with eps 1e-7.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-7


def _check_layer(model: nn.Module, layer: nn.Module) -> None:
    if not isinstance(layer, nn.Module):
        raise TypeError(
            f"`layer` must be a module of the model (e.g. model.conv2), got {type(layer).__name__}."
        )
    if not any(m is layer for m in model.modules()):
        names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        raise ValueError(
            "`layer` is not a submodule of `model`: pass the model's own layer object, "
            f"not a copy. Conv layers of this model: {names}."
        )


def target_indices(class_idx, logits: torch.Tensor) -> torch.Tensor:
    """None → argmax per sample; int → that class for all; sequence → one per sample."""
    n, num_classes = logits.shape
    if class_idx is None:
        return logits.argmax(dim=1)
    if isinstance(class_idx, torch.Tensor) and class_idx.ndim == 0:
        class_idx = int(class_idx)
    if isinstance(class_idx, numbers.Integral):  # int, numpy integer
        idx = torch.full((n,), int(class_idx), dtype=torch.long, device=logits.device)
    else:
        idx = torch.as_tensor(class_idx, dtype=torch.long, device=logits.device).reshape(-1)
        if idx.numel() != n:
            raise ValueError(
                f"class_idx has {idx.numel()} entries but the batch has {n} images: give one "
                "class per image, a single int for all, or None for the predicted class."
            )
    if (idx < 0).any() or (idx >= num_classes).any():
        raise ValueError(f"class_idx must lie in [0, {num_classes - 1}], got {idx.tolist()}.")
    return idx


def capture_activations_and_gradients(model: nn.Module, layer: nn.Module, images: torch.Tensor,
                                      class_idx: int | Sequence[int] | torch.Tensor | None = None):
    """Return ``(activations, gradients, logits)`` for the target layer, all detached.

    ``activations`` is the layer's output as the layer returned it and ``gradients`` the
    gradient of ``logits[n, class_idx[n]]`` with respect to it, both (N, K, h, w).
    """
    _check_layer(model, layer)
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "Grad-CAM needs gradients, but it was called inside torch.inference_mode(): "
            "call it outside that block (torch.no_grad() is fine, it is lifted here)."
        )
    captured: dict[str, torch.Tensor] = {}

    def hook(module, inputs, output):
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
            raise ValueError(
                f"The target layer returned {shape}; Grad-CAM needs a convolutional layer "
                "whose output is (N, K, h, w), such as the last nn.Conv2d."
            )
        if not output.requires_grad:  # frozen parameters and an input without grad
            output.requires_grad_(True)
        captured["output"] = output
        # Later layers get a copy: an in-place op after this layer (ReLU(inplace=True),
        # `out += identity`) then changes neither the activations nor their gradient.
        return output.clone()

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(images)
            if "output" not in captured:
                raise RuntimeError(
                    "The target layer was not called during the forward pass: pick a layer "
                    "that the model's forward() uses."
                )
            idx = target_indices(class_idx, logits)
            score = logits.gather(1, idx[:, None]).sum()
            (gradients,) = torch.autograd.grad(score, captured["output"])
    finally:
        handle.remove()
    return captured["output"].detach(), gradients.detach(), logits.detach()


def gradcam_weights(gradients: torch.Tensor) -> torch.Tensor:
    """Eq. 1: α_k = global average of the gradients over h, w → (N, K)."""
    return gradients.mean(dim=(2, 3))


def gradcam_map(activations: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Eq. 2: ReLU of the weighted channel sum → (N, h, w)."""
    return torch.relu((weights[:, :, None, None] * activations).sum(dim=1))


def upsample_and_normalize(cam: torch.Tensor, size) -> torch.Tensor:
    """Bilinear upsampling to ``size`` = (H, W), then per-image min-max into [0, 1]."""
    if isinstance(size, int):
        size = (size, size)
    up = F.interpolate(cam[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    flat = up.flatten(1)
    lo = flat.min(dim=1).values[:, None, None]
    hi = flat.max(dim=1).values[:, None, None]
    return (up - lo) / (hi - lo + EPS)


def grad_cam(model: nn.Module, layer: nn.Module, images: torch.Tensor, class_idx=None) -> torch.Tensor:
    """Grad-CAM maps (N, H, W) in [0, 1] at the input resolution."""
    acts, grads, _ = capture_activations_and_gradients(model, layer, images, class_idx)
    cam = gradcam_map(acts, gradcam_weights(grads))
    return upsample_and_normalize(cam, images.shape[-2:])
