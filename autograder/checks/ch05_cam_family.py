"""Hidden checks of chapter 5. Each builds its own seeded inputs (a small multi-class CNN whose
target layers are followed by an in-place ReLU or feed a convolution, and random tensors with
negative values and exact zeros; non-square grids, batch > 1) and compares the student's function
with the reference; an AssertionError message tells the student what went wrong."""

from __future__ import annotations

import contextlib
import io
import math
import warnings


import torch
from torch import nn

from autograder.probes.basic_models import FourClassCNN
from autograder.probes.basic_models import rand_images as images
from autograder.checks.common import assert_tensor
from autograder.reference import ch05_cam_family as ref
from autograder.reference.ch01_mnist_lenet import capture_activations_and_gradients

warnings.filterwarnings("ignore")  # stderr in a graded cell costs its points


def _captured(layer_index, seed, classes, n=3, h=14, w=18):
    """(activations, gradients) of a FourClassCNN layer, as chapter 1's capture returns them."""
    model = FourClassCNN(seed=seed)
    acts, grads, _ = capture_activations_and_gradients(
        model, model.features[layer_index], images(n, h, w, seed + 1), classes)
    return acts, grads


def _random_pair(seed, n=2, k=6, h=5, w=7, zeros=0.3):
    """Signed activations, signed gradients with a share of exact zeros."""
    g = torch.Generator().manual_seed(seed)
    acts = torch.randn(n, k, h, w, generator=g) + 0.3
    grads = torch.randn(n, k, h, w, generator=g) * 0.5
    grads = grads * (torch.rand(n, k, h, w, generator=g) > zeros)
    return acts, grads


def _scaled_atol(expected, rel=1e-5):
    return rel * max(1.0, float(expected.abs().max()))


def _unchanged(name, tensors, before):
    for what, now, then in zip(("activations", "gradients", "images"), tensors, before):
        assert torch.equal(now, then), (
            f"{name} changed the {what} it was given (an in-place operation such as relu_, "
            "clamp_ or -=): work on new tensors.")


def _normalised(maps):
    """pytorch-grad-cam's ReLU and per-image min-max (eps 1e-7), at the layer's resolution."""
    maps = torch.relu(torch.as_tensor(maps).detach().float().cpu())
    lo = maps.flatten(1).min(1).values[:, None, None]
    hi = maps.flatten(1).max(1).values[:, None, None]
    return (maps - lo) / (hi - lo + 1e-7)


def _pytorch_grad_cam_map(method, acts, grads, model=None, images=None, classes=None):
    """pytorch-grad-cam's own map for these activations and gradients (its ``get_cam_image``)."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if model is None:  # the gradient methods read only the activations and gradients
        model = nn.Conv2d(1, 1, 1)
    layer = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    targets = None if classes is None else [ClassifierOutputTarget(int(c)) for c in classes]
    with getattr(pytorch_grad_cam, method)(model, [layer]) as cam, \
            contextlib.redirect_stderr(io.StringIO()):  # ScoreCAM's progress bar
        return cam.get_cam_image(images, layer, targets, acts.numpy(), grads.numpy(), False)


def _agrees_with_pytorch_grad_cam(what, got_map, method, acts, grads, **kwargs):
    """The student's map, after pytorch-grad-cam's ReLU and min-max, equals its own (1e-4)."""
    theirs = _normalised(_pytorch_grad_cam_map(method, acts, grads, **kwargs))
    diff = float((_normalised(got_map) - theirs).abs().max())
    assert diff <= 1e-4, (
        f"{what}: after ReLU and per-image min-max it differs from pytorch-grad-cam's {method} by "
        f"{diff:.3g} (max abs): compare your formula with the statement.")


# --- exercise 1: Grad-CAM++ ---------------------------------------------------------------------

PLUSPLUS_HINT = ("w_k = Σ_ij α_ij · ReLU(g_ij) (a sum over the positions, not a mean; only the "
                 "positive gradients), α = g² / (2 g² + (Σ_ab A_ab) · g³ + 1e-6), where Σ_ab A_ab "
                 "is the sum of channel k's activations over the whole grid; α = 0 where g = 0.")


def _plusplus_inputs():
    # A conv followed by an in-place ReLU: exact zeros in the gradient, mixed targets.
    yield "FourClassCNN activations and gradients", *_captured(4, seed=0, classes=[0, 2, 3])
    # Signed gradients, so that ReLU(g) matters, and positive activations, so that Σ A > 0.
    g = torch.Generator().manual_seed(11)
    acts = torch.rand(3, 5, 6, 7, generator=g) * 2
    grads = torch.randn(3, 5, 6, 7, generator=g) * 0.4
    grads[torch.rand(3, 5, 6, 7, generator=g) < 0.2] = 0.0
    yield "random activations and gradients", acts, grads


def check_plusplus_values(gradcam_plusplus_weights):
    for label, acts, grads in _plusplus_inputs():
        before = (acts.clone(), grads.clone())
        got = gradcam_plusplus_weights(acts, grads)
        want = ref.gradcam_plusplus_weights(acts, grads)
        assert_tensor(f"Grad-CAM++ weights ({label}, shape (N, K))", got, want,
                      atol=_scaled_atol(want), hint=PLUSPLUS_HINT)
        _unchanged("gradcam_plusplus_weights", (acts, grads), before)
        _agrees_with_pytorch_grad_cam(f"the Grad-CAM++ map ({label})",
                                      (got[:, :, None, None] * acts).sum(1), "GradCAMPlusPlus",
                                      acts, grads)


def check_plusplus_zero_gradients(gradcam_plusplus_weights):
    """Many exact zeros and whole zero channels: 0/0 must not leak into the weights."""
    acts, grads = _random_pair(seed=21, n=3, k=6, h=4, w=9, zeros=0.6)
    grads[0, 1] = 0.0
    grads[2, [0, 4]] = 0.0
    acts[1, 3] = 0.0
    grads[1, 3] = 0.0  # a dead channel: zero activations and zero gradients
    got = gradcam_plusplus_weights(acts, grads)
    want = ref.gradcam_plusplus_weights(acts, grads)
    assert type(got) is torch.Tensor and bool(torch.isfinite(got).all()), (
        "Grad-CAM++ weights contain NaN or inf where the gradient is 0: without eps, "
        "α = 0 / 0 there. Add the eps 1e-6 to the denominator and set α = 0 where g == 0 "
        "(torch.where(gradients != 0, alpha, 0)).")
    assert_tensor("Grad-CAM++ weights with zero gradients", got, want, atol=_scaled_atol(want),
                  hint="A channel whose gradient is zero everywhere gets weight 0. " + PLUSPLUS_HINT)


# --- exercises 2 and 3: element-wise maps -------------------------------------------------------

def _map_inputs():
    # A BatchNorm output feeding a conv: signed activations, gradients varying over the grid.
    yield "FourClassCNN activations and gradients", *_captured(7, seed=2, classes=[1, 3, 0], h=12, w=16)
    yield "random activations and gradients", *_random_pair(seed=31, n=3, k=6, h=5, w=7)


def check_hirescam(hirescam_map):
    for label, acts, grads in _map_inputs():
        before = (acts.clone(), grads.clone())
        got = hirescam_map(acts, grads)
        want = ref.hirescam_map(acts, grads)
        if type(got) is torch.Tensor and got.shape == want.shape and bool(torch.isfinite(got).all()):
            assert float(got.min()) >= 0, (
                "the HiResCAM map has negative values: apply the ReLU to the channel sum.")
        assert_tensor(f"HiResCAM map ({label}, shape (N, h, w))", got, want,
                      atol=_scaled_atol(want),
                      hint="L = ReLU(Σ_k g^k ⊙ A^k): the gradient of each position times its "
                           "activation (no averaging of the gradient over the grid, that is "
                           "Grad-CAM), summed over the channels, and one ReLU on that sum, "
                           "not on each product.")
        _unchanged("hirescam_map", (acts, grads), before)
        _agrees_with_pytorch_grad_cam(f"the HiResCAM map ({label})", got, "HiResCAM", acts, grads)


def check_layercam(layercam_map):
    for label, acts, grads in _map_inputs():
        before = (acts.clone(), grads.clone())
        got = layercam_map(acts, grads)
        want = ref.layercam_map(acts, grads)
        if type(got) is torch.Tensor and got.shape == want.shape and bool(torch.isfinite(got).all()):
            assert float(got.min()) >= 0, (
                "the LayerCAM map has negative values (the activations can be negative): apply "
                "the outer ReLU to the channel sum.")
        assert_tensor(f"LayerCAM map ({label}, shape (N, h, w))", got, want,
                      atol=_scaled_atol(want),
                      hint="L = ReLU(Σ_k ReLU(g^k) ⊙ A^k): only the positive gradients, position "
                           "by position, times the activations, summed over the channels, then "
                           "the outer ReLU.")
        _unchanged("layercam_map", (acts, grads), before)
        _agrees_with_pytorch_grad_cam(f"the LayerCAM map ({label})", got, "LayerCAM", acts, grads)


# --- exercise 4: Score-CAM ----------------------------------------------------------------------

SCORECAM_HINT = ("Each channel upsampled to the image size with F.interpolate(..., "
                 "mode='bilinear', align_corners=True), min-max normalised to [0, 1] with eps "
                 "1e-8, multiplied with its own image; s_k is the logit of that image's target "
                 "class (of the original images' prediction for None), and the weights are a "
                 "softmax over the channels (dim=1), one distribution per image.")


def _scorecam_setup(seed, n=3, h=14, w=18):
    """A FourClassCNN, images, and the activations of features[4] (smaller than the images), with one
    all-zero channel."""
    model, x = FourClassCNN(seed=seed), images(n, h, w, seed + 1)
    acts, _, _ = capture_activations_and_gradients(model, model.features[4], x, 0)
    acts[1, 2] = 0.0
    return model, x, acts


def check_scorecam_values(scorecam_weights):
    model, x, acts = _scorecam_setup(seed=40)
    before = (acts.clone(), x.clone())
    n, k = acts.shape[:2]
    cases = (([2, 0, 3], {"batch_size": 3}), (1, {"batch_size": 5}),
             (torch.tensor([3, 1, 1]), {}), (None, {"batch_size": 64}))
    for class_idx, kwargs in cases:
        got = scorecam_weights(model, x, acts, class_idx, **kwargs)
        want = ref.scorecam_weights(model, x, acts, class_idx, kwargs.get("batch_size", 64))
        size = kwargs.get("batch_size", "the default 64")
        assert_tensor(f"Score-CAM weights for class_idx={class_idx!r}, batch_size={size} "
                      f"(N={n} images, K={k} channels)", got, want, atol=1e-5,
                      hint=SCORECAM_HINT)
        _unchanged("scorecam_weights", (acts, x), before)
        if isinstance(class_idx, list):
            _agrees_with_pytorch_grad_cam(
                "the Score-CAM map", (got[:, :, None, None] * acts).sum(1), "ScoreCAM", acts,
                torch.zeros_like(acts), model=model, images=x, classes=class_idx)
    assert not any(p.grad is not None for p in model.parameters()), (
        "scorecam_weights left gradients in the model's parameters: Score-CAM needs no backward "
        "pass, run it under torch.inference_mode().")


def check_scorecam_batches(scorecam_weights):
    model, x, acts = _scorecam_setup(seed=50)
    n, k = acts.shape[:2]
    calls: list[tuple[int, bool]] = []

    def record(module, inputs):
        calls.append((inputs[0].shape[0], torch.is_grad_enabled()))

    for class_idx, batch_size in (([1, 3, 0], 3), (None, 5)):
        calls.clear()
        handle = model.register_forward_pre_hook(record)
        try:
            got = scorecam_weights(model, x, acts, class_idx, batch_size=batch_size)
        finally:
            handle.remove()
        assert calls, "scorecam_weights never called the model."
        assert not any(grad for _, grad in calls), (
            "a forward pass of scorecam_weights ran with gradients enabled: Score-CAM needs no "
            "gradients, run its forward passes under torch.inference_mode() (or torch.no_grad()).")
        biggest = max(size for size, _ in calls)
        assert biggest <= batch_size, (
            f"a forward pass got {biggest} images with batch_size={batch_size}: evaluate the "
            f"masked images in batches of at most batch_size.")
        limit = n * math.ceil(k / batch_size) + n + 2
        assert len(calls) <= limit, (
            f"{len(calls)} forward passes for N={n} images, K={k} channels and "
            f"batch_size={batch_size}; at most {limit} are needed: batch the K masked images "
            "of an image (batch_size at a time) instead of one forward pass per channel.")
        want = ref.scorecam_weights(model, x, acts, class_idx, batch_size)
        assert_tensor(f"Score-CAM weights for class_idx={class_idx!r}, batch_size={batch_size}",
                      got, want, atol=1e-5, hint=SCORECAM_HINT)


# --- exercise 5: EigenCAM -----------------------------------------------------------------------

EIGEN_HINT = ("Rows are the h·w positions, columns the K channels: X = activations.flatten(2)"
              ".transpose(1, 2), centred over the positions (subtract X.mean(dim=1)); the map is "
              "X @ v1, v1 = the first right-singular vector (Vh[:, 0]) of the centred X, reshaped "
              "to (h, w), before any ReLU.")


def _eigen_activations(seed, n, k=6, h=5, w=7):
    """Activations with a large per-channel offset, one dominant direction of variation and a
    little noise: the first singular value is far from the second, so v1 is stable."""
    g = torch.Generator().manual_seed(seed)
    offset = torch.rand(n, k, 1, 1, generator=g) * 4 + 1
    u = torch.randn(n, k, 1, 1, generator=g)
    u = u / u.norm(dim=1, keepdim=True)
    pattern = torch.randn(n, 1, h, w, generator=g)
    return offset + 3 * u * pattern + 0.1 * torch.randn(n, k, h, w, generator=g)


def _raw_svd_correlation(acts):
    """Σ (X v1) · Σ_k A^k with v1 as torch.linalg.svd returns it (sign left to chance), and that
    sum relative to the norms (a cosine)."""
    x = acts.flatten(2).transpose(1, 2)
    x = x - x.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    proj = (x @ vh[:, 0, :, None])[..., 0]
    summed = acts.sum(dim=1).flatten(1)
    summed = summed - summed.mean(dim=1, keepdim=True)
    return (proj * summed).sum(1) / (proj.norm(dim=1) * summed.norm(dim=1))


def check_eigencam_values(eigencam_map):
    """The projection up to its sign (the sign is graded by check_eigencam_sign)."""
    acts = _eigen_activations(seed=60, n=3, k=6, h=5, w=7)
    before = acts.clone()
    got = eigencam_map(acts)
    want = ref.eigencam_map(acts)
    assert type(got) is torch.Tensor, f"eigencam_map must return a torch.Tensor, got {type(got).__name__}."
    assert tuple(got.shape) == tuple(want.shape), (
        f"the EigenCAM map has shape {tuple(got.shape)}, expected (N, h, w) = {tuple(want.shape)}.")
    got = got.detach().float()
    # per image, whichever sign is closer
    flip = (got - want).flatten(1).abs().amax(1) > (got + want).flatten(1).abs().amax(1)
    aligned = torch.where(flip[:, None, None], -got, got)
    assert_tensor("EigenCAM map (compared up to its sign)", aligned, want,
                  atol=1e-4 * max(1.0, float(want.abs().max())), hint=EIGEN_HINT)
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    theirs = torch.from_numpy(get_2d_projection(acts.numpy()))
    flip = (aligned - theirs).flatten(1).abs().amax(1) > (aligned + theirs).flatten(1).abs().amax(1)
    assert_tensor("EigenCAM map against pytorch-grad-cam's projection (up to its sign)", aligned,
                  torch.where(flip[:, None, None], -theirs, theirs),
                  atol=1e-4 * max(1.0, float(theirs.abs().max())), hint=EIGEN_HINT)
    assert torch.equal(acts, before), (
        "eigencam_map changed the activations it was given (an in-place -= on a view of them?): "
        "centre a new tensor, x = x - x.mean(...).")


def _sign_batch():
    """Six activations: three where the SVD's own sign gives a map that correlates negatively with
    the channel-summed activation, three where it correlates positively (clearly, |cos| > 0.5)."""
    pool = _eigen_activations(seed=70, n=24, k=6, h=6, w=5)
    cos = _raw_svd_correlation(pool)
    negative = [i for i in range(len(pool)) if cos[i] < -0.5][:3]
    positive = [i for i in range(len(pool)) if cos[i] > 0.5][:3]
    order = [i for pair in zip(negative, positive) for i in pair]
    return pool[order]


def check_eigencam_sign(eigencam_map):
    acts = _sign_batch()
    cos = _raw_svd_correlation(acts)
    # a guard: the batch must contain both signs, or this check would grade nothing
    assert len(acts) == 6 and int((cos < 0).sum()) == 3 and int((cos > 0).sum()) == 3, (
        "internal error of the check: torch.linalg.svd gave no sign flip on its test inputs; "
        "please tell the course staff.")
    got = eigencam_map(acts)
    want = ref.eigencam_map(acts)
    if type(got) is torch.Tensor and got.shape == want.shape:
        summed = acts.sum(dim=1)
        wrong = [i for i in range(len(acts)) if float((got[i].detach() * summed[i]).sum()) < 0]
        assert not wrong, (
            f"the EigenCAM maps of images {wrong} correlate negatively with the channel-summed "
            "activation Σ_k A^k: a singular vector's sign is arbitrary, so flip the projection "
            "of each image whose Σ_ij L_ij · Σ_k A^k_ij is negative.")
    assert_tensor("EigenCAM map (with its sign)", got, want,
                  atol=1e-4 * max(1.0, float(want.abs().max())),
                  hint="The map must correlate positively with the channel-summed activation "
                       "Σ_k A^k: multiply each image's projection by -1 where "
                       "Σ_ij L_ij · Σ_k A^k_ij < 0. " + EIGEN_HINT)
