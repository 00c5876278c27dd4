"""Reference solutions of chapter 3: the GradCAM context manager, class weights, plot_gradcam and
the pointing games."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# Exercise 4's reference is the helper package's pointing games (chapters 4 and 5 use them).
from gradcam_course.metrics import energy_pointing_game, pointing_game  # noqa: F401

from .ch01_mnist_lenet import _check_layer, gradcam_map, gradcam_weights, target_indices, upsample_and_normalize

CLASSES = ("healthy", "covid")


class GradCAM:
    """``with GradCAM(model, layer) as cam: maps = cam(images, class_idx)``.

    The forward hook lives exactly as long as the ``with`` block, whatever happens inside it.
    After a call, ``cam.logits`` holds the detached logits of that forward pass.
    """

    def __init__(self, model: nn.Module, target_layer: nn.Module):
        _check_layer(model, target_layer)
        self.model, self.target_layer = model, target_layer
        self.handle = None
        self.activations = None
        self.logits = None

    def _hook(self, module, inputs, output):
        if not output.requires_grad:
            output.requires_grad_(True)
        self.activations = output
        return output.clone()  # in-place ops downstream (ReLU(inplace), +=) leave ours alone

    def __enter__(self):
        self.handle = self.target_layer.register_forward_hook(self._hook)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.handle is not None:
            self.handle.remove()
            self.handle = None
        self.activations = None
        return False

    def __call__(self, images: torch.Tensor, class_idx=None) -> torch.Tensor:
        if self.handle is None:
            raise RuntimeError("Use GradCAM inside a `with GradCAM(model, layer) as cam:` block.")
        with torch.enable_grad():
            logits = self.model(images)
            idx = target_indices(class_idx, logits)
            (grads,) = torch.autograd.grad(logits.gather(1, idx[:, None]).sum(), self.activations)
        self.logits = logits.detach()
        cam = gradcam_map(self.activations.detach(), gradcam_weights(grads))
        self.activations = None
        return upsample_and_normalize(cam, images.shape[-2:])


def class_weights(counts) -> torch.Tensor:
    """w_c = N / (C · n_c): inverse frequency, scaled so that the average weight per sample is 1."""
    counts = torch.as_tensor(counts, dtype=torch.float32).reshape(-1)
    if (counts <= 0).any():
        raise ValueError(f"Every class needs at least one sample, got counts {counts.tolist()}.")
    return counts.sum() / (len(counts) * counts)


def plot_gradcam(image_path, model, target_layer, transform, class_idx=None):
    import matplotlib.pyplot as plt
    from PIL import Image

    from gradcam_course.plotting import show_cam

    path = Path(image_path)
    if not path.is_file():
        raise FileNotFoundError(f"No image at {os.fspath(image_path)}")
    with Image.open(path) as img:
        original = img.copy()
    x = transform(original)[None].to(next(model.parameters()).device)
    model.eval()
    with GradCAM(model, target_layer) as cam:
        maps = cam(x, class_idx)
        probs = F.softmax(cam.logits, 1)[0]
    pred = int(probs.argmax())
    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3.6), layout="constrained")
    left.imshow(original, cmap="gray" if original.mode in ("L", "I", "F") else None)
    left.set_title(path.name)
    left.axis("off")
    shown = CLASSES[pred] if class_idx is None else CLASSES[int(class_idx)]
    show_cam(right, x[0].cpu(), maps[0].cpu(), f"Grad-CAM for {shown}")
    fig.suptitle(f"predicted: {CLASSES[pred]} (p = {probs[pred]:.2f})")
    return fig, maps[0].cpu()
