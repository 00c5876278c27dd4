"""Reference solutions of chapter 4: attribution methods for a single-logit classifier, and how to
measure them.

Conventions shared by every function here:

- the model returns one logit per image, shape (N, 1): "tumour in the centre region";
- ``target`` picks the class to explain per image: ``None`` for the predicted one (logit > 0 is
  class 1), an int 0/1 for all images, or a sequence/tensor of N zeros and ones;
- the **score** of class 1 is the logit, of class 0 its negative (−logit is the logit of
  "normal": σ(−z) = 1 − σ(z));
- perturbed inputs are evaluated in batches, never one forward pass per perturbation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Exercise 5's reference is the helper package's insertion_deletion (chapter 5 uses it too).
from gradcam_course.metrics import insertion_deletion  # noqa: F401
from gradcam_course.metrics import score_signs

from .ch01_mnist_lenet import EPS, _check_layer


def _minmax(maps: torch.Tensor) -> torch.Tensor:
    flat = maps.flatten(1)
    lo = flat.min(1).values.view(-1, *[1] * (maps.dim() - 1))
    hi = flat.max(1).values.view(-1, *[1] * (maps.dim() - 1))
    return (maps - lo) / (hi - lo + EPS)


# --- Exercise 1: Grad-CAM for one logit -----------------------------------------------------

def binary_gradcam(model: nn.Module, target_layer: nn.Module, images: torch.Tensor,
                   target=None) -> torch.Tensor:
    """(N, H, W) Grad-CAM maps in [0, 1] for the score ±logit (Selvaraju et al. 2017, Eq. 1-2),
    bilinear upsampling (align_corners=False) and per-image min-max with eps 1e-7."""
    _check_layer(model, target_layer)
    captured = {}

    def hook(module, inputs, output):
        if not output.requires_grad:
            output.requires_grad_(True)
        captured["a"] = output
        return output.clone()

    handle = target_layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(images)
            signs = score_signs(logits, target)
            (grads,) = torch.autograd.grad((logits[:, 0] * signs).sum(), captured["a"])
    finally:
        handle.remove()
    acts = captured["a"].detach()
    cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * acts).sum(1))
    up = F.interpolate(cam[:, None], size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return _minmax(up)


# --- Exercise 2: saliency -------------------------------------------------------------------

def saliency_map(model: nn.Module, images: torch.Tensor, target=None) -> torch.Tensor:
    """(N, H, W) in [0, 1]: |∂score/∂x| maximised over the colour channels (Simonyan et al. 2014),
    then per-image min-max."""
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        signs = score_signs(logits, target)
        (grad,) = torch.autograd.grad((logits[:, 0] * signs).sum(), x)
    return _minmax(grad.abs().amax(dim=1))


# --- Exercise 3: occlusion ------------------------------------------------------------------

def occlusion_sensitivity(model: nn.Module, images: torch.Tensor, patch: int, stride: int,
                          baseline: float = 0.0, target=None, batch_size: int = 256) -> torch.Tensor:
    """(N, H, W): for every window of ``patch``×``patch`` pixels, moved by ``stride``, the drop in
    score when the window (all channels) is set to ``baseline``; each pixel gets the mean drop of
    the windows that cover it, 0 if none does. The same numbers as captum's ``Occlusion``.

    Windows start at 0, stride, 2·stride, … while they fit: (H − patch) // stride + 1 per axis.
    """
    n, c, h, w = images.shape
    if not (0 < patch <= min(h, w)) or stride < 1:
        raise ValueError(f"Need 0 < patch <= {min(h, w)} and stride >= 1, got {patch}, {stride}.")
    ys = range(0, h - patch + 1, stride)
    xs = range(0, w - patch + 1, stride)
    windows = [(y, x) for y in ys for x in xs]
    with torch.inference_mode():
        logits = model(images)
        signs = score_signs(logits, target)
        base = logits[:, 0] * signs
        drops = torch.empty(n, len(windows), device=images.device)
        per_batch = max(1, batch_size // n)
        for start in range(0, len(windows), per_batch):
            chunk = windows[start:start + per_batch]
            occluded = images.repeat(len(chunk), 1, 1, 1)  # window-major: (len(chunk)·N, C, H, W)
            for k, (y, x) in enumerate(chunk):
                occluded[k * n:(k + 1) * n, :, y:y + patch, x:x + patch] = baseline
            scores = model(occluded)[:, 0].view(len(chunk), n) * signs
            drops[:, start:start + len(chunk)] = (base - scores).T
        total = torch.zeros(n, h, w, device=images.device)
        count = torch.zeros(h, w, device=images.device)
        for k, (y, x) in enumerate(windows):
            total[:, y:y + patch, x:x + patch] += drops[:, k, None, None]
            count[y:y + patch, x:x + patch] += 1
    return torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))


# --- Exercise 4: integrated gradients -------------------------------------------------------

def integrated_gradients(model: nn.Module, images: torch.Tensor, baseline=None, steps: int = 50,
                         target=None, batch_size: int = 256) -> torch.Tensor:
    """(N, C, H, W) attributions (Sundararajan et al. 2017) with the midpoint rule:

        IG(x) = (x − x') · (1/m) Σ_k ∂score/∂x evaluated at x' + α_k (x − x'),  α_k = (k + ½)/m

    for k = 0 … m−1 (captum's ``method="riemann_middle"``). ``baseline`` x' is a tensor
    broadcastable to the images, a float, or None for black (zeros). Completeness: the
    attributions sum to score(x) − score(x') up to the quadrature error.
    """
    x = images.detach()
    if baseline is None:
        baseline = 0.0
    ref = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)
    with torch.no_grad():
        signs = score_signs(model(x), target)
    n = len(x)
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
    total = torch.zeros_like(x)
    per_batch = max(1, batch_size // n)
    for start in range(0, steps, per_batch):
        a = alphas[start:start + per_batch]
        path = (ref[None] + a.view(-1, 1, 1, 1, 1) * (x - ref)[None]).reshape(-1, *x.shape[1:])
        path.requires_grad_(True)
        with torch.enable_grad():
            score = (model(path)[:, 0] * signs.repeat(len(a))).sum()
            (grad,) = torch.autograd.grad(score, path)
        total += grad.view(len(a), *x.shape).sum(0)
    return (x - ref) * total / steps
