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
# # Chapter 1 · Grad-CAM from scratch on LeNet
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradcam-course/gradcam-course/blob/main/notebooks/01_mnist_lenet/01_mnist_lenet.ipynb)
#
# A convolutional network says "this is a 7". *Which pixels made it say so?* Gradient-weighted
# class activation mapping, **Grad-CAM** {cite}`selvaraju2017gradcam`, answers with a heatmap: it
# weighs each feature map of the last convolutional layer by how much the class score depends on
# it, and keeps what speaks *for* the class. In this chapter you build Grad-CAM yourself, from
# PyTorch hooks up, on a small network whose every step you can print.
#
# **You will learn to**
# - train LeNet on handwritten digits with PyTorch Lightning;
# - read a layer's activations and gradients with hooks, without touching the model's code;
# - turn the paper's two equations into tensor code that works on a whole batch;
# - check your implementation against the `pytorch-grad-cam` library and interpret its maps.
#
# **Run time:** about 1 minute on a laptop CPU or in Colab (no GPU needed).
#
# **Points (100):** exercise 1 (hooks) 30 · exercise 2 (Eq. 1) 10 · exercise 3 (Eq. 2) 10 ·
# exercise 4 (upsampling) 20 · written answers 2 × 15. The automatic points come from the
# test cells below each exercise: the visible asserts you can run, plus hidden tests that
# compare your function with a reference on inputs of their own.

# %% [markdown]
# ## Setup
#
# In Google Colab the next cell installs the course's helper package `gradcam_course`; on your
# own machine (where you installed the course) it does nothing.

# %% tags=["hide-input"]
import subprocess
import sys

COURSE_REPO = "https://github.com/gradcam-course/gradcam-course"  # set from _config.yml
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    f"gradcam-course @ git+{COURSE_REPO}"], check=True)

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from gradcam_course import setup
from gradcam_course.mnist import DigitsDataModule
from gradcam_course.mnist import LeNet
from gradcam_course.plotting import plot_cam_grid, plot_class_maps, plot_training_curves, show_cam
from gradcam_course.training import LitClassifier, predict, train_classifier

device = setup(seed=0)

# %% [markdown]
# ## 1 · Data
#
# We use MNIST when it can be downloaded. Without internet (or on the course's test machines)
# the same call falls back to scikit-learn's `load_digits`: 1 797 real handwritten digits of
# 8 × 8 pixels, upsampled and padded to MNIST's 28 × 28 layout. The banner says which one you got.

# %%
datamodule = DigitsDataModule(batch_size=64)
datamodule.setup()
test_images, test_labels = datamodule.splits.test.tensors

fig, axes = plt.subplots(2, 8, figsize=(10, 2.8), layout="constrained")
for ax, img, label in zip(axes.flat, test_images, test_labels):
    show_cam(ax, img, title=f"label {int(label)}")
fig.suptitle(f"Test digits ({datamodule.source})")
plt.show()

# %% [markdown]
# ## 2 · LeNet, trained with Lightning
#
# LeNet has two convolutional layers and three linear layers. For a 28 × 28 input, `conv2`
# produces 16 feature maps of 8 × 8: the last spatial representation before the classifier,
# and the layer we will explain.
#
# ```
# input 1×28×28 → conv1 6×24×24 → ReLU → pool 6×12×12 → conv2 16×8×8 → ReLU → pool 16×4×4
#               → fc1 120 → ReLU → fc2 84 → ReLU → fc3 10 logits
# ```
#
# `LitClassifier` wraps any network with cross-entropy, Adam and `torchmetrics` accuracy;
# `train_classifier` runs a Lightning `Trainer` and then tests. (While the notebook is graded,
# training is cut to a few steps: grading never depends on how well your model trained.)

# %%
model = LeNet(num_classes=10)
lit = LitClassifier(model, num_classes=10, lr=2e-3)
result = train_classifier(lit, datamodule, max_epochs=25)
model = model.to(device).eval()
print(f"test accuracy: {result.test_acc:.3f} on {len(test_labels)} test images "
      f"after {result.epochs} epoch(s)")

# %%
plot_training_curves(result.history, title=f"LeNet on {datamodule.source}")
plt.show()

# %% [markdown]
# ## 3 · The idea, and a first version by model surgery
#
# Let $A^k \in \mathbb{R}^{h \times w}$ be the $k$-th feature map of a convolutional layer and
# $y^c$ the score of class $c$ **before the softmax** (the logit). Grad-CAM weighs each feature
# map by the average gradient of the score with respect to it (Eq. 1 of the paper),
#
# $$\alpha_k^c = \frac{1}{Z} \sum_i \sum_j \frac{\partial y^c}{\partial A^k_{ij}}, \qquad Z = h \cdot w,$$
#
# and keeps the positive part of the weighted sum of the maps (Eq. 2),
#
# $$L^c_{\text{Grad-CAM}} = \mathrm{ReLU}\Big(\sum_k \alpha_k^c A^k\Big).$$
#
# The $h \times w$ map is then upsampled to the image size and scaled to $[0, 1]$ for display.
#
# To compute it we need two things from inside the network: the activations $A$ and the
# gradients $\partial y^c / \partial A$. Many tutorials get them by **model surgery**: rewrite
# the model so that its `forward` stops after the target layer, registers a hook on that
# activation *tensor*, and then runs the rest.

# %%
class LeNetSurgery(nn.Module):
    """LeNet split at conv2, as in the MLI tutorial: same weights, a tensor hook inside forward."""

    def __init__(self, lenet: LeNet):
        super().__init__()
        self.lenet = lenet
        self.gradients = None
        self.activations = None

    def save_gradient(self, grad):
        self.gradients = grad

    def forward(self, x):
        m = self.lenet
        a = m.conv2(m.pool1(m.relu1(m.conv1(x))))   # the target activation A
        self.activations = a.detach()
        a.register_hook(self.save_gradient)           # called with dy/dA during backward
        return m.classifier(m.pool2(m.relu2(a)))


surgery = LeNetSurgery(model).eval()
digit = test_images[:1].to(device)
logits = surgery(digit)
c = int(logits.argmax())
logits[0, c].backward()                               # fills surgery.gradients

alpha = surgery.gradients.mean(dim=(2, 3))            # Eq. 1 → (1, 16)
cam = torch.relu((alpha[:, :, None, None] * surgery.activations).sum(1))   # Eq. 2 → (1, 8, 8)
cam = F.interpolate(cam[:, None], size=(28, 28), mode="bilinear", align_corners=False)[:, 0]
cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
model.zero_grad(set_to_none=True)                     # backward() also filled every weight's .grad

fig, axes = plt.subplots(1, 2, figsize=(5, 2.8), layout="constrained")
show_cam(axes[0], digit[0].cpu(), title="input")
show_cam(axes[1], digit[0].cpu(), cam[0].cpu(), title=f"Grad-CAM for class {c}")
fig.suptitle("Grad-CAM by model surgery")
plt.show()

# %% [markdown]
# It works, but look at the price:
# - we **rewrote the model's forward**. For LeNet that is six lines; for a ResNet with skip
#   connections, or a model you did not write, it is error-prone, and any mistake silently
#   changes the logits;
# - `backward()` ran all the way down to the input and filled the `.grad` of **every weight**,
#   which we then had to clear;
# - the surgery model explains one layer. Another layer means another rewrite.
#
# ## 4 · Hooks: the same, without touching the model
#
# PyTorch lets you attach functions to a *module* from the outside:
# `layer.register_forward_hook(fn)` calls `fn(module, inputs, output)` every time the layer
# runs, and returns a **handle** whose `remove()` detaches it again. Inside a forward hook we can
# keep the output (the activations), and `torch.autograd.grad(score, output)` then gives
# $\partial y^c / \partial A$ *only*: the backward pass stops at the layer and no weight
# gradient is computed.
#
# One trap remains. Networks such as ResNet and VGG use `ReLU(inplace=True)`, which overwrites
# the layer's output tensor with its ReLU. A hook that kept a reference to that tensor now holds
# the *ReLU's* output, not the layer's:

# %%
demo = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True))
kept = {}
handle = demo[0].register_forward_hook(lambda module, inputs, output: kept.update(out=output))
with torch.no_grad():
    demo(torch.randn(1, 1, 5, 5))
handle.remove()
print("negative values in the stored 'conv output':", int((kept["out"] < 0).sum()),
      "(a real conv output has some; the in-place ReLU removed them)")

# %% [markdown]
# Clone what you keep (`output.detach().clone()`), or let the hook *return* `output.clone()`,
# which replaces the output that later layers see: the in-place op then changes the copy and
# the layer's own output stays intact for `torch.autograd.grad`.
#
# ## Exercise 1 · Capture activations and gradients (30 points)
#
# Write `capture_activations_and_gradients(model, layer, images, class_idx=None)` that returns
# `(activations, gradients, logits)`:
# - `activations`: the output of `layer` for the batch, as the layer returned it, shape
#   $(N, K, h, w)$;
# - `gradients`: $\partial\, \text{logits}[n, c_n] / \partial\, \text{activations}[n]$ for every
#   image $n$, same shape. The score is the **raw logit**, not a softmax probability;
# - `logits`: the model's output, $(N, \text{classes})$.
#
# `class_idx` selects $c_n$: `None` → the predicted class (argmax) of each image; an `int` → that
# class for every image; a list or tensor → one class per image (its length must equal $N$,
# otherwise raise `ValueError`).
#
# Rules: remove every hook before returning, **also when the forward raises** (`try`/`finally`);
# leave the parameters' `.grad` untouched; an in-place op after `layer` must change neither
# result. Return detached tensors. Hint: summing the selected logits of all images gives one
# scalar whose gradient holds every image's gradient, since images do not interact in eval mode.
# Any correct approach earns full points (a tensor hook, `torch.autograd.grad`, a full backward
# hook, ...).

# %% nbgrader={"grade": false, "grade_id": "capture_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def capture_activations_and_gradients(model, layer, images, class_idx=None):
    ### BEGIN SOLUTION
    captured = {}

    def hook(module, inputs, output):
        captured["output"] = output
        return output.clone()  # later in-place ops change this copy, not `output`

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(images)
            n = logits.shape[0]
            if class_idx is None:
                idx = logits.argmax(dim=1)
            elif isinstance(class_idx, int):
                idx = torch.full((n,), class_idx, dtype=torch.long, device=logits.device)
            else:
                idx = torch.as_tensor(class_idx, dtype=torch.long, device=logits.device).reshape(-1)
                if idx.numel() != n:
                    raise ValueError(f"class_idx has {idx.numel()} entries for {n} images")
            score = logits.gather(1, idx[:, None]).sum()
            (gradients,) = torch.autograd.grad(score, captured["output"])
    finally:
        handle.remove()
    return captured["output"].detach(), gradients.detach(), logits.detach()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_capture_values", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible checks on a fresh LeNet: shapes and logits.
import torch
from gradcam_course.mnist import LeNet

torch.manual_seed(0)
_net = LeNet().eval()
_x = torch.rand(3, 1, 28, 28)
_a, _g, _logits = capture_activations_and_gradients(_net, _net.conv2, _x, [0, 3, 7])
assert _a.shape == (3, 16, 8, 8), f"activations: expected (3, 16, 8, 8), got {tuple(_a.shape)}"
assert _g.shape == _a.shape, f"gradients must have the activations' shape, got {tuple(_g.shape)}"
assert torch.allclose(_logits, _net(_x), atol=1e-6), "logits must be the model's output"
print("visible checks passed: shapes and logits")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_capture_values(capture_activations_and_gradients)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_capture_class_idx", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Visible checks: class_idx=None follows the prediction; a wrong-length list is refused.
import torch
from gradcam_course.mnist import LeNet

torch.manual_seed(1)
_net = LeNet().eval()
_x = torch.rand(2, 1, 28, 28)
_pred = _net(_x).argmax(1).tolist()
_, _g_none, _ = capture_activations_and_gradients(_net, _net.conv2, _x, None)
_, _g_pred, _ = capture_activations_and_gradients(_net, _net.conv2, _x, _pred)
assert torch.allclose(_g_none, _g_pred), "class_idx=None must use each image's predicted class"
try:
    capture_activations_and_gradients(_net, _net.conv2, _x, [1, 2, 3])
    raise AssertionError("3 classes for 2 images must raise ValueError")
except ValueError:
    pass
print("visible checks passed: class_idx")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_capture_class_idx(capture_activations_and_gradients)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_capture_inplace", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Visible check: a conv followed by ReLU(inplace=True) still reports its own (signed) output.
import torch
from torch import nn

torch.manual_seed(2)
_net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
_x = torch.randn(2, 1, 8, 8)
_a, _g, _ = capture_activations_and_gradients(_net, _net[0], _x, 0)
assert torch.allclose(_a, _net[0](_x), atol=1e-6), "activations were changed by the in-place ReLU: clone"
print("visible checks passed: in-place ReLU")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_capture_inplace(capture_activations_and_gradients)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_capture_hygiene", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible checks: no hook left on the layer, no weight gradient computed.
import torch
from gradcam_course.mnist import LeNet

torch.manual_seed(3)
_net = LeNet().eval()
capture_activations_and_gradients(_net, _net.conv2, torch.rand(2, 1, 28, 28))
assert len(_net.conv2._forward_hooks) == 0, "a forward hook is still registered on the layer"
assert len(_net.conv2._backward_hooks) == 0, "a backward hook is still registered on the layer"
assert all(p.grad is None for p in _net.parameters()), "parameter .grad must stay untouched"
print("visible checks passed: hooks removed, weights' .grad untouched")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_capture_hygiene(capture_activations_and_gradients)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2 · Eq. 1, the channel weights (10 points)
#
# $$\alpha_k^c = \frac{1}{Z} \sum_i \sum_j \frac{\partial y^c}{\partial A^k_{ij}}$$
#
# Write `gradcam_weights(gradients)`: from gradients of shape $(N, K, h, w)$ return the weights
# $(N, K)$, one per image and channel. Each image has its own class and its own weights: do not
# average over the batch.

# %% nbgrader={"grade": false, "grade_id": "weights_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gradcam_weights(gradients):
    ### BEGIN SOLUTION
    return gradients.mean(dim=(2, 3))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_weights", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: a hand-computed example. Image 0 channel 1 has gradients 1, 2, 3, 6 → mean 3.
import torch

_g = torch.zeros(2, 2, 2, 2)
_g[0, 1] = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
_g[1, 0] = 4.0
_w = gradcam_weights(_g)
assert _w.shape == (2, 2), f"expected shape (2, 2), got {tuple(_w.shape)}"
assert torch.allclose(_w, torch.tensor([[0.0, 3.0], [4.0, 0.0]])), f"got {_w.tolist()}"
print("visible checks passed: Eq. 1")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_weights(gradcam_weights)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3 · Eq. 2, the map (10 points)
#
# $$L^c = \mathrm{ReLU}\Big(\sum_k \alpha_k^c A^k\Big)$$
#
# Write `gradcam_map(activations, weights)`: activations $(N, K, h, w)$ and weights $(N, K)$ give
# maps $(N, h, w)$. Broadcasting (`weights[:, :, None, None]`) or `torch.einsum` both work.

# %% nbgrader={"grade": false, "grade_id": "map_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gradcam_map(activations, weights):
    ### BEGIN SOLUTION
    return torch.relu((weights[:, :, None, None] * activations).sum(dim=1))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_map", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: two channels, weights +1 and -2 → A0 - 2·A1, negatives clipped to 0.
import torch

_a = torch.tensor([[[[1.0, 4.0]], [[1.0, 1.0]]]])      # (1, 2, 1, 2)
_m = gradcam_map(_a, torch.tensor([[1.0, -2.0]]))
assert _m.shape == (1, 1, 2), f"expected shape (1, 1, 2), got {tuple(_m.shape)}"
assert torch.allclose(_m, torch.tensor([[[0.0, 2.0]]])), f"got {_m.tolist()}: did you apply the ReLU?"
print("visible checks passed: Eq. 2")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_map(gradcam_map)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4 · Upsample and normalise (20 points)
#
# The map has the layer's resolution (8 × 8 for `conv2`). Write
# `upsample_and_normalize(cam, size)` that takes maps $(N, h, w)$ and `size = (H, W)` and returns
# $(N, H, W)$ in $[0, 1]$:
# 1. upsample with `F.interpolate(..., mode="bilinear", align_corners=False)` (it wants a
#    channel dimension: `cam[:, None]`);
# 2. then normalise **each image on its own**: $(x - \min) / (\max - \min + 10^{-7})$.
#
# Why this order? Bilinear upsampling mixes neighbouring values, so a map normalised first no
# longer reaches 1 after upsampling. And why the $10^{-7}$? A class with no positive evidence
# has an all-zero map, which must stay zero instead of becoming `0/0 = NaN`.

# %% nbgrader={"grade": false, "grade_id": "upsample_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def upsample_and_normalize(cam, size):
    ### BEGIN SOLUTION
    up = F.interpolate(cam[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    lo = up.flatten(1).min(dim=1).values[:, None, None]
    hi = up.flatten(1).max(dim=1).values[:, None, None]
    return (up - lo) / (hi - lo + 1e-7)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_upsample_values", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible checks: shape, range, and a maximum of exactly 1 after a ×2 upsampling.
import torch

_cam = torch.rand(2, 4, 3)
_out = upsample_and_normalize(_cam, (8, 6))
assert _out.shape == (2, 8, 6), f"expected shape (2, 8, 6), got {tuple(_out.shape)}"
assert float(_out.min()) >= 0.0 and float(_out.max()) <= 1.0, "values must lie in [0, 1]"
assert torch.allclose(_out.flatten(1).max(1).values, torch.ones(2), atol=1e-5), \
    "each image's maximum must be 1: normalise after upsampling"
print("visible checks passed: shape and range")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_upsample_values(upsample_and_normalize)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_upsample_edge_cases", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Visible check: an all-zero map stays zero (no NaN).
import torch

_out = upsample_and_normalize(torch.zeros(1, 4, 4), (8, 8))
assert not torch.isnan(_out).any(), "an all-zero map gave NaN: add 1e-7 to the denominator"
assert float(_out.abs().max()) == 0.0, "an all-zero map must stay all zero"
print("visible checks passed: all-zero map")
### BEGIN HIDDEN TESTS
from gradcam_course.instructor.hidden_checks import load_checks
load_checks().check_upsample_edge_cases(upsample_and_normalize)
### END HIDDEN TESTS

# %% [markdown]
# ## 5 · Grad-CAM, assembled
#
# The four pieces compose into Grad-CAM for a whole batch: one forward pass, one backward pass
# that stops at the layer, and a few tensor operations. No loop over images.

# %%
def grad_cam(model, layer, images, class_idx=None):
    """Grad-CAM maps (N, H, W) in [0, 1] at the resolution of `images`."""
    activations, gradients, _ = capture_activations_and_gradients(model, layer, images, class_idx)
    cam = gradcam_map(activations, gradcam_weights(gradients))
    return upsample_and_normalize(cam, images.shape[-2:])


# %% [markdown]
# Does it agree with the reference library, `pytorch-grad-cam`
# {cite}`jacobgil2021pytorchcam`? Both should give the same maps up to floating-point noise.

# %%
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

batch = test_images[:16].to(device)
classes = predict(model, batch).argmax(1)
ours = grad_cam(model, model.conv2, batch, classes)
with GradCAM(model=model, target_layers=[model.conv2]) as library_cam:
    theirs = library_cam(input_tensor=batch, targets=[ClassifierOutputTarget(int(c)) for c in classes])
model.zero_grad(set_to_none=True)  # the library's full backward pass fills every .grad
difference = float((ours.cpu() - torch.from_numpy(theirs)).abs().max())
print(f"max |ours - pytorch-grad-cam| over {len(batch)} maps: {difference:.2e}")
assert difference < 1e-3, "your Grad-CAM and the library's disagree: revisit the exercises"

# %% [markdown]
# For the trained model the two agree to about $10^{-6}$. (When training is cut short, as while
# grading, the raw maps are tiny, and the library's $10^{-7}$ epsilon, which it applies in two
# normalisations, shows at about $10^{-4}$.) A mistake in any exercise shows as a difference of
# 0.1 or more.

# %% [markdown]
# ## 6 · What the network looks at
#
# Each digit below is drawn in grey with its Grad-CAM for the **predicted** class on top
# (red = strong evidence for that class, blue = none). The title gives the prediction and the
# true label.

# %%
images = test_images[:24].to(device)
logits = predict(model, images)
preds = logits.argmax(1)
cams = grad_cam(model, model.conv2, images, preds)
titles = [f"pred {int(p)} · true {int(t)}" for p, t in zip(preds, test_labels[:24])]
plot_cam_grid(images.cpu(), cams.cpu(), titles, ncols=8,
              suptitle="Grad-CAM of LeNet's conv2 for the predicted class")
plt.show()

# %% [markdown]
# The maps light up the strokes that distinguish a digit: the loop of a 6, the bar of a 7. At
# 8 × 8, `conv2` cannot draw fine detail; the heatmap tells *where*, not *which pixel*.
#
# ### A mistake, explained
#
# Grad-CAM is class-discriminative: we can ask for the map of *any* class, not just the
# predicted one. For a misclassified digit, compare the map of the class the network chose with
# the map of its second choice (and of the true class, when that is neither).

# %%
all_logits = predict(model, test_images.to(device))
wrong = (all_logits.argmax(1) != test_labels.to(device)).nonzero().flatten()
if len(wrong):
    i = int(wrong[0])
    why = f"misclassified: true label {int(test_labels[i])}"
else:  # a perfect model: take the least confident prediction instead
    i = int(all_logits.softmax(1).max(1).values.argmin())
    why = f"least confident prediction, true label {int(test_labels[i])}"
probs = all_logits[i].softmax(0)
shown = probs.topk(2).indices.tolist()            # the top-2 classes...
true_class = int(test_labels[i])
if true_class not in shown:                        # ...and the true one, if it is not among them
    shown.append(true_class)
digit = test_images[i:i + 1].to(device)
maps = [grad_cam(model, model.conv2, digit, c)[0].cpu() for c in shown]
titles = [f"{'1st' if k == 0 else '2nd' if k == 1 else 'true'}: class {c} (p = {float(probs[c]):.2f})"
          for k, c in enumerate(shown)]
plot_class_maps(digit[0].cpu(), maps, titles,
                suptitle=f"Test image {i}, {why}: Grad-CAM per class")
plt.show()

# %% [markdown]
# ## Written answers
#
# **Question 1 (15 points).** Why does Eq. 2 end with a ReLU? What would the map show without it,
# and why would that be a problem once the map is min-max normalised?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_relu", "locked": false, "points": 15, "schema_version": 3, "solution": true, "task": false}
# *Model answer.* The weighted sum $\sum_k \alpha_k^c A^k$ is positive where features raise the
# class score and negative where they lower it. We want the pixels whose intensity should
# *increase* to increase $y^c$; the negative regions most likely belong to other classes
# {cite}`selvaraju2017gradcam`. Without the ReLU those regions stay in the map, and after min-max
# normalisation the most negative value becomes 0 and everything else is lifted: background and
# counter-evidence then appear as medium "evidence", and localisation gets worse (the paper
# reports this drop).

# %% [markdown]
# **Question 2 (15 points).** Look at the misclassified digit above. What does the map of the
# second-ranked class tell you that the map of the predicted class does not? Would you trust the
# model more or less after seeing it?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_second_class", "locked": false, "points": 15, "schema_version": 3, "solution": true, "task": false}
# *Model answer.* The predicted-class map shows which strokes the network read as evidence for
# its (wrong) answer; the second-class map shows where it *did* find evidence for the other
# reading, typically the true label. If the second map covers the strokes that a person uses to
# recognise the true digit, the model "saw" the right evidence but weighed an ambiguous stroke
# (an open loop, a short bar) more; that makes the error understandable, and points at the
# ambiguous region rather than at a shortcut. If instead both maps sit on background or on the
# image border, the model relies on something other than the digit, and we should trust it less.

# %% [markdown]
# ## Summary
#
# - Grad-CAM needs the target layer's activations and the gradient of the **pre-softmax** score
#   with respect to them. Forward hooks and `torch.autograd.grad` provide both without changing
#   the model, and without computing a single weight gradient.
# - Clone what a hook keeps: in-place operations after the layer would otherwise change it.
# - Eq. 1 averages the gradients per image and channel; Eq. 2 weighs and sums the channels and
#   keeps the positive part; upsample first, then normalise each map, with an epsilon.
# - The map is class-discriminative: the map of another class explains a confusion.
#
# **Further reading.** The Grad-CAM paper {cite}`selvaraju2017gradcam`, which builds on CAM
# {cite}`zhou2016cam`; the `pytorch-grad-cam` library {cite}`jacobgil2021pytorchcam`. Chapter 2
# applies all of this to VGG16 on ImageNet photos.
