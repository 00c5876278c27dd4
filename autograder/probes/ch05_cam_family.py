"""Probes of chapter 5: each builds a check's seeded inputs (a small multi-class CNN whose target
layers are followed by an in-place ReLU or feed a convolution, and random tensors with negative
values and exact zeros; non-square grids, batch > 1), calls the student's function and returns
what it saw (results, the inputs as the call left them, parameter gradients, the forward passes
an instrumented model received)."""

from __future__ import annotations

import warnings

import torch

from autograder.probes.basic_models import FourClassCNN
from autograder.probes.basic_models import rand_images as images

warnings.filterwarnings("ignore")  # stderr in a graded cell costs its points


# --- inputs shared with the verdicts (built the same, bit for bit, on both sides) --------------

def capture(model, layer, x, class_idx):
    """(activations, gradients) of ``layer`` for ``class_idx`` (an int or one class per image),
    by the same operations as chapter 1's capture_activations_and_gradients: the hook hands later
    layers a copy, the gradient is of the summed target logits with respect to the layer's output."""
    captured = {}

    def hook(module, inputs, output):
        captured["output"] = output
        return output.clone()

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(x)
            if isinstance(class_idx, int):
                idx = torch.full((logits.shape[0],), class_idx, dtype=torch.long)
            else:
                idx = torch.as_tensor(class_idx, dtype=torch.long).reshape(-1)
            score = logits.gather(1, idx[:, None]).sum()
            (gradients,) = torch.autograd.grad(score, captured["output"])
    finally:
        handle.remove()
    return captured["output"].detach(), gradients.detach()


def captured(layer_index, seed, classes, n=3, h=14, w=18):
    """(activations, gradients) of a FourClassCNN layer, as chapter 1's capture returns them."""
    model = FourClassCNN(seed=seed)
    return capture(model, model.features[layer_index], images(n, h, w, seed + 1), classes)


def random_pair(seed, n=2, k=6, h=5, w=7, zeros=0.3):
    """Signed activations, signed gradients with a share of exact zeros."""
    g = torch.Generator().manual_seed(seed)
    acts = torch.randn(n, k, h, w, generator=g) + 0.3
    grads = torch.randn(n, k, h, w, generator=g) * 0.5
    grads = grads * (torch.rand(n, k, h, w, generator=g) > zeros)
    return acts, grads


def plusplus_inputs():
    """[(label, activations, gradients)] of check_plusplus_values."""
    # A conv followed by an in-place ReLU: exact zeros in the gradient, mixed targets.
    cases = [("FourClassCNN activations and gradients", *captured(4, seed=0, classes=[0, 2, 3]))]
    # Signed gradients, so that ReLU(g) matters, and positive activations, so that Σ A > 0.
    g = torch.Generator().manual_seed(11)
    acts = torch.rand(3, 5, 6, 7, generator=g) * 2
    grads = torch.randn(3, 5, 6, 7, generator=g) * 0.4
    grads[torch.rand(3, 5, 6, 7, generator=g) < 0.2] = 0.0
    cases.append(("random activations and gradients", acts, grads))
    return cases


def zero_gradient_inputs():
    """Many exact zeros and whole zero channels."""
    acts, grads = random_pair(seed=21, n=3, k=6, h=4, w=9, zeros=0.6)
    grads[0, 1] = 0.0
    grads[2, [0, 4]] = 0.0
    acts[1, 3] = 0.0
    grads[1, 3] = 0.0  # a dead channel: zero activations and zero gradients
    return acts, grads


def map_inputs():
    """[(label, activations, gradients)] of check_hirescam and check_layercam."""
    # A BatchNorm output feeding a conv: signed activations, gradients varying over the grid.
    return [("FourClassCNN activations and gradients", *captured(7, seed=2, classes=[1, 3, 0], h=12, w=16)),
            ("random activations and gradients", *random_pair(seed=31, n=3, k=6, h=5, w=7))]


def scorecam_setup(seed, n=3, h=14, w=18):
    """A FourClassCNN, images, and the activations of features[4] (smaller than the images), with
    one all-zero channel."""
    model, x = FourClassCNN(seed=seed), images(n, h, w, seed + 1)
    acts, _ = capture(model, model.features[4], x, 0)
    acts[1, 2] = 0.0
    return model, x, acts


SCORECAM_VALUES_SEED, SCORECAM_BATCHES_SEED = 40, 50


def scorecam_value_cases():
    """[(class_idx, keyword arguments)] of check_scorecam_values (new objects on every call)."""
    return [([2, 0, 3], {"batch_size": 3}), (1, {"batch_size": 5}),
            (torch.tensor([3, 1, 1]), {}), (None, {"batch_size": 64})]


def scorecam_batch_cases():
    """[(class_idx, batch_size)] of check_scorecam_batches (new objects on every call)."""
    return [([1, 3, 0], 3), (None, 5)]


def eigen_activations(seed, n, k=6, h=5, w=7):
    """Activations with a large per-channel offset, one dominant direction of variation and a
    little noise: the first singular value is far from the second, so v1 is stable."""
    g = torch.Generator().manual_seed(seed)
    offset = torch.rand(n, k, 1, 1, generator=g) * 4 + 1
    u = torch.randn(n, k, 1, 1, generator=g)
    u = u / u.norm(dim=1, keepdim=True)
    pattern = torch.randn(n, 1, h, w, generator=g)
    return offset + 3 * u * pattern + 0.1 * torch.randn(n, k, h, w, generator=g)


def eigen_values_input():
    return eigen_activations(seed=60, n=3, k=6, h=5, w=7)


def raw_svd_correlation(acts):
    """Σ (X v1) · Σ_k A^k with v1 as torch.linalg.svd returns it (sign left to chance), and that
    sum relative to the norms (a cosine)."""
    x = acts.flatten(2).transpose(1, 2)
    x = x - x.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    proj = (x @ vh[:, 0, :, None])[..., 0]
    summed = acts.sum(dim=1).flatten(1)
    summed = summed - summed.mean(dim=1, keepdim=True)
    return (proj * summed).sum(1) / (proj.norm(dim=1) * summed.norm(dim=1))


def sign_batch():
    """Six activations: three where the SVD's own sign gives a map that correlates negatively with
    the channel-summed activation, three where it correlates positively (clearly, |cos| > 0.5)."""
    pool = eigen_activations(seed=70, n=24, k=6, h=6, w=5)
    cos = raw_svd_correlation(pool)
    negative = [i for i in range(len(pool)) if cos[i] < -0.5][:3]
    positive = [i for i in range(len(pool)) if cos[i] > 0.5][:3]
    order = [i for pair in zip(negative, positive) for i in pair]
    return pool[order]


# --- exercises 1-3: Grad-CAM++ weights, HiResCAM and LayerCAM maps ---------------------------------

def _pairs(function, cases):
    """The student's result for each (label, activations, gradients) and the two inputs as the
    call left them."""
    seen = []
    for _, acts, grads in cases:
        got = function(acts, grads)
        seen.append({"result": got, "activations": acts.clone(), "gradients": grads.clone()})
    return {"cases": seen}


def probe_plusplus_values(gradcam_plusplus_weights):
    return _pairs(gradcam_plusplus_weights, plusplus_inputs())


def probe_plusplus_zero_gradients(gradcam_plusplus_weights):
    return {"weights": gradcam_plusplus_weights(*zero_gradient_inputs())}


def probe_hirescam(hirescam_map):
    return _pairs(hirescam_map, map_inputs())


def probe_layercam(layercam_map):
    return _pairs(layercam_map, map_inputs())


# --- exercise 4: Score-CAM ----------------------------------------------------------------------

def probe_scorecam_values(scorecam_weights):
    model, x, acts = scorecam_setup(SCORECAM_VALUES_SEED)
    seen = []
    for class_idx, kwargs in scorecam_value_cases():
        got = scorecam_weights(model, x, acts, class_idx, **kwargs)
        seen.append({"result": got, "activations": acts.clone(), "images": x.clone()})
    return {"cases": seen, "grads_none": all(p.grad is None for p in model.parameters())}


def probe_scorecam_batches(scorecam_weights):
    """Every forward pass the model receives: its batch size and whether gradients were on."""
    model, x, acts = scorecam_setup(SCORECAM_BATCHES_SEED)
    calls: list[tuple[int, bool]] = []

    def record(module, inputs):
        calls.append((int(inputs[0].shape[0]), bool(torch.is_grad_enabled())))

    seen = []
    for class_idx, batch_size in scorecam_batch_cases():
        calls.clear()
        handle = model.register_forward_pre_hook(record)
        try:
            got = scorecam_weights(model, x, acts, class_idx, batch_size=batch_size)
        finally:
            handle.remove()
        seen.append({"result": got, "calls": list(calls)})
    return {"cases": seen}


# --- exercise 5: EigenCAM -----------------------------------------------------------------------

def probe_eigencam_values(eigencam_map):
    acts = eigen_values_input()
    got = eigencam_map(acts)
    return {"map": got, "activations": acts.clone()}


def probe_eigencam_sign(eigencam_map):
    return {"map": eigencam_map(sign_batch())}
