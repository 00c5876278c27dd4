"""Hidden checks of chapter 3. Each verdict rebuilds its probe's seeded inputs, computes the
reference here and compares it with what the probe saw the student's code return; an
AssertionError message tells the student what went wrong."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from autograder.checks.common import assert_tensor, paired
from autograder.probes import ch03_resnet_covid_ct as probe
from autograder.reference import ch03_resnet_covid_ct as ref

CHAPTER = probe.CHAPTER


def _reference(model, layer, x, class_idx):
    with ref.GradCAM(model, layer) as cam:
        return cam(x, class_idx), cam.logits


VALUES_HINT = ("Grad-CAM of chapter 1 for each image's own class: weights = mean gradient "
               "over h, w; ReLU of the weighted sum; bilinear upsampling to the input "
               "size; per-image min-max with eps 1e-7.")


# --- exercise 1: the GradCAM context manager -----------------------------------------------------

@paired(probe.probe_gradcam_values)
def check_gradcam_values(seen):
    """Maps of a whole residual stage for a batch of non-square images, one class per image."""
    model, x, classes = probe.values_inputs()
    want, _ = _reference(model, model.layer2, x, classes)
    assert_tensor("maps", seen["maps"], want, atol=1e-5, hint=VALUES_HINT)
    under_no_grad = seen["under_no_grad"]
    assert "error" not in under_no_grad, (
        f"Called inside torch.no_grad(), your GradCAM failed: {under_no_grad['error']}. "
        "Run the forward pass inside `with torch.enable_grad():` so it works wherever it is called.")
    assert_tensor("maps computed inside torch.no_grad()", under_no_grad["value"], want, atol=1e-5,
                  hint="Run the forward pass inside `with torch.enable_grad():`.")


@paired(probe.probe_gradcam_inplace)
def check_gradcam_inplace(seen):
    """Target = the last BatchNorm of a block: `out += identity` and an in-place ReLU follow it."""
    model, x, classes = probe.inplace_inputs()
    want, _ = _reference(model, probe.inplace_layer(model), x, classes)
    assert_tensor("maps of layer2[1].bn2 (followed by `out += identity` and an in-place ReLU)",
                  seen["maps"], want, atol=1e-5,
                  hint="The block modifies the layer's output in place after your hook ran: "
                       "return output.clone() from the forward hook (the network then works on "
                       "the copy) and keep the original.")


@paired(probe.probe_gradcam_hooks)
def check_gradcam_hooks(seen):
    """No hook survives the `with` block, also when the block raises; the error is not swallowed.
    The maps of the two calls must also be right, so these points cannot be had by reporting a
    clean model."""
    model, x = probe.hooks_inputs()
    for class_idx, got in zip(probe.HOOKS_CLASS_IDX, seen["maps"], strict=True):
        want, _ = _reference(model, model.layer2, x, class_idx)
        assert_tensor(f"maps for class_idx={class_idx}", got, want, atol=1e-5, hint=VALUES_HINT)
    assert seen["hooks"] == 0, (
        f"{seen['hooks']} hook(s) are still registered after the `with` block: remove every "
        "handle in __exit__.")
    assert seen["swallowed"] is False, (
        "An exception raised inside the `with` block was swallowed: __exit__ must return False "
        "(or None).")
    assert seen["hooks_after_error"] == 0, (
        "Hooks stay registered when the `with` block raises: __exit__ runs in that case too, "
        "remove them there.")


@paired(probe.probe_gradcam_class_idx)
def check_gradcam_class_idx(seen):
    """None → predicted class, int → same class for all, tensor → one per image; cam.logits."""
    model, x = probe.class_idx_inputs()
    for (label, class_idx), got in zip(probe.CLASS_IDX_CASES, seen["maps"], strict=True):
        want, logits = _reference(model, model.layer2, x, class_idx)
        assert_tensor(f"maps for class_idx={label}", got, want, atol=1e-5,
                      hint="None means each image's predicted class; an int the same class for "
                           "every image; a sequence one class per image.")
    assert_tensor("cam.logits", seen["logits"], logits,
                  hint="Keep the (detached) logits of the last call in self.logits.")


# --- exercise 2: class_weights -------------------------------------------------------------------

@paired(probe.probe_class_weights)
def check_class_weights(seen):
    for counts, got in zip(probe.weight_counts(), seen["weights"], strict=True):
        want = ref.class_weights(counts)
        assert_tensor(f"class_weights({list(np.asarray(counts))})", got, want, atol=1e-5,
                      hint="w_c = N / (C · n_c): inverse frequency, scaled so that the average "
                           "weight per sample is 1 (sum of n_c · w_c = N); a float tensor.")
        assert got.dtype == torch.float32, f"Return float32 weights, got {got.dtype}."
    assert seen["zero_count"] == "ValueError", (
        "A class with 0 samples must raise ValueError (its weight would be infinite).")


# --- exercise 3: plot_gradcam --------------------------------------------------------------------

def _assert_plot(seen, path, model, transform, class_idx, *, figure=True):
    """One call of plot_gradcam: (fig, cam), the map of the transformed image and, with
    ``figure``, two image panels and a title with the predicted class and its probability.

    The student's plot_gradcam ran with the probe's stand-in in place of their GradCAM (so that
    exercise 2 is not charged again); the map expected is then the stand-in's, else Grad-CAM's."""
    assert seen["pair"] is True, "Return a tuple (fig, cam)."
    assert seen["is_figure"] is True, f"fig must be a matplotlib Figure, got {seen['fig_type']}."
    x = probe.model_input(path, transform)
    want, logits = _reference(model, model.layer2, x, class_idx)
    if seen["stand_in_calls"]:
        want = probe.stand_in_maps(model, model.layer2, x, class_idx)
    cam = seen["cam"]
    assert type(cam) is torch.Tensor and cam.dim() == 2, (
        f"cam must be the (H, W) map of the image, got "
        f"{tuple(cam.shape) if type(cam) is torch.Tensor else type(cam).__name__}: take the "
        "first (only) map of the batch, maps[0].")
    assert_tensor(f"cam for {Path(path).name} (class_idx={class_idx})", cam[None], want, atol=1e-5,
                  hint="cam is the (H, W) Grad-CAM of the transformed image, for "
                       "class_idx or, if None, the predicted class.")
    if not figure:
        return
    assert seen["panels"] >= 2, (
        f"Draw two image panels (original, overlay); found {seen['panels']}.")
    probs = torch.softmax(logits, 1)[0]
    pred = int(probs.argmax())
    text = seen["text"]
    name, p = ref.CLASSES[pred], f"{float(probs[pred]):.2f}"
    assert isinstance(text, str) and name in text and p in text, (
        f"The title must name the predicted class and its probability with two "
        f"decimals ('{name}', '{p}'); the figure's titles read: {text!r}.")


@paired(probe.probe_plot_gradcam)
def check_plot_gradcam(seen):
    """A grey PNG and an RGB JPEG, predicted class and a given class; figure and title."""
    model, transform = probe.plot_model(), probe.transform_to(probe.PLOT_SIZE)
    with tempfile.TemporaryDirectory() as tmp:
        for (path, class_idx), case in zip(probe.write_slices(Path(tmp)), seen["cases"], strict=True):
            _assert_plot(case, path, model, transform, class_idx)


@paired(probe.probe_plot_gradcam_missing)
def check_plot_gradcam_missing(seen):
    """A missing file raises FileNotFoundError naming it; a file that is there gets its map (so
    these points cannot be had by reporting the error alone)."""
    assert seen["error"] == "FileNotFoundError", "A missing file must raise FileNotFoundError."
    message = seen["message"]
    assert isinstance(message, str) and probe.MISSING_NAME in message, (
        f"The FileNotFoundError must name the path; its message was: {message}")
    model, transform = probe.plot_model(), probe.transform_to(probe.PLOT_SIZE)
    with tempfile.TemporaryDirectory() as tmp:
        path, class_idx = probe.write_slices(Path(tmp))[0]
        _assert_plot(seen["present"], path, model, transform, class_idx, figure=False)


# --- exercise 4: pointing games ------------------------------------------------------------------

@paired(probe.probe_pointing_game)
def check_pointing_game(seen):
    cams, masks = probe.pointing_cases()
    got = seen["cases"]
    want = ref.pointing_game(cams, masks)
    assert type(got) is torch.Tensor and tuple(got.shape) == (6,), (
        "Return a (N,) tensor with 1.0 for a hit and 0.0 for a miss.")
    wrong = [f"{label} → expected {float(w):.0f}, got {float(g):g}"
             for label, g, w in zip(probe.POINTING_LABELS, got.float(), want) if float(g) != float(w)]
    assert not wrong, "Wrong pointing-game results: " + "; ".join(wrong) + (
        ". A hit needs every pixel at the maximum (within 1e-6) inside the mask, so ties and "
        "constant maps are misses.")
    random = seen["random"]
    assert_tensor("pointing game on random maps",
                  random.float() if type(random) is torch.Tensor else random,
                  ref.pointing_game(*probe.random_pointing_inputs()), atol=0)
    assert seen["mismatch"] == "ValueError", (
        "Maps and masks of different shapes must raise ValueError.")


@paired(probe.probe_energy_pointing_game)
def check_energy_pointing_game(seen):
    cams, masks = probe.energy_inputs()
    assert_tensor("energy pointing game", seen["shares"], ref.energy_pointing_game(cams, masks),
                  atol=1e-5,
                  hint="Share of the map's mass inside the mask: sum(cam · mask) / sum(cam) per "
                       "image, 0 for an all-zero map.")
    assert seen["mismatch"] == "ValueError", (
        "Maps and masks of different shapes must raise ValueError.")
