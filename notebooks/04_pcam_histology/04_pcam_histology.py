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

# %% [markdown] deletable=false editable=false nbgrader={"cell_type": "markdown", "checksum": "41b8fcf4df8e41934e7a423c67cec6d7", "grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# # Chapter 4 · PatchCamelyon: Grad-CAM against other attribution methods, measured
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradcam-course/gradcam-course/blob/main/notebooks/04_pcam_histology/04_pcam_histology.ipynb)
#
# Grad-CAM is one way to explain a decision among many. This chapter puts it next to three
# others, **saliency**, **occlusion** and **integrated gradients**, and then does what most
# tutorials skip: it *measures* them. The data make that possible. In PatchCamelyon
# {cite}`veeling2018pcam`, a 96 × 96 patch of a lymph-node section is labelled "tumour" exactly
# when its **centre 32 × 32 region** contains tumour tissue, so we know where the evidence must
# be.
#
# **You will learn to**
# - explain a classifier with a single output (one logit), for either class;
# - implement saliency, occlusion and integrated gradients, batched;
# - judge explanations by localisation (pointing games) and by faithfulness (insertion and
#   deletion curves);
# - run the model-randomisation sanity check, which catches explanations that ignore the model.
#
# **Run time:** about 5 minutes on a CPU. **Points (100):** exercise 1 (Grad-CAM for one logit)
# 15 · exercise 2 (saliency) 10 · exercise 3 (occlusion) 15 · exercise 4 (integrated gradients) 20
# · exercise 5 (insertion/deletion) 20 · written answers 2 × 10.

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
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from gradcam_course import fast_mode, setup
from gradcam_course.metrics import (cascading_randomization, energy_pointing_game, explain_batched,
                                    pointing_game, rank_correlation, score_signs)
from gradcam_course.pcam import CLASSES, PCamDataModule, PatchCNN, centre_region, load_pcam
from gradcam_course.plotting import (method_colors, plot_confusion, plot_metric_bars,
                                     plot_sanity_check, plot_training_curves, show_cam)
from gradcam_course.training import LitClassifier, predict, train_classifier

device = setup(seed=0)

# %% [markdown]
# ## 1 · The data
#
# With internet, the next cell downloads the PatchCamelyon HDF5 files from Zenodo (about 7 GB
# unpacked; or set `GRADCAM_COURSE_PCAM_DIR` to a folder that has them) and reads a stratified
# subset of 40 000 / 5 000 / 5 000 patches, **lazily**: one patch at a time from the file, so the
# 6 GB training file never has to fit in memory. Offline, the same call generates **synthetic
# H&E-like patches**: pink stroma (eosin), small purple nuclei (haematoxylin), now and then a
# dense cluster of small dark lymphocytes, and tumour as clusters of larger, darker, ragged
# nuclei. The label follows PCam's rule: positive when tumour touches the centre 32 × 32 region,
# and a negative patch may have tumour *outside* the centre, as in the real data. For synthetic
# patches we also get the tumour's exact outline, a mask per patch. The banner says which data
# you got.

# %%
splits = load_pcam()
test = splits.test
evidence = test.evidence()  # the tumour masks; for real PCam, the centre region of positives
SIZE = test.images.shape[-1]

# %% [markdown]
# Eight patches of each class. The dashed square is the centre region that decides the label;
# green outlines the tumour where we know it.

# %%
def show_patches(patches, masks, idx, title):
    fig, axes = plt.subplots(2, 8, figsize=(14, 4.2), layout="constrained")
    lo = SIZE // 3
    for ax, i in zip(axes.flat, idx):
        ax.imshow(patches.images[i].permute(1, 2, 0).numpy())
        if masks[i].any():
            ax.contour(masks[i].numpy(), levels=[0.5], colors="lime", linewidths=1)
        ax.add_patch(plt.Rectangle((lo - 0.5, lo - 0.5), SIZE - 2 * lo, SIZE - 2 * lo, fill=False,
                                   ec="white", ls="--", lw=1))
        ax.set_title(CLASSES[int(patches.labels[i])], fontsize=9)
        ax.axis("off")
    fig.suptitle(title)
    plt.show()


sample = torch.cat([torch.nonzero(test.labels == c)[:8, 0] for c in (0, 1)])
show_patches(test, evidence, sample.tolist(),
             f"Test patches ({splits.source}): dashed, the centre region; green, tumour")

# %% [markdown]
# ## 2 · A small CNN with one output
#
# Four convolution blocks (`features[0]`, `[2]`, `[4]`, `[6]`) with three max-poolings between
# them (a 24 × 24 grid at `features[4]`, 12 × 12 at `features[6]`), global
# average pooling and a linear layer with **one output**: the logit $z$ of "tumour". The
# probability of tumour is $\sigma(z)$ and of normal tissue $1 - \sigma(z) = \sigma(-z)$.
#
# We train it with `BCEWithLogitsLoss`, which takes the logit itself. The tempting alternative,
# a sigmoid inside the model followed by `BCELoss`, computes $\log \sigma(z)$ in two steps and
# loses precision (and gradient) when $|z|$ is large: the fused loss uses the stable identity
# $\log \sigma(z) = -\log(1 + e^{-z})$. `LitClassifier(..., num_classes=1)` does this.

# %%
EPOCHS = 8
model = PatchCNN().to(device)
lit = LitClassifier(model, num_classes=1, lr=2e-3, cosine=True)
result = train_classifier(lit, PCamDataModule(splits, batch_size=64), max_epochs=EPOCHS)
print(f"test accuracy {result.test_acc:.3f} after {result.epochs} epoch(s)")
plot_training_curves(result.history, title="PatchCNN on histology patches")
plt.show()

# %%
from sklearn.metrics import classification_report

model.eval()
test_images = test.floats()
test_logits = predict(model, test_images)[:, 0]
preds = (test_logits > 0).long()
print(classification_report(test.labels, preds, target_names=CLASSES, digits=3, zero_division=0))
plot_confusion(test.labels, preds, CLASSES, title="PatchCNN, test patches")
plt.show()

# %% [markdown]
# ## Which score do we explain?
#
# Every method below explains a **score**: a number per image whose gradient or change we
# follow. With one logit $z$ per image, the score of "tumour" is $z$ and the score of "normal"
# is $-z$ (the logit of normal tissue, since $\sigma(-z)$ is its probability). Explaining
# "normal" with $+z$ would show what speaks *against* normal, the opposite of what we asked.
# `score_signs(logits, target)` from the helper package returns the sign per image: `target` is
# `None` (the predicted class: $z > 0$ means tumour), `0` or `1` for all images, or one `0`/`1`
# per image. The score is then `logits[:, 0] * score_signs(logits, target)`.

# %%
print("signs for target=None on four logits:", score_signs(torch.tensor([[2.0], [-1.0], [0.5], [-3.0]])))

# %% [markdown]
# ## Exercise 1 · Grad-CAM for a single logit (15 points)
#
# Write `binary_gradcam(model, target_layer, images, target=None)`: chapter 1's Grad-CAM
# {cite}`selvaraju2017gradcam` for the score $s = \pm z$ above,
#
# $$\alpha_k = \frac{1}{hw}\sum_{ij} \frac{\partial s}{\partial A^k_{ij}}, \qquad
#   L = \mathrm{ReLU}\Big(\sum_k \alpha_k A^k\Big),$$
#
# then bilinear upsampling to the input size (`align_corners=False`) and a per-image min-max to
# $[0, 1]$ with eps `1e-7`. Return `(N, H, W)`. Use a forward hook on `target_layer` that
# returns `output.clone()` (chapter 3's lesson), `torch.autograd.grad`, and remove the hook
# whatever happens.

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "b6c2c59b96363e2d83cb5cf024cb4a30", "grade": false, "grade_id": "gradcam_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def binary_gradcam(model, target_layer, images, target=None):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "beaa64b8b9a7a5d1ec8b4e32d3d56ce6", "grade": true, "grade_id": "test_gradcam_values", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: shape and range on the trained model.
_maps = binary_gradcam(model, model.features[-1], test_images[:4].to(device))
assert _maps.shape == (4, SIZE, SIZE), f"expected (4, {SIZE}, {SIZE}), got {tuple(_maps.shape)}"
assert float(_maps.min()) >= 0 and float(_maps.max()) <= 1 + 1e-6, "normalise each map to [0, 1]"
print("visible checks passed: shape and range")

# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "8fce5ce5a73274ffb5c3e48f195ec7c0", "grade": true, "grade_id": "test_gradcam_negative", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Visible check: the maps of "tumour" and of "normal" differ (their scores have opposite signs).
_x = test_images[:2].to(device)
_tumour, _normal = binary_gradcam(model, model.features[-1], _x, 1), binary_gradcam(model, model.features[-1], _x, 0)
assert not torch.allclose(_tumour, _normal), "target=0 must explain the score -logit, not +logit"
print("visible checks passed: the two classes get different maps")


# %% [markdown]
# ## Exercise 2 · Saliency (10 points)
#
# The oldest gradient explanation {cite}`simonyan2014saliency`: how much does the score change
# when one input pixel changes? Write `saliency_map(model, images, target=None)` returning
# `(N, H, W)`:
#
# $$M_{ij} = \max_c \left| \frac{\partial s}{\partial x_{cij}} \right|,$$
#
# then per-image min-max to $[0, 1]$ (eps `1e-7`). Take the gradient with respect to a detached
# copy of the images that requires grad (never modify the caller's tensor).

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "4024df80a86a5735483c8080a4d9b81b", "grade": false, "grade_id": "saliency_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def saliency_map(model, images, target=None):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "78ea65530e089c65b4fab326c6a28a0e", "grade": true, "grade_id": "test_saliency", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: shape, range, and the caller's images untouched.
_x = test_images[:3].clone().to(device)
_s = saliency_map(model, _x)
assert _s.shape == (3, SIZE, SIZE) and float(_s.min()) >= 0 and float(_s.max()) <= 1 + 1e-6
assert not _x.requires_grad, "work on a detached copy of the images"
print("visible checks passed: saliency shape and range")


# %% [markdown]
# ## Exercise 3 · Occlusion (15 points)
#
# Gradients describe an infinitesimal change; occlusion {cite}`zeiler2014visualizing` makes a
# real one. Cover a `patch` × `patch` window (all channels) with the `baseline` value, and see how
# much the score drops. Write
# `occlusion_sensitivity(model, images, patch, stride, baseline=0.0, target=None)` returning
# `(N, H, W)`:
#
# - windows start at rows and columns $0, \text{stride}, 2\,\text{stride}, \dots$ as long as the
#   window fits: $\lfloor (H - \text{patch}) / \text{stride} \rfloor + 1$ positions per axis;
# - the drop of a window is $s(x) - s(x_\text{occluded})$, with the target class chosen on the
#   *unoccluded* images;
# - each pixel gets the **mean** drop of the windows that cover it, and 0 if none does (this is
#   what captum's `Occlusion` returns, per channel).
#
# The original version of this assignment ran one forward pass per window and applied a sigmoid
# to an output that already was one. Do better: stack the occluded copies and evaluate them in
# batches (a few hundred images per forward pass), under `torch.inference_mode()`.

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "1b160bb5f139089ebe9c52d7a710aae8", "grade": false, "grade_id": "occlusion_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def occlusion_sensitivity(model, images, patch, stride, baseline=0.0, target=None):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "b06c91cf38f7945cdff555a475c65013", "grade": true, "grade_id": "test_occlusion_values", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: one window covering the whole image gives every pixel the same drop.
_x = test_images[:2].to(device)
_o = occlusion_sensitivity(model, _x, patch=SIZE, stride=SIZE, target=1)
with torch.no_grad():
    _drop = model(_x)[:, 0] - model(torch.zeros_like(_x))[:, 0]
assert _o.shape == (2, SIZE, SIZE), f"expected (2, {SIZE}, {SIZE}), got {tuple(_o.shape)}"
assert torch.allclose(_o, _drop[:, None, None].expand_as(_o), atol=1e-4), "drop = score(x) - score(occluded x)"
print("visible checks passed: a single window")

# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "524b96fd02555e28f93c137f26a5cbef", "grade": true, "grade_id": "test_occlusion_baseline", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden test only: a grey baseline, and the class "normal".
print("graded by a hidden test: baseline=0.5 and target=0")


# %% [markdown]
# ## Exercise 4 · Integrated gradients (20 points)
#
# A saliency map looks at the gradient at the image only, where a saturated network may be flat.
# Integrated gradients {cite}`sundararajan2017axiomatic` average the gradient along the straight
# path from a **baseline** $x'$ (black, by default) to the image, and multiply by the distance
# travelled:
#
# $$\mathrm{IG}_i(x) = (x_i - x'_i) \int_0^1 \frac{\partial s}{\partial x_i}\big(x' + \alpha (x - x')\big)\, d\alpha
#   \approx (x_i - x'_i)\,\frac{1}{m} \sum_{k=0}^{m-1} \frac{\partial s}{\partial x_i}\big(x' + \alpha_k (x - x')\big),
#   \quad \alpha_k = \frac{k + \frac{1}{2}}{m}.$$
#
# This midpoint rule is captum's `method="riemann_middle"`. The axiom that makes IG worth its
# cost is **completeness**: the attributions add up to $s(x) - s(x')$, the whole change of the
# score, so nothing is left unexplained (up to the error of the sum, which shrinks with $m$).
#
# Write `integrated_gradients(model, images, baseline=None, steps=50, target=None)` returning
# `(N, C, H, W)`. `baseline` is `None` (zeros), a float, or a tensor of the images' shape; the
# target class is chosen on the images. Evaluate the path points in batches (all $m$ points of
# an image need not be separate forward passes).

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "a185355993d9cc5e4353dfeac57d3630", "grade": false, "grade_id": "ig_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def integrated_gradients(model, images, baseline=None, steps=50, target=None):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "32f24bdb340ffdc2ce354737d5decb34", "grade": true, "grade_id": "test_ig_values", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: shape, and zero attribution where the image equals the baseline.
_x = test_images[:2].clone().to(device)
_x[:, :, :8, :8] = 0.0
_ig = integrated_gradients(model, _x, steps=8)
assert _ig.shape == _x.shape, f"expected {tuple(_x.shape)}, got {tuple(_ig.shape)}"
assert float(_ig[:, :, :8, :8].abs().max()) == 0.0, "multiply by (x - baseline)"
print("visible checks passed: shape and (x - baseline) factor")

# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "15737e34de0996d96a061e60cd88314f", "grade": true, "grade_id": "test_ig_completeness", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Visible check: completeness on the trained model.
_x = test_images[:4].to(device)
_ig = integrated_gradients(model, _x, steps=64, target=1)
with torch.no_grad():
    _gap = model(_x)[:, 0] - model(torch.zeros_like(_x))[:, 0]
print("sum of attributions:", _ig.flatten(1).sum(1).cpu().numpy().round(3))
print("s(x) - s(baseline): ", _gap.cpu().numpy().round(3))
# the midpoint rule is not exact on a network full of ReLU kinks: allow 5 % of the largest gap
assert torch.allclose(_ig.flatten(1).sum(1), _gap, rtol=0, atol=0.05 * float(_gap.abs().max())), \
    "the attributions must add up to s(x) - s(x')"
print("visible checks passed: completeness")

# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "1617e3c4b891108014b1abc4b7b93ff4", "grade": true, "grade_id": "test_ig_baseline", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden test only: a float baseline, an image-shaped baseline, and the class "normal".
print("graded by a hidden test: baselines and target=0")

# %% [markdown]
# ## 3 · Four explanations of the same patches
#
# **Which baseline?** Occlusion, integrated gradients and insertion/deletion all replace pixels by
# a "nothing here" value. Black (0) is the usual default for photos, but in a stained section
# dark purple *is* the stain of nuclei: a black square looks like the darkest nucleus there could
# be. Where there is no tissue, a slide is white glass. Ask the model:

# %%
with torch.no_grad():
    _blank = torch.stack([torch.zeros(3, SIZE, SIZE), torch.ones(3, SIZE, SIZE)]).to(device)
    _p = torch.sigmoid(model(_blank)[:, 0]).cpu()
print(f"p(tumour) of an all-black patch: {_p[0]:.2f} | of an all-white patch: {_p[1]:.2f}")
BASELINE = 1.0  # white: no tissue, no stain

# %% [markdown]
# Each method gives a map on its own scale: Grad-CAM and saliency are already in $[0, 1]$;
# occlusion gives signed drops and IG signed attributions per channel. To compare them we keep
# what speaks **for** the class (occlusion's positive drops; IG's largest absolute value over the
# channels, as for saliency), and min-max each map to $[0, 1]$. The target is "tumour" for every
# patch: the question is *where is the tumour evidence?* Grad-CAM appears twice: at the last
# block (12 × 12, the usual choice) and one block earlier (24 × 24).

# %%
def to_unit(maps):
    lo = maps.flatten(1).min(1).values[:, None, None]
    hi = maps.flatten(1).max(1).values[:, None, None]
    return (maps - lo) / (hi - lo + 1e-7)


FAST = fast_mode()  # grading and tests: a few patches and coarser settings, the same code
OCCLUSION = dict(patch=16, stride=16 if FAST else 8, baseline=BASELINE)
IG_STEPS = 8 if FAST else 32


def methods_for(net):
    """The attribution methods of this chapter, as functions of a batch of patches."""
    return {
        "Grad-CAM": lambda x: binary_gradcam(net, net.features[6], x, target=1),
        "Grad-CAM, block 3": lambda x: binary_gradcam(net, net.features[4], x, target=1),
        "saliency": lambda x: saliency_map(net, x, target=1),
        "occlusion": lambda x: to_unit(occlusion_sensitivity(net, x, target=1, **OCCLUSION).clamp_min(0)),
        "integrated gradients": lambda x: to_unit(integrated_gradients(
            net, x, baseline=BASELINE, steps=IG_STEPS, target=1).abs().amax(1)),
    }


METHODS = methods_for(model)


def explain_all(images, methods=METHODS):
    """{method: (N, H, W) maps in [0, 1]} and {method: seconds per image}. (32 images at a time)"""
    return explain_batched(methods, images, device)


positives = torch.nonzero(test.labels == 1)[:, 0]
gallery = positives[:5]
gallery_maps, _ = explain_all(test_images[gallery])
fig, axes = plt.subplots(len(gallery), 1 + len(METHODS), figsize=(2.3 * (1 + len(METHODS)), 2.3 * len(gallery)),
                         layout="constrained")
for r, i in enumerate(gallery.tolist()):
    axes[r, 0].imshow(test.images[i].permute(1, 2, 0).numpy())
    axes[r, 0].contour(evidence[i].numpy(), levels=[0.5], colors="lime", linewidths=1)
    axes[r, 0].set_title(f"p(tumour) = {torch.sigmoid(test_logits[i]):.2f}", fontsize=9)
    axes[r, 0].axis("off")
    for c, (name, maps) in enumerate(gallery_maps.items(), start=1):
        show_cam(axes[r, c], test_images[i], maps[r], name if r == 0 else None)
fig.suptitle("Tumour patches (green: tumour) and their explanations of 'tumour'")
plt.show()

# %% [markdown]
# ## Exercise 5 · Insertion and deletion curves (20 points)
#
# A map can point at the tumour and still misrepresent what the *model* uses. Petsiuk et al.
# {cite}`petsiuk2018rise` test faithfulness directly: rank the pixels by the map, then
#
# - **deletion**: remove the top-ranked pixels (set them to the baseline) in growing fractions and
#   watch the probability of the class fall: a faithful map makes it fall fast (low area);
# - **insertion**: start from a blank (baseline) image and put back the top-ranked pixels: a
#   faithful map makes the probability rise fast (high area).
#
# Write `insertion_deletion(model, images, maps, steps=16, baseline=0.0, target=None)`:
# - rank the pixels of each `maps[i]` (`(N, H, W)`) from highest to lowest, ties broken by the
#   lower flat index first (`torch.argsort(..., descending=True, stable=True)`);
# - at step $k = 0, \dots, \text{steps}$ the top $n_k = \lfloor k\,HW / \text{steps} \rfloor$
#   pixels (all channels) are inserted into an all-`baseline` image, or deleted from the image;
# - the curves hold the **probability** of the target class (chosen on the images):
#   $\sigma(s)$ with the score $s = \pm z$;
# - the areas use the trapezoid rule over the fractions $k / \text{steps}$
#   (`torch.trapezoid`).
#
# Return a dict with `"fractions"` `(steps+1,)`, `"insertion"` and `"deletion"` `(N, steps+1)`,
# `"insertion_auc"` and `"deletion_auc"` `(N,)`. Evaluate all the perturbed images of a step (or
# of several steps) in one forward pass.

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "3044eac045e57bb1e2d6c435d8bc2534", "grade": false, "grade_id": "insertion_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def insertion_deletion(model, images, maps, steps=16, baseline=0.0, target=None):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "81280b3aca95e00c0bb0181b413ee6df", "grade": true, "grade_id": "test_insertion_curves", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: both curves meet the unperturbed image's probability at their ends.
_x = test_images[positives[:3]].to(device)
_r = insertion_deletion(model, _x, torch.rand(3, SIZE, SIZE), steps=4, target=1)
with torch.no_grad():
    _p = torch.sigmoid(model(_x)[:, 0])
assert _r["insertion"].shape == (3, 5) and _r["deletion"].shape == (3, 5), "curves are (N, steps + 1)"
assert torch.allclose(_r["insertion"][:, -1], _p, atol=1e-5), "insertion ends with the whole image"
assert torch.allclose(_r["deletion"][:, 0], _p, atol=1e-5), "deletion starts with the whole image"
print("visible checks passed: curve ends")

# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "2238aee1ba808fe05bfc92e8fe8d8ede", "grade": true, "grade_id": "test_insertion_auc", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: the areas are the trapezoid rule over the fractions.
assert torch.allclose(_r["fractions"], torch.linspace(0, 1, 5)), "fractions are k / steps"
assert torch.allclose(_r["insertion_auc"], torch.trapezoid(_r["insertion"], _r["fractions"], dim=1))
print("visible checks passed: areas")

# %% [markdown]
# ## 4 · The comparison
#
# Every method on the same tumour patches of the test set, scored four ways, with a **random
# map** as the yardstick (anything worse than noise is not an explanation):
#
# - **pointing game** {cite}`zhang2018pointing`: does the map's maximum fall on tumour?
# - **energy pointing game** {cite}`wang2020scorecam`: what share of the map's mass lies on tumour?
# - **insertion AUC** (higher is better) and **deletion AUC** (lower is better), with your
#   `insertion_deletion` and the white baseline;
# - and the wall time per patch on this machine.

# %%
N_EVAL = 4 if FAST else 60
evaluated = positives[:N_EVAL]
x_eval, m_eval = test_images[evaluated], evidence[evaluated]
maps, seconds = explain_all(x_eval)
maps["random map"] = torch.rand(x_eval.shape[0], SIZE, SIZE, generator=torch.Generator().manual_seed(0))
seconds["random map"] = 0.0

rows, curves = {}, {}
for name, m in maps.items():
    r = insertion_deletion(model, x_eval.to(device), m.to(device), steps=16, baseline=BASELINE, target=1)
    curves[name] = r
    rows[name] = {"pointing game": float(pointing_game(m, m_eval).mean()),
                  "energy pointing game": float(energy_pointing_game(m, m_eval).mean()),
                  "insertion AUC ↑": float(r["insertion_auc"].mean()),
                  "deletion AUC ↓": float(r["deletion_auc"].mean()),
                  "ms per patch": 1000 * seconds[name]}
table = pd.DataFrame(rows).T
print(f"{len(evaluated)} tumour patches ({splits.source} data), baseline {BASELINE:g} (white)")
display(table.round(3))
for metric in ("pointing game", "deletion AUC ↓"):
    print(f"{metric}: " + " | ".join(f"{name} {value:.3f}" for name, value in table[metric].items()))

# %%
metric_names = ["pointing game", "energy pointing game", "insertion AUC ↑", "deletion AUC ↓"]
plot_metric_bars(table, metric_names, "Localisation (left two) and faithfulness (right two), per method",
                 unit_interval=metric_names)
plt.show()

colors = method_colors(len(table))  # the bars' colours, in every figure

fig, (ax_i, ax_d) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
for color, (name, r) in zip(colors, curves.items()):
    ax_i.plot(r["fractions"].cpu(), r["insertion"].mean(0).cpu(), color=color, label=name)
    ax_d.plot(r["fractions"].cpu(), r["deletion"].mean(0).cpu(), color=color, label=name)
for ax, title in ((ax_i, "insertion (higher is better)"), (ax_d, "deletion (lower is better)")):
    ax.set_xlabel("fraction of pixels inserted" if ax is ax_i else "fraction of pixels deleted")
    ax.set_ylabel("p(tumour), mean over patches")
    ax.set_title(title)
ax_d.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Reading the table.** Each metric answers a different question, and no method wins all of
# them. Localisation asks whether the map points at the tumour; insertion and deletion ask
# whether the model's probability actually depends on the pixels the map ranks first; the time
# column says what that costs. Pixel-level maps (saliency, IG) can rank individual nuclei and
# often win the faithfulness curves; Grad-CAM's 12 × 12 grid cannot, and Grad-CAM one block
# earlier, where the averaged gradient is a poor weight, can be worse than the random map (the
# CAM variants of chapter 5 change exactly that). Before choosing, one more test.

# %% [markdown]
# ## 5 · The sanity check: does the explanation depend on the model?
#
# Adebayo et al. {cite}`adebayo2018sanity` asked a blunt question: if we destroy what the model
# learned, does the explanation change? They re-initialise the layers one after another, from
# the output towards the input ("cascading"), and compare each new map with the trained model's
# by **Spearman rank correlation**. A method whose maps stay the same after the top layers are
# random explains the image (edges, contrast), not the model. Guided backpropagation failed
# their test; plain gradients and Grad-CAM passed.

# %%
N_SANITY = 2 if FAST else 16
x_sanity = test_images[positives[:N_SANITY]]
trained_maps, _ = explain_all(x_sanity)
cascade = ["head.3", "features.6", "features.4", "features.2", "features.0"]  # output → input
correlation = {name: [1.0] for name in METHODS}
for layer, randomized in cascading_randomization(model, cascade, seed=0):
    new_maps, _ = explain_all(x_sanity, methods_for(randomized.eval()))
    for name in METHODS:
        correlation[name].append(float(rank_correlation(trained_maps[name], new_maps[name]).mean()))

plot_sanity_check(correlation, cascade)
plt.show()
sanity = pd.DataFrame(correlation, index=["trained"] + [f"+{layer}" for layer in cascade]).T
display(sanity.round(2))

# %% [markdown]
# ## Written answers
#
# **Question 1 (10 points).** A pathologist asks you for one explanation method to show next to
# this model's predictions. Which one do you choose, and why? Use the numbers of your comparison
# table (localisation, faithfulness, cost) and of the sanity check, and say what the chosen
# method cannot show.

# %% [markdown] deletable=false nbgrader={"cell_type": "markdown", "checksum": "b498d9e5ad4b51f0f9080d9bcf42dbca", "grade": true, "grade_id": "answer_pathologist", "locked": false, "points": 10, "schema_version": 3, "solution": true, "task": false}
# YOUR ANSWER HERE

# %% [markdown]
# **Question 2 (10 points).** Interpret the sanity-check plot: which methods depend on the
# learned weights, which do not, and why is a high correlation after randomisation bad news for
# an explanation method?

# %% [markdown] deletable=false nbgrader={"cell_type": "markdown", "checksum": "6f95f35974ca84cedb1c64b477bbe030", "grade": true, "grade_id": "answer_sanity", "locked": false, "points": 10, "schema_version": 3, "solution": true, "task": false}
# YOUR ANSWER HERE

# %% [markdown]
# ## Summary
#
# - With one logit $z$, the score of the positive class is $z$ and of the negative class $-z$;
#   train with `BCEWithLogitsLoss` on the logit.
# - Saliency, occlusion and integrated gradients are a few lines each; batch the perturbed
#   inputs, never one forward pass per window or step.
# - Judge explanations by localisation against known evidence, by faithfulness (insertion and
#   deletion), by cost, and by the randomisation sanity check, against a random-map baseline.
#
# **Further reading:** {cite}`adebayo2018sanity`, {cite}`petsiuk2018rise`,
# {cite}`sundararajan2017axiomatic`, {cite}`veeling2018pcam`.
