# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] deletable=false editable=false nbgrader={"cell_type": "markdown", "checksum": "e54ff9e44e107d6dc564e3a765a310f9", "grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# # Chapter 3 · ResNet18 on COVID CT scans, and the shortcut Grad-CAM exposes
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradcam-course/gradcam-course/blob/main/notebooks/03_resnet_covid_ct/03_resnet_covid_ct.ipynb)
#
# A classifier that tells COVID-19 from healthy CT slices with 95 % accuracy sounds ready for the
# clinic. This chapter trains one, a ResNet18 {cite}`he2016resnet`, and then asks the question
# that accuracy cannot answer: *what is it looking at?* Grad-CAM {cite}`selvaraju2017gradcam`
# answers it, and in the second half of the chapter it catches a model that learned a scanner's
# label in the corner of the image instead of the lungs, the failure that DeGrave et al. found
# in published COVID-19 models {cite}`degrave2021shortcuts`.
#
# **You will learn to**
# - split medical images by patient, and weight the loss for imbalanced classes;
# - package Grad-CAM as a reusable context manager that works on any layer of any model;
# - draw a Grad-CAM figure for any image file on disk;
# - *measure* whether a map points at the evidence (pointing game, energy pointing game);
# - expose and fix a dataset shortcut with Grad-CAM.
#
# **Run time:** about 5 minutes on a CPU (4 small trainings). **Points (100):** exercise 1
# (class weights) 10 · exercise 2 (`GradCAM`) 30 · exercise 3 (`plot_gradcam`) 20 · exercise 4
# (pointing games) 20 · written answers 2 × 10.

# %% [markdown]
# ## Setup

# %% tags=["hide-input"]
import subprocess
import sys

COURSE_REPO = "https://github.com/gradcam-course/gradcam-course"  # set from _config.yml
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    f"gradcam-course @ git+{COURSE_REPO}"], check=True)

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from gradcam_course import setup
from gradcam_course.ct import (CLASSES, CTDataModule, build_densenet121, build_resnet18,
                               ct_transform, load_ct_scans, load_synthetic_ct, marker_region,
                               mask_border, save_slices, with_images,
                               with_scanner_label)
from gradcam_course.plotting import plot_cam_grid, plot_confusion, plot_training_curves, show_cam
from gradcam_course.training import LitClassifier, predict, train_classifier

device = setup(seed=0)

# %% [markdown]
# ## 1 · The data, split by patient
#
# With internet and Kaggle credentials, the next cell downloads the COVID CT dataset of Soares
# and Angelov {cite}`soares2020ctdataset`: CT slices in one folder per patient, and we keep the
# *Covid* and *Healthy* classes. Your Kaggle key is read from the environment
# (`KAGGLE_USERNAME`, `KAGGLE_KEY`), from Colab's secrets (the key icon on the left) or from
# `~/.kaggle/kaggle.json`; it is never printed or stored in the notebook. Without them, the same
# call builds **synthetic CT slices**: a body outline, two dark lung fields with vessels, noise,
# and on COVID slices one to three ground-glass opacities, mostly near the edge of the lung, as
# in real COVID-19 pneumonia. For synthetic slices we know exactly where each lesion is: a
# ground-truth mask per slice, which lets us *score* heatmaps later. The banner says which data
# you got.
#
# **Why split by patient?** The slices of one patient are neighbouring cuts through the same
# chest: almost copies of each other. If we split slices at random (as the assignment this
# chapter replaces did), most test patients also appear in training, and the test accuracy
# measures how well the network remembers a patient, not how well it diagnoses a new one. Every
# patient here lands in exactly one of train, validation and test.

# %%
splits = load_ct_scans()
SIZE = splits.train.images.shape[-1]

# %% [markdown]
# Five slices of each class. On synthetic data the lesion masks are outlined in red: that is
# where a good explanation should point.

# %%
def class_examples(slices, per_class=5):
    """One slice from each of `per_class` patients per class, healthy first."""
    chosen = []
    for c in range(len(CLASSES)):
        patients = torch.unique(slices.patients[slices.labels == c])[:per_class]
        chosen += [int(torch.nonzero(slices.patients == p)[0, 0]) for p in patients]
    return torch.tensor(chosen)


examples = class_examples(splits.test)
fig, axes = plt.subplots(2, 5, figsize=(11, 4.8), layout="constrained")
for ax, i in zip(axes.flat, examples.tolist()):
    ax.imshow(splits.test.images[i, 0], cmap="gray", vmin=0, vmax=1)
    if splits.has_masks and splits.test.masks[i].any():
        ax.contour(splits.test.masks[i].numpy(), levels=[0.5], colors="red", linewidths=1)
    ax.set_title(f"{CLASSES[splits.test.labels[i]]} · patient {int(splits.test.patients[i])}",
                 fontsize=9)
    ax.axis("off")
fig.suptitle(f"Test slices ({splits.source}); red: ground-truth lesion masks")
plt.show()

# %% [markdown]
# ## 2 · Imbalanced classes
#
# There are more COVID slices than healthy ones (the real dataset has about three COVID slices
# for every healthy one, and so does the synthetic one). A network trained with the plain
# cross-entropy can reach a good-looking accuracy by favouring the majority class. The usual
# remedy weights each class's loss by the inverse of its frequency, so that both classes carry
# the same total weight.
#
# ## Exercise 1 · Inverse-frequency class weights (10 points)
#
# Write `class_weights(counts)`: `counts` is a list, tuple, NumPy array or tensor with the
# number of samples $n_c$ of each of the $C$ classes. Return a `float32` tensor of shape `(C,)`
#
# $$w_c = \frac{N}{C\, n_c}, \qquad N = \sum_c n_c,$$
#
# the rule scikit-learn calls `"balanced"`: each class gets the same total weight
# $n_c w_c = N / C$, and the average weight per sample stays 1, so the loss keeps its usual
# scale and the learning rate needs no retuning. Raise `ValueError` if a class has no samples.

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "7cd4d9cc81b110ffb4b5559f8c897b44", "grade": false, "grade_id": "class_weights_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def class_weights(counts):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "73504e1c91f8c58c8bfea5721a686302", "grade": true, "grade_id": "test_class_weights", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: 30 healthy and 10 covid samples.
_w = class_weights([30, 10])
assert torch.allclose(_w, torch.tensor([40 / 60, 40 / 20])), f"got {_w}"
print("visible checks passed: class weights", [round(float(v), 3) for v in _w])

# %% [markdown]
# ## 3 · ResNet18, trained with Lightning
#
# `build_resnet18` takes torchvision's ResNet18 with its ImageNet weights when they can be
# downloaded (otherwise it trains from scratch, and says so), turns its first convolution into a
# grey one (the RGB kernels summed, which responds to a grey slice as the RGB network did to
# three copies of it) and puts a new 2-class head on it.
#
# One more change, for Grad-CAM's sake: `layer4`, the usual target, normally works on a grid of
# 1/32 of the input, 3 × 3 cells for our 96-pixel slices, which cannot tell one part of a lung
# from another. Setting the stride of its first block to 1 keeps a 1/16 grid (6 × 6) with the
# same weights. The classifier is unchanged; the explanation gets four times more cells.

# %%
EPOCHS = 6
weights = class_weights(splits.train.counts())
print("class weights (healthy, covid):", [round(float(w), 3) for w in weights])

torch.manual_seed(0)  # seeded initial weights: chapter 5 trains this same model
model = build_resnet18().to(device)
data = CTDataModule(splits.train, splits.val, splits.test)
result = train_classifier(LitClassifier(model, num_classes=2, lr=1e-3, class_weights=weights, cosine=True),
                          data, max_epochs=EPOCHS)
print(f"test accuracy {result.test_acc:.3f} after {result.epochs} epoch(s)")
plot_training_curves(result.history, title="ResNet18 on CT slices")
plt.show()

# %% [markdown]
# Accuracy alone hides how each class fares. The confusion matrix and the per-class report
# show whether the minority class (healthy) is recognised too.

# %%
from sklearn.metrics import classification_report

probs = predict(model, splits.test.images).softmax(1)
preds = probs.argmax(1)
print(classification_report(splits.test.labels, preds, target_names=CLASSES, digits=3,
                            zero_division=0))
plot_confusion(splits.test.labels, preds, CLASSES, title="ResNet18, test patients")
plt.show()

# %% [markdown]
# ## Exercise 2 · Grad-CAM as a context manager (30 points)
#
# Chapter 1's `grad_cam` registered a hook, ran the model and removed the hook in one call. To
# explain many batches with one model it is handier to keep the hook for a while, and Python's
# `with` statement is the safe way to do that: whatever happens inside the block, `__exit__`
# runs and the hook goes away.
#
# ```python
# with GradCAM(model, model.layer4) as cam:
#     maps = cam(images, class_idx)      # (N, H, W) in [0, 1]
#     probs = cam.logits.softmax(1)      # logits of that forward pass
# ```
#
# Write the class `GradCAM`:
# - `__init__(self, model, target_layer)` stores both (any module of the model: a conv, a
#   BatchNorm, a whole `layer4`);
# - `__enter__` registers a **forward hook** on `target_layer` and returns `self`; the hook keeps
#   the layer's output and **returns `output.clone()`**: inside a ResNet block the output of
#   `bn2` is modified in place (`out += identity`, then an in-place ReLU), and DenseNet applies an
#   in-place ReLU right after its features, which would silently change what you stored;
# - `__call__(self, images, class_idx=None)`: forward pass with gradients enabled, the raw
#   logit of `class_idx` per image (`None` → each image's predicted class; an `int` → the same
#   class for all; a sequence or tensor → one class per image), its gradient with respect to the
#   stored activations (`torch.autograd.grad`, or a tensor hook), then chapter 1's Grad-CAM:
#   weights = mean gradient over $h, w$, ReLU of the weighted channel sum, bilinear upsampling to
#   the input size (`align_corners=False`), per-image min-max with eps `1e-7`. Keep the detached
#   logits in `self.logits`; return the `(N, H, W)` maps;
# - `__exit__(self, exc_type, exc, tb)` removes the hook and returns `False`, so an error raised
#   inside the block still reaches you.

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "d63754f5174ba00ff20ad6074f1a1984", "grade": false, "grade_id": "gradcam_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class GradCAM:
    def __init__(self, model, target_layer):
        # YOUR CODE HERE
        raise NotImplementedError()

    def __enter__(self):
        # YOUR CODE HERE
        raise NotImplementedError()
        return self

    def __call__(self, images, class_idx=None):
        # YOUR CODE HERE
        raise NotImplementedError()

    def __exit__(self, exc_type, exc, tb):
        # YOUR CODE HERE
        raise NotImplementedError()
        return False


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "070b9dbd1e8cd52fcd11b8f2e6c25350", "grade": true, "grade_id": "test_gradcam_values", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: maps of the trained model have the slices' size and lie in [0, 1].
with GradCAM(model, model.layer4) as _cam:
    _maps = _cam(splits.test.images[:4].to(device))
assert _maps.shape == (4, SIZE, SIZE), f"expected (4, {SIZE}, {SIZE}), got {tuple(_maps.shape)}"
assert float(_maps.min()) >= 0 and float(_maps.max()) <= 1 + 1e-6, "normalise each map to [0, 1]"
print("visible checks passed: shape and range")

# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "d85bd491e436eb09d681b9284e7bfc1a", "grade": true, "grade_id": "test_gradcam_inplace", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden test only: a layer whose output is modified in place by the block that follows it.
print("graded by a hidden test: the target is a BatchNorm followed by `+= identity` and ReLU(inplace)")


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "697a5067a7768da2323c09bbe44a0e0f", "grade": true, "grade_id": "test_gradcam_hooks", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: no hook is left on the model after the block, even when the block fails.
def _hooks(m):
    return sum(len(x._forward_hooks) for x in m.modules())


try:
    with GradCAM(model, model.layer4) as _cam:
        _cam(splits.test.images[:2].to(device))
        raise KeyError("on purpose")
except KeyError:
    pass
assert _hooks(model) == 0, "a hook survived the with block: remove it in __exit__"
print("visible checks passed: hooks removed")

# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "1e131a1ff612e42fa1185ffcd7fbb948", "grade": true, "grade_id": "test_gradcam_class_idx", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Visible check: cam.logits are the model's logits.
_x = splits.test.images[:3].to(device)
with GradCAM(model, model.layer4) as _cam:
    _cam(_x, 1)
with torch.no_grad():
    assert torch.allclose(_cam.logits, model(_x), atol=1e-5), "keep the logits in self.logits"
print("visible checks passed: logits")


# %% [markdown]
# ## Exercise 3 · `plot_gradcam` for an image file (20 points)
#
# A radiologist does not hand you a tensor but a file. Write
# `plot_gradcam(image_path, model, target_layer, transform, class_idx=None)` that
# - raises `FileNotFoundError` naming the path when there is no file there;
# - opens the image with PIL (grey or RGB: `transform` converts either into the model's input, a
#   `(1, H, W)` tensor);
# - runs your `GradCAM` on it for `class_idx` (`None`: the predicted class);
# - draws a figure with two panels: the image as opened, and the transformed image with the map
#   on top (`show_cam(ax, image, cam)` from the helper package does the overlay); the title names
#   the **predicted** class (`CLASSES`) and its softmax probability with two decimals, e.g.
#   `predicted: covid (p = 0.97)`;
# - returns `(fig, cam)`, `cam` being the `(H, W)` map on the CPU.

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "a00055c0965b9b4d2d73b3295dc66a13", "grade": false, "grade_id": "plot_gradcam_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def plot_gradcam(image_path, model, target_layer, transform, class_idx=None):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# Some test slices saved as PNG files, as they would come from a PACS export, and one of them
# explained:

# %%
slice_dir = Path(tempfile.mkdtemp(prefix="ct_slices_"))
paths = save_slices(splits.test.images[examples], slice_dir)
fig, cam = plot_gradcam(paths[-1], model, model.layer4, ct_transform(SIZE))
plt.show()
# Visible checks: a figure with two image panels and a map of the transformed size.
assert isinstance(fig, plt.Figure) and cam.shape == (SIZE, SIZE), "return (fig, (H, W) map)"
assert sum(bool(ax.get_images()) for ax in fig.axes) >= 2, "draw two image panels"
print("visible checks passed: figure and map")

# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "30f0cdd1315b0f537a8682c9815bad7a", "grade": true, "grade_id": "test_plot_gradcam", "locked": true, "points": 15, "schema_version": 3, "solution": false, "task": false}
# Graded by hidden tests (with the reference GradCAM, so exercise 2 is not charged twice):
# grey and RGB files, the predicted and a given class, the title's class and probability.
print("graded by hidden tests: grey and RGB files, class_idx, title")

# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "72682dc9a3dd7d930fe9a72b48f8ca15", "grade": true, "grade_id": "test_plot_gradcam_missing", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Visible check: a missing file is a clear error.
try:
    plot_gradcam(slice_dir / "nope.png", model, model.layer4, ct_transform(SIZE))
except FileNotFoundError as _err:
    assert "nope.png" in str(_err), "name the missing path in the error"
else:
    raise AssertionError("a missing file must raise FileNotFoundError")
print("visible checks passed: missing file")


# %% [markdown]
# ## 4 · Ten slices, ten explanations
#
# Five test slices of each class with prediction, truth and the map of the predicted class, as
# the original assignment asked. Look at where the maps sit before you read on.

# %%
def explain(model, layer, images, class_idx=None, batch_size=64):
    """Grad-CAM maps and logits for many images, in batches."""
    maps, logits = [], []
    with GradCAM(model, layer) as cam:
        for i in range(0, len(images), batch_size):
            maps.append(cam(images[i:i + batch_size].to(device), class_idx).cpu())
            logits.append(cam.logits.cpu())
    return torch.cat(maps), torch.cat(logits)


def titles_for(logits, labels):
    probs = logits.softmax(1)
    return [f"true {CLASSES[t]}\npred {CLASSES[p]} ({probs[i, p]:.2f})"
            for i, (t, p) in enumerate(zip(labels.tolist(), probs.argmax(1).tolist()))]


maps, logits = explain(model, model.layer4, splits.test.images[examples])
plot_cam_grid(splits.test.images[examples], maps, titles_for(logits, splits.test.labels[examples]),
              ncols=5, suptitle="ResNet18: Grad-CAM of the predicted class", panel_size=2.0)
plt.show()

# %% [markdown]
# ## Exercise 4 · Does the map point at the lesion? (20 points)
#
# A heatmap that "looks right" is an impression; two numbers turn it into a measurement.
# Both take maps `cams` and boolean masks `masks` of the same shape `(N, H, W)`, raise
# `ValueError` if the shapes differ, and return a `float` tensor of shape `(N,)`.
#
# - **Pointing game** {cite}`zhang2018pointing`: 1.0 (a hit) if the map's maximum lies inside
#   the mask, else 0.0. *Tie rule:* every pixel within `1e-6` of the maximum counts as a maximum,
#   and a hit needs **all** of them inside the mask. A constant map (every pixel a maximum) is
#   therefore a miss, as is any map when the mask is empty: a map that says nothing must not
#   score.
# - **Energy pointing game** {cite}`wang2020scorecam`: the share of the map's mass inside the
#   mask, $\sum_{ij} L_{ij} M_{ij} / \sum_{ij} L_{ij}$, and 0 for an all-zero map. A map that
#   spreads evenly scores the mask's area fraction; one concentrated on the lesion scores near 1.

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "8e3b17336ac370e7995acde38ec3dad1", "grade": false, "grade_id": "pointing_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def pointing_game(cams, masks):
    # YOUR CODE HERE
    raise NotImplementedError()


def energy_pointing_game(cams, masks):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "229cd47cf3a7d335c2ea33b604dd285a", "grade": true, "grade_id": "test_pointing_game", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: a hit, and a constant map that must not score.
_masks = torch.zeros(2, 3, 3, dtype=torch.bool)
_masks[:, 0, 0] = True
_cams = torch.stack([torch.eye(3) * torch.tensor([1.0, 0.5, 0.2]), torch.ones(3, 3)])
_hits = pointing_game(_cams, _masks).tolist()
assert _hits == [1.0, 0.0], (f"expected [1.0, 0.0], got {_hits}: the first map peaks inside the "
                             "mask (a hit); the constant map has its maximum everywhere (a miss)")
print("visible checks passed: pointing game")

# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "ad80130e15ed127cef9880b1a9be5af6", "grade": true, "grade_id": "test_energy_pointing_game", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: a uniform map scores the mask's area fraction.
_masks = torch.zeros(1, 4, 4, dtype=torch.bool)
_masks[0, :2, :2] = True
_share = energy_pointing_game(torch.ones(1, 4, 4), _masks)
assert torch.allclose(_share, torch.tensor([0.25])), (
    f"expected [0.25], got {_share}: divide the mass inside the mask by the map's total mass")
print("visible checks passed: energy pointing game")


# %% [markdown]
# Scored on every COVID test slice (healthy slices have no lesion to point at), with the map of
# the *covid* class. The yardstick is a map that says nothing, the same value everywhere: it
# never wins the pointing game, and its energy share is just the lesions' share of the slice.
# Grad-CAM's energy share stays modest even when its peak is right, because a 6 × 6 map spreads
# each cell over 16 × 16 pixels, while the lesions are small.

# %%
def localisation(model, layer, slices):
    """Pointing game and energy pointing game of the covid maps on covid slices (needs masks)."""
    covid = slices.labels == 1
    maps, _ = explain(model, layer, slices.images[covid], class_idx=1)
    masks = slices.masks[covid]
    return {"pointing game": float(pointing_game(maps, masks).mean()),
            "energy pointing game": float(energy_pointing_game(maps, masks).mean())}


def constant_map_baseline(slices):
    masks = slices.masks[slices.labels == 1]
    flat = torch.ones(masks.shape)
    return {"pointing game": float(pointing_game(flat, masks).mean()),
            "energy pointing game": float(energy_pointing_game(flat, masks).mean())}


resnet_scores = localisation(model, model.layer4, splits.test) if splits.has_masks else {}
if splits.has_masks:
    scores = pd.DataFrame({"ResNet18 Grad-CAM": resnet_scores,
                           "constant map (no information)": constant_map_baseline(splits.test)}).T
    display(scores.round(3))
else:
    print("The real CT slices come without lesion masks: the scores need the synthetic data.")

# %% [markdown]
# ## 5 · A DenseNet121 variant
#
# The COVID X-ray Grad-CAM projects mostly used DenseNet121 {cite}`huang2017densenet`. Its
# Grad-CAM target is `model.features`, the last dense block followed by `norm5`; right after it,
# DenseNet's `forward` applies `F.relu(..., inplace=True)`, which is exactly the in-place trap
# your `GradCAM` is built to survive. Same data, same weights in the loss, fewer epochs (it is
# three times slower per image on a CPU).

# %%
DENSENET_EPOCHS = 3
densenet = build_densenet121().to(device)
dense_result = train_classifier(LitClassifier(densenet, num_classes=2, lr=1e-3, class_weights=weights, cosine=True),
                                data, max_epochs=DENSENET_EPOCHS)
print(f"DenseNet121 test accuracy {dense_result.test_acc:.3f}")

dense_maps, dense_logits = explain(densenet, densenet.features, splits.test.images[examples])
plot_cam_grid(torch.cat([splits.test.images[examples]] * 2), torch.cat([maps, dense_maps]),
              [f"ResNet18\n{t}" for t in titles_for(logits, splits.test.labels[examples])]
              + [f"DenseNet121\n{t}" for t in titles_for(dense_logits, splits.test.labels[examples])],
              ncols=5, suptitle="The same ten slices: ResNet18 (rows 1-2) and DenseNet121 (rows 3-4)",
              panel_size=2.0)
plt.show()

# %%
comparison = pd.DataFrame({
    "ResNet18": {"test accuracy": result.test_acc, **resnet_scores},
    "DenseNet121": {"test accuracy": dense_result.test_acc,
                    **(localisation(densenet, densenet.features, splits.test) if splits.has_masks else {})},
}).T
display(comparison.round(3))

# %% [markdown]
# ## 6 · The shortcut
#
# Now a story that has happened with real COVID-19 data {cite}`degrave2021shortcuts`. Suppose
# most COVID patients were scanned on the scanner of the COVID ward, which prints a small white
# label in the top-left corner, and the healthy patients elsewhere. Nobody removed the label.
# We mark 95 % of the COVID patients and none of the healthy ones (always synthetic slices here,
# because we need the lesion masks to score the maps), train the same ResNet18, and validate on
# data collected the same way. Both models of this section train for 3 epochs instead of 6: the
# label is learned within the first, and the before/after below came out the same with 4 epochs
# (to within 0.1 in clean accuracy and 0.03 in the pointing game), at half the run time.

# %%
ct = splits if splits.source == "synthetic" else load_synthetic_ct(seed=0)
RATES = (0.0, 0.95)  # share of (healthy, covid) patients whose slices carry the label
marked_train, _ = with_scanner_label(ct.train, RATES, seed=1)
marked_val, _ = with_scanner_label(ct.val, RATES, seed=2)
marked_test, _ = with_scanner_label(ct.test, RATES, seed=3)
corner = marker_region(ct.train.images.shape[-1])


SHORTCUT_EPOCHS = 3


def fit(train, val, epochs=SHORTCUT_EPOCHS):
    net = build_resnet18(verbose=False).to(device)
    lit = LitClassifier(net, num_classes=2, lr=1e-3, class_weights=class_weights(train.counts()),
                        cosine=True)
    train_classifier(lit, CTDataModule(train, val, val), max_epochs=epochs)
    return net


def accuracy(net, slices):
    return float((predict(net, slices.images).argmax(1) == slices.labels).float().mean())


def points_at_label(net, slices):
    """Share of covid slices whose 'covid' map peaks in the label's corner (the pointing game
    played against the corner instead of the lesions)."""
    covid = slices.labels == 1
    maps, _ = explain(net, net.layer4, slices.images[covid], class_idx=1)
    return float(pointing_game(maps, corner.expand_as(maps)).mean())


shortcut = fit(marked_train, marked_val)
print(f"validation accuracy (collected like the training data): {accuracy(shortcut, marked_val):.3f}")

# %% [markdown]
# A fine validation accuracy. Grad-CAM on COVID test slices that carry the label:

# %%
covid_marked = torch.nonzero((marked_test.labels == 1))[:, 0][:10]
s_maps, s_logits = explain(shortcut, shortcut.layer4, marked_test.images[covid_marked], class_idx=1)
plot_cam_grid(marked_test.images[covid_marked], s_maps,
              titles_for(s_logits, marked_test.labels[covid_marked]), ncols=5,
              suptitle="Shortcut model: Grad-CAM of 'covid' on labelled slices", panel_size=2.0)
plt.show()

# %% [markdown]
# **The fix.** The label sits outside the body, where nothing diagnostic ever is. Blanking a
# border band of every slice (training *and* test) removes it, as cropping to the body would.
# Same data, same model, same training:

# %%
def blank(slices):
    return with_images(slices, mask_border(slices.images))


fixed = fit(blank(marked_train), blank(marked_val))
f_maps, f_logits = explain(fixed, fixed.layer4, blank(marked_test).images[covid_marked], class_idx=1)
plot_cam_grid(blank(marked_test).images[covid_marked], f_maps,
              titles_for(f_logits, marked_test.labels[covid_marked]), ncols=5,
              suptitle="After blanking the border: Grad-CAM of 'covid'", panel_size=2.0)
plt.show()

# %% [markdown]
# Before and after, measured on test patients. "Labelled" slices were collected like the
# training data; "clean" ones are the same patients' slices without any label, as they would
# come from another hospital. The pointing games use the labelled slices and the lesion masks:
# where does each model look on the data it would be deployed on?

# %%
rows = {}
for name, net, prepare in (("shortcut (label in the data)", shortcut, lambda s: s),
                           ("fixed (border blanked)", fixed, blank)):
    rows[name] = {
        "val accuracy (labelled)": accuracy(net, prepare(marked_val)),
        "test accuracy (labelled)": accuracy(net, prepare(marked_test)),
        "test accuracy (clean)": accuracy(net, prepare(ct.test)),
        **localisation(net, net.layer4, prepare(marked_test)),
        "maps peaking on the label": points_at_label(net, prepare(marked_test)),
    }
shortcut_table = pd.DataFrame(rows).T
display(shortcut_table.round(3))
before, after = shortcut_table.iloc[0], shortcut_table.iloc[1]
print("shortcut → fixed: " + " | ".join(
    f"{col} {before[col]:.3f} → {after[col]:.3f}"
    for col in ("test accuracy (clean)", "pointing game", "maps peaking on the label")))

# %% [markdown]
# ## Written answers
#
# **Question 1 (10 points).** Explain to a clinician who knows no deep learning what a Grad-CAM
# map of this chapter shows, how it is computed (in words), and one thing it cannot tell them.

# %% [markdown] deletable=false nbgrader={"cell_type": "markdown", "checksum": "b35a0a0f3c771d2acb2d3aa012e22186", "grade": true, "grade_id": "answer_gradcam", "locked": false, "points": 10, "schema_version": 3, "solution": true, "task": false}
# YOUR ANSWER HERE

# %% [markdown]
# **Question 2 (10 points).** Interpret the shortcut experiment using your table: what did the
# validation accuracy hide, what gave the shortcut away, and why did the fix work? What would
# you check before trusting a real COVID-19 classifier?

# %% [markdown] deletable=false nbgrader={"cell_type": "markdown", "checksum": "97fb7ddf392e9991f54df738c68a2485", "grade": true, "grade_id": "answer_shortcut", "locked": false, "points": 10, "schema_version": 3, "solution": true, "task": false}
# YOUR ANSWER HERE

# %% [markdown]
# ## Summary
#
# - Split medical images by patient; weight the loss by inverse class frequency.
# - A `with GradCAM(model, layer) as cam:` block keeps the hook exactly as long as needed; the
#   hook returns a clone so in-place operations after the layer cannot corrupt it.
# - The pointing game and the energy pointing game turn "the map looks right" into numbers.
# - High validation accuracy can come from a shortcut; Grad-CAM exposes it, and a measured
#   before/after shows the fix worked.
#
# **Further reading:** {cite}`degrave2021shortcuts`, {cite}`zhang2018pointing`,
# {cite}`selvaraju2017gradcam` (Sec. 7 on bias in datasets).
