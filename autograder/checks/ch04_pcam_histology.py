"""Hidden checks of chapter 4. Each verdict rebuilds its probe's seeded single-logit CNN and
inputs (non-square, batch > 1, mixed targets), computes the reference here and compares it with
what the probe saw the student's function return; an AssertionError message tells the student
what went wrong."""

from __future__ import annotations

import math

import torch

from autograder.checks.common import assert_tensor, paired
from autograder.probes import ch04_pcam_histology as probe
from autograder.reference import ch04_pcam_histology as ref

CHAPTER = probe.CHAPTER


def _unchanged(name, before, after):
    assert type(after) is torch.Tensor and tuple(after.shape) == tuple(before.shape) \
        and after.dtype == before.dtype and torch.equal(before, after.detach()), (
        f"{name} changed the images it was given: work on a copy.")


# --- exercise 1: Grad-CAM for one logit ---------------------------------------------------------

@paired(probe.probe_gradcam_values)
def check_gradcam_values(seen):
    """Mixed targets and the predicted class, a target conv followed by an in-place ReLU."""
    model, layer, x = probe.gradcam_values_inputs()
    for target, got in zip(probe.gradcam_values_targets(), seen["maps"], strict=True):
        want = ref.binary_gradcam(model, layer, x, target)
        assert_tensor(f"maps for target={target!r}", got, want, atol=1e-5,
                      hint="Chapter 1's Grad-CAM for the score s = +logit (target 1) or -logit "
                           "(target 0), the predicted class for None; bilinear upsampling to the "
                           "input size, per-image min-max with eps 1e-7. Does your hook return "
                           "output.clone() (an in-place ReLU follows this layer)?")
    assert seen["hooks"] == 0, "a hook is still registered on the model: remove it."


@paired(probe.probe_gradcam_negative)
def check_gradcam_negative(seen):
    """Target 0 for every image: the score is -logit."""
    model, layer, x = probe.gradcam_negative_inputs()
    want = ref.binary_gradcam(model, layer, x, 0)
    assert_tensor("maps for target=0 (normal)", seen["maps"], want, atol=1e-5,
                  hint="The score of class 0 is -logit: its gradient has the opposite sign, so "
                       "the weights flip and the ReLU keeps other regions.")


# --- exercise 2: saliency -----------------------------------------------------------------------

@paired(probe.probe_saliency)
def check_saliency(seen):
    model, x = probe.saliency_inputs()
    for target, got in zip(probe.saliency_targets(), seen["maps"], strict=True):
        want = ref.saliency_map(model, x, target)
        assert_tensor(f"saliency for target={target!r}", got, want, atol=1e-5,
                      hint="|d score / d input|, the maximum over the colour channels (of the "
                           "absolute values), then per-image min-max with eps 1e-7.")
    after = seen["images_after"]
    _unchanged("saliency_map", x, after)
    assert not after.requires_grad, "saliency_map set requires_grad on the caller's images."


# --- exercise 3: occlusion ----------------------------------------------------------------------

@paired(probe.probe_occlusion_values)
def check_occlusion_values(seen):
    """Windows that end exactly at the border (off-by-one) and windows that do not cover it."""
    model, x = probe.occlusion_values_inputs()
    for (patch, stride, target), got in zip(probe.occlusion_values_cases(), seen["maps"], strict=True):
        want = ref.occlusion_sensitivity(model, x, patch, stride, 0.0, target)
        assert_tensor(f"occlusion with patch={patch}, stride={stride}", got, want, atol=1e-4,
                      hint="Windows start at 0, stride, 2*stride, ... while start + patch <= size "
                           "((size - patch) // stride + 1 per axis); a pixel gets the mean drop "
                           "score(x) - score(occluded) of the windows covering it, 0 if none.")
    _unchanged("occlusion_sensitivity", x, seen["images_after"])
    boundary_model, boundary_x = probe.occlusion_boundary_inputs()
    patch, stride, target = probe.OCCLUSION_BOUNDARY_CASE
    assert_tensor("occlusion with target=None on images whose logits are close to 0",
                  seen["boundary"], ref.occlusion_sensitivity(boundary_model, boundary_x, patch,
                                                              stride, 0.0, target),
                  atol=1e-4, hint=SAME_TARGET_HINT)
    _assert_batched(seen["calls"], x)


SAME_TARGET_HINT = ("With target=None, choose each image's class once, on the unperturbed images "
                    "(score_signs(model(images), None)), and score every perturbed copy of the "
                    "image for that class, even where the copy's own prediction flips.")


def _assert_batched(calls, x):
    """Occlusion's forward passes: none with gradients, and the occluded copies stacked, as the
    statement asks. The limit is lenient: a pass per image (all its windows at once) or small
    batches of windows pass; one window at a time (the original assignment's loop) does not."""
    assert isinstance(calls, list) and calls and all(
        isinstance(c, tuple) and len(c) == 2 and type(c[0]) is int and type(c[1]) is bool
        for c in calls), "internal error: the probe saw no forward passes of the model."
    assert not any(grad for _, grad in calls), (
        "a forward pass of occlusion_sensitivity ran with gradients enabled: occlusion needs no "
        "gradients, run it under torch.inference_mode().")
    n, _, h, w = x.shape
    cases = probe.occlusion_values_cases()
    windows = sum(len(range(0, h - patch + 1, stride)) * len(range(0, w - patch + 1, stride))
                  for patch, stride, _ in cases)
    limit = len(cases) * (n + 2)
    assert len(calls) <= limit, (
        f"{len(calls)} forward passes for {windows} windows on {n} images in {len(cases)} calls; "
        f"at most {limit} are needed: stack the occluded copies and evaluate them in batches (a "
        "few hundred images per forward pass), not one window at a time.")


@paired(probe.probe_occlusion_baseline)
def check_occlusion_baseline(seen):
    model, x = probe.occlusion_baseline_inputs()
    want = ref.occlusion_sensitivity(model, x, 4, 4, 0.5, 0)
    assert_tensor("occlusion with baseline=0.5, target=0", seen["maps"], want, atol=1e-4,
                  hint="Fill the window with the baseline value, not 0, and use the score -logit "
                       "for target 0.")


# --- exercise 4: integrated gradients -----------------------------------------------------------

@paired(probe.probe_ig_values)
def check_ig_values(seen):
    model, x = probe.ig_values_inputs()
    for (steps, target), got in zip(probe.ig_values_cases(), seen["attributions"], strict=True):
        want = ref.integrated_gradients(model, x, None, steps, target)
        assert_tensor(f"integrated gradients, steps={steps}", got, want, atol=1e-5,
                      hint="(x - x') times the mean gradient at x' + alpha_k (x - x') with the "
                           "midpoint rule alpha_k = (k + 0.5) / steps, k = 0 .. steps - 1.")
    _unchanged("integrated_gradients", x, seen["images_after"])
    boundary_model, boundary_x = probe.ig_boundary_inputs()
    assert_tensor("integrated gradients with target=None on images whose logits are close to 0",
                  seen["boundary"], ref.integrated_gradients(boundary_model, boundary_x, None,
                                                             probe.IG_BOUNDARY_STEPS, None),
                  atol=1e-5, hint=SAME_TARGET_HINT.replace("perturbed copy", "point of the path"))


@paired(probe.probe_ig_completeness)
def check_ig_completeness(seen):
    """Attributions add up to score(x) - score(baseline), within the quadrature error."""
    model, x = probe.ig_completeness_inputs()
    attributions = seen["attributions"]
    with torch.no_grad():
        gap = model(x)[:, 0] - model(torch.zeros_like(x))[:, 0]
    total = attributions.detach().flatten(1).sum(1)
    assert torch.allclose(total, gap, rtol=0.02, atol=2e-3), (
        f"sum of attributions {total.tolist()} but score(x) - score(0) = {gap.tolist()}: "
        "completeness fails (is the (x - baseline) factor there, and the mean over the steps?)")


@paired(probe.probe_ig_baseline)
def check_ig_baseline(seen):
    model, x, tensor_baseline = probe.ig_baseline_inputs()
    for baseline, got in zip(probe.ig_baselines(tensor_baseline), seen["attributions"], strict=True):
        want = ref.integrated_gradients(model, x, baseline, 16, 0)
        kind = "a float" if isinstance(baseline, float) else "a tensor"
        assert_tensor(f"integrated gradients with {kind} baseline and target=0", got, want,
                      atol=1e-5, hint="The path starts at the baseline and the factor is "
                                      "(x - baseline); the score of target 0 is -logit.")


# --- exercise 5: insertion and deletion ---------------------------------------------------------

@paired(probe.probe_insertion_curves)
def check_insertion_curves(seen):
    model, x, maps = probe.insertion_curves_inputs()
    for (steps, baseline, target), got in zip(probe.insertion_curves_cases(), seen["results"],
                                              strict=True):
        want = ref.insertion_deletion(model, x, maps, steps, baseline, target)
        for key in ("insertion", "deletion"):
            assert isinstance(got, dict) and key in got, f"return a dict with the key {key!r}"
            assert_tensor(f"{key} curve (steps={steps}, baseline={baseline})", got[key], want[key],
                          atol=1e-5, hint="Step k keeps the top (k * H * W) // steps pixels of "
                                          "the map (argsort descending, stable) from the image "
                                          "(insertion) or replaces them by the baseline "
                                          "(deletion); the curve is sigmoid(score) of the target "
                                          "chosen on the images.")
    boundary_model, boundary_x, boundary_maps = probe.insertion_boundary_inputs()
    want = ref.insertion_deletion(boundary_model, boundary_x, boundary_maps,
                                  *probe.INSERTION_BOUNDARY_CASE)
    got = seen["boundary"]
    for key in ("insertion", "deletion"):
        assert isinstance(got, dict) and key in got, f"return a dict with the key {key!r}"
        assert_tensor(f"{key} curve with target=None on images whose logits are close to 0",
                      got[key], want[key], atol=1e-5,
                      hint=SAME_TARGET_HINT.replace("perturbed copy", "step of the curve"))


@paired(probe.probe_insertion_auc)
def check_insertion_auc(seen):
    model, x, maps = probe.insertion_auc_inputs()
    got = seen["result"]
    want = ref.insertion_deletion(model, x, maps, 4, 0.0, 1)
    for key in ("fractions", "insertion_auc", "deletion_auc"):
        assert isinstance(got, dict) and key in got, f"return a dict with the key {key!r}"
        assert_tensor(key, got[key], want[key], atol=1e-5,
                      hint="fractions = k / steps; each area is torch.trapezoid of the curve over "
                           "the fractions, one per image.")
