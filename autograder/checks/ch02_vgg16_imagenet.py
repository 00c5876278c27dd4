"""Hidden checks of chapter 2. Each verdict rebuilds its probe's seeded VGG-like model or
arrays, computes the reference here and compares it with what the probe saw the student's
function return; an AssertionError message tells the student what went wrong."""

from __future__ import annotations

import numpy as np
import torch

from autograder.checks.common import assert_tensor, paired
from autograder.probes import ch02_vgg16_imagenet as probe
from autograder.probes.basic_models import photos
from autograder.reference import ch02_vgg16_imagenet as ref


# --- exercise 1: VGGGradCAM ---------------------------------------------------------------------

@paired(probe.probe_vgg_logits)
def check_vgg_logits(seen):
    vgg = probe.logits_model()
    for n, got in zip(probe.LOGITS_BATCHES, seen["logits"], strict=True):
        with torch.no_grad():
            expected = vgg(photos(n=n))
        assert_tensor(f"logits for a batch of {n}", got, expected, atol=1e-5,
                      hint="Keep the batch dimension when flattening: torch.flatten(x, 1), not "
                           "x.view((1, -1)); apply max-pool, avgpool and classifier in this order.")
    with torch.no_grad():
        expected = vgg.features[:30](photos())
    assert_tensor("get_activations(x)", seen["activations"], expected,
                  hint="The activations are the output of features[:30], ending with relu5_3.")


@paired(probe.probe_vgg_gradients)
def check_vgg_gradients(seen):
    vgg, x, classes = probe.gradients_inputs()
    reference = ref.VGGGradCAM(vgg)
    out = reference(x)
    out.gather(1, classes[:, None]).sum().backward()
    assert_tensor("get_activations_gradient()", seen["gradient"],
                  reference.get_activations_gradient(),
                  hint="Register a hook on the output of features[:30] in forward() and store "
                       "the gradient it receives.")


# --- exercise 2: overlay_heatmap ----------------------------------------------------------------

@paired(probe.probe_overlay)
def check_overlay(seen):
    image, cam = probe.overlay_inputs()
    tensor = seen["overlay_of_tensor"]
    assert "error" not in tensor, (
        f"overlay_heatmap failed when the map is a torch tensor, as the chapter's figures pass "
        f"it: {tensor['error']}. Accept both: convert a tensor with cam.detach().cpu().numpy().")
    cases = list(zip(probe.OVERLAY_CASES, seen["overlays"], strict=True))
    for (alpha, colormap), got in cases + [(probe.OVERLAY_TENSOR_CASE, tensor["value"])]:
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

@paired(probe.probe_counterfactual)
def check_counterfactual(seen):
    a, g = probe.counterfactual_inputs()
    assert_tensor("counterfactual map", seen["map"], ref.counterfactual_map(a, g),
                  hint="Negate the gradients, then Eq. 1 and Eq. 2 as usual (ReLU at the end).")


# --- exercise 4: guided backprop and Guided Grad-CAM --------------------------------------------

@paired(probe.probe_guided_backprop)
def check_guided_backprop(seen):
    """The result must match the reference; then no hooks left, ReLUs' inplace flag restored,
    parameter .grad untouched (as the probe saw the model after the call)."""
    vgg, x = probe.guided_inputs()
    expected = ref.guided_backprop(vgg, x, list(probe.GUIDED_CLASSES))
    assert_tensor("guided backprop", seen["guided"], expected, atol=1e-6,
                  hint="Each ReLU passes back only positive gradients (clamp(min=0)), and only "
                       "where its forward input was positive.")
    assert seen["hooks"] == 0, "Hooks are still registered on the model's ReLUs: remove them."
    assert seen["relus_inplace"] is True, "Restore the ReLUs' inplace flag after the call."
    assert seen["grads_none"] is True, (
        "Parameter .grad was filled: use torch.autograd.grad with respect to the input.")
    net6, x6 = probe.guided_relu6_inputs()
    assert_tensor("guided backprop of a network with ReLU6 layers, class_idx=None",
                  seen["guided_relu6_argmax"], ref.guided_backprop(net6, x6, None), atol=1e-6,
                  hint="Guide every nn.ReLU and nn.ReLU6 module (EfficientNet-Lite0 uses ReLU6), "
                       "and with class_idx=None explain each image's highest logit (argmax).")
    assert seen["relu6_hooks"] == 0 and seen["relu6_inplace"] is True, (
        "On the network with ReLU6 layers, hooks were left or an inplace flag not restored.")


@paired(probe.probe_guided_gradcam)
def check_guided_gradcam(seen):
    guided, cam = probe.guided_gradcam_inputs()
    assert_tensor("Guided Grad-CAM", seen["guided_gradcam"], ref.guided_gradcam(guided, cam),
                  hint="Multiply each channel of the guided backprop by the image's Grad-CAM.")
