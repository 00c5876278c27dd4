"""What the hidden checks of every chapter share: strict tensor comparison, hook counting, and
the refusal of the helper package's finished answers in the chapter that asks for them."""

from __future__ import annotations

import functools
import gc
import importlib
import os
import threading
import types

import torch

from gradcam_course.instructor.layout import PACKAGE_ANSWERS


def _refused(*args, **kwargs):
    # Runs as the code of a package function, with that module's globals: builtins and literals
    # only. The message carries layout.PACKAGE_ANSWER_REFUSED (gradcam-course grade flags on it).
    frame = __import__("sys")._getframe(0)
    qualname = f"{frame.f_globals['__name__']}.{frame.f_code.co_name}"
    raise AssertionError(f"Your function uses {qualname}, the helper package's answer to this "
                         "exercise: write your own (gradcam-course grade flags this).")


_SWAP_LOCK = threading.RLock()
_swapped: dict = {}  # function → its own code, while refused (nested calls share one swap)


def _package_answers(chapter: str) -> list:
    """Every live function whose code is one of the chapter's package answers, recognised by the
    file and name of its code: the module's own function, an alias, a decoy's hidden original,
    and copies (``types.FunctionType(f.__code__, …)``, ``importlib.reload``, ``runpy``)."""
    wanted = set()
    for qualname in PACKAGE_ANSWERS.get(chapter, {}).values():
        module_name, name = qualname.rsplit(".", 1)
        source = importlib.import_module(module_name).__file__
        wanted |= {(source, name), (os.path.realpath(source), name)}
    if not wanted:
        return []
    return [f for f in gc.get_objects() if type(f) is types.FunctionType  # no __class__ tricks
            and (f.__code__.co_filename, f.__code__.co_name) in wanted]


def _plain(value):
    """The result as plain containers, read while the refusal holds: a dict (or tuple) subclass
    that computes its items when they are read must compute them now."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in dict.items(value)}
    if isinstance(value, tuple) and type(value) is not tuple:
        return tuple(_plain(v) for v in tuple.__iter__(value))
    return value


def refusing_package_answers(student_function, chapter: str):
    """``student_function`` wrapped so that, while it runs, the helper package's versions of the
    chapter's answers (``PACKAGE_ANSWERS``) raise instead of answering.

    The package function's code object is swapped, so an alias (``from … import pointing_game
    as pg``), an ``importlib``/``getattr`` spelling or the package function handed in as the
    student's own are all refused; the reference, called outside the wrapper, is unaffected.
    This runs in the student's kernel: see the instructor guide for what it cannot stop.
    """
    @functools.wraps(student_function)
    def call(*args, **kwargs):
        with _SWAP_LOCK:
            mine = [f for f in _package_answers(chapter) if f not in _swapped]
            try:
                for f in mine:
                    code = f.__code__
                    refused = _refused.__code__.replace(co_name=code.co_name)
                    if hasattr(code, "co_qualname"):  # Python 3.11+
                        refused = refused.replace(co_qualname=code.co_qualname)
                    _swapped[f] = code
                    f.__code__ = refused
                return _plain(student_function(*args, **kwargs))
            finally:
                for f in reversed(mine):
                    if f in _swapped:
                        f.__code__ = _swapped.pop(f)

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
