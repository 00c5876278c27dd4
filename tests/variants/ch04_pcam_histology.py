"""Student answers for chapter 4, right and wrong, keyed by the solution cell they replace.

Each variant is the notebook's own solution with one targeted edit: the usual mistakes (sign of
the negative class, a missing abs, off-by-one windows, an ignored baseline, the left Riemann sum,
logits instead of probabilities) and correct alternatives (tensor hooks, small batches of windows,
all integration steps at once, a hand-written trapezoid).
"""

from functools import partial

from course_files import solution_edit

edit = partial(solution_edit, "04_pcam_histology")

EXERCISES = {
    "gradcam": {"test_gradcam_values", "test_gradcam_negative"},
    "saliency": {"test_saliency"},
    "occlusion": {"test_occlusion_values", "test_occlusion_baseline"},
    "ig": {"test_ig_values", "test_ig_completeness", "test_ig_baseline"},
    "insertion": {"test_insertion_curves", "test_insertion_auc"},
}

WRONG = {
    # target=None read as "tumour" for every image instead of each image's prediction
    "gradcam_none_is_class_1": (edit("gradcam_solution", (
        "score_signs(logits, target)", "score_signs(logits, 1 if target is None else target)")),
        "gradcam", "test_gradcam_values"),
    "gradcam_none_is_class_0": (edit("gradcam_solution", (
        "score_signs(logits, target)", "score_signs(logits, 0 if target is None else target)")),
        "gradcam", "test_gradcam_values"),
    # the weights averaged over the batch too: every image gets the batch's weights
    "gradcam_weights_over_batch": (edit("gradcam_solution", (
        "grads.mean(dim=(2, 3), keepdim=True)", "grads.mean(dim=(0, 2, 3), keepdim=True)")),
        "gradcam", "test_gradcam_values"),
    "gradcam_align_corners_true": (edit("gradcam_solution", (
        "mode=\"bilinear\", align_corners=False", "mode=\"bilinear\", align_corners=True")),
        "gradcam", "test_gradcam_values"),
    # one min and max for the whole batch
    "gradcam_batch_minmax": (edit("gradcam_solution", (
        "    lo = cam.flatten(1).min(1).values[:, None, None]\n    hi = cam.flatten(1).max(1).values[:, None, None]",
        "    lo = cam.min()\n    hi = cam.max()")),
        "gradcam", "test_gradcam_values"),
    # the hook keeps the layer's output, which the in-place ReLU after it then overwrites
    "gradcam_no_clone": (edit("gradcam_solution", ("        return output.clone()\n", "")),
                         "gradcam", "test_gradcam_values"),
    "gradcam_hook_left": (edit("gradcam_solution", ("        handle.remove()", "        pass")),
                          "gradcam", "test_gradcam_values"),
    "gradcam_keeps_channel_dim": (edit("gradcam_solution", (
        "align_corners=False)[:, 0]", "align_corners=False)"),
        ("cam.flatten(1).min(1).values[:, None, None]", "cam.flatten(1).min(1).values[:, None, None, None]"),
        ("cam.flatten(1).max(1).values[:, None, None]", "cam.flatten(1).max(1).values[:, None, None, None]")),
        "gradcam", "test_gradcam_values"),
    "saliency_mean_over_channels": (edit("saliency_solution", ("grad.abs().amax(dim=1)", "grad.abs().mean(dim=1)")),
                                    "saliency", "test_saliency"),
    "saliency_batch_minmax": (edit("saliency_solution", (
        "    lo = m.flatten(1).min(1).values[:, None, None]\n    hi = m.flatten(1).max(1).values[:, None, None]",
        "    lo = m.min()\n    hi = m.max()")),
        "saliency", "test_saliency"),
    # requires_grad set on the caller's tensor
    "saliency_requires_grad_in_place": (edit("saliency_solution", (
        "x = images.detach().clone().requires_grad_(True)", "x = images.requires_grad_(True)")),
        "saliency", "test_saliency"),
    # the sum of the drops of the covering windows instead of their mean
    "occlusion_sum_of_drops": (edit("occlusion_solution", ("    return total / count.clamp_min(1)", "    return total")),
                               "occlusion", "test_occlusion_values"),
    # the attributions' maximum over the colour channels: (N, H, W) instead of (N, C, H, W)
    "ig_max_over_channels": (edit("ig_solution", (
        "    return (x - ref) * total / steps", "    return ((x - ref) * total / steps).amax(dim=1)")),
        "ig", "test_ig_values"),
    # round(k HW / steps) pixels instead of floor
    "insertion_rounded_counts": (edit("insertion_solution", (
        "order[:, :(k * h * w) // steps]", "order[:, :round(k * h * w / steps)]")),
        "insertion", "test_insertion_curves"),
    # argsort without stable=True: tied pixels in an arbitrary order
    "insertion_unstable_ties": (edit("insertion_solution", (
        "descending=True, stable=True)", "descending=True)")),
        "insertion", "test_insertion_curves"),
    # one window at a time: the same numbers, but the statement asks for stacked copies in batches
    "occlusion_one_window_at_a_time": (edit("occlusion_solution",
                                            ("        per_batch = max(1, 256 // n)", "        per_batch = 1")),
                                       "occlusion", "test_occlusion_values"),
    # occluded copies scored with gradients enabled (no inference_mode): the same numbers, slower
    "occlusion_with_gradients": (edit("occlusion_solution", ("    with torch.inference_mode():", "    if True:")),
                                 "occlusion", "test_occlusion_values"),
    # target=None re-chosen on every occluded copy (its own prediction) instead of on the image
    "occlusion_target_per_copy": (edit("occlusion_solution", (
        "            scores = model(occluded)[:, 0].view(len(chunk), n) * signs",
        "            out = model(occluded)[:, 0].view(len(chunk), n)\n"
        "            scores = out.abs() if target is None else out * signs")),
        "occlusion", "test_occlusion_values"),
    # target=None re-chosen at every point of the path
    "ig_target_per_step": (edit("ig_solution", (
        "            score = (model(path)[:, 0] * signs.repeat(len(a))).sum()",
        "            out = model(path)[:, 0]\n"
        "            score = (out.abs() if target is None else out * signs.repeat(len(a))).sum()")),
        "ig", "test_ig_values"),
    # target=None re-chosen on every inserted/deleted image
    "insertion_target_per_step": (edit("insertion_solution", (
        "            probs = torch.sigmoid(model(batch)[:, 0] * signs.repeat(2))",
        "            out = model(batch)[:, 0]\n"
        "            probs = torch.sigmoid(out.abs() if target is None else out * signs.repeat(2))")),
        "insertion", "test_insertion_curves"),
    # +logit for both classes: "normal" is explained with the tumour score
    "negative_class_same_sign": (edit("gradcam_solution", ("score = (logits[:, 0] * score_signs(logits, target)).sum()",
                                                           "score = logits[:, 0].sum()")),
                                 "gradcam", "test_gradcam_negative"),
    "gradcam_no_relu": (edit("gradcam_solution", ("cam = torch.relu((weights * kept[\"a\"].detach()).sum(1, keepdim=True))",
                                                  "cam = (weights * kept[\"a\"].detach()).sum(1, keepdim=True)")),
                        "gradcam", "test_gradcam_values"),
    "saliency_no_abs": (edit("saliency_solution", ("m = grad.abs().amax(dim=1)", "m = grad.amax(dim=1)")),
                        "saliency", "test_saliency"),
    # the last window position (ending exactly at the border) is skipped
    "occlusion_off_by_one": (edit("occlusion_solution", ("range(0, h - patch + 1, stride)", "range(0, h - patch, stride)"),
                                  ("range(0, w - patch + 1, stride)", "range(0, w - patch, stride)")),
                             "occlusion", "test_occlusion_values"),
    "occlusion_baseline_ignored": (edit("occlusion_solution", ("x:x + patch] = baseline", "x:x + patch] = 0.0")),
                                   "occlusion", "test_occlusion_baseline"),
    # the original notebook's mistake: a sigmoid on the drop
    "occlusion_probability_drop": (edit("occlusion_solution", ("drops.append(base - scores)",
                                                               "drops.append(torch.sigmoid(base) - torch.sigmoid(scores))")),
                                   "occlusion", "test_occlusion_values"),
    "ig_left_riemann": (edit("ig_solution", ("(torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps",
                                             "torch.arange(steps, dtype=x.dtype, device=x.device) / steps")),
                        "ig", "test_ig_values"),
    "ig_no_input_factor": (edit("ig_solution", ("return (x - ref) * total / steps", "return total / steps")),
                           "ig", "test_ig_completeness"),
    "ig_baseline_ignored": (edit("ig_solution", ("    ref = torch.zeros_like(x) + (0.0 if baseline is None else torch.as_tensor(baseline, dtype=x.dtype, device=x.device))",
                                                 "    ref = torch.zeros_like(x)")),
                            "ig", "test_ig_baseline"),
    "curves_of_logits": (edit("insertion_solution", ("probs = torch.sigmoid(model(batch)[:, 0] * signs.repeat(2))",
                                                     "probs = model(batch)[:, 0] * signs.repeat(2)")),
                         "insertion", "test_insertion_curves"),
    "auc_as_mean": (edit("insertion_solution", ("out[f\"{name}_auc\"] = torch.trapezoid(out[name], fractions, dim=1)",
                                                "out[f\"{name}_auc\"] = out[name].mean(1)")),
                    "insertion", "test_insertion_auc"),
    # the helper package's finished version, imported (the grader also flags it)
    "package_insertion_deletion": ({"insertion_solution": (
        "from gradcam_course.metrics import insertion_deletion as _finished\n\n\n"
        "def insertion_deletion(model, images, maps, steps=16, baseline=0.0, target=None):\n"
        "    return _finished(model, images, maps, steps, baseline, target)\n")},
        "insertion", "test_insertion_curves"),
}

CORRECT = {
    # the gradient from a tensor hook and backward() instead of autograd.grad
    "gradcam_tensor_hook": edit(
        "gradcam_solution",
        ("        kept[\"a\"] = output\n        return output.clone()",
         "        kept[\"a\"] = output\n        output.register_hook(lambda g: kept.__setitem__(\"g\", g))\n"
         "        return output.clone()"),
        ("            (grads,) = torch.autograd.grad(score, kept[\"a\"])",
         "            score.backward()\n            grads = kept[\"g\"]"),
    ),
    # .grad of the input after backward()
    "saliency_backward": edit(
        "saliency_solution",
        ("        (grad,) = torch.autograd.grad(score, x)", "        score.backward()\n        grad = x.grad"),
    ),
    # small batches of 8 windows: more forward passes than the reference, still stacked
    "occlusion_small_batches": edit(
        "occlusion_solution",
        ("        per_batch = max(1, 256 // n)", "        per_batch = 8"),
    ),
    # every point of the path in one batch
    "ig_all_steps_at_once": edit(
        "ig_solution",
        ("    per_batch = max(1, 256 // len(x))", "    per_batch = steps"),
    ),
    # the trapezoid rule by hand
    "auc_by_hand": edit(
        "insertion_solution",
        ("out[f\"{name}_auc\"] = torch.trapezoid(out[name], fractions, dim=1)",
         "out[f\"{name}_auc\"] = (out[name][:, 1:] + out[name][:, :-1]).sum(1) / (2 * steps)"),
    ),
}

FAULTS = {
    # a crash when the function is called: only its own exercise loses points
    "saliency_crashes": (edit("saliency_solution", ("logits = model(x)", "logits = model(x[0])")),
                         "saliency"),
}
