"""What the hidden checks of every chapter share: strict tensor comparison and the pairing of
a probe (run where the student's code runs) with its verdict (run here, with the reference)."""

from __future__ import annotations

import functools

import torch

from autograder.probes import plain


def paired(probe):
    """Decorate a verdict ``verdict(seen)`` into the check ``check(student_function)``.

    Called directly (plain ``nbgrader autograde``, the tests) the check runs the probe here and
    sends what it saw through the same plain-data round trip as ``gradcam-course grade``, which
    instead runs ``check.probe`` in the student's sandboxed kernel and ``check.verdict`` in the
    grader, so both paths decide on exactly the same data.
    """
    def wrap(verdict):
        @functools.wraps(verdict)
        def check(student_function):
            return verdict(plain.loads(plain.dumps(probe(student_function))))

        check.probe, check.verdict = probe, verdict
        return check

    return wrap


def assert_tensor(name, got, expected, atol=1e-5, hint=""):
    """A real torch.Tensor (not an array, not a subclass), same shape, finite, close."""
    assert type(got) is torch.Tensor, f"{name} must be a torch.Tensor, got {_type_name(got)}."
    assert tuple(got.shape) == tuple(expected.shape), (
        f"{name} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}. {hint}")
    got = got.detach().float().cpu()
    assert bool(torch.isfinite(got).all()), f"{name} contains NaN or inf. {hint}"
    diff = float((got - expected.detach().float().cpu()).abs().max())
    assert diff <= atol, f"{name} differs from the reference by {diff:.3g} (max abs). {hint}"


def _type_name(value) -> str:
    if isinstance(value, plain.Other):
        return value.type_name.rsplit(".", 1)[-1]
    return type(value).__name__
