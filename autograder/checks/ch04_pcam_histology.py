"""Hidden checks of chapter 4. Each builds a small seeded single-logit CNN and its own inputs
(non-square, batch > 1, mixed targets) and compares the student's function with the reference;
an AssertionError message tells the student what went wrong."""

from __future__ import annotations

import warnings

import torch

from autograder.probes.basic_models import OneLogitCNN
from autograder.probes.basic_models import rand_images as images
from autograder.checks.common import assert_tensor, hook_count, refusing_package_answers
from autograder.reference import ch04_pcam_histology as ref

CHAPTER = "04_pcam_histology"

warnings.filterwarnings("ignore")  # stderr in a graded cell costs its points


def _unchanged(name, before, after):
    assert torch.equal(before, after), f"{name} changed the images it was given: work on a copy."


# --- exercise 1: Grad-CAM for one logit ---------------------------------------------------------

def check_gradcam_values(binary_gradcam):
    """Mixed targets and the predicted class, a target conv followed by an in-place ReLU."""
    model, x = OneLogitCNN(), images()
    layer = model.features[4]
    for target in ([1, 0, 1], None, torch.tensor([0, 1, 1])):
        got = binary_gradcam(model, layer, x, target)
        want = ref.binary_gradcam(model, layer, x, target)
        assert_tensor(f"maps for target={target!r}", got, want, atol=1e-5,
                      hint="Chapter 1's Grad-CAM for the score s = +logit (target 1) or -logit "
                           "(target 0), the predicted class for None; bilinear upsampling to the "
                           "input size, per-image min-max with eps 1e-7. Does your hook return "
                           "output.clone() (an in-place ReLU follows this layer)?")
    assert hook_count(model) == 0, "a hook is still registered on the model: remove it."


def check_gradcam_negative(binary_gradcam):
    """Target 0 for every image: the score is -logit."""
    model, x = OneLogitCNN(seed=2), images(n=4, h=16, w=12, seed=3)
    layer = model.features[4]
    got = binary_gradcam(model, layer, x, 0)
    want = ref.binary_gradcam(model, layer, x, 0)
    assert_tensor("maps for target=0 (normal)", got, want, atol=1e-5,
                  hint="The score of class 0 is -logit: its gradient has the opposite sign, so "
                       "the weights flip and the ReLU keeps other regions.")


# --- exercise 2: saliency -----------------------------------------------------------------------

def check_saliency(saliency_map):
    model, x = OneLogitCNN(seed=4), images(n=3, h=13, w=17, seed=5)
    before = x.clone()
    for target in ([0, 1, 0], None, 1):
        got = saliency_map(model, x, target)
        want = ref.saliency_map(model, x, target)
        assert_tensor(f"saliency for target={target!r}", got, want, atol=1e-5,
                      hint="|d score / d input|, the maximum over the colour channels (of the "
                           "absolute values), then per-image min-max with eps 1e-7.")
    _unchanged("saliency_map", before, x)
    assert not x.requires_grad, "saliency_map set requires_grad on the caller's images."


# --- exercise 3: occlusion ----------------------------------------------------------------------

def check_occlusion_values(occlusion_sensitivity):
    """Windows that end exactly at the border (off-by-one) and windows that do not cover it."""
    model, x = OneLogitCNN(seed=6), images(n=2, h=20, w=18, seed=7)
    before = x.clone()
    for patch, stride, target in ((8, 4, [1, 0]), (5, 3, None), (6, 6, 1)):
        got = occlusion_sensitivity(model, x, patch, stride, 0.0, target)
        want = ref.occlusion_sensitivity(model, x, patch, stride, 0.0, target)
        assert_tensor(f"occlusion with patch={patch}, stride={stride}", got, want, atol=1e-4,
                      hint="Windows start at 0, stride, 2*stride, ... while start + patch <= size "
                           "((size - patch) // stride + 1 per axis); a pixel gets the mean drop "
                           "score(x) - score(occluded) of the windows covering it, 0 if none.")
    _unchanged("occlusion_sensitivity", before, x)


def check_occlusion_baseline(occlusion_sensitivity):
    model, x = OneLogitCNN(seed=8), images(n=3, h=12, w=12, seed=9)
    got = occlusion_sensitivity(model, x, 4, 4, 0.5, 0)
    want = ref.occlusion_sensitivity(model, x, 4, 4, 0.5, 0)
    assert_tensor("occlusion with baseline=0.5, target=0", got, want, atol=1e-4,
                  hint="Fill the window with the baseline value, not 0, and use the score -logit "
                       "for target 0.")


# --- exercise 4: integrated gradients -----------------------------------------------------------

def check_ig_values(integrated_gradients):
    model, x = OneLogitCNN(seed=10), images(n=3, h=10, w=14, seed=11)
    before = x.clone()
    for steps, target in ((20, [1, 0, 1]), (7, None)):
        got = integrated_gradients(model, x, None, steps, target)
        want = ref.integrated_gradients(model, x, None, steps, target)
        assert_tensor(f"integrated gradients, steps={steps}", got, want, atol=1e-5,
                      hint="(x - x') times the mean gradient at x' + alpha_k (x - x') with the "
                           "midpoint rule alpha_k = (k + 0.5) / steps, k = 0 .. steps - 1.")
    _unchanged("integrated_gradients", before, x)


def check_ig_completeness(integrated_gradients):
    """Attributions add up to score(x) - score(baseline), within the quadrature error."""
    model, x = OneLogitCNN(seed=12), images(n=4, h=12, w=12, seed=13)
    attributions = integrated_gradients(model, x, None, 128, 1)
    with torch.no_grad():
        gap = model(x)[:, 0] - model(torch.zeros_like(x))[:, 0]
    total = attributions.detach().flatten(1).sum(1)
    assert torch.allclose(total, gap, rtol=0.02, atol=2e-3), (
        f"sum of attributions {total.tolist()} but score(x) - score(0) = {gap.tolist()}: "
        "completeness fails (is the (x - baseline) factor there, and the mean over the steps?)")


def check_ig_baseline(integrated_gradients):
    model, x = OneLogitCNN(seed=14), images(n=2, h=12, w=10, seed=15)
    tensor_baseline = torch.rand(x.shape, generator=torch.Generator().manual_seed(16))
    for baseline in (0.5, tensor_baseline):
        got = integrated_gradients(model, x, baseline, 16, 0)
        want = ref.integrated_gradients(model, x, baseline, 16, 0)
        kind = "a float" if isinstance(baseline, float) else "a tensor"
        assert_tensor(f"integrated gradients with {kind} baseline and target=0", got, want,
                      atol=1e-5, hint="The path starts at the baseline and the factor is "
                                      "(x - baseline); the score of target 0 is -logit.")


# --- exercise 5: insertion and deletion ---------------------------------------------------------

def check_insertion_curves(insertion_deletion):
    insertion_deletion = refusing_package_answers(insertion_deletion, CHAPTER)
    model, x = OneLogitCNN(seed=17), images(n=3, h=12, w=16, seed=18)
    maps = torch.rand(3, 12, 16, generator=torch.Generator().manual_seed(19))
    maps[0, :2] = 0.5  # ties: the lower flat index goes first
    for steps, baseline, target in ((5, 0.2, [1, 0, 1]), (8, 0.0, None)):
        got = insertion_deletion(model, x, maps, steps, baseline, target)
        want = ref.insertion_deletion(model, x, maps, steps, baseline, target)
        for key in ("insertion", "deletion"):
            assert isinstance(got, dict) and key in got, f"return a dict with the key {key!r}"
            assert_tensor(f"{key} curve (steps={steps}, baseline={baseline})", got[key], want[key],
                          atol=1e-5, hint="Step k keeps the top (k * H * W) // steps pixels of "
                                          "the map (argsort descending, stable) from the image "
                                          "(insertion) or replaces them by the baseline "
                                          "(deletion); the curve is sigmoid(score) of the target "
                                          "chosen on the images.")


def check_insertion_auc(insertion_deletion):
    insertion_deletion = refusing_package_answers(insertion_deletion, CHAPTER)
    model, x = OneLogitCNN(seed=20), images(n=2, h=10, w=10, seed=21)
    maps = torch.rand(2, 10, 10, generator=torch.Generator().manual_seed(22))
    got = insertion_deletion(model, x, maps, 4, 0.0, 1)
    want = ref.insertion_deletion(model, x, maps, 4, 0.0, 1)
    for key in ("fractions", "insertion_auc", "deletion_auc"):
        assert isinstance(got, dict) and key in got, f"return a dict with the key {key!r}"
        assert_tensor(key, got[key], want[key], atol=1e-5,
                      hint="fractions = k / steps; each area is torch.trapezoid of the curve over "
                           "the fractions, one per image.")
