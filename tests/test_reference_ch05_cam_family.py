"""Chapter 5's reference CAM methods against pytorch-grad-cam's, on a small seeded CNN whose target
layer is downsampled (so Score-CAM's upsampling matters) and followed by an in-place ReLU."""

import contextlib
import io

import numpy as np
import pytest
import torch
from pytorch_grad_cam import (EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM,
                              XGradCAM)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection
from torch import nn

from autograder.reference import ch05_cam_family as ref
from autograder.reference.ch01_mnist_lenet import capture_activations_and_gradients, grad_cam

PGC = {"Grad-CAM": GradCAM, "Grad-CAM++": GradCAMPlusPlus, "XGrad-CAM": XGradCAM,
       "HiResCAM": HiResCAM, "LayerCAM": LayerCAM, "Score-CAM": ScoreCAM}


class SmallCNN(nn.Module):
    def __init__(self, seed=0, classes=4):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, classes))
        self.eval()

    def forward(self, x):
        return self.head(self.features(x))


@pytest.fixture(scope="module")
def setup():
    model = SmallCNN()
    images = torch.rand(3, 3, 14, 18, generator=torch.Generator().manual_seed(1))
    classes = [2, 0, 3]
    acts, grads, _ = capture_activations_and_gradients(model, model.features[3], images, classes)
    return model, images, classes, acts, grads


def normalise(maps):
    """pytorch-grad-cam's ReLU and min-max (eps 1e-7) at the layer's resolution."""
    maps = np.maximum(np.asarray(maps, dtype=np.float32), 0)
    maps = maps - maps.min(axis=(1, 2), keepdims=True)
    return maps / (1e-7 + maps.max(axis=(1, 2), keepdims=True))


def pgc_map(method, model, images, classes, acts, grads):
    """pytorch-grad-cam's own map for the same activations, before upsampling."""
    layer = model.features[3]
    with PGC[method](model, [layer]) as cam, contextlib.redirect_stderr(io.StringIO()):
        targets = [ClassifierOutputTarget(c) for c in classes]
        return cam.get_cam_image(images, layer, targets, acts.numpy(), grads.numpy(), False)


@pytest.mark.parametrize("method", list(PGC))
def test_each_method_matches_pytorch_grad_cam(setup, method):
    model, images, classes, acts, grads = setup
    ours = ref.cam_map(method, acts, grads, model, images, classes, batch_size=5)
    theirs = pgc_map(method, model, images, classes, acts, grads)
    assert ours.shape == (3, 7, 9)
    np.testing.assert_allclose(normalise(ours.numpy()), normalise(theirs), atol=1e-4)


def test_grad_cam_of_the_family_is_chapter_one(setup):
    model, images, classes, _, _ = setup
    np.testing.assert_allclose(ref.cam("Grad-CAM", model, model.features[3], images, classes),
                               grad_cam(model, model.features[3], images, classes), atol=1e-6)


def test_whole_pipeline_matches_pytorch_grad_cam_when_no_upsampling_is_needed():
    model = SmallCNN(seed=3)
    layer = model.features[0]  # full resolution: upsampling is the identity for both
    images = torch.rand(2, 3, 10, 12, generator=torch.Generator().manual_seed(4))
    for method in ("Grad-CAM++", "HiResCAM", "LayerCAM", "Score-CAM"):
        ours = ref.cam(method, model, layer, images, [1, 2])
        with PGC[method](model, [layer]) as cam, contextlib.redirect_stderr(io.StringIO()):
            theirs = cam(images, [ClassifierOutputTarget(1), ClassifierOutputTarget(2)])
        np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-4, err_msg=method)


def test_plusplus_alpha_is_zero_where_the_gradient_is():
    acts = torch.rand(1, 2, 3, 3)
    grads = torch.zeros(1, 2, 3, 3)
    grads[0, 0, 1, 1] = 0.5
    w = ref.gradcam_plusplus_weights(acts, grads)
    assert w[0, 1] == 0 and torch.isfinite(w).all()
    s = acts[0, 0].sum()
    assert torch.isclose(w[0, 0], 0.25 / (0.5 + s * 0.125 + 1e-6) * 0.5)


def test_scorecam_batches_and_the_zero_channel_shortcut_change_nothing(setup):
    model, images, classes, acts, _ = setup
    acts = acts.clone()
    acts[0, :5] = 0  # dead channels: one forward of the zero image scores them all
    a = ref.scorecam_weights(model, images, acts, classes, batch_size=1)
    b = ref.scorecam_weights(model, images, acts, classes, batch_size=1000)
    torch.testing.assert_close(a, b)
    assert torch.allclose(a.sum(1), torch.ones(3))
    with torch.inference_mode():
        zero_score = model(torch.zeros(1, 3, 14, 18))[0, classes[0]]
    # an all-zero channel's score is that of the zero image: equal softmax weights
    assert torch.allclose(a[0, :5], a[0, :1].expand(1, 5))
    theirs = pgc_map("Score-CAM", model, images, classes, acts, torch.zeros_like(acts))
    np.testing.assert_allclose(normalise(ref.gradcam_map(acts, a).numpy()), normalise(theirs),
                               atol=1e-4)
    assert torch.isfinite(zero_score)


class BatchNormCNN(nn.Module):
    """conv → BatchNorm → ReLU twice, with running statistics far from (0, 1)."""

    def __init__(self, seed=5, classes=3):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes))
        for bn in (self.features[1], self.features[5]):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.2, 3)
            nn.init.uniform_(bn.weight, 0.5, 2)
            nn.init.uniform_(bn.bias, -0.5, 0.5)
        self.eval()

    def forward(self, x):
        return self.head(self.features(x))


class DataDependentCNN(SmallCNN):
    def forward(self, x):
        if x.sum() > 0:  # Python control flow on a tensor's value: torch.fx cannot trace it
            x = x * 1.0
        return super().forward(x)


def test_batchnorm_folding_keeps_the_logits_and_leaves_the_model_alone():
    model = BatchNormCNN()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(6))
    folded = ref.folded_for_inference(model)
    assert folded is not model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.inference_mode():
        torch.testing.assert_close(folded(images), model(images), atol=1e-5, rtol=1e-5)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 2
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    model.train()  # batch statistics: nothing fixed to fold
    assert ref.folded_for_inference(model) is model
    untraceable = DataDependentCNN()
    assert ref.folded_for_inference(untraceable) is untraceable


def test_scorecam_through_the_folded_model_matches_pytorch_grad_cam():
    model = BatchNormCNN()
    layer = model.features[5]
    images = torch.rand(2, 3, 12, 14, generator=torch.Generator().manual_seed(7))
    acts, grads, _ = capture_activations_and_gradients(model, layer, images, [0, 2])
    ours = ref.cam_map("Score-CAM", acts, grads, model, images, [0, 2], batch_size=3)
    with ScoreCAM(model, [layer]) as cam, contextlib.redirect_stderr(io.StringIO()):
        theirs = cam.get_cam_image(images, layer, [ClassifierOutputTarget(0), ClassifierOutputTarget(2)],
                                   acts.numpy(), grads.numpy(), False)
    np.testing.assert_allclose(normalise(ours.numpy()), normalise(theirs), atol=1e-4)


def test_scorecam_none_means_the_predicted_class(setup):
    model, images, _, acts, _ = setup
    predicted = model(images).argmax(1).tolist()
    torch.testing.assert_close(ref.scorecam_weights(model, images, acts, None),
                               ref.scorecam_weights(model, images, acts, predicted))


def test_eigencam_is_pytorch_grad_cams_projection_up_to_a_sign_we_fix(setup):
    _, _, _, acts, _ = setup
    ours = ref.eigencam_map(acts)
    theirs = torch.from_numpy(get_2d_projection(acts.numpy()))
    for o, t, a in zip(ours, theirs, acts):
        sign = 1.0 if (o * t).sum() >= 0 else -1.0
        torch.testing.assert_close(o, sign * t, atol=1e-4, rtol=1e-4)
        # our sign: positively correlated with the channel-summed activation
        s = a.sum(0)
        assert ((o - o.mean()) * (s - s.mean())).sum() > 0
    flipped = ref.eigencam_map(-acts)  # the same principal axis, the opposite correlation
    assert ((flipped * (-acts).sum(1)).sum(dim=(1, 2)) > 0).all()


def test_eigencam_end_to_end_is_pytorch_grad_cams_map_or_its_inverted_twin():
    model = SmallCNN(seed=5)
    layer = model.features[0]  # full resolution: no upsampling on either side
    images = torch.rand(4, 3, 9, 11, generator=torch.Generator().manual_seed(6))
    acts, _, _ = capture_activations_and_gradients(model, layer, images)
    raw = ref.eigencam_map(acts)
    ours, inverted = ref.finish(raw, (9, 11)), ref.finish(-raw, (9, 11))
    with EigenCAM(model, [layer]) as cam:
        theirs = torch.from_numpy(cam(images, None))
    torch.testing.assert_close(ref.cam("EigenCAM", model, layer, images), ours)
    for o, i, t in zip(ours, inverted, theirs):
        assert min(float((o - t).abs().max()), float((i - t).abs().max())) < 1e-4


def test_bad_shapes_say_what_is_expected():
    with pytest.raises(ValueError, match="capture_activations_and_gradients"):
        ref.hirescam_map(torch.rand(1, 2, 3, 3), torch.rand(1, 2, 3))
    with pytest.raises(ValueError, match="unknown method"):
        ref.cam_map("Ablation-CAM", torch.rand(1, 2, 3, 3))
