"""The hidden checks of chapter 1, run directly (no nbgrader): the reference passes all of
them, each wrong answer fails exactly the checks of its exercise, each alternative passes."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks import ch01_mnist_lenet as checks
from autograder.reference import gradcam as ref
import variants

# grade_id of a test cell → (check function, the student function it tests)
CELLS = {
    "test_capture_values": (checks.check_capture_values, "capture_activations_and_gradients"),
    "test_capture_class_idx": (checks.check_capture_class_idx, "capture_activations_and_gradients"),
    "test_capture_inplace": (checks.check_capture_inplace, "capture_activations_and_gradients"),
    "test_capture_hygiene": (checks.check_capture_hygiene, "capture_activations_and_gradients"),
    "test_weights": (checks.check_weights, "gradcam_weights"),
    "test_map": (checks.check_map, "gradcam_map"),
    "test_upsample_values": (checks.check_upsample_values, "upsample_and_normalize"),
    "test_upsample_edge_cases": (checks.check_upsample_edge_cases, "upsample_and_normalize"),
}


def student_namespace(replacements: dict[str, str]) -> dict:
    ns = {"torch": torch, "F": F, "nn": nn,
          "capture_activations_and_gradients": ref.capture_activations_and_gradients,
          "gradcam_weights": ref.gradcam_weights, "gradcam_map": ref.gradcam_map,
          "upsample_and_normalize": ref.upsample_and_normalize}
    for code in replacements.values():
        variants.define(code, ns)
    return ns


def failing_cells(ns: dict) -> set[str]:
    failed = set()
    for cell, (check, name) in CELLS.items():
        try:
            check(ns[name])
        except AssertionError:
            failed.add(cell)
    return failed


def test_reference_passes_every_check():
    assert failing_cells(student_namespace({})) == set()


@pytest.mark.parametrize("name", sorted(variants.WRONG))
def test_wrong_answer_fails_only_its_exercise(name):
    replacements, exercise, must_fail = variants.WRONG[name]
    failed = failing_cells(student_namespace(replacements))
    assert must_fail in failed
    assert failed <= variants.EXERCISES[exercise], f"other exercises lost points: {failed}"


@pytest.mark.parametrize("name", sorted(variants.CORRECT))
def test_correct_alternative_passes(name):
    assert failing_cells(student_namespace(variants.CORRECT[name])) == set()


def test_failure_messages_point_at_the_mistake():
    ns = student_namespace(variants.WRONG["no_relu"][0])
    with pytest.raises(AssertionError, match="ReLU"):
        checks.check_map(ns["gradcam_map"])
    ns = student_namespace(variants.WRONG["hook_left_registered"][0])
    with pytest.raises(AssertionError, match="handle.remove"):
        checks.check_capture_hygiene(ns["capture_activations_and_gradients"])


def test_a_lying_return_value_is_not_accepted():
    """An object that claims equality with anything must not pass as a tensor."""

    class AlwaysEqual(torch.Tensor):
        def __eq__(self, other):
            return True

    def weights(gradients):
        return torch.zeros(gradients.shape[:2]).as_subclass(AlwaysEqual)

    with pytest.raises(AssertionError, match="torch.Tensor"):
        checks.check_weights(weights)
