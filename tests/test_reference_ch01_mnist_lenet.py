"""The reference Grad-CAM (autograder/reference/ch01_mnist_lenet.py): equal to pytorch-grad-cam's
GradCAM on LeNet and ResNet-18, and the properties the course promises (shape, range, no
hooks or parameter gradients left behind, clear errors, in-place ReLU after the layer)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from autograder.probes.basic_models import SmallConvNet
from autograder.probes.basic_models import randn_images as images
from autograder.reference import ch01_mnist_lenet as ref
from gradcam_course.mnist import load_offline_digits
from gradcam_course.mnist import LeNet

ATOL_VS_LIBRARY = 1e-5


# --------------------------------------------------------------------------- helpers

def library_gradcam(model: nn.Module, layer: nn.Module, images: torch.Tensor,
                    classes: list[int]) -> torch.Tensor:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAM(model=model, target_layers=[layer]) as cam:
        out = cam(input_tensor=images, targets=[ClassifierOutputTarget(c) for c in classes])
    model.zero_grad(set_to_none=True)  # the library fills .grad through loss.backward()
    return torch.from_numpy(out)


def raw_maps(model, layer, images, classes) -> torch.Tensor:
    acts, grads, _ = ref.capture_activations_and_gradients(model, layer, images, classes)
    return ref.gradcam_map(acts, ref.gradcam_weights(grads))


def hook_counts(model: nn.Module) -> dict[str, int]:
    counts = {}
    for name, m in model.named_modules():
        n = (len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
             + len(m._backward_pre_hooks))
        if n:
            counts[name or "<model>"] = n
    return counts


class TinyNet(SmallConvNet):
    """The hidden checks' seeded CNN (any input size; ``target`` optionally followed by an
    in-place ReLU), plus its head as a pure function for computing gradients independently."""

    def head(self, a: torch.Tensor) -> torch.Tensor:
        """Everything after the target layer, without in-place ops."""
        return self.fc(self.pool(torch.relu(a)).flatten(1))



# --------------------------------------------------------------------------- vs pytorch-grad-cam

@pytest.fixture(scope="module")
def lenet_and_digits():
    """A LeNet trained for 60 Adam steps (lr 1e-2) on the offline digits, so that every raw
    map's range is far above the 1e-7 eps of the min-max normalisation.

    The eps is the one place where the two implementations differ: pytorch-grad-cam
    normalises before upsampling and again after, ``(x-min)/(max-min+eps)`` twice, the
    reference once, so they disagree by about eps / range. After only 30 steps at lr 3e-3
    some maps have a range of 8e-4 and the difference reaches 1.2e-4."""
    torch.manual_seed(0)
    splits = load_offline_digits(seed=0)
    x, y = splits.train.tensors
    model = LeNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        idx = torch.randint(0, len(x), (64,), generator=g)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().zero_grad(set_to_none=True)
    return model, splits.test.tensors[0][:16], splits.test.tensors[1][:16]


@pytest.mark.parametrize("which", ["predicted", "other"])
def test_lenet_matches_pytorch_grad_cam(lenet_and_digits, which):
    model, x, y = lenet_and_digits
    with torch.no_grad():
        pred = model(x).argmax(1)
    assert (pred == y).float().mean() > 0.5, "the briefly trained LeNet should beat chance"
    classes = pred.tolist() if which == "predicted" else [(int(p) + 3) % 10 for p in pred]

    raw = raw_maps(model, model.conv2, x, classes)
    rng = raw.flatten(1).max(1).values - raw.flatten(1).min(1).values
    # a non-zero map needs a range far above eps, or the two normalisations differ
    assert ((rng == 0) | (rng > 1e-2)).all(), rng
    assert (rng > 1e-2).sum() >= 8, "most maps must be non-trivial for the comparison to mean much"

    expected = library_gradcam(model, model.conv2, x, classes)
    got = ref.grad_cam(model, model.conv2, x, classes)
    assert got.shape == expected.shape == (16, 28, 28)
    per_image = (got - expected).abs().flatten(1).max(1).values
    diff = per_image.max().item()
    assert diff <= ATOL_VS_LIBRARY, f"max |ref - pytorch-grad-cam| = {diff:.3g}"
    # what is left is the eps term only: |difference| ≲ eps / range (plus float32 rounding)
    bound = 2 * ref.EPS / rng.clamp_min(1e-12) + 1e-6
    assert (per_image[rng > 0] <= bound[rng > 0]).all(), (per_image, rng)
    assert (per_image[rng == 0] == 0).all()
    assert all(p.grad is None for p in model.parameters())
    assert hook_counts(model) == {}


def test_resnet18_matches_pytorch_grad_cam():
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(weights=None).eval()
    x = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    layer = model.layer4[-1]
    with torch.no_grad():
        classes = model(x).argmax(1).tolist()

    expected = library_gradcam(model, layer, x, classes)
    acts, grads, logits = ref.capture_activations_and_gradients(model, layer, x, classes)
    assert acts.shape == (4, 512, 7, 7)
    assert logits.argmax(1).tolist() == classes
    raw = ref.gradcam_map(acts, ref.gradcam_weights(grads))
    rng = raw.flatten(1).max(1).values - raw.flatten(1).min(1).values
    # measured ≈ 0.15 for this seed: well above eps, so no per-image exclusion is needed
    assert (rng > 1e-2).all(), rng
    got = ref.upsample_and_normalize(raw, x.shape[-2:])
    assert got.shape == expected.shape == (4, 224, 224)
    diff = (got - expected).abs().max().item()
    assert diff <= ATOL_VS_LIBRARY, f"max |ref - pytorch-grad-cam| = {diff:.3g}"
    torch.testing.assert_close(ref.grad_cam(model, layer, x, classes), got)
    assert all(p.grad is None for p in model.parameters())
    assert hook_counts(model) == {}


# --------------------------------------------------------------------------- properties

def test_shape_and_range_for_a_non_square_input():
    model = TinyNet().eval()
    x = images(n=3, h=11, w=17)
    cam = ref.grad_cam(model, model.target, x)
    assert cam.shape == (3, 11, 17)
    assert cam.dtype == torch.float32
    assert torch.isfinite(cam).all()
    assert cam.min() >= 0.0 and cam.max() <= 1.0
    raw = raw_maps(model, model.target, x, None)
    for i in range(3):
        assert cam[i].min() == 0.0
        if raw[i].max() > raw[i].min():
            assert cam[i].max() >= 1.0 - 1e-5


def test_class_idx_forms_agree():
    model = TinyNet().eval()
    x = images()
    with torch.no_grad():
        pred = model(x).argmax(1)
    torch.testing.assert_close(ref.grad_cam(model, model.target, x),
                               ref.grad_cam(model, model.target, x, pred.tolist()))
    torch.testing.assert_close(ref.grad_cam(model, model.target, x, 2),
                               ref.grad_cam(model, model.target, x, torch.tensor([2, 2, 2, 2])))
    assert not torch.allclose(ref.grad_cam(model, model.target, x, 0),
                              ref.grad_cam(model, model.target, x, 1))


def test_all_zero_map_stays_zero():
    out = ref.upsample_and_normalize(torch.zeros(2, 4, 4), (9, 7))
    assert out.shape == (2, 9, 7)
    assert torch.equal(out, torch.zeros(2, 9, 7))

    # A class with no positive evidence: the target layer outputs 1 everywhere and class 0
    # has only negative weights, so every α_k < 0 and ReLU(Σ α_k A^k) = 0.
    model = TinyNet().eval()
    with torch.no_grad():
        model.target.weight.zero_()
        model.target.bias.fill_(1.0)
        model.fc.weight[0] = -model.fc.weight[0].abs() - 0.1
    x = images()
    acts, grads, _ = ref.capture_activations_and_gradients(model, model.target, x, 0)
    assert (acts == 1).all() and (ref.gradcam_weights(grads) < 0).all()
    cam = ref.grad_cam(model, model.target, x, 0)
    assert torch.isfinite(cam).all()
    assert torch.equal(cam, torch.zeros_like(cam))


def test_no_hooks_and_no_parameter_gradients_left():
    model = TinyNet().eval()
    x = images()
    before = hook_counts(model)
    assert before == {}
    cam = ref.grad_cam(model, model.target, x)
    assert cam.max() > 0
    assert hook_counts(model) == {}
    assert all(p.grad is None for p in model.parameters())
    assert x.grad is None and not x.requires_grad
    assert not cam.requires_grad


def test_no_hooks_left_after_a_forward_that_raises():
    model = TinyNet(fail_after_target=True).eval()
    with pytest.raises(RuntimeError, match="on purpose"):
        ref.grad_cam(model, model.target, images())
    assert hook_counts(model) == {}
    model = TinyNet().eval()
    with pytest.raises(ValueError):
        ref.grad_cam(model, model.target, images(), [0, 1])  # raised after the forward
    assert hook_counts(model) == {}


def test_works_inside_no_grad():
    model = TinyNet().eval()
    x = images()
    expected = ref.grad_cam(model, model.target, x)
    with torch.no_grad():
        got = ref.grad_cam(model, model.target, x)
        assert not torch.is_grad_enabled()
    torch.testing.assert_close(got, expected)
    assert got.max() > 0
    assert all(p.grad is None for p in model.parameters())


def test_inference_mode_is_refused_with_a_clear_message():
    model = TinyNet().eval()
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match="inference_mode"):
            ref.grad_cam(model, model.target, images())
    assert hook_counts(model) == {}


def test_a_layer_that_is_not_a_submodule():
    model = LeNet().eval()
    with pytest.raises(ValueError, match="not a submodule") as info:
        ref.grad_cam(model, copy.deepcopy(model.conv2), torch.rand(2, 1, 28, 28))
    assert "'conv1'" in str(info.value) and "'conv2'" in str(info.value)
    assert hook_counts(model) == {}


def test_a_non_conv_layer():
    model = LeNet().eval()
    with pytest.raises(ValueError, match="convolutional"):
        ref.grad_cam(model, model.fc3, torch.rand(2, 1, 28, 28))
    assert hook_counts(model) == {}


def test_class_idx_of_the_wrong_length():
    model = TinyNet().eval()
    with pytest.raises(ValueError, match="3 entries but the batch has 4"):
        ref.grad_cam(model, model.target, images(n=4), [0, 1, 2])


@pytest.mark.parametrize("bad", [5, -1, [0, 1, 2, 5]])
def test_class_idx_out_of_range(bad):
    model = TinyNet(num_classes=5).eval()
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        ref.grad_cam(model, model.target, images(n=4), bad)


def test_frozen_parameters_still_give_a_map():
    model = TinyNet().eval()
    x = images()
    expected = ref.grad_cam(model, model.target, x)
    for p in model.parameters():
        p.requires_grad_(False)
    got = ref.grad_cam(model, model.target, x)
    assert got.flatten(1).max(1).values.max() > 0
    torch.testing.assert_close(got, expected)
    assert all(p.grad is None for p in model.parameters())


def test_inplace_relu_after_the_layer():
    model = TinyNet(inplace=True).eval()
    x = images()
    classes = [3, 0, 4, 1]
    acts, grads, logits = ref.capture_activations_and_gradients(model, model.target, x, classes)

    # independently: run the model in two pieces with the layer's output as a leaf tensor
    with torch.no_grad():
        pre = model.target(model.act1(model.conv1(x)))
    assert (pre < 0).any(), "the check needs negative pre-ReLU values to tell them apart"
    leaf = pre.clone().requires_grad_(True)
    out = model.head(leaf)
    score = out.gather(1, torch.tensor(classes)[:, None]).sum()
    (expected_grads,) = torch.autograd.grad(score, leaf)

    torch.testing.assert_close(acts, pre)  # signed: not the ReLU'd tensor
    torch.testing.assert_close(grads, expected_grads)
    torch.testing.assert_close(logits, out.detach())
    assert (expected_grads[pre < 0] == 0).all() and (expected_grads != 0).any()

    # and the whole map equals that of the same network without the in-place ReLU
    plain = TinyNet(inplace=False).eval()
    torch.testing.assert_close(ref.grad_cam(model, model.target, x, classes),
                               ref.grad_cam(plain, plain.target, x, classes))
    assert hook_counts(model) == {}
    assert all(p.grad is None for p in model.parameters())


def test_weights_and_map_match_the_equations():
    g = torch.Generator().manual_seed(0)
    acts = torch.randn(2, 3, 4, 5, generator=g)
    grads = torch.randn(2, 3, 4, 5, generator=g)
    w = ref.gradcam_weights(grads)
    assert w.shape == (2, 3)
    np.testing.assert_allclose(w.numpy(), grads.numpy().mean(axis=(2, 3)), rtol=1e-6, atol=1e-7)
    m = ref.gradcam_map(acts, w)
    expected = np.maximum(np.einsum("nk,nkhw->nhw", w.numpy(), acts.numpy()), 0)
    np.testing.assert_allclose(m.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert (m == 0).any() and (m > 0).any()
