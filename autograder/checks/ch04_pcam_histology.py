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

#: The statement of every exercise, clause by clause: (clause, the graded cell whose check
#: exercises it, the wrong answers in tests/variants that break only that clause). The test
#: test_every_clause_has_a_check_and_a_wrong_answer_it_catches fails when an exercise, a graded
#: cell or a wrong answer is missing here; test_wrong_answer_fails_only_its_exercise proves that
#: the cell's check catches each wrong answer.
CLAUSES = {
    "gradcam": [
        ("the score is +logit for target 1 and -logit for target 0", "test_gradcam_negative",
         "negative_class_same_sign"),
        ("target=None explains each image's predicted class (logit > 0 is class 1)",
         "test_gradcam_values", ("gradcam_none_is_class_1", "gradcam_none_is_class_0")),
        ("the weights are each image's spatial mean gradient", "test_gradcam_values",
         "gradcam_weights_over_batch"),
        ("ReLU of the weighted sum of the activations", "test_gradcam_values", "gradcam_no_relu"),
        ("bilinear upsampling to the input size with align_corners=False", "test_gradcam_values",
         "gradcam_align_corners_true"),
        ("min-max to [0, 1] per image, after upsampling", "test_gradcam_values",
         "gradcam_batch_minmax"),
        ("the hook returns output.clone(): an in-place ReLU follows the layer",
         "test_gradcam_values", "gradcam_no_clone"),
        ("the hook is removed", "test_gradcam_values", "gradcam_hook_left"),
        ("returns (N, H, W)", "test_gradcam_values", "gradcam_keeps_channel_dim"),
    ],
    "saliency": [
        ("the absolute value of the gradient", "test_saliency", "saliency_no_abs"),
        ("the maximum over the colour channels", "test_saliency", "saliency_mean_over_channels"),
        ("min-max to [0, 1] per image", "test_saliency", "saliency_batch_minmax"),
        ("the caller's images are not modified (a detached copy requires grad)", "test_saliency",
         "saliency_requires_grad_in_place"),
    ],
    "occlusion": [
        ("windows start at 0, stride, ... while they fit", "test_occlusion_values",
         "occlusion_off_by_one"),
        ("the drop is of the score (a logit), not of a probability", "test_occlusion_values",
         "occlusion_probability_drop"),
        ("the target class is chosen on the unoccluded images", "test_occlusion_values",
         "occlusion_target_per_copy"),
        ("a pixel gets the mean drop of the windows covering it", "test_occlusion_values",
         "occlusion_sum_of_drops"),
        ("the occluded copies are stacked in batches", "test_occlusion_values",
         "occlusion_one_window_at_a_time"),
        ("under torch.inference_mode()", "test_occlusion_values", "occlusion_with_gradients"),
        ("the window is filled with the baseline value", "test_occlusion_baseline",
         "occlusion_baseline_ignored"),
    ],
    "ig": [
        ("the midpoint rule alpha_k = (k + 1/2) / steps", "test_ig_values", "ig_left_riemann"),
        ("the target class is chosen on the images, not along the path", "test_ig_values",
         "ig_target_per_step"),
        ("returns (N, C, H, W): one attribution per channel", "test_ig_values",
         "ig_max_over_channels"),
        ("the mean gradient is multiplied by (x - x'): completeness", "test_ig_completeness",
         "ig_no_input_factor"),
        ("baseline None (zeros), a float or a tensor", "test_ig_baseline", "ig_baseline_ignored"),
    ],
    "insertion": [
        ("the curves hold the probability sigmoid(score), not the logit", "test_insertion_curves",
         "curves_of_logits"),
        ("the target class is chosen on the images, not on each perturbed image",
         "test_insertion_curves", "insertion_target_per_step"),
        ("the top floor(k HW / steps) pixels at step k", "test_insertion_curves",
         "insertion_rounded_counts"),
        ("ties broken by the lower flat index (a stable sort)", "test_insertion_curves",
         "insertion_unstable_ties"),
        ("written here, not the helper package's insertion_deletion", "test_insertion_curves",
         "package_insertion_deletion"),
        ("the areas are trapezoids over the fractions k / steps", "test_insertion_auc",
         "auc_as_mean"),
    ],
}


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
