"""Chapter 4's reference attributions against captum, pytorch-grad-cam, chapter 1's Grad-CAM and
one-forward-per-perturbation loops: the hidden tests compare students' answers with these."""

import pytest
import torch
from torch import nn

from autograder.reference import ch01_mnist_lenet as ref1
from autograder.reference import ch04_pcam_histology as ref
from gradcam_course.pcam import PatchCNN


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = PatchCNN(widths=(4, 6, 8, 8)).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for bn in (b for b in m.modules() if isinstance(b, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
    return m


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


class TwoLogits(nn.Module):
    """(−z, z): a 2-class model whose class-c logit is chapter 4's score for class c."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        z = self.model(x)
        return torch.cat([-z, z], dim=1)


def signed(model, sign):
    return lambda x: sign * model(x)[:, 0]


@pytest.mark.parametrize("target", [None, 0, 1, [1, 0, 1]])
def test_binary_gradcam_is_chapter_1_gradcam_of_the_two_logit_model(model, images, target):
    got = ref.binary_gradcam(model, model.features[-1], images, target)
    logits = model(images)
    idx = (logits[:, 0] > 0).long() if target is None else target
    want = ref1.grad_cam(TwoLogits(model), model.features[-1], images, idx)
    assert got.shape == (3, 32, 32) and torch.allclose(got, want, atol=1e-6)


def test_binary_gradcam_matches_pytorch_grad_cam(model, images):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

    targets = [1, 0, 1]
    with GradCAM(model=model, target_layers=[model.features[-1]]) as cam:
        theirs = torch.from_numpy(cam(images, targets=[BinaryClassifierOutputTarget(t) for t in targets]))
    ours = ref.binary_gradcam(model, model.features[-1], images, targets)
    # both divide by (max − min + 1e-7); this untrained model's maps peak near 1e-3, so the eps
    # alone moves values by ~1e-4
    assert (ours - theirs).abs().max() < 5e-4


@pytest.mark.parametrize("target", [0, 1])
def test_saliency_matches_captum(model, images, target):
    from captum.attr import Saliency

    raw = Saliency(signed(model, 1 if target else -1)).attribute(images.clone(), abs=True)
    want = ref._minmax(raw.amax(dim=1))
    assert torch.allclose(ref.saliency_map(model, images, target), want, atol=1e-6)


@pytest.mark.parametrize("patch,stride,baseline", [(8, 4, 0.0), (7, 3, 0.5), (32, 32, 0.2)])
@pytest.mark.parametrize("target", [0, 1])
def test_occlusion_matches_captum(model, images, patch, stride, baseline, target):
    from captum.attr import Occlusion

    want = Occlusion(signed(model, 1 if target else -1)).attribute(
        images, sliding_window_shapes=(3, patch, patch), strides=(3, stride, stride),
        baselines=baseline)[:, 0]
    got = ref.occlusion_sensitivity(model, images, patch, stride, baseline, target, batch_size=16)
    assert got.shape == (3, 32, 32) and torch.allclose(got, want, atol=1e-5)


def test_occlusion_equals_one_forward_per_window(model, images):
    patch, stride, n = 8, 8, len(images)
    got = ref.occlusion_sensitivity(model, images, patch, stride, target=1)
    with torch.no_grad():
        base = model(images)[:, 0]
        for y in range(0, 32 - patch + 1, stride):
            for x in range(0, 32 - patch + 1, stride):
                occluded = images.clone()
                occluded[:, :, y:y + patch, x:x + patch] = 0
                drop = base - model(occluded)[:, 0]
                assert torch.allclose(got[:, y:y + patch, x:x + patch],
                                      drop.view(n, 1, 1).expand(n, patch, patch), atol=1e-5)


@pytest.mark.parametrize("baseline", [None, 0.5, "noise"])
@pytest.mark.parametrize("target", [0, 1])
def test_integrated_gradients_matches_captum_and_is_complete(model, images, baseline, target):
    from captum.attr import IntegratedGradients

    base = torch.rand(images.shape, generator=torch.Generator().manual_seed(5)) \
        if baseline == "noise" else baseline
    sign = 1 if target else -1
    got = ref.integrated_gradients(model, images, base, steps=64, target=target, batch_size=40)
    want = IntegratedGradients(signed(model, sign)).attribute(
        images, baselines=0.0 if base is None else base, n_steps=64, method="riemann_middle")
    assert got.shape == images.shape and torch.allclose(got, want, atol=1e-5)
    with torch.no_grad():
        ref_images = torch.zeros_like(images) + (0.0 if base is None else base)
        gap = signed(model, sign)(images) - signed(model, sign)(ref_images)
    # completeness, up to the midpoint rule's error with 64 steps
    assert torch.allclose(got.flatten(1).sum(1), gap, rtol=0.02, atol=0.01)


def test_insertion_deletion_equals_one_forward_per_step(model, images):
    maps = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(2))
    steps = 8
    got = ref.insertion_deletion(model, images, maps, steps=steps, baseline=0.1, target=[1, 0, 1],
                                 batch_size=5)
    signs = torch.tensor([1.0, -1.0, 1.0])
    with torch.no_grad():
        for i in range(3):
            order = torch.argsort(maps[i].flatten(), descending=True, stable=True)
            for k in range(steps + 1):
                top = torch.zeros(32 * 32, dtype=torch.bool)
                top[order[:(k * 32 * 32) // steps]] = True
                top = top.view(1, 32, 32)
                inserted = torch.where(top, images[i], torch.full_like(images[i], 0.1))
                deleted = torch.where(top, torch.full_like(images[i], 0.1), images[i])
                p_ins = torch.sigmoid(signs[i] * model(inserted[None])[0, 0])
                p_del = torch.sigmoid(signs[i] * model(deleted[None])[0, 0])
                assert torch.isclose(got["insertion"][i, k], p_ins, atol=1e-5)
                assert torch.isclose(got["deletion"][i, k], p_del, atol=1e-5)
    assert torch.allclose(got["fractions"], torch.linspace(0, 1, steps + 1))
    assert torch.allclose(got["insertion_auc"], torch.trapezoid(got["insertion"], got["fractions"]))
    assert got["insertion"].shape == (3, steps + 1) and got["deletion_auc"].shape == (3,)


def test_target_must_be_zero_or_one(model, images):
    with pytest.raises(ValueError, match="0 \\(normal\\) or 1"):
        ref.saliency_map(model, images, target=2)
    with pytest.raises(ValueError, match="one logit per image"):
        ref.saliency_map(TwoLogits(model), images)
