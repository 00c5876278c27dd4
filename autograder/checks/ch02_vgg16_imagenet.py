"""Hidden checks of chapter 2. Each builds its own seeded VGG-like model or arrays and
compares the student's code with the reference."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import torch
from torch import nn

from autograder.probes.basic_models import SmallVGG, photos
from autograder.checks.common import assert_tensor, hook_count
from autograder.reference import ch02_vgg16_imagenet as ref

warnings.filterwarnings("ignore")  # stderr in a graded cell costs its points

# --- exercise 1: VGGGradCAM ---------------------------------------------------------------------

def check_vgg_logits(VGGGradCAM):
    vgg = SmallVGG().eval()
    wrapped = VGGGradCAM(vgg).eval()
    for n in (3, 1):
        x = photos(n=n)
        with torch.no_grad():
            expected = vgg(x)
            got = wrapped(x)
        assert_tensor(f"logits for a batch of {n}", got, expected, atol=1e-5,
                      hint="Keep the batch dimension when flattening: torch.flatten(x, 1), not "
                           "x.view((1, -1)); apply max-pool, avgpool and classifier in this order.")
    with torch.no_grad():
        acts = wrapped.get_activations(photos())
    assert_tensor("get_activations(x)", acts, vgg.features[:30](photos()),
                  hint="The activations are the output of features[:30], ending with relu5_3.")


def check_vgg_gradients(VGGGradCAM):
    vgg = SmallVGG(seed=2).eval()
    wrapped = VGGGradCAM(vgg).eval()
    x = photos(n=3, seed=3)
    classes = torch.tensor([0, 3, 5])
    logits = wrapped(x)
    logits.gather(1, classes[:, None]).sum().backward()
    got = wrapped.get_activations_gradient()
    reference = ref.VGGGradCAM(SmallVGG(seed=2).eval())
    out = reference(x)
    out.gather(1, classes[:, None]).sum().backward()
    assert_tensor("get_activations_gradient()", got, reference.get_activations_gradient(),
                  hint="Register a hook on the output of features[:30] in forward() and store "
                       "the gradient it receives.")


# --- exercise 2: overlay_heatmap ----------------------------------------------------------------

def check_overlay(overlay_heatmap):
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    cam = rng.random((7, 5)).astype(np.float32)
    for alpha, colormap in ((0.4, cv2.COLORMAP_JET), (0.7, cv2.COLORMAP_VIRIDIS)):
        got = overlay_heatmap(image.copy(), cam.copy(), alpha=alpha, colormap=colormap)
        expected = ref.overlay_heatmap(image, cam, alpha=alpha, colormap=colormap)
        assert isinstance(got, np.ndarray) and got.dtype == np.uint8, (
            "Return a uint8 numpy array (H, W, 3).")
        assert got.shape == expected.shape, (
            f"Expected the photo's shape {expected.shape}, got {got.shape}: cv2.resize takes "
            "(width, height).")
        diff = int(np.abs(got.astype(int) - expected.astype(int)).max())
        assert diff <= 1, (
            f"The overlay differs from the reference by {diff} grey levels (alpha={alpha}): "
            "OpenCV colours in BGR order, convert with cv2.cvtColor(heatmap, cv2.COLOR_BGR2RGB); "
            "blend alpha·heatmap + (1 − alpha)·image, then clip.")


# --- exercise 3: counterfactual_map -------------------------------------------------------------

def check_counterfactual(counterfactual_map):
    gen = torch.Generator().manual_seed(5)
    a = torch.relu(torch.randn(3, 6, 4, 7, generator=gen))
    g = torch.randn(3, 6, 4, 7, generator=gen)
    assert_tensor("counterfactual map", counterfactual_map(a.clone(), g.clone()),
                  ref.counterfactual_map(a, g),
                  hint="Negate the gradients, then Eq. 1 and Eq. 2 as usual (ReLU at the end).")


# --- exercise 4: guided backprop and Guided Grad-CAM --------------------------------------------

def check_guided_backprop(guided_backprop):
    vgg = SmallVGG(seed=6).eval()
    x = photos(n=3, seed=7)
    classes = [1, 4, 2]
    got = guided_backprop(vgg, x.clone(), classes)
    expected = ref.guided_backprop(SmallVGG(seed=6).eval(), x, classes)
    assert_tensor("guided backprop", got, expected, atol=1e-6,
                  hint="Each ReLU passes back only positive gradients (clamp(min=0)), and only "
                       "where its forward input was positive.")
    assert hook_count(vgg) == 0, "Hooks are still registered on the model's ReLUs: remove them."
    assert all(m.inplace for m in vgg.modules() if isinstance(m, nn.ReLU)), (
        "Restore the ReLUs' inplace flag after the call.")
    assert all(p.grad is None for p in vgg.parameters()), (
        "Parameter .grad was filled: use torch.autograd.grad with respect to the input.")


def check_guided_gradcam(guided_gradcam):
    gen = torch.Generator().manual_seed(8)
    guided = torch.randn(2, 3, 10, 14, generator=gen)
    cam = torch.rand(2, 10, 14, generator=gen)
    assert_tensor("Guided Grad-CAM", guided_gradcam(guided.clone(), cam.clone()),
                  ref.guided_gradcam(guided, cam),
                  hint="Multiply each channel of the guided backprop by the image's Grad-CAM.")
