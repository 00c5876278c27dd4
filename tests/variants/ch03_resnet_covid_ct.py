"""Student answers for chapter 3, right and wrong, keyed by the solution cell they replace.

Each variant is the notebook's own solution with one targeted edit, so a variant differs from the
solution exactly where the mistake (or the alternative) is.
"""

from functools import partial

from course_files import solution_edit

edit = partial(solution_edit, "03_resnet_covid_ct")


EXERCISES = {
    "class_weights": {"test_class_weights"},
    "gradcam": {"test_gradcam_values", "test_gradcam_inplace", "test_gradcam_hooks",
                "test_gradcam_class_idx"},
    "plot_gradcam": {"test_plot_gradcam", "test_plot_gradcam_missing"},
    "pointing": {"test_pointing_game", "test_energy_pointing_game"},
}

WRONG = {
    # 1/n_c: inverse frequency, but not normalised
    "weights_not_normalised": (edit("class_weights_solution",
                                    ("return counts.sum() / (len(counts) * counts)", "return 1.0 / counts")),
                               "class_weights", "test_class_weights"),
    # the stored output is the tensor the block then modifies in place
    "no_clone_in_hook": (edit("gradcam_solution", ("return output.clone()", "return None")),
                         "gradcam", "test_gradcam_inplace"),
    # hook never removed
    "hook_left_registered": (edit("gradcam_solution", ("self.handle.remove()", "pass")),
                             "gradcam", "test_gradcam_hooks"),
    # the error inside the with block is swallowed
    "exit_swallows_errors": (edit("gradcam_solution", ("        return False", "        return True")),
                             "gradcam", "test_gradcam_hooks"),
    # the forward pass does not enable gradients: fails when called inside torch.no_grad()
    "gradcam_no_enable_grad": (edit("gradcam_solution", ("        with torch.enable_grad():\n", "        if True:\n")),
                               "gradcam", "test_gradcam_values"),
    # a (1, H, W) map where the statement asks for (H, W)
    "plot_cam_keeps_batch_dim": (edit("plot_gradcam_solution", ("return fig, maps[0].cpu()", "return fig, maps[:1].cpu()")),
                                 "plot_gradcam", "test_plot_gradcam"),
    # always the predicted class: class_idx ignored
    "class_idx_ignored": (edit("gradcam_solution", ("if class_idx is None:", "if True:")),
                          "gradcam", "test_gradcam_values"),
    # the title shows the map's class instead of the predicted one... and no probability
    "title_without_probability": (edit("plot_gradcam_solution",
                                       ('fig.suptitle(f"predicted: {CLASSES[pred]} (p = {float(probs[pred]):.2f})")',
                                        'fig.suptitle(f"predicted: {CLASSES[pred]}")')),
                                  "plot_gradcam", "test_plot_gradcam"),
    # ties counted as hits: the first maximum decides
    "ties_count_as_hits": (edit("pointing_solution",
                                ("    at_max = flat >= flat.max(1, keepdim=True).values - 1e-6\n"
                                 "    return (at_max & ~inside).sum(1).eq(0).float()",
                                 "    return inside.gather(1, flat.argmax(1, keepdim=True))[:, 0].float()")),
                           "pointing", "test_pointing_game"),
    # energy divided by the mask's size instead of the map's mass
    "energy_over_mask_area": (edit("pointing_solution",
                                   ("share = (flat * inside).sum(1) / total.clamp_min(1e-12)",
                                    "share = (flat * inside).sum(1) / inside.sum(1).clamp_min(1)")),
                              "pointing", "test_energy_pointing_game"),
    # the helper package's finished versions, imported (the grader also flags it)
    "package_pointing_games": ({"pointing_solution": (
        "from gradcam_course.metrics import energy_pointing_game, pointing_game\n")},
        "pointing", "test_pointing_game"),
    # the same, spelled so that no regular expression sees it, and wrapped in an own function
    "package_pointing_game_obfuscated": (edit("pointing_solution", (
        "def pointing_game(cams, masks):\n", "import importlib\n_m = importlib.import_module("
        "'gradcam_course.' + 'met' + 'rics')\n\n\ndef pointing_game(cams, masks):\n"
        "    return getattr(_m, 'pointing' + '_game')(cams, masks)\n")),
        "pointing", "test_pointing_game"),
}

CORRECT = {
    # gradients through a tensor hook and backward() instead of autograd.grad
    "tensor_hook_gradients": edit(
        "gradcam_solution",
        ("            self.activations = output\n            return output.clone()",
         "            self.activations = output\n            output = output.clone()\n"
         "            output.register_hook(self._save_grad)\n            return output"),
        ("    def __enter__(self):", "    def _save_grad(self, grad):\n        self.grads = grad\n\n"
                                   "    def __enter__(self):"),
        ("            (grads,) = torch.autograd.grad(score, self.activations)",
         "            score.backward()\n            grads = self.grads"),
    ),
    # sklearn's compute_class_weight("balanced") is the same rule
    "weights_from_sklearn": edit(
        "class_weights_solution",
        ("    return counts.sum() / (len(counts) * counts)",
         "    from sklearn.utils.class_weight import compute_class_weight\n"
         "    labels = np.repeat(np.arange(len(counts)), counts.long().numpy())\n"
         "    w = compute_class_weight('balanced', classes=np.arange(len(counts)), y=labels)\n"
         "    return torch.tensor(w, dtype=torch.float32)"),
    ),
    # PIL's own FileNotFoundError already names the path
    "pil_raises_missing_file": edit(
        "plot_gradcam_solution",
        ("    if not path.is_file():\n        raise FileNotFoundError(f\"No image file at {path}\")\n", ""),
    ),
}

FAULTS = {
    # a crash when the function is called: only its own exercise loses points
    "gradcam_crashes": (edit("gradcam_solution", ("logits = self.model(images)",
                                                  "logits = self.model(images[None])")),
                        "gradcam"),
}
