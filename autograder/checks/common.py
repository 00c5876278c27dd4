"""What the hidden checks of every chapter share: strict tensor comparison, hook counting."""

from __future__ import annotations

import functools
import importlib

import torch

from gradcam_course.instructor.layout import PACKAGE_ANSWERS


def _refused(*args, **kwargs):
    # Runs as the code of a package function, with that module's globals: builtins and literals
    # only. The message carries layout.PACKAGE_ANSWER_REFUSED (the grader flags on it).
    frame = __import__("sys")._getframe(0)
    qualname = f"{frame.f_globals['__name__']}.{frame.f_code.co_name}"
    raise AssertionError(f"Your function uses {qualname}, the helper package's answer to this "
                         "exercise: write your own (this submission is flagged for the instructor).")


def refusing_package_answers(student_function, chapter: str):
    """``student_function`` wrapped so that, while it runs, the helper package's versions of the
    chapter's answers (``PACKAGE_ANSWERS``) raise instead of answering.

    The package function's code object is swapped, so an alias (``from … import pointing_game
    as pg``), an ``importlib``/``getattr`` spelling or the package function handed in as the
    student's own are all refused; the reference, called outside the wrapper, is unaffected.
    """
    answers = [getattr(importlib.import_module(q.rsplit(".", 1)[0]), q.rsplit(".", 1)[1])
               for q in PACKAGE_ANSWERS.get(chapter, {}).values()]

    @functools.wraps(student_function)
    def call(*args, **kwargs):
        saved = [(f, f.__code__) for f in answers]
        for f, code in saved:
            f.__code__ = _refused.__code__.replace(co_name=code.co_name, co_qualname=code.co_qualname)
        try:
            return student_function(*args, **kwargs)
        finally:
            for f, code in saved:
                f.__code__ = code

    return call


def assert_tensor(name, got, expected, atol=1e-5, hint=""):
    """A real torch.Tensor (not a subclass that lies in __eq__), same shape, finite, close."""
    assert type(got) is torch.Tensor, f"{name} must be a torch.Tensor, got {type(got).__name__}."
    assert tuple(got.shape) == tuple(expected.shape), (
        f"{name} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}. {hint}")
    got = got.detach().float().cpu()
    assert bool(torch.isfinite(got).all()), f"{name} contains NaN or inf. {hint}"
    diff = float((got - expected.detach().float().cpu()).abs().max())
    assert diff <= atol, f"{name} differs from the reference by {diff:.3g} (max abs). {hint}"


def hook_count(model):
    """Hooks of every kind on every module of the model."""
    count = 0
    for m in model.modules():
        count += len(m._forward_hooks) + len(m._forward_pre_hooks)
        count += len(m._backward_hooks) + len(getattr(m, "_backward_pre_hooks", {}))
    return count
