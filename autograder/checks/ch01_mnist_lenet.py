"""Hidden checks of chapter 1. Each verdict rebuilds its probe's seeded inputs, computes the
reference here and compares it with what the probe saw the student's function return; an
AssertionError message tells the student what went wrong."""

from __future__ import annotations

import torch

from autograder.checks.common import assert_tensor, paired
from autograder.probes import ch01_mnist_lenet as probe
from autograder.reference import ch01_mnist_lenet as ref


def _unpack(result, what="capture_activations_and_gradients"):
    assert isinstance(result, tuple) and len(result) == 3, (
        f"{what} must return a tuple (activations, gradients, logits).")
    return result


# --- exercise 1: capture_activations_and_gradients ------------------------------------------

@paired(probe.probe_capture_values)
def check_capture_values(seen):
    """Batch of 4 non-square images, a different target class per image."""
    model, x, classes = probe.values_inputs()
    a, g, logits = _unpack(seen["result"])
    ra, rg, rl = ref.capture_activations_and_gradients(model, model.target, x, classes)
    assert_tensor("logits", logits, rl, hint="Return the model's raw output for the batch.")
    assert_tensor("activations", a, ra, hint="Store the target layer's output for the whole batch.")
    assert_tensor("gradients", g, rg, atol=1e-5,
                  hint="Differentiate the raw logit logits[n, class_idx[n]] of each image (not a "
                       "softmax probability, not one class for the whole batch).")


@paired(probe.probe_capture_class_idx)
def check_capture_class_idx(seen):
    """None → argmax, int → same class for all, tensor → one per image, wrong length → error."""
    model, x = probe.class_idx_inputs()
    for (label, class_idx), result in zip(probe.CLASS_IDX_CASES, seen["results"], strict=True):
        _, g, _ = _unpack(result)
        _, rg, _ = ref.capture_activations_and_gradients(model, model.target, x, class_idx)
        assert_tensor(f"gradients for class_idx={label}", g, rg,
                      hint="None means the predicted class of each image; an int the same class "
                           "for every image; a sequence one class per image.")
    assert seen["two_for_three"] == "ValueError", (
        "class_idx with 2 entries for 3 images must raise ValueError.")


@paired(probe.probe_capture_inplace)
def check_capture_inplace(seen):
    """The target conv is followed by ReLU(inplace=True): neither result may see that ReLU."""
    model, x, classes = probe.inplace_inputs()
    a, g, _ = _unpack(seen["result"])
    ra, rg, _ = ref.capture_activations_and_gradients(model, model.target, x, classes)
    assert_tensor("activations (layer followed by an in-place ReLU)", a, ra,
                  hint="The in-place ReLU after the layer overwrote the stored output: store a "
                       "clone in the hook.")
    assert_tensor("gradients (layer followed by an in-place ReLU)", g, rg,
                  hint="Take the gradient with respect to the layer's own output.")


@paired(probe.probe_capture_hygiene)
def check_capture_hygiene(seen):
    """No hooks left behind (also when the forward raises); parameter .grad untouched. The
    results must also be right, so these points cannot be had by reporting a clean model."""
    model, x = probe.hygiene_inputs()
    for key, class_idx in (("result", None), ("second", 1)):
        a, g, _ = _unpack(seen[key])
        ra, rg, _ = ref.capture_activations_and_gradients(model, model.target, x, class_idx)
        assert_tensor("activations", a, ra, hint="Store the target layer's output for the whole batch.")
        assert_tensor("gradients", g, rg, hint="Differentiate the raw logit of each image's class.")
    assert seen["hooks"] == 0, (
        f"{seen['hooks']} hook(s) are still registered after the call: keep each handle and "
        "call handle.remove() (in a finally block).")
    assert seen["grads_none"] is True, (
        "Parameter .grad was filled: use torch.autograd.grad with respect to the activation "
        "(or restore the parameters' gradients) so Grad-CAM leaves the model as it found it.")
    assert seen["grads_kept"] is True, "Existing parameter gradients were changed by the call."
    assert seen["hooks_after_error"] == 0, (
        "Hooks stay registered when the model's forward raises: remove them in a finally block.")


# --- exercise 2: gradcam_weights ----------------------------------------------------------------

@paired(probe.probe_weights)
def check_weights(seen):
    g = probe.weights_input()
    assert_tensor("weights", seen["weights"], ref.gradcam_weights(g), atol=1e-6,
                  hint="Average over the spatial dimensions h, w only (Eq. 1): one weight per "
                       "image and channel, shape (N, K).")


# --- exercise 3: gradcam_map --------------------------------------------------------------------

@paired(probe.probe_map)
def check_map(seen):
    a, w = probe.map_inputs()
    assert_tensor("map", seen["map"], ref.gradcam_map(a, w), atol=1e-5,
                  hint="Weight each channel by its own image's weight, sum over channels, then "
                       "ReLU (Eq. 2).")
    assert_tensor("map with only negative evidence", seen["negative"], torch.zeros(3, 4, 9), atol=0,
                  hint="The ReLU keeps only positive evidence.")


# --- exercise 4: upsample_and_normalize ---------------------------------------------------------

@paired(probe.probe_upsample_values)
def check_upsample_values(seen):
    cam = probe.upsample_input()
    for size, got in zip(probe.UPSAMPLE_SIZES, seen["maps"], strict=True):
        assert_tensor(f"map upsampled to {size}", got, ref.upsample_and_normalize(cam, size),
                      atol=1e-5,
                      hint="Upsample with F.interpolate(mode='bilinear', align_corners=False), "
                           "then min-max normalise each image (after upsampling).")


@paired(probe.probe_upsample_edge_cases)
def check_upsample_edge_cases(seen):
    out = seen["out"]
    assert type(out) is torch.Tensor, "Return a torch.Tensor."
    assert tuple(out.shape) == (2, 6, 8), f"Expected shape (2, 6, 8), got {tuple(out.shape)}."
    assert bool(torch.isfinite(out).all()), (
        "An all-zero map produced NaN: add eps 1e-7 to the denominator (max - min + 1e-7).")
    assert float(out[0].abs().max()) == 0.0, "An all-zero map must stay all zero."
    assert abs(float(out[1].max()) - 1.0) < 1e-5 and abs(float(out[1].min())) < 1e-6, (
        "Each image must be normalised on its own to [0, 1].")
