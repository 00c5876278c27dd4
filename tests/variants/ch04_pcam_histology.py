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
