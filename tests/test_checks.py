"""The hidden checks of every chapter, run directly (no nbgrader).

Which check grades which test cell is read from the source notebook's hidden tests, and the
student's functions are the notebook's own solution cells, with one cell swapped for a variant:
the solution passes every check, each wrong answer fails checks of its own exercise only, and
each correct alternative passes all of them.
"""

import importlib
import re
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

import variants
from course_files import grade_id, solution_code
from gradcam_course.instructor.layout import Course

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {chapter: variants.of(chapter) for chapter in Course(ROOT).chapters()}
# What the chapters import before their solution cells.
IMPORTS = """
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gradcam_course.ct import CLASSES
from gradcam_course.metrics import score_signs
from gradcam_course.plotting import show_cam
"""
HIDDEN_CALL = re.compile(r'load_checks\(\)\.(\w+)\((\w+)\)')


def source(chapter):
    return nbformat.read(ROOT / "solutions" / chapter / f"{chapter}.ipynb", as_version=4)


def graded_cells(chapter) -> dict[str, tuple]:
    """grade_id → (check function, name of the student function it is called with)."""
    cells = {}
    checks = importlib.import_module(Course(ROOT).checks_module(chapter))
    for cell in source(chapter).cells:
        for check, function in HIDDEN_CALL.findall(cell.source):
            cells[grade_id(cell)] = (getattr(checks, check), function)
    return cells


def student_namespace(chapter, replacements: dict[str, str]) -> dict:
    ns: dict = {}
    exec(IMPORTS, ns)
    for gid, code in solution_code(source(chapter)).items():
        exec(compile(replacements.get(gid, code), f"<{gid}>", "exec"), ns)
    return ns


def failing_cells(chapter, ns) -> set[str]:
    failed = set()
    for cell, (check, function) in graded_cells(chapter).items():
        try:
            check(ns[function])
        except Exception:  # in a graded cell any error scores 0
            failed.add(cell)
    return failed


def cases(kind):
    return [(chapter, name) for chapter, v in VARIANTS.items() for name in sorted(getattr(v, kind))]


@pytest.mark.parametrize("chapter", VARIANTS)
def test_every_hidden_test_calls_a_check(chapter):
    graded = {grade_id(c) for c in source(chapter).cells
              if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}
    assert set(graded_cells(chapter)) == graded
    assert set().union(*VARIANTS[chapter].EXERCISES.values()) == graded


@pytest.mark.parametrize("chapter", VARIANTS)
def test_solution_passes_every_check(chapter):
    assert failing_cells(chapter, student_namespace(chapter, {})) == set()


@pytest.mark.parametrize("chapter,name", cases("WRONG"))
def test_wrong_answer_fails_only_its_exercise(chapter, name):
    v = VARIANTS[chapter]
    replacements, exercise, must_fail = v.WRONG[name]
    failed = failing_cells(chapter, student_namespace(chapter, replacements))
    assert must_fail in failed
    assert failed <= v.EXERCISES[exercise], f"other exercises lost points: {failed}"


@pytest.mark.parametrize("chapter,name", cases("CORRECT"))
def test_correct_alternative_passes(chapter, name):
    ns = student_namespace(chapter, VARIANTS[chapter].CORRECT[name])
    assert failing_cells(chapter, ns) == set()


def test_failure_messages_point_at_the_mistake():
    from autograder.checks import ch01_mnist_lenet as ch01, ch02_vgg16_imagenet as ch02

    ns = student_namespace("01_mnist_lenet", VARIANTS["01_mnist_lenet"].WRONG["no_relu"][0])
    with pytest.raises(AssertionError, match="ReLU"):
        ch01.check_map(ns["gradcam_map"])
    ns = student_namespace("01_mnist_lenet", VARIANTS["01_mnist_lenet"].WRONG["hook_left_registered"][0])
    with pytest.raises(AssertionError, match="handle.remove"):
        ch01.check_capture_hygiene(ns["capture_activations_and_gradients"])
    ns = student_namespace("02_vgg16_imagenet", VARIANTS["02_vgg16_imagenet"].WRONG["overlay_bgr"][0])
    with pytest.raises(AssertionError, match="COLOR_BGR2RGB"):
        ch02.check_overlay(ns["overlay_heatmap"])


def test_a_lying_return_value_is_not_accepted():
    """An object that claims equality with anything must not pass as a tensor."""
    from autograder.checks import ch01_mnist_lenet as checks

    class AlwaysEqual(torch.Tensor):
        def __eq__(self, other):
            return True

    def weights(gradients):
        return torch.zeros(gradients.shape[:2]).as_subclass(AlwaysEqual)

    with pytest.raises(AssertionError, match="torch.Tensor"):
        checks.check_weights(weights)


def test_vgg_surgery_matches_torchvision_vgg16_layout():
    """The reference wrapper on the real VGG16 architecture (untrained) gives its logits."""
    from torchvision.models import vgg16

    from autograder.reference import ch02_vgg16_imagenet as ref

    torch.manual_seed(0)
    model = vgg16(weights=None).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ref.VGGGradCAM(model)(x), model(x))
    assert isinstance(model.features[29], nn.ReLU) and isinstance(model.features[30], nn.MaxPool2d)
