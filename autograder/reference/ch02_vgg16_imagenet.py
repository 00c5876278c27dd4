"""Reference solutions of chapter 2 (VGG16 on ImageNet photos)."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from .ch01_mnist_lenet import gradcam_map, target_indices


class VGGGradCAM(nn.Module):
    """The MLI tutorial's model surgery, done right.

    ``features[:30]`` ends with relu5_3, the paper's Grad-CAM layer; a tensor hook on its
    output keeps the gradient. The rest is the unmodified network: the last max-pool,
    the adaptive average pool, a flatten that keeps the batch dimension, the classifier.
    """

    def __init__(self, vgg: nn.Module):
        super().__init__()
        self.features_conv = vgg.features[:30]
        self.max_pool = vgg.features[30]
        self.avgpool = vgg.avgpool
        self.classifier = vgg.classifier
        self.gradients = None

    def activations_hook(self, grad: torch.Tensor) -> None:
        self.gradients = grad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features_conv(x)
        if x.requires_grad:
            x.register_hook(self.activations_hook)
        x = self.avgpool(self.max_pool(x))
        return self.classifier(torch.flatten(x, 1))

    def get_activations_gradient(self) -> torch.Tensor:
        return self.gradients

    def get_activations(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_conv(x)


def overlay_heatmap(image: np.ndarray, cam, alpha: float = 0.4,
                    colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """A [0, 1] map over an RGB uint8 photo: resize, colour, BGR → RGB, blend, clip."""
    if isinstance(cam, torch.Tensor):
        cam = cam.detach().cpu().numpy()
    h, w = image.shape[:2]
    cam = cv2.resize(np.asarray(cam, dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    heatmap = cv2.applyColorMap(np.uint8(255 * np.clip(cam, 0.0, 1.0)), colormap)
    heatmap = cv2.cvtColor(heatmap, cv2.COLOR_BGR2RGB)
    blended = alpha * heatmap.astype(np.float32) + (1.0 - alpha) * image.astype(np.float32)
    return np.clip(blended, 0, 255).astype(np.uint8)


def counterfactual_map(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Sec. 5 of the paper: Grad-CAM with negated gradients → (N, h, w), what speaks against."""
    return gradcam_map(activations, (-gradients).mean(dim=(2, 3)))


class _PositiveGradient(torch.autograd.Function):
    """Identity forward; backward lets only positive gradients through."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


def guided_backprop(model: nn.Module, images: torch.Tensor, class_idx=None) -> torch.Tensor:
    """Gradient of the class logit w.r.t. the input, where every ReLU (or ReLU6) passes back
    only positive gradients, and only where its forward input was positive → (N, C, H, W).

    A forward hook routes each ReLU's output through ``_PositiveGradient``; the ReLU's own
    backward then masks by its input. Unlike a full backward hook this works with in-place
    ReLUs and with a ReLU module called more than once (EfficientNet reuses them).
    """
    handles = [m.register_forward_hook(lambda module, inputs, output: _PositiveGradient.apply(output))
               for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    try:
        with torch.enable_grad():
            x = images.detach().clone().requires_grad_(True)
            logits = model(x)
            idx = target_indices(class_idx, logits)
            (grad,) = torch.autograd.grad(logits.gather(1, idx[:, None]).sum(), x)
    finally:
        for h in handles:
            h.remove()
    return grad.detach()


def guided_gradcam(guided: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """Guided backprop (N, C, H, W) × the upsampled Grad-CAM (N, H, W)."""
    return guided * cam[:, None]
