"""Reference solutions of chapter 5: the CAM family, each a small change to Grad-CAM.

Every function takes the target layer's activations ``A`` and gradients ``g`` as chapter 1's
``capture_activations_and_gradients`` returns them, both (N, K, h, w), detached. A *map* is
(N, h, w) at the layer's resolution; ``finish`` turns any map into chapter 1's canonical heatmap
(ReLU, bilinear upsampling with align_corners=False, per-image min-max with eps 1e-7).

The formulas are pytorch-grad-cam's (v1.5), which the tests check to 1e-4 after the same
normalisation, with two deliberate differences:

- Score-CAM runs under ``torch.inference_mode``, evaluates the masked inputs of all images in
  batches of ``batch_size`` laid out channels-last, through a copy of the model with each
  BatchNorm folded into the convolution before it, and evaluates an all-zero channel once (its
  masked input is the all-zero image, whatever the channel), instead of one masked input per
  channel per image;
- EigenCAM fixes the sign of the principal component, which an SVD leaves to chance, so that the
  map correlates positively with the channel-summed activation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.fx.experimental.optimization import fuse

from .ch01_mnist_lenet import (capture_activations_and_gradients, gradcam_map, gradcam_weights,
                      target_indices, upsample_and_normalize)

PLUSPLUS_EPS = 1e-6  # pytorch-grad-cam's eps in the α denominator
XGRAD_EPS = 1e-7
SCORECAM_EPS = 1e-8  # min-max of each upsampled channel


def _check_pair(activations: torch.Tensor, gradients: torch.Tensor) -> None:
    if activations.dim() != 4 or activations.shape != gradients.shape:
        raise ValueError(
            f"activations {tuple(activations.shape)} and gradients {tuple(gradients.shape)} must "
            "both be (N, K, h, w), as capture_activations_and_gradients returns them.")


# --- Exercise 1: Grad-CAM++ (Chattopadhyay et al. 2018) -------------------------------------------

def gradcam_plusplus_weights(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """(N, K): w_k = Σ_ij α_ij ReLU(g_ij), α = g² / (2g² + Σ_ab A_ab · g³ + ε), α = 0 where g = 0.

    The closed form assumes the score is exp(logit), whose higher derivatives are powers of the
    first one; ε = 1e-6 as in pytorch-grad-cam.
    """
    _check_pair(activations, gradients)
    g2 = gradients.pow(2)
    g3 = g2 * gradients
    total = activations.sum(dim=(2, 3), keepdim=True)
    alpha = g2 / (2 * g2 + total * g3 + PLUSPLUS_EPS)
    alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))
    return (alpha * torch.relu(gradients)).sum(dim=(2, 3))


def xgradcam_weights(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """(N, K): XGrad-CAM (Fu et al. 2020), w_k = Σ_ij g_ij A_ij / (Σ_ij A_ij + ε). Shown, not graded."""
    _check_pair(activations, gradients)
    num = (gradients * activations).sum(dim=(2, 3))
    return num / (activations.sum(dim=(2, 3)) + XGRAD_EPS)


# --- Exercises 2 and 3: element-wise maps ---------------------------------------------------------

def hirescam_map(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """(N, h, w): ReLU(Σ_k g^k ⊙ A^k) (Draelos & Carin 2020): no averaging of the gradients."""
    _check_pair(activations, gradients)
    return torch.relu((gradients * activations).sum(dim=1))


def layercam_map(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """(N, h, w): ReLU(Σ_k ReLU(g^k) ⊙ A^k) (Jiang et al. 2021)."""
    _check_pair(activations, gradients)
    return torch.relu((torch.relu(gradients) * activations).sum(dim=1))


# --- Exercise 4: Score-CAM (Wang et al. 2020) -----------------------------------------------------

def folded_for_inference(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode model with each BatchNorm folded into the convolution before it.

    Score-CAM runs the model hundreds of times per image, and in eval mode a BatchNorm is a fixed
    per-channel affine map that the convolution's weights and bias can absorb: one pass over the
    feature map fewer per layer (≈ 10 % of a ResNet-18 forward on a CPU), the same logits up to
    rounding (≈ 1e-6). A model in training mode, or one that torch.fx cannot trace (Python control
    flow on tensor values), is returned as it is.
    """
    if model.training:
        return model  # training-mode BatchNorm uses batch statistics: nothing fixed to fold
    try:
        return fuse(model)  # symbolic trace, deep copy, fold conv → bn pairs; the model is untouched
    except Exception:  # noqa: BLE001 - any tracing failure just means no folding
        return model


def scorecam_weights(model: nn.Module, images: torch.Tensor, activations: torch.Tensor,
                     class_idx=None, batch_size: int = 64) -> torch.Tensor:
    """(N, K): softmax over channels of the target logit of each image masked by each channel.

    Channel k of image n is upsampled to the input size (bilinear, align_corners=True, which is
    pytorch-grad-cam's ``UpsamplingBilinear2d``), min-max normalised to [0, 1] (eps 1e-8), and
    multiplied with the image; the masked images of all (n, k) pairs go through the model in
    batches of ``batch_size``. An all-zero channel masks the image to zeros, so one forward pass
    of the zero image scores all of them. The passes go through ``folded_for_inference(model)``.
    """
    if activations.dim() != 4 or activations.shape[0] != images.shape[0]:
        raise ValueError(f"activations {tuple(activations.shape)} must be (N, K, h, w) for the "
                         f"{images.shape[0]} images.")
    n, k = activations.shape[:2]
    size = images.shape[-2:]
    model = folded_for_inference(model)
    with torch.inference_mode():
        zero_logits = model(torch.zeros_like(images[:1]))[0]
        logits = model(images) if class_idx is None else zero_logits.expand(n, -1)
        idx = target_indices(class_idx, logits)
        scores = zero_logits[idx][:, None].expand(n, k).clone()
        live = activations.flatten(2).abs().amax(dim=2) > 0           # (N, K)
        pairs = live.nonzero()                                        # (P, 2): image, channel
        for start in range(0, len(pairs), batch_size):
            img, ch = pairs[start:start + batch_size].unbind(1)
            acts = activations[img, ch][:, None]                      # (B, 1, h, w)
            up = F.interpolate(acts, size=size, mode="bilinear", align_corners=True)
            flat = up.flatten(1)
            lo = flat.min(1).values[:, None, None, None]
            hi = flat.max(1).values[:, None, None, None]
            masks = (up - lo) / (hi - lo + SCORECAM_EPS)
            # channels-last is the memory layout oneDNN's CPU convolutions prefer (≈1.3× here)
            out = model((images[img] * masks).contiguous(memory_format=torch.channels_last))
            scores[img, ch] = out.gather(1, idx[img][:, None])[:, 0]
        return torch.softmax(scores, dim=1)


# --- Exercise 5: EigenCAM (Muhammad & Yeasin 2020) ------------------------------------------------

def eigencam_map(activations: torch.Tensor) -> torch.Tensor:
    """(N, h, w): projection of each position's centred K-vector on the first principal
    component, signed so that it correlates positively with the channel-summed activation."""
    if activations.dim() != 4:
        raise ValueError(f"activations must be (N, K, h, w), got {tuple(activations.shape)}.")
    n, k, h, w = activations.shape
    x = activations.flatten(2).transpose(1, 2)                        # (N, hw, K)
    x = x - x.mean(dim=1, keepdim=True)                               # centre each channel
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    proj = (x @ vh[:, 0, :, None])[..., 0]                            # (N, hw), mean zero
    summed = activations.sum(dim=1).flatten(1)
    sign = torch.where((proj * summed).sum(dim=1) < 0, -1.0, 1.0)     # Σ proj = 0: covariance
    return (proj * sign[:, None]).reshape(n, h, w)


# --- The family behind one call -------------------------------------------------------------------

GRADIENT_METHODS = ("Grad-CAM", "Grad-CAM++", "XGrad-CAM", "HiResCAM", "LayerCAM")
METHODS = GRADIENT_METHODS + ("Score-CAM", "EigenCAM")


def cam_map(method: str, activations: torch.Tensor, gradients: torch.Tensor | None = None,
            model: nn.Module | None = None, images: torch.Tensor | None = None,
            class_idx=None, batch_size: int = 64) -> torch.Tensor:
    """The (N, h, w) map of ``method`` (one of ``METHODS``), before ReLU and upsampling."""
    if method == "Grad-CAM":
        return gradcam_map(activations, gradcam_weights(gradients))
    if method == "Grad-CAM++":
        return gradcam_map(activations, gradcam_plusplus_weights(activations, gradients))
    if method == "XGrad-CAM":
        return gradcam_map(activations, xgradcam_weights(activations, gradients))
    if method == "HiResCAM":
        return hirescam_map(activations, gradients)
    if method == "LayerCAM":
        return layercam_map(activations, gradients)
    if method == "Score-CAM":
        weights = scorecam_weights(model, images, activations, class_idx, batch_size)
        return gradcam_map(activations, weights)
    if method == "EigenCAM":
        return eigencam_map(activations)
    raise ValueError(f"unknown method {method!r}: pick one of {METHODS}.")


def finish(maps: torch.Tensor, size) -> torch.Tensor:
    """Chapter 1's canonical heatmap from any map: ReLU, upsample, per-image min-max."""
    return upsample_and_normalize(torch.relu(maps), size)


def cam(method: str, model: nn.Module, layer: nn.Module, images: torch.Tensor, class_idx=None,
        batch_size: int = 64) -> torch.Tensor:
    """(N, H, W) heatmaps in [0, 1] of ``method`` for ``class_idx`` (None: the predicted class)."""
    acts, grads, logits = capture_activations_and_gradients(model, layer, images, class_idx)
    idx = target_indices(class_idx, logits)
    maps = cam_map(method, acts, grads, model, images, idx, batch_size)
    return finish(maps, images.shape[-2:])
