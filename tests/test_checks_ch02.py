"""The hidden checks of chapter 2, run directly: the reference passes, each wrong answer fails
its own exercise only, each correct alternative passes."""

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import variants_ch02 as variants
from autograder.checks import ch02_vgg16_imagenet as checks
from autograder.reference import vgg as ref

CELLS = {
    "test_vgg_logits": (checks.check_vgg_logits, "VGGGradCAM"),
    "test_vgg_gradients": (checks.check_vgg_gradients, "VGGGradCAM"),
    "test_overlay": (checks.check_overlay, "overlay_heatmap"),
    "test_counterfactual": (checks.check_counterfactual, "counterfactual_map"),
    "test_guided_backprop": (checks.check_guided_backprop, "guided_backprop"),
    "test_guided_gradcam": (checks.check_guided_gradcam, "guided_gradcam"),
}


def student_namespace(replacements):
    ns = {"torch": torch, "nn": nn, "np": np, "cv2": cv2,
          "VGGGradCAM": ref.VGGGradCAM, "overlay_heatmap": ref.overlay_heatmap,
          "counterfactual_map": ref.counterfactual_map, "guided_backprop": ref.guided_backprop,
          "guided_gradcam": ref.guided_gradcam}
    for code in replacements.values():
        exec(compile(code, "<variant>", "exec"), ns)
    return ns


def failing_cells(ns):
    failed = set()
    for cell, (check, name) in CELLS.items():
        try:
            check(ns[name])
        except Exception:  # in a graded cell any error scores 0
            failed.add(cell)
    return failed


def test_reference_passes_every_check():
    assert failing_cells(student_namespace({})) == set()


@pytest.mark.parametrize("name", sorted(variants.WRONG))
def test_wrong_answer_fails_only_its_exercise(name):
    replacements, exercise, must_fail = variants.WRONG[name]
    failed = failing_cells(student_namespace(replacements))
    assert must_fail in failed
    assert failed <= variants.EXERCISES[exercise], failed


@pytest.mark.parametrize("name", sorted(variants.CORRECT))
def test_correct_alternative_passes(name):
    assert failing_cells(student_namespace(variants.CORRECT[name])) == set()


def test_bgr_message_names_the_fix():
    with pytest.raises(AssertionError, match="COLOR_BGR2RGB"):
        checks.check_overlay(student_namespace(variants.WRONG["overlay_bgr"][0])["overlay_heatmap"])


def test_vgg_surgery_matches_torchvision_vgg16_layout():
    """The reference wrapper on the real VGG16 architecture (untrained) gives its logits."""
    from torchvision.models import vgg16

    torch.manual_seed(0)
    model = vgg16(weights=None).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ref.VGGGradCAM(model)(x), model(x))
    assert isinstance(model.features[29], nn.ReLU) and isinstance(model.features[30], nn.MaxPool2d)
