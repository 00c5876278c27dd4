"""Probes of chapter 1: each builds a check's seeded inputs, calls the student's function and
returns what it saw (results, hooks left behind, gradients touched, errors raised)."""

from __future__ import annotations

import warnings

import torch

from autograder.probes.basic_models import SmallConvNet
from autograder.probes.basic_models import randn_images as images
from autograder.probes.common import hook_count, raised

warnings.filterwarnings("ignore")  # stderr in a graded cell costs its points


def mixed_classes(model, x):
    """Classes that differ per image and differ from the argmax."""
    with torch.no_grad():
        pred = model(x).argmax(1)
    return [(int(p) + 1 + i) % 5 for i, p in enumerate(pred)]


# --- inputs shared with the verdicts (built the same, bit for bit, on both sides) --------------

def values_inputs():
    model = SmallConvNet().eval()
    x = images()
    return model, x, mixed_classes(model, x)


def class_idx_inputs():
    return SmallConvNet(seed=3).eval(), images(n=3, h=9, w=12, seed=4)


CLASS_IDX_CASES = (("None", None), ("an int (2)", 2), ("a tensor", torch.tensor([4, 0, 1])))


def inplace_inputs():
    model = SmallConvNet(inplace=True, seed=5).eval()
    x = images(n=3, h=10, w=13, seed=6)
    return model, x, mixed_classes(model, x)


def hygiene_inputs():
    return SmallConvNet(seed=7).eval(), images(n=3, seed=8)


def weights_input():
    g = torch.randn(4, 6, 5, 7, generator=torch.Generator().manual_seed(11))
    g[2] *= 10.0  # one image with much larger gradients: batch-averaged weights show it
    return g


def map_inputs():
    gen = torch.Generator().manual_seed(12)
    a = torch.randn(3, 6, 4, 9, generator=gen)
    w = torch.randn(3, 6, generator=gen)  # many negative contributions
    return a, w


def upsample_input():
    gen = torch.Generator().manual_seed(13)
    return torch.relu(torch.randn(3, 4, 5, generator=gen)) * torch.tensor([1.0, 50.0, 0.02])[:, None, None]


UPSAMPLE_SIZES = ((8, 10), (13, 7), (4, 5))  # ×2, odd, identity


def edge_case_input():
    cam = torch.zeros(2, 3, 4)
    cam[1, 1, 2] = 3.0
    return cam


# --- exercise 1: capture_activations_and_gradients ------------------------------------------

def probe_capture_values(capture):
    model, x, classes = values_inputs()
    return {"result": capture(model, model.target, x, classes)}


def probe_capture_class_idx(capture):
    model, x = class_idx_inputs()
    results = [capture(model, model.target, x, class_idx) for _, class_idx in CLASS_IDX_CASES]
    return {"results": results, "two_for_three": raised(capture, model, model.target, x, [0, 1])}


def probe_capture_inplace(capture):
    model, x, classes = inplace_inputs()
    return {"result": capture(model, model.target, x, classes)}


def probe_capture_hygiene(capture):
    model, x = hygiene_inputs()
    first = capture(model, model.target, x, None)
    seen = {"result": first, "hooks": hook_count(model),
            "grads_none": all(p.grad is None for p in model.parameters())}
    marker = [torch.full_like(p, 0.25) for p in model.parameters()]
    for p, m in zip(model.parameters(), marker):
        p.grad = m.clone()
    seen["second"] = capture(model, model.target, x, 1)
    seen["grads_kept"] = all(torch.equal(p.grad, m) for p, m in zip(model.parameters(), marker))
    broken = SmallConvNet(seed=7, fail_after_target=True).eval()
    raised(capture, broken, broken.target, x, None)
    seen["hooks_after_error"] = hook_count(broken)
    return seen


# --- exercises 2-4 -----------------------------------------------------------------------------

def probe_weights(gradcam_weights):
    return {"weights": gradcam_weights(weights_input().clone())}


def probe_map(gradcam_map):
    a, w = map_inputs()
    return {"map": gradcam_map(a.clone(), w.clone()), "negative": gradcam_map(-a.abs(), w.abs())}


def probe_upsample_values(upsample_and_normalize):
    cam = upsample_input()
    return {"maps": [upsample_and_normalize(cam.clone(), size) for size in UPSAMPLE_SIZES]}


def probe_upsample_edge_cases(upsample_and_normalize):
    return {"out": upsample_and_normalize(edge_case_input().clone(), (6, 8))}
