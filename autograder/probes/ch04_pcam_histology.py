"""Probes of chapter 4: each builds a check's small seeded single-logit CNN and its inputs
(non-square, batch > 1, mixed targets), calls the student's function and returns what it saw
(results, hooks left behind, the images as the call left them)."""

from __future__ import annotations

import warnings

import torch

from autograder.probes.basic_models import OneLogitCNN
from autograder.probes.basic_models import rand_images as images
from autograder.probes.common import hook_count, refusing_package_answers

CHAPTER = "04_pcam_histology"

warnings.filterwarnings("ignore")  # stderr in a graded cell costs its points


# --- inputs shared with the verdicts (built the same, bit for bit, on both sides) --------------
# Targets and baselines are built afresh on each call, so nothing a call does to them carries over.

def gradcam_values_inputs():
    x = images()
    model = near_boundary(OneLogitCNN(), x)  # target=None: predictions of both classes
    return model, model.features[4], x


def gradcam_values_targets():
    return ([1, 0, 1], None, torch.tensor([0, 1, 1]))


def gradcam_negative_inputs():
    model = OneLogitCNN(seed=2)
    return model, model.features[4], images(n=4, h=16, w=12, seed=3)


def saliency_inputs():
    return OneLogitCNN(seed=4), images(n=3, h=13, w=17, seed=5)


def saliency_targets():
    return ([0, 1, 0], None, 1)


def occlusion_values_inputs():
    return OneLogitCNN(seed=6), images(n=2, h=20, w=18, seed=7)


def occlusion_values_cases():
    """(patch, stride, target): windows that end exactly at the border, windows that do not."""
    return ((8, 4, [1, 0]), (5, 3, None), (6, 6, 1))


def occlusion_baseline_inputs():
    return OneLogitCNN(seed=8), images(n=3, h=12, w=12, seed=9)


def ig_values_inputs():
    return OneLogitCNN(seed=10), images(n=3, h=10, w=14, seed=11)


def ig_values_cases():
    """(steps, target)"""
    return ((20, [1, 0, 1]), (7, None))


def ig_completeness_inputs():
    return OneLogitCNN(seed=12), images(n=4, h=12, w=12, seed=13)


def ig_baseline_inputs():
    model, x = OneLogitCNN(seed=14), images(n=2, h=12, w=10, seed=15)
    return model, x, torch.rand(x.shape, generator=torch.Generator().manual_seed(16))


def ig_baselines(tensor_baseline):
    return (0.5, tensor_baseline)


def insertion_curves_inputs():
    model, x = OneLogitCNN(seed=17), images(n=3, h=12, w=16, seed=18)
    maps = torch.rand(3, 12, 16, generator=torch.Generator().manual_seed(19))
    maps[0, :2] = 0.5  # ties: the lower flat index goes first
    return model, x, maps


def insertion_curves_cases():
    """(steps, baseline, target)"""
    return ((5, 0.2, [1, 0, 1]), (8, 0.0, None))


def insertion_auc_inputs():
    model, x = OneLogitCNN(seed=20), images(n=2, h=10, w=10, seed=21)
    return model, x, torch.rand(2, 10, 10, generator=torch.Generator().manual_seed(22))


def near_boundary(model, x):
    """``model`` with its logit's bias moved so that the logits of ``x`` straddle 0 closely, with
    both signs: perturbed copies then cross the decision boundary, so it matters that the target
    class is chosen once, on the unperturbed images. The boundary sits in the middle of the widest
    gap between consecutive logits, so no logit is so close to 0 that rounding could flip it."""
    with torch.no_grad():
        z = model(x)[:, 0].sort().values
        widest = int((z[1:] - z[:-1]).argmax())
        model.head[2].bias -= (z[widest] + z[widest + 1]) / 2
    return model


def occlusion_boundary_inputs():
    x = images(n=4, h=12, w=14, seed=24)
    return near_boundary(OneLogitCNN(seed=23), x), x


OCCLUSION_BOUNDARY_CASE = (4, 2, None)  # (patch, stride, target)


def ig_boundary_inputs():
    x = images(n=4, h=10, w=12, seed=26)
    return near_boundary(OneLogitCNN(seed=25), x), x


IG_BOUNDARY_STEPS = 16


def insertion_boundary_inputs():
    x = images(n=4, h=10, w=12, seed=28)
    maps = torch.rand(4, 10, 12, generator=torch.Generator().manual_seed(29))
    return near_boundary(OneLogitCNN(seed=27), x), x, maps


INSERTION_BOUNDARY_CASE = (6, 0.0, None)  # (steps, baseline, target)


def _forward_passes(model):
    """A list that fills with (batch size, gradients enabled) of every forward pass of ``model``,
    and the handle that stops it."""
    calls: list[tuple[int, bool]] = []

    def record(module, inputs):
        calls.append((int(inputs[0].shape[0]), bool(torch.is_grad_enabled())))

    return calls, model.register_forward_pre_hook(record)


# --- exercise 1: Grad-CAM for one logit ---------------------------------------------------------

def probe_gradcam_values(binary_gradcam):
    model, layer, x = gradcam_values_inputs()
    maps = [binary_gradcam(model, layer, x, target) for target in gradcam_values_targets()]
    return {"maps": maps, "hooks": hook_count(model)}


def probe_gradcam_negative(binary_gradcam):
    model, layer, x = gradcam_negative_inputs()
    return {"maps": binary_gradcam(model, layer, x, 0)}


# --- exercise 2: saliency -----------------------------------------------------------------------

def probe_saliency(saliency_map):
    model, x = saliency_inputs()
    maps = [saliency_map(model, x, target) for target in saliency_targets()]
    return {"maps": maps, "images_after": x}  # the caller's images, with their requires_grad


# --- exercise 3: occlusion ----------------------------------------------------------------------

def probe_occlusion_values(occlusion_sensitivity):
    model, x = occlusion_values_inputs()
    calls, handle = _forward_passes(model)
    try:
        maps = [occlusion_sensitivity(model, x, patch, stride, 0.0, target)
                for patch, stride, target in occlusion_values_cases()]
    finally:
        handle.remove()
    boundary_model, boundary_x = occlusion_boundary_inputs()
    patch, stride, target = OCCLUSION_BOUNDARY_CASE
    return {"maps": maps, "images_after": x, "calls": calls,
            "boundary": occlusion_sensitivity(boundary_model, boundary_x, patch, stride, 0.0, target)}


def probe_occlusion_baseline(occlusion_sensitivity):
    model, x = occlusion_baseline_inputs()
    return {"maps": occlusion_sensitivity(model, x, 4, 4, 0.5, 0)}


# --- exercise 4: integrated gradients -----------------------------------------------------------

def probe_ig_values(integrated_gradients):
    model, x = ig_values_inputs()
    attributions = [integrated_gradients(model, x, None, steps, target)
                    for steps, target in ig_values_cases()]
    boundary_model, boundary_x = ig_boundary_inputs()
    return {"attributions": attributions, "images_after": x,
            "boundary": integrated_gradients(boundary_model, boundary_x, None, IG_BOUNDARY_STEPS, None)}


def probe_ig_completeness(integrated_gradients):
    model, x = ig_completeness_inputs()
    return {"attributions": integrated_gradients(model, x, None, 128, 1)}


def probe_ig_baseline(integrated_gradients):
    model, x, tensor_baseline = ig_baseline_inputs()
    return {"attributions": [integrated_gradients(model, x, baseline, 16, 0)
                             for baseline in ig_baselines(tensor_baseline)]}


# --- exercise 5: insertion and deletion ---------------------------------------------------------

def probe_insertion_curves(insertion_deletion):
    insertion_deletion = refusing_package_answers(insertion_deletion, CHAPTER)
    model, x, maps = insertion_curves_inputs()
    boundary_model, boundary_x, boundary_maps = insertion_boundary_inputs()
    return {"results": [insertion_deletion(model, x, maps, steps, baseline, target)
                        for steps, baseline, target in insertion_curves_cases()],
            "boundary": insertion_deletion(boundary_model, boundary_x, boundary_maps,
                                           *INSERTION_BOUNDARY_CASE)}


def probe_insertion_auc(insertion_deletion):
    insertion_deletion = refusing_package_answers(insertion_deletion, CHAPTER)
    model, x, maps = insertion_auc_inputs()
    return {"result": insertion_deletion(model, x, maps, 4, 0.0, 1)}
