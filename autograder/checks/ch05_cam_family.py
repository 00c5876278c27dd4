"""Hidden checks of chapter 5. Each verdict rebuilds its probe's seeded inputs (a small
multi-class CNN whose target layers are followed by an in-place ReLU or feed a convolution, and
random tensors with negative values and exact zeros; non-square grids, batch > 1), computes the
reference here and compares it with what the probe saw the student's function return; an
AssertionError message tells the student what went wrong."""

from __future__ import annotations

import contextlib
import io
import math

import torch
from torch import nn

from autograder.checks.common import _type_name, assert_tensor, paired
from autograder.probes import ch05_cam_family as probe
from autograder.reference import ch05_cam_family as ref


def _scaled_atol(expected, rel=1e-5):
    return rel * max(1.0, float(expected.abs().max()))


def _unchanged(name, tensors, before):
    for what, now, then in zip(("activations", "gradients", "images"), tensors, before):
        assert torch.equal(now, then), (
            f"{name} changed the {what} it was given (an in-place operation such as relu_, "
            "clamp_ or -=): work on new tensors.")


def _left(case, *names):
    """The inputs as the student's call left them (what the probe saw), as tensors."""
    tensors = tuple(case[name] for name in names)
    assert all(type(t) is torch.Tensor for t in tensors), "internal error: the probe sent no inputs."
    return tensors


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


@paired(probe.probe_plusplus_values)
def check_plusplus_values(seen):
    for (label, acts0, grads0), case in zip(probe.plusplus_inputs(), seen["cases"], strict=True):
        got = case["result"]
        acts, grads = _left(case, "activations", "gradients")
        want = ref.gradcam_plusplus_weights(acts, grads)
        assert_tensor(f"Grad-CAM++ weights ({label}, shape (N, K))", got, want,
                      atol=_scaled_atol(want), hint=PLUSPLUS_HINT)
        _unchanged("gradcam_plusplus_weights", (acts, grads), (acts0, grads0))
        _agrees_with_pytorch_grad_cam(f"the Grad-CAM++ map ({label})",
                                      (got[:, :, None, None] * acts).sum(1), "GradCAMPlusPlus",
                                      acts, grads)


@paired(probe.probe_plusplus_zero_gradients)
def check_plusplus_zero_gradients(seen):
    """Many exact zeros and whole zero channels: 0/0 must not leak into the weights."""
    acts, grads = probe.zero_gradient_inputs()
    got = seen["weights"]
    want = ref.gradcam_plusplus_weights(acts, grads)
    assert type(got) is torch.Tensor and bool(torch.isfinite(got).all()), (
        "Grad-CAM++ weights contain NaN or inf where the gradient is 0: without eps, "
        "α = 0 / 0 there. Add the eps 1e-6 to the denominator and set α = 0 where g == 0 "
        "(torch.where(gradients != 0, alpha, 0)).")
    assert_tensor("Grad-CAM++ weights with zero gradients", got, want, atol=_scaled_atol(want),
                  hint="A channel whose gradient is zero everywhere gets weight 0. " + PLUSPLUS_HINT)


# --- exercises 2 and 3: element-wise maps -------------------------------------------------------

@paired(probe.probe_hirescam)
def check_hirescam(seen):
    for (label, acts0, grads0), case in zip(probe.map_inputs(), seen["cases"], strict=True):
        got = case["result"]
        acts, grads = _left(case, "activations", "gradients")
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
        _unchanged("hirescam_map", (acts, grads), (acts0, grads0))
        _agrees_with_pytorch_grad_cam(f"the HiResCAM map ({label})", got, "HiResCAM", acts, grads)


@paired(probe.probe_layercam)
def check_layercam(seen):
    for (label, acts0, grads0), case in zip(probe.map_inputs(), seen["cases"], strict=True):
        got = case["result"]
        acts, grads = _left(case, "activations", "gradients")
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
        _unchanged("layercam_map", (acts, grads), (acts0, grads0))
        _agrees_with_pytorch_grad_cam(f"the LayerCAM map ({label})", got, "LayerCAM", acts, grads)


# --- exercise 4: Score-CAM ----------------------------------------------------------------------

SCORECAM_HINT = ("Each channel upsampled to the image size with F.interpolate(..., "
                 "mode='bilinear', align_corners=True), min-max normalised to [0, 1] with eps "
                 "1e-8, multiplied with its own image; s_k is the logit of that image's target "
                 "class (of the original images' prediction for None), and the weights are a "
                 "softmax over the channels (dim=1), one distribution per image.")


@paired(probe.probe_scorecam_values)
def check_scorecam_values(seen):
    model, x0, acts0 = probe.scorecam_setup(probe.SCORECAM_VALUES_SEED)
    n, k = acts0.shape[:2]
    for (class_idx, kwargs), case in zip(probe.scorecam_value_cases(), seen["cases"], strict=True):
        got = case["result"]
        acts, x = _left(case, "activations", "images")
        want = ref.scorecam_weights(model, x, acts, class_idx, kwargs.get("batch_size", 64))
        size = kwargs.get("batch_size", "the default 64")
        assert_tensor(f"Score-CAM weights for class_idx={class_idx!r}, batch_size={size} "
                      f"(N={n} images, K={k} channels)", got, want, atol=1e-5,
                      hint=SCORECAM_HINT)
        _unchanged("scorecam_weights", (acts, x), (acts0, x0))
        if isinstance(class_idx, list):
            _agrees_with_pytorch_grad_cam(
                "the Score-CAM map", (got[:, :, None, None] * acts).sum(1), "ScoreCAM", acts,
                torch.zeros_like(acts), model=model, images=x, classes=class_idx)
    assert seen["grads_none"] is True, (
        "scorecam_weights left gradients in the model's parameters: Score-CAM needs no backward "
        "pass, run it under torch.inference_mode().")


@paired(probe.probe_scorecam_batches)
def check_scorecam_batches(seen):
    """No forward pass with gradients, none larger than batch_size, about K / batch_size per
    image; the weights of the same calls must be right too."""
    model, x, acts = probe.scorecam_setup(probe.SCORECAM_BATCHES_SEED)
    n, k = acts.shape[:2]
    for (class_idx, batch_size), case in zip(probe.scorecam_batch_cases(), seen["cases"], strict=True):
        got, calls = case["result"], case["calls"]
        assert isinstance(calls, list) and all(
            isinstance(c, tuple) and len(c) == 2 and type(c[0]) is int and type(c[1]) is bool
            for c in calls), "internal error: the probe sent no forward passes."
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


@paired(probe.probe_eigencam_values)
def check_eigencam_values(seen):
    """The projection up to its sign (the sign is graded by check_eigencam_sign)."""
    before = probe.eigen_values_input()
    got = seen["map"]
    (acts,) = _left(seen, "activations")
    want = ref.eigencam_map(acts)
    assert type(got) is torch.Tensor, f"eigencam_map must return a torch.Tensor, got {_type_name(got)}."
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


@paired(probe.probe_eigencam_sign)
def check_eigencam_sign(seen):
    acts = probe.sign_batch()
    cos = probe.raw_svd_correlation(acts)
    # a guard: the batch must contain both signs, or this check would grade nothing
    assert len(acts) == 6 and int((cos < 0).sum()) == 3 and int((cos > 0).sum()) == 3, (
        "internal error of the check: torch.linalg.svd gave no sign flip on its test inputs; "
        "please tell the course staff.")
    got = seen["map"]
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
