"""Hidden checks of chapter 1. Each builds its own seeded inputs and compares the student's
function with the reference; an AssertionError message tells the student what went wrong."""

from __future__ import annotations

import warnings

import torch

from autograder.checks.basic_models import SmallConvNet
from autograder.checks.basic_models import randn_images as images
from autograder.checks.common import assert_tensor, hook_count
from autograder.reference import ch01_mnist_lenet as ref

warnings.filterwarnings("ignore")  # stderr in a graded cell costs its points


def _mixed_classes(model, x):
    """Classes that differ per image and differ from the argmax."""
    with torch.no_grad():
        pred = model(x).argmax(1)
    return [(int(p) + 1 + i) % 5 for i, p in enumerate(pred)]


def _unpack(result, what="capture_activations_and_gradients"):
    assert isinstance(result, tuple) and len(result) == 3, (
        f"{what} must return a tuple (activations, gradients, logits).")
    return result


# --- exercise 1: capture_activations_and_gradients ------------------------------------------

def check_capture_values(capture):
    """Batch of 4 non-square images, a different target class per image."""
    model = SmallConvNet().eval()
    x = images()
    classes = _mixed_classes(model, x)
    a, g, logits = _unpack(capture(model, model.target, x, classes))
    ra, rg, rl = ref.capture_activations_and_gradients(model, model.target, x, classes)
    assert_tensor("logits", logits, rl, hint="Return the model's raw output for the batch.")
    assert_tensor("activations", a, ra, hint="Store the target layer's output for the whole batch.")
    assert_tensor("gradients", g, rg, atol=1e-5,
                  hint="Differentiate the raw logit logits[n, class_idx[n]] of each image (not a "
                       "softmax probability, not one class for the whole batch).")


def check_capture_class_idx(capture):
    """None → argmax, int → same class for all, tensor → one per image, wrong length → error."""
    model = SmallConvNet(seed=3).eval()
    x = images(n=3, h=9, w=12, seed=4)
    for label, class_idx in (("None", None), ("an int (2)", 2),
                             ("a tensor", torch.tensor([4, 0, 1]))):
        _, g, _ = _unpack(capture(model, model.target, x, class_idx))
        _, rg, _ = ref.capture_activations_and_gradients(model, model.target, x, class_idx)
        assert_tensor(f"gradients for class_idx={label}", g, rg,
                      hint="None means the predicted class of each image; an int the same class "
                           "for every image; a sequence one class per image.")
    try:
        capture(model, model.target, x, [0, 1])
    except ValueError:
        pass
    else:
        raise AssertionError("class_idx with 2 entries for 3 images must raise ValueError.")


def check_capture_inplace(capture):
    """The target conv is followed by ReLU(inplace=True): neither result may see that ReLU."""
    model = SmallConvNet(inplace=True, seed=5).eval()
    x = images(n=3, h=10, w=13, seed=6)
    classes = _mixed_classes(model, x)
    a, g, _ = _unpack(capture(model, model.target, x, classes))
    ra, rg, _ = ref.capture_activations_and_gradients(model, model.target, x, classes)
    assert_tensor("activations (layer followed by an in-place ReLU)", a, ra,
                  hint="The in-place ReLU after the layer overwrote the stored output: store a "
                       "clone in the hook.")
    assert_tensor("gradients (layer followed by an in-place ReLU)", g, rg,
                  hint="Take the gradient with respect to the layer's own output.")


def check_capture_hygiene(capture):
    """No hooks left behind (also when the forward raises); parameter .grad untouched."""
    model = SmallConvNet(seed=7).eval()
    x = images(n=3, seed=8)
    _unpack(capture(model, model.target, x, None))
    assert hook_count(model) == 0, (
        f"{hook_count(model)} hook(s) are still registered after the call: keep each handle and "
        "call handle.remove() (in a finally block).")
    assert all(p.grad is None for p in model.parameters()), (
        "Parameter .grad was filled: use torch.autograd.grad with respect to the activation "
        "(or restore the parameters' gradients) so Grad-CAM leaves the model as it found it.")
    marker = [torch.full_like(p, 0.25) for p in model.parameters()]
    for p, m in zip(model.parameters(), marker):
        p.grad = m.clone()
    _unpack(capture(model, model.target, x, 1))
    assert all(torch.equal(p.grad, m) for p, m in zip(model.parameters(), marker)), (
        "Existing parameter gradients were changed by the call.")
    broken = SmallConvNet(seed=7, fail_after_target=True).eval()
    try:
        capture(broken, broken.target, x, None)
    except Exception:
        pass
    assert hook_count(broken) == 0, (
        "Hooks stay registered when the model's forward raises: remove them in a finally block.")


# --- exercise 2: gradcam_weights ----------------------------------------------------------------

def check_weights(gradcam_weights):
    g = torch.randn(4, 6, 5, 7, generator=torch.Generator().manual_seed(11))
    g[2] *= 10.0  # one image with much larger gradients: batch-averaged weights show it
    assert_tensor("weights", gradcam_weights(g.clone()), ref.gradcam_weights(g), atol=1e-6,
                  hint="Average over the spatial dimensions h, w only (Eq. 1): one weight per "
                       "image and channel, shape (N, K).")


# --- exercise 3: gradcam_map --------------------------------------------------------------------

def check_map(gradcam_map):
    gen = torch.Generator().manual_seed(12)
    a = torch.randn(3, 6, 4, 9, generator=gen)
    w = torch.randn(3, 6, generator=gen)  # many negative contributions
    assert_tensor("map", gradcam_map(a.clone(), w.clone()), ref.gradcam_map(a, w), atol=1e-5,
                  hint="Weight each channel by its own image's weight, sum over channels, then "
                       "ReLU (Eq. 2).")
    zero = gradcam_map(-a.abs(), w.abs())
    assert_tensor("map with only negative evidence", zero, torch.zeros(3, 4, 9), atol=0,
                  hint="The ReLU keeps only positive evidence.")


# --- exercise 4: upsample_and_normalize ---------------------------------------------------------

def check_upsample_values(upsample_and_normalize):
    gen = torch.Generator().manual_seed(13)
    cam = torch.relu(torch.randn(3, 4, 5, generator=gen)) * torch.tensor([1.0, 50.0, 0.02])[:, None, None]
    for size in ((8, 10), (13, 7), (4, 5)):  # ×2, odd, identity
        got = upsample_and_normalize(cam.clone(), size)
        assert_tensor(f"map upsampled to {size}", got, ref.upsample_and_normalize(cam, size),
                      atol=1e-5,
                      hint="Upsample with F.interpolate(mode='bilinear', align_corners=False), "
                           "then min-max normalise each image (after upsampling).")


def check_upsample_edge_cases(upsample_and_normalize):
    cam = torch.zeros(2, 3, 4)
    cam[1, 1, 2] = 3.0
    out = upsample_and_normalize(cam.clone(), (6, 8))
    assert type(out) is torch.Tensor, "Return a torch.Tensor."
    assert tuple(out.shape) == (2, 6, 8), f"Expected shape (2, 6, 8), got {tuple(out.shape)}."
    assert bool(torch.isfinite(out).all()), (
        "An all-zero map produced NaN: add eps 1e-7 to the denominator (max - min + 1e-7).")
    assert float(out[0].abs().max()) == 0.0, "An all-zero map must stay all zero."
    assert abs(float(out[1].max()) - 1.0) < 1e-5 and abs(float(out[1].min())) < 1e-6, (
        "Each image must be normalised on its own to [0, 1].")
