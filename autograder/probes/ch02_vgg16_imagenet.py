"""Probes of chapter 2: each builds a check's seeded VGG-like model or arrays, calls the
student's function and returns what it saw (results, hooks left behind, ReLU flags, gradients
touched)."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import torch
from torch import nn

from autograder.probes.basic_models import SmallVGG, photos
from autograder.probes.common import attempt, hook_count

warnings.filterwarnings("ignore")  # stderr in a graded cell costs its points


# --- inputs shared with the verdicts (built the same, bit for bit, on both sides) --------------

LOGITS_BATCHES = (3, 1)


def logits_model():
    return SmallVGG().eval()


def gradients_inputs():
    """Model, images and one class per image (the verdict builds its own model, the same)."""
    return SmallVGG(seed=2).eval(), photos(n=3, seed=3), torch.tensor([0, 3, 5])


def overlay_inputs():
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    cam = rng.random((7, 5)).astype(np.float32)
    return image, cam


OVERLAY_CASES = ((0.4, cv2.COLORMAP_JET), (0.7, cv2.COLORMAP_VIRIDIS))
#: The case also run with the map as a torch tensor (the chapter's figures pass tensors).
OVERLAY_TENSOR_CASE = OVERLAY_CASES[0]


def counterfactual_inputs():
    gen = torch.Generator().manual_seed(5)
    a = torch.relu(torch.randn(3, 6, 4, 7, generator=gen))
    g = torch.randn(3, 6, 4, 7, generator=gen)
    return a, g


def guided_inputs():
    return SmallVGG(seed=6).eval(), photos(n=3, seed=7)


def guided_relu6_inputs():
    """A VGG-like net where some ReLUs are in-place ReLU6 (as in the offline EfficientNet-Lite0),
    some activations above 6, for ``class_idx=None``."""
    vgg = SmallVGG(seed=9).eval()
    for i, m in enumerate(vgg.features):
        if isinstance(m, nn.ReLU) and i % 4 == 1:
            vgg.features[i] = nn.ReLU6(inplace=True)
    vgg.classifier[1] = nn.ReLU6(inplace=True)
    return vgg, photos(n=3, seed=10)


GUIDED_CLASSES = (1, 4, 2)


def guided_gradcam_inputs():
    gen = torch.Generator().manual_seed(8)
    guided = torch.randn(2, 3, 10, 14, generator=gen)
    cam = torch.rand(2, 10, 14, generator=gen)
    return guided, cam


def _as_ndarray(value):
    """An ndarray subclass's own data as a plain array (the old check accepted subclasses);
    anything else as it is."""
    if isinstance(value, np.ndarray) and type(value) is not np.ndarray:
        return np.ndarray.view(value, np.ndarray)
    return value


# --- exercise 1: VGGGradCAM ---------------------------------------------------------------------

def probe_vgg_logits(VGGGradCAM):
    wrapped = VGGGradCAM(logits_model()).eval()
    seen = {"logits": []}
    with torch.no_grad():
        for n in LOGITS_BATCHES:
            seen["logits"].append(wrapped(photos(n=n)))
        seen["activations"] = wrapped.get_activations(photos())
    return seen


def probe_vgg_gradients(VGGGradCAM):
    vgg, x, classes = gradients_inputs()
    wrapped = VGGGradCAM(vgg).eval()
    logits = wrapped(x)
    logits.gather(1, classes[:, None]).sum().backward()
    return {"gradient": wrapped.get_activations_gradient()}


# --- exercise 2: overlay_heatmap ----------------------------------------------------------------

def probe_overlay(overlay_heatmap):
    image, cam = overlay_inputs()
    alpha, colormap = OVERLAY_TENSOR_CASE
    tensor = attempt(overlay_heatmap, image.copy(), torch.from_numpy(cam.copy()), alpha=alpha,
                     colormap=colormap)
    if "value" in tensor:
        tensor["value"] = _as_ndarray(tensor["value"])
    return {"overlays": [_as_ndarray(overlay_heatmap(image.copy(), cam.copy(), alpha=alpha,
                                                     colormap=colormap))
                         for alpha, colormap in OVERLAY_CASES],
            "overlay_of_tensor": tensor}


# --- exercise 3: counterfactual_map -------------------------------------------------------------

def probe_counterfactual(counterfactual_map):
    a, g = counterfactual_inputs()
    return {"map": counterfactual_map(a.clone(), g.clone())}


# --- exercise 4: guided backprop and Guided Grad-CAM --------------------------------------------

def probe_guided_backprop(guided_backprop):
    vgg, x = guided_inputs()
    got = guided_backprop(vgg, x.clone(), list(GUIDED_CLASSES))
    seen = {"guided": got, "hooks": hook_count(vgg),
            "relus_inplace": all(m.inplace for m in vgg.modules() if isinstance(m, nn.ReLU)),
            "grads_none": all(p.grad is None for p in vgg.parameters())}
    net6, x6 = guided_relu6_inputs()
    seen["guided_relu6_argmax"] = guided_backprop(net6, x6.clone())  # class_idx=None: argmax
    seen["relu6_hooks"] = hook_count(net6)
    seen["relu6_inplace"] = all(m.inplace for m in net6.modules()
                                if isinstance(m, (nn.ReLU, nn.ReLU6)))
    return seen


def probe_guided_gradcam(guided_gradcam):
    guided, cam = guided_gradcam_inputs()
    return {"guided_gradcam": guided_gradcam(guided.clone(), cam.clone())}
