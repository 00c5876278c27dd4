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

# %% [markdown] deletable=false editable=false nbgrader={"cell_type": "markdown", "checksum": "b52ef7e72b8d42f94b062e7bc5f5dd46", "grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# # Chapter 5 · The CAM family, measured: Grad-CAM++, HiResCAM, LayerCAM, Score-CAM, EigenCAM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradcam-course/gradcam-course/blob/main/notebooks/05_cam_family/05_cam_family.ipynb)
#
# After this course you will probably reach for pytorch-grad-cam {cite}`jacobgil2021pytorchcam`,
# which offers a dozen CAM methods and no advice on which one to trust. This chapter gives you
# both halves of that advice. The **understanding**: each method is a small change to Grad-CAM's
# channel weights or to how its map is formed, and you will write each change yourself. The
# **evidence**: every method scored on CT slices where we know exactly where the lesions are,
# with the localisation and faithfulness metrics of chapters 3 and 4, a cross-check against
# pytorch-grad-cam, and the model-randomisation sanity check.
#
# **You will learn to**
# - derive Grad-CAM++, HiResCAM, LayerCAM, Score-CAM and EigenCAM from Grad-CAM's two equations;
# - implement each from the target layer's activations and gradients, batched and gradient-free
#   where the method allows;
# - recognise when a method's map can come out *inverted*, and fix it;
# - choose a method with numbers: pointing games, insertion/deletion, ROAD, sanity check, cost.
#
# **Run time:** about 5 minutes on a CPU. **Points (100):** exercise 1 (Grad-CAM++) 15 ·
# exercise 2 (HiResCAM) 10 · exercise 3 (LayerCAM) 10 · exercise 4 (Score-CAM) 25 · exercise 5
# (EigenCAM) 20 · written answers 2 × 10.

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
import contextlib
import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from gradcam_course import fast_mode, setup
from gradcam_course.ct import CLASSES, CTDataModule, build_resnet18, load_synthetic_ct
from gradcam_course.data import banner
from gradcam_course.imagenet import load_imagenet_classifier, sample_photos
from gradcam_course.metrics import (cascading_randomization, energy_pointing_game, explain_batched,
                                    insertion_deletion, pointing_game, rank_correlation)
from gradcam_course.plotting import (method_colors, plot_metric_bars, plot_sanity_check,
                                     plot_training_curves, show_cam)
from gradcam_course.training import LitClassifier, predict, train_classifier

device = setup(seed=0)
FAST = fast_mode()  # grading and tests: a few slices and tiny training, the same code

# %% [markdown]
# ## 1 · The model and the evidence
#
# We need images where we *know* where the evidence is, so this chapter always uses the
# **synthetic CT slices** of chapter 3: every COVID slice comes with the mask of its ground-glass
# lesions (the real Kaggle scans have no such masks). They are chapter 3's offline data exactly
# (100 patients, a quarter of them held out for testing), and we train chapter 3's ResNet18
# (grey stem, `layer4` on a 1/16 grid, 6 × 6 for 96-pixel slices) with the same recipe, from the
# same initial weights.
#
# The same code, data, initial weights and seed give the same trained weights, so when the book
# is built, `train_classifier` reuses the model chapter 3 trained instead of training it twice
# (the cell says so when it does). In Colab or on your machine it trains here.

# %%
splits = load_synthetic_ct(size=32 if FAST else 96, n_patients=24 if FAST else 100,
                           slices_per_patient=6 if FAST else 10)
print(banner("Data: synthetic CT slices with lesion masks",
             f"{splits.description}\n{splits.summary()}\n"
             "Why: the comparison needs to know where the lesions are."))
test = splits.test
SIZE = test.images.shape[-1]

# %%
EPOCHS = 6
counts = torch.tensor(splits.train.counts(), dtype=torch.float)
weights = counts.sum() / (len(counts) * counts)  # chapter 3's class weights
torch.manual_seed(0)  # chapter 3's initial weights
model = build_resnet18().to(device)
lit = LitClassifier(model, num_classes=2, lr=1e-3, class_weights=weights, cosine=True)
result = train_classifier(lit, CTDataModule(splits.train, splits.val, splits.test), max_epochs=EPOCHS)
model.eval()
print(f"test accuracy {result.test_acc:.3f} after {result.epochs} epoch(s)")
plot_training_curves(result.history, title="ResNet18 on synthetic CT slices")
plt.show()

# %% [markdown]
# ## 2 · Grad-CAM, in two equations
#
# Every method in this chapter starts where chapter 1 ended. For the target layer's activations
# $A^k \in \mathbb{R}^{h \times w}$ ($k = 1 \dots K$ channels) and the gradient
# $g^k = \partial y^c / \partial A^k$ of the class score, Grad-CAM {cite}`selvaraju2017gradcam`
# computes
#
# $$\alpha_k = \frac{1}{hw} \sum_{ij} g^k_{ij} \qquad\qquad
#   L = \mathrm{ReLU}\Big(\sum_k \alpha_k A^k\Big).$$
#
# The family changes one of the two: **the weights** $\alpha_k$ (Grad-CAM++, XGrad-CAM,
# Score-CAM) or **how the map is formed** (HiResCAM, LayerCAM, EigenCAM). Below is chapter 1's
# capture function, solved, so that every exercise can start from `activations` and `gradients`,
# both `(N, K, h, w)`. `to_heatmap` then turns any `(N, h, w)` map into the course's canonical
# heatmap: ReLU, bilinear upsampling to the input size, per-image min-max to $[0, 1]$.

# %%
def capture(model, layer, images, class_idx=None):
    """(activations, gradients, logits) of `layer` for the logit of `class_idx` (None: predicted)."""
    kept = {}

    def hook(module, inputs, output):
        kept["a"] = output
        return output.clone()  # an in-place op after the layer must not change what we keep

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(images)
            if class_idx is None:  # each image's predicted class
                idx = logits.argmax(1)
            else:  # an int for all images, or one class per image
                idx = torch.as_tensor(class_idx, device=logits.device).reshape(-1).expand(len(logits))
            (grads,) = torch.autograd.grad(logits.gather(1, idx[:, None]).sum(), kept["a"])
    finally:
        handle.remove()
    return kept["a"].detach(), grads.detach(), logits.detach()


def weighted_map(activations, weights):
    """ReLU(Σ_k w_k A^k): the map of any method that only changes the weights."""
    return torch.relu((weights[:, :, None, None] * activations).sum(1))


def to_heatmap(maps, size):
    """(N, h, w) → (N, H, W) in [0, 1]: ReLU, bilinear upsampling, per-image min-max."""
    up = F.interpolate(torch.relu(maps)[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    lo = up.flatten(1).min(1).values[:, None, None]
    hi = up.flatten(1).max(1).values[:, None, None]
    return (up - lo) / (hi - lo + 1e-7)


covid = torch.nonzero(test.labels == 1)[:, 0]
x5 = test.images[covid[:5]].to(device)
acts, grads, logits = capture(model, model.layer4, x5, 1)
print("activations", tuple(acts.shape), "| gradients", tuple(grads.shape))

# %% [markdown]
# ## Exercise 1 · Grad-CAM++ (15 points)
#
# Grad-CAM's mean treats every position alike, so a class present in several places is
# dominated by its largest instance. Chattopadhyay et al. {cite}`chattopadhyay2018gradcampp`
# weight each position's *positive* gradient by a coefficient $\alpha^{kc}_{ij}$:
#
# $$w_k = \sum_{ij} \alpha_{ij}^{k}\, \mathrm{ReLU}\big(g^k_{ij}\big), \qquad
#   \alpha^k_{ij} = \frac{(g^k_{ij})^2}{2\,(g^k_{ij})^2 + \sum_{ab} A^k_{ab}\,(g^k_{ij})^3 + \varepsilon}.$$
#
# The closed form comes from taking the score as $\exp(y^c)$, whose second and third derivatives
# are powers of the first; it is what pytorch-grad-cam computes, with $\varepsilon = 10^{-6}$.
# Where $g^k_{ij} = 0$, set $\alpha^k_{ij} = 0$: without $\varepsilon$ the fraction would be
# $0/0$, and a guard makes the intent explicit.
#
# Write `gradcam_plusplus_weights(activations, gradients)` → `(N, K)`. The map is then
# `weighted_map(activations, w)`.

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "99c7d1f65800d07eabe5d038fe1f232c", "grade": false, "grade_id": "plusplus_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gradcam_plusplus_weights(activations, gradients):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "989108f4ccc6476d5b7ea84e68064ebf", "grade": true, "grade_id": "test_plusplus_values", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: one channel, one position with gradient 0.5, all activations 1 (Σ A = 4).
_a, _g = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
_g[0, 0, 0, 0] = 0.5
_w = gradcam_plusplus_weights(_a, _g)
_expected = 0.25 / (2 * 0.25 + 4 * 0.125 + 1e-6) * 0.5
assert _w.shape == (1, 1), f"expected (N, K) = (1, 1), got {tuple(_w.shape)}"
assert torch.isclose(_w[0, 0], torch.tensor(_expected)), f"expected {_expected:.5f}, got {float(_w[0, 0]):.5f}"
print("visible checks passed: a one-channel example")

# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "9b7acf561f39c1c87e89a94a8d1b117f", "grade": true, "grade_id": "test_plusplus_zero_gradients", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Visible check: a channel whose gradient is zero everywhere gets weight 0, not NaN.
_w = gradcam_plusplus_weights(torch.rand(2, 3, 4, 4), torch.zeros(2, 3, 4, 4))
assert torch.isfinite(_w).all() and (_w == 0).all(), f"zero gradients must give weight 0, got {_w}"
print("visible checks passed: zero gradients")


# %% [markdown]
# ## Exercise 2 · HiResCAM (10 points)
#
# Draelos and Carin {cite}`draelos2020hirescam` noticed that averaging the gradient over the
# grid throws away *where* it was large. Keep it: multiply gradient and activation element-wise,
# then sum over the channels,
#
# $$L_{ij} = \mathrm{ReLU}\Big(\sum_k g^k_{ij}\, A^k_{ij}\Big).$$
#
# **Why this is faithful.** When the layer is followed only by global average pooling and a
# linear layer (as in ResNet), the class score is $y^c = \frac{1}{hw}\sum_{ij}\sum_k W_{ck}
# A^k_{ij} + b_c$, and $g^k_{ij} = W_{ck}/hw$ for every position. Then $\sum_k g^k_{ij}
# A^k_{ij}$ is exactly position $(i, j)$'s contribution to the score: the map *is* the
# decomposition of the logit over the grid. Grad-CAM gives the same map in that special case
# (its mean of a constant gradient changes nothing), but as soon as the gradient varies over the
# grid (a deeper head, an earlier layer), Grad-CAM's average can credit a position for gradient
# that belongs elsewhere, and HiResCAM does not.
#
# Write `hirescam_map(activations, gradients)` → `(N, h, w)`, ReLU included.

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "abc4ddd014ed9f6ef53278f48d3e7f73", "grade": false, "grade_id": "hirescam_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def hirescam_map(activations, gradients):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "3a85aa8f642aeb648c7f9161ca809a0b", "grade": true, "grade_id": "test_hirescam", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: with a constant gradient per channel, HiResCAM equals Grad-CAM.
_a = torch.rand(2, 3, 4, 5)
_g = torch.randn(2, 3, 1, 1).expand(2, 3, 4, 5)
_h = hirescam_map(_a, _g)
assert _h.shape == (2, 4, 5), f"expected (N, h, w) = (2, 4, 5), got {tuple(_h.shape)}"
assert torch.allclose(_h, weighted_map(_a, _g.mean(dim=(2, 3))), atol=1e-6), "expected Grad-CAM's map here"
print("visible checks passed: HiResCAM = Grad-CAM for a constant gradient")

# %% [markdown]
# In our ResNet, `layer4` is followed by pooling and one linear layer, so the gradient is the
# same at every position and HiResCAM and Grad-CAM agree. One stage earlier, they do not:

# %%
_a3, _g3, _ = capture(model, model.layer3, x5, 1)
_gc = to_heatmap(weighted_map(_a3, _g3.mean(dim=(2, 3))), (SIZE, SIZE))
_hr = to_heatmap(hirescam_map(_a3, _g3), (SIZE, SIZE))
_gc4 = to_heatmap(weighted_map(acts, grads.mean(dim=(2, 3))), (SIZE, SIZE))
_hr4 = to_heatmap(hirescam_map(acts, grads), (SIZE, SIZE))
print(f"max |Grad-CAM − HiResCAM| at layer4: {float((_gc4 - _hr4).abs().max()):.1e}, "
      f"at layer3: {float((_gc - _hr).abs().max()):.2f}")
fig, axes = plt.subplots(2, 5, figsize=(11, 4.8), layout="constrained")
for i in range(5):
    show_cam(axes[0, i], x5[i].cpu(), _gc[i].cpu(), "Grad-CAM, layer3")
    show_cam(axes[1, i], x5[i].cpu(), _hr[i].cpu(), "HiResCAM, layer3")
    for ax in axes[:, i]:
        ax.contour(test.masks[covid[i]].numpy(), levels=[0.5], colors="white", linewidths=0.8)
fig.suptitle("Where the gradient varies over the grid, averaging it moves the evidence (white: lesions)")
plt.show()

# %% [markdown]
# ## Exercise 3 · LayerCAM (10 points)
#
# Jiang et al. {cite}`jiang2021layercam` keep HiResCAM's element-wise product but only let
# **positive** gradients speak, position by position:
#
# $$L_{ij} = \mathrm{ReLU}\Big(\sum_k \mathrm{ReLU}\big(g^k_{ij}\big)\, A^k_{ij}\Big).$$
#
# At the last layer this changes little. Its point is early layers, where gradients of both signs
# mix within one channel and Grad-CAM's average cancels them out: LayerCAM gives fine maps at
# layers where Grad-CAM gives noise. The outer ReLU matters where activations can be negative
# (a layer not followed by a ReLU, such as a BatchNorm output).
#
# Write `layercam_map(activations, gradients)` → `(N, h, w)`.

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "1c694e55dd2eac286cdfd279d9602509", "grade": false, "grade_id": "layercam_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def layercam_map(activations, gradients):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "10c2a27916a9dce40adc55c3d88267be", "grade": true, "grade_id": "test_layercam", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: negative gradients are ignored, position by position.
_a = torch.ones(1, 2, 1, 2)
_g = torch.tensor([[[[1.0, -1.0]], [[-2.0, 0.5]]]])
_l = layercam_map(_a, _g)
assert _l.shape == (1, 1, 2), f"expected (N, h, w) = (1, 1, 2), got {tuple(_l.shape)}"
assert torch.allclose(_l, torch.tensor([[[1.0, 0.5]]])), f"expected [[1.0, 0.5]], got {_l.tolist()}"
print("visible checks passed: positive gradients only")

# %% [markdown]
# On the ImageNet network of chapter 2, at an early layer (a 28 × 28 grid), Grad-CAM's averaged
# gradients cancel, while LayerCAM still outlines the object:

# %%
imagenet = load_imagenet_classifier()
photos = sample_photos()
early = imagenet.model._blocks[4] if imagenet.source == "offline" else imagenet.model.features[16]
names = ["cat", "espresso"]
xp = imagenet.preprocess([photos[n] for n in names]).to(device)
ap, gp, lp = capture(imagenet.model, early, xp)
shown = (xp.cpu() * torch.tensor(imagenet.std)[:, None, None] + torch.tensor(imagenet.mean)[:, None, None]).clamp(0, 1)
fig, axes = plt.subplots(2, 3, figsize=(8, 5.6), layout="constrained")
for row, name in enumerate(names):
    label = imagenet.top_classes(lp[row:row + 1], 1)[0][0][1]
    show_cam(axes[row, 0], shown[row], None, f"{name}: '{label}'")
    show_cam(axes[row, 1], shown[row], to_heatmap(weighted_map(ap, gp.mean(dim=(2, 3))), xp.shape[-2:])[row].cpu(), "Grad-CAM")
    show_cam(axes[row, 2], shown[row], to_heatmap(layercam_map(ap, gp), xp.shape[-2:])[row].cpu(), "LayerCAM")
fig.suptitle(f"{imagenet.name}, an early layer ({tuple(ap.shape[-2:])[0]}×{tuple(ap.shape[-2:])[1]} grid)")
plt.show()

# %% [markdown]
# ## Exercise 4 · Score-CAM (25 points)
#
# Score-CAM {cite}`wang2020scorecam` drops gradients altogether. It asks the model directly how
# much each channel's *region* supports the class: upsample channel $k$ to the input size,
# min-max it to $[0, 1]$ to get a soft mask $M^k$, show the model only the masked image
# $x \odot M^k$, and read the target logit $s_k$. The weights are a softmax over the channels:
#
# $$M^k = \frac{\mathrm{up}(A^k) - \min \mathrm{up}(A^k)}{\max \mathrm{up}(A^k) - \min \mathrm{up}(A^k) + 10^{-8}},
#   \qquad w_k = \frac{e^{s_k}}{\sum_{k'} e^{s_{k'}}}, \qquad s_k = y^c(x \odot M^k).$$
#
# Do it as pytorch-grad-cam does, so that the two agree: upsample with
# `F.interpolate(..., mode="bilinear", align_corners=True)` (its `UpsamplingBilinear2d`), eps
# `1e-8`. And do it **efficiently**: no gradients anywhere (`torch.inference_mode()`), and the
# $K$ masked images evaluated in batches of `batch_size`, not one forward pass per channel.
#
# Write `scorecam_weights(model, images, activations, class_idx, batch_size=64)` → `(N, K)`;
# `class_idx` is an int for all images, one per image (list or tensor), or `None` for each
# image's predicted class.

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "4dddd7ca534607fccb5bcfc7cd47dc2d", "grade": false, "grade_id": "scorecam_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def scorecam_weights(model, images, activations, class_idx, batch_size=64):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "416eadd81553a7a9a5bbce3e03554d1b", "grade": true, "grade_id": "test_scorecam_values", "locked": true, "points": 15, "schema_version": 3, "solution": false, "task": false}
# Visible check: the weights of each image are a distribution over the channels.
_w = scorecam_weights(model, x5[:2], acts[:2], 1, batch_size=128)
assert _w.shape == acts[:2].shape[:2], f"expected (N, K) = {tuple(acts[:2].shape[:2])}, got {tuple(_w.shape)}"
assert torch.allclose(_w.sum(1), torch.ones(2, device=_w.device), atol=1e-5), "softmax over the channels: each row sums to 1"
print("visible checks passed: shape, one distribution per image")

# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "de59667e10577db5807b087b04c5017d", "grade": true, "grade_id": "test_scorecam_batches", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Hidden test only: no forward pass builds a graph, none has more than batch_size images, and
# the number of forward passes is about K / batch_size per image, not K.
print("graded by a hidden test: gradient-free, batched")


# %% [markdown]
# ## Exercise 5 · EigenCAM (20 points)
#
# EigenCAM {cite}`muhammad2020eigencam` needs neither gradients nor a class: it asks what the
# layer's activations have most in common. Treat each grid position as a point in
# $\mathbb{R}^K$ (its $K$ activations), centre every channel over the positions, and project
# each point on the **first principal component** $v_1$ (the first right-singular vector of the
# centred $hw \times K$ matrix $X$):
#
# $$L = X v_1 \in \mathbb{R}^{hw}, \quad\text{reshaped to } h \times w.$$
#
# A singular vector is only defined up to its sign ($-v_1$ is just as good), and the SVD picks
# one for reasons unrelated to the image. pytorch-grad-cam keeps whatever the SVD returns, and
# then its ReLU keeps whichever half of the map that sign makes positive: on one machine the
# regions where the layer responds most, on another (or for another image) the regions where it
# responds least. Fix the sign so that the map correlates **positively**
# with the channel-summed activation $\sum_k A^k$ (the projection has mean zero, so the sign of
# $\sum_{ij} L_{ij} \sum_k A^k_{ij}$ is the sign of the correlation).
#
# Write `eigencam_map(activations)` → `(N, h, w)`: the signed projection, before any ReLU
# (`to_heatmap` applies it). Use `torch.linalg.svd(..., full_matrices=False)`, batched.

# %% deletable=false nbgrader={"cell_type": "code", "checksum": "4622d740fb26d7e44d616629f2a999ce", "grade": false, "grade_id": "eigencam_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def eigencam_map(activations):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "3c4802a78c040650e8c78d34ce66e132", "grade": true, "grade_id": "test_eigencam_values", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: activations that vary along one direction only, a rank-one pattern.
_pattern = torch.arange(6.0).reshape(2, 3)
_a = (torch.tensor([1.0, 2.0, 2.0])[:, None, None] * _pattern)[None]   # (1, 3, 2, 3)
_e = eigencam_map(_a)
_centred = _pattern - _pattern.mean()
assert _e.shape == (1, 2, 3), f"expected (N, h, w) = (1, 2, 3), got {tuple(_e.shape)}"
assert torch.allclose(_e[0], 3 * _centred, atol=1e-4), f"expected the centred pattern times |(1, 2, 2)| = 3, got {_e[0].tolist()}"
print("visible checks passed: a rank-one example")

# %% deletable=false editable=false nbgrader={"cell_type": "code", "checksum": "f9faf91c4cc2c1d21f1332c2fd995ac6", "grade": true, "grade_id": "test_eigencam_sign", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: the sign follows the activations, whatever the SVD returns.
_flipped = eigencam_map(-_a)
assert ((_flipped[0] * (-_a).sum(1)[0]).sum() > 0), "the map must correlate positively with Σ_k A^k"
print("visible checks passed: the sign")


# %% [markdown]
# ## 3 · The whole family on the same slices
#
# One function per method, each returning `(N, H, W)` heatmaps for the COVID class. XGrad-CAM
# {cite}`fu2020xgradcam` is one more change to the weights, given here:
# $w_k = \sum_{ij} g^k_{ij} A^k_{ij} / (\sum_{ij} A^k_{ij} + \varepsilon)$. Each gradient method
# runs its own forward and partial backward pass per batch (so that its time in the table is its
# whole cost); Score-CAM and EigenCAM need no backward pass.

# %%
def xgradcam_weights(activations, gradients):
    return (gradients * activations).sum(dim=(2, 3)) / (activations.sum(dim=(2, 3)) + 1e-7)


def forward_activations(model, layer, images):
    """The layer's activations from a plain forward pass (no gradients)."""
    kept = {}
    handle = layer.register_forward_hook(lambda m, i, o: kept.update(a=o.detach().clone()))
    try:
        with torch.inference_mode():
            model(images)
    finally:
        handle.remove()
    return kept["a"]


def family(net, layer, target=1, score_batch=256):
    """{method: function of a batch of images → (N, H, W) heatmaps of class `target`}."""
    def gradient_method(make_map):
        def explain(x):
            a, g, _ = capture(net, layer, x, target)
            return to_heatmap(make_map(a, g), x.shape[-2:])
        return explain

    def scorecam(x):
        a = forward_activations(net, layer, x)
        return to_heatmap(weighted_map(a, scorecam_weights(net, x, a, target, score_batch)), x.shape[-2:])

    return {
        "Grad-CAM": gradient_method(lambda a, g: weighted_map(a, g.mean(dim=(2, 3)))),
        "Grad-CAM++": gradient_method(lambda a, g: weighted_map(a, gradcam_plusplus_weights(a, g))),
        "XGrad-CAM": gradient_method(lambda a, g: weighted_map(a, xgradcam_weights(a, g))),
        "HiResCAM": gradient_method(hirescam_map),
        "LayerCAM": gradient_method(layercam_map),
        "Score-CAM": scorecam,
        "EigenCAM": lambda x: to_heatmap(eigencam_map(forward_activations(net, layer, x)), x.shape[-2:]),
    }


METHODS = family(model, model.layer4)


def explain_all(images, methods=METHODS):
    """{method: (N, H, W) heatmaps} and {method: seconds per image}. (32 images at a time)"""
    return explain_batched(methods, images, device)


# %% [markdown]
# The gallery: the same five COVID slices under every method, lesions outlined in white.

# %%
gallery, _ = explain_all(x5.cpu())
fig, axes = plt.subplots(5, len(gallery) + 1, figsize=(1.75 * (len(gallery) + 1), 9.6), layout="constrained")
for i in range(5):
    show_cam(axes[i, 0], x5[i].cpu(), None, "slice" if i == 0 else None)
    axes[i, 0].contour(test.masks[covid[i]].numpy(), levels=[0.5], colors="red", linewidths=0.8)
    for j, (name, m) in enumerate(gallery.items(), start=1):
        artist = show_cam(axes[i, j], x5[i].cpu(), m[i], name if i == 0 else None)
        axes[i, j].contour(test.masks[covid[i]].numpy(), levels=[0.5], colors="white", linewidths=0.6)
fig.colorbar(artist, ax=axes, shrink=0.6, label="heatmap (normalised)")
fig.suptitle("The CAM family on five COVID slices (ResNet18, layer4)")
plt.show()

# %% [markdown]
# ## 4 · The comparison
#
# Every method on the same COVID test slices, with the metrics of chapters 3 and 4 and a random
# map as the yardstick:
#
# - **pointing game** and **energy pointing game** {cite}`zhang2018pointing,wang2020scorecam`
#   against the lesion masks;
# - **insertion AUC** (↑) and **deletion AUC** (↓) {cite}`petsiuk2018rise`, black (air) as the
#   baseline, on the first slices;
# - **ROAD** {cite}`rong2022road`, pytorch-grad-cam's implementation, as a cross-check of
#   faithfulness with a different way of removing pixels (noisy linear imputation instead of a
#   constant, so the model never sees sharp-edged holes); higher is better;
# - the wall time per slice on this machine.
#
# Score-CAM runs one forward pass per channel and slice (512 here), so on a CPU it is scored on
# the first few slices only, for every metric; the `slices` column says how many each row used
# for localisation.

# %%
N_LOCAL = 6 if FAST else 200    # pointing games
N_FAITH = 4 if FAST else 16     # insertion/deletion
N_ROAD = 2 if FAST else 4       # ROAD: a sparse linear solve per slice and percentile
N_SCORE = 2 if FAST else 12     # Score-CAM: 512 forward passes per slice
evaluated = covid[:N_LOCAL]
x_eval, m_eval = test.images[evaluated], test.masks[evaluated]
cheap = {name: f for name, f in METHODS.items() if name != "Score-CAM"}
maps, seconds = explain_all(x_eval, cheap)
score_maps, score_seconds = explain_all(x_eval[:N_SCORE], {"Score-CAM": METHODS["Score-CAM"]})
maps = {name: score_maps[name] if name == "Score-CAM" else maps[name] for name in METHODS}
seconds.update(score_seconds)
maps["random map"] = torch.rand(len(x_eval), SIZE, SIZE, generator=torch.Generator().manual_seed(0))
seconds["random map"] = 0.0

# %%
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

road = ROADCombined(percentiles=[20, 50, 80])
rows = {}
for name, m in maps.items():
    n, n_faith, n_road = len(m), min(len(m), N_FAITH), min(len(m), N_ROAD)
    r = insertion_deletion(model, x_eval[:n_faith].to(device), m[:n_faith].to(device), steps=16, target=1)
    torch.manual_seed(0)  # ROAD's imputation adds noise
    road_scores = road(x_eval[:n_road].to(device), m[:n_road].numpy(),
                       [ClassifierOutputSoftmaxTarget(1)] * n_road, model)
    rows[name] = {"slices": n,
                  "pointing game": float(pointing_game(m, m_eval[:n]).mean()),
                  "energy pointing game": float(energy_pointing_game(m, m_eval[:n]).mean()),
                  "insertion AUC ↑": float(r["insertion_auc"].mean()),
                  "deletion AUC ↓": float(r["deletion_auc"].mean()),
                  "ROAD ↑": float(np.mean(road_scores)),
                  "ms per slice": 1000 * seconds[name]}
table = pd.DataFrame(rows).T
table["slices"] = table["slices"].astype(int)
print(f"{len(evaluated)} COVID test slices (synthetic): insertion/deletion on the first {N_FAITH}, ROAD on "
      f"the first {N_ROAD}, Score-CAM on the first {N_SCORE} for every metric")
display(table.round(3))
for metric in ("pointing game", "deletion AUC ↓"):
    print(f"{metric}: " + " | ".join(f"{name} {value:.3f}" for name, value in table[metric].items()))

# %%
metric_names = ["pointing game", "energy pointing game", "insertion AUC ↑", "deletion AUC ↓", "ROAD ↑"]
plot_metric_bars(table, metric_names, "Localisation (left two) and faithfulness (right three), per method",
                 unit_interval=metric_names[:4])
plt.show()

fig, ax = plt.subplots(figsize=(7, 3.4), layout="constrained")
ax.bar(range(len(table)), table["ms per slice"], color=method_colors(len(table)))
ax.set_xticks(range(len(table)), table.index, rotation=40, ha="right", fontsize=8)
ax.set_yscale("log")
ax.set_ylabel("ms per slice (log scale)")
ax.set_title(f"Cost per slice on this machine ({device.type.upper()})")
plt.show()

# %% [markdown]
# **Reading the table.** Three things stand out in the offline build.
#
# - Grad-CAM, XGrad-CAM and HiResCAM share one row of numbers. That is the proof of exercise 2 at
#   work: after `layer4` come global pooling and one linear layer, so the gradient is the same at
#   every position, and the three formulas give the same map.
# - The class-specific methods point at a lesion more than ten times as often as a random map.
#   Faithfulness separates them: deleting the top pixels of Grad-CAM (and its two twins) removes
#   the COVID probability faster than deleting random ones, while Grad-CAM++ and LayerCAM do no
#   better than the random map on the 16 slices scored. Score-CAM is the most faithful of all
#   (the lowest deletion and the highest insertion AUC), at 500 to 600 times the cost of a
#   gradient method.
# - EigenCAM localises almost as often (its principal component often *is* the lesion), but its
#   deletion AUC is worse than the random map's: the pixels it ranks first are not the ones the
#   COVID logit depends on. ROAD ranks it first; on a model this confident, ROAD's imputed
#   images barely move the probability of most methods (ROAD ≈ 0). Two faithfulness metrics, two
#   verdicts: report both, and prefer the one whose perturbation you can defend for your images.

# %% [markdown]
# ## 5 · Cross-check with pytorch-grad-cam
#
# Our implementations should give pytorch-grad-cam's maps. Its pipeline normalises each map
# *before* resizing it with OpenCV, ours after; min-max is unchanged by a positive affine
# rescaling and bilinear resizing is linear, so after one more per-image min-max of its output
# the two must agree to float precision. For EigenCAM we also count how often its sign comes out
# inverted, i.e. its map is closer to our map of the *negated* projection.

# %%
from pytorch_grad_cam import (EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM,
                              XGradCAM)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

PGC = {"Grad-CAM": GradCAM, "Grad-CAM++": GradCAMPlusPlus, "XGrad-CAM": XGradCAM,
       "HiResCAM": HiResCAM, "LayerCAM": LayerCAM, "Score-CAM": ScoreCAM, "EigenCAM": EigenCAM}


def unit(maps):
    lo = maps.flatten(1).min(1).values[:, None, None]
    hi = maps.flatten(1).max(1).values[:, None, None]
    return (maps - lo) / (hi - lo + 1e-7)


N_CHECK = 2 if FAST else 16
check = {}
for name, cls in PGC.items():
    n = min(N_CHECK, 2) if name == "Score-CAM" else N_CHECK
    x = x_eval[:n].to(device)
    with cls(model, [model.layer4]) as cam, contextlib.redirect_stderr(io.StringIO()):
        if name == "Score-CAM":
            cam.batch_size = 256
        theirs = unit(torch.from_numpy(cam(x, [ClassifierOutputTarget(1)] * n)))
    model.zero_grad(set_to_none=True)  # pytorch-grad-cam fills every parameter's .grad
    ours = maps[name][:n]
    row = {"slices": n, "max |ours − pytorch-grad-cam|": float((ours - theirs).abs().max())}
    if name == "EigenCAM":
        inverted = to_heatmap(-eigencam_map(forward_activations(model, model.layer4, x)), x.shape[-2:]).cpu()
        flipped = (inverted - theirs).abs().flatten(1).amax(1) < (ours - theirs).abs().flatten(1).amax(1)
        row["max |ours − pytorch-grad-cam|"] = float(torch.where(flipped[:, None, None], inverted - theirs, ours - theirs).abs().max())
        row["inverted by pytorch-grad-cam"] = f"{int(flipped.sum())} of {n}"
        eigen_flipped = torch.nonzero(flipped)[:, 0]
    check[name] = row
display(pd.DataFrame(check).T.fillna("").astype({"slices": int}))
print("largest difference from pytorch-grad-cam over every method: "
      f"{max(row['max |ours − pytorch-grad-cam|'] for row in check.values()):.1e}")

# %% [markdown]
# Where pytorch-grad-cam's sign disagrees with ours, its ReLU keeps the other half of the
# principal component. Next to each such slice, the channel-summed activation of `layer4`: the
# side our sign rule keeps is the side where the layer responds most.

# %%
if len(eigen_flipped):
    shown = eigen_flipped[:3].tolist()
    fig, axes = plt.subplots(len(shown), 4, figsize=(9.5, 2.5 * len(shown)), squeeze=False, layout="constrained")
    for row, i in enumerate(shown):
        x = x_eval[i:i + 1].to(device)
        with EigenCAM(model, [model.layer4]) as cam:
            theirs = cam(x, None)[0]
        summed = unit(F.interpolate(forward_activations(model, model.layer4, x).sum(1, keepdim=True),
                                    size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0])[0]
        show_cam(axes[row, 0], x[0].cpu(), None, "slice (red: lesions)")
        axes[row, 0].contour(m_eval[i].numpy(), levels=[0.5], colors="red", linewidths=0.8)
        show_cam(axes[row, 1], x[0].cpu(), summed.cpu(), "Σ_k A^k (layer4)")
        show_cam(axes[row, 2], x[0].cpu(), theirs, "pytorch-grad-cam EigenCAM")
        show_cam(axes[row, 3], x[0].cpu(), maps["EigenCAM"][i], "ours (sign fixed)")
    fig.suptitle("The same principal component, two signs")
    plt.show()
else:
    print(f"pytorch-grad-cam's sign agreed with ours on all {N_CHECK} slices checked here.")

# %% [markdown]
# Look at the second column before trusting either sign. Where the layer responds most at the
# border of the image (common in a network trained from scratch, whose padded edges are
# unusual inputs), the fixed sign keeps the border: the rule makes EigenCAM *reproducible*, the
# same map on every machine, not *right*. No sign can make it class-specific: the first principal
# component is whatever varies most across the grid of `layer4`, the lesion or the edge of the
# body, and EigenCAM never asks which of the two the COVID logit depends on. The comparison table
# measures how often it is the lesion.

# %% [markdown]
# ## 6 · The sanity check
#
# As in chapter 4 {cite}`adebayo2018sanity`: re-initialise the network from the output towards
# the input, one stage at a time, and compare each method's maps with the trained model's by
# Spearman rank correlation. A method that keeps its map explains the image, not the model.
# EigenCAM is the interesting case: it never looks at the class score, only at the activations
# of `layer4`, so re-initialising the head (`fc`) cannot change it at all.

# %%
N_SANITY = 2 if FAST else 8
N_SANITY_SCORE = 1 if FAST else 2  # Score-CAM: 512 forward passes per slice and stage
x_sanity = x_eval[:N_SANITY]
trained_maps, _ = explain_all(x_sanity, cheap)
trained_maps.update(explain_all(x_sanity[:N_SANITY_SCORE], {"Score-CAM": METHODS["Score-CAM"]})[0])
cascade = ["fc", "layer4", "layer3", "layer2", "layer1"]  # output → input
names = list(METHODS)
correlation = {name: [1.0] for name in names}
for layer, randomized in cascading_randomization(model, cascade, seed=0):
    randomized.eval()
    methods = family(randomized, randomized.layer4)
    new_maps, _ = explain_all(x_sanity, {n: f for n, f in methods.items() if n != "Score-CAM"})
    new_maps.update(explain_all(x_sanity[:N_SANITY_SCORE], {"Score-CAM": methods["Score-CAM"]})[0])
    for name in names:
        correlation[name].append(float(rank_correlation(trained_maps[name], new_maps[name]).mean()))

plot_sanity_check(correlation, cascade)
plt.show()
sanity = pd.DataFrame(correlation, index=["trained"] + [f"+{layer}" for layer in cascade]).T
display(sanity.round(2))

# %% [markdown]
# ## Written answers
#
# **Question 1 (10 points).** Which method would you trust to explain *this* model's COVID
# predictions, and why? Cite your comparison table (localisation, faithfulness, ROAD, cost) and
# the sanity check, and say what the chosen method cannot show.

# %% [markdown] deletable=false nbgrader={"cell_type": "markdown", "checksum": "14ee2f21bf32e50be445948ac27770b3", "grade": true, "grade_id": "answer_trust", "locked": false, "points": 10, "schema_version": 3, "solution": true, "task": false}
# YOUR ANSWER HERE

# %% [markdown]
# **Question 2 (10 points).** Why does Score-CAM cost what it costs? Give the number of forward
# passes for one slice here and for one 224 × 224 photo with VGG16's last conv layer, and say
# which of our implementation choices reduce the *time* and which cannot reduce the *work*.

# %% [markdown] deletable=false nbgrader={"cell_type": "markdown", "checksum": "8b5cf5348d7dfd24e14489159872cc34", "grade": true, "grade_id": "answer_scorecam_cost", "locked": false, "points": 10, "schema_version": 3, "solution": true, "task": false}
# YOUR ANSWER HERE

# %% [markdown]
# ## Summary
#
# - Grad-CAM++, XGrad-CAM and Score-CAM change the channel weights; HiResCAM and LayerCAM keep
#   the gradient per position; EigenCAM drops gradients and the class altogether.
# - At a layer followed only by global pooling and a linear layer, Grad-CAM = HiResCAM, and both
#   are the exact decomposition of the logit over the grid.
# - Score-CAM's cost is one forward pass per channel; batch it and run it without gradients.
# - An SVD's sign is arbitrary: fix it, or EigenCAM can highlight the background.
# - Choose a method with measurements on data where the evidence is known, against a random
#   baseline, and with the randomisation sanity check.
#
# **Further reading:** {cite}`chattopadhyay2018gradcampp`, {cite}`draelos2020hirescam`,
# {cite}`jiang2021layercam`, {cite}`wang2020scorecam`, {cite}`muhammad2020eigencam`,
# {cite}`rong2022road`.
