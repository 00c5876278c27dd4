"""What the probes of every chapter share: hook counting, "did it raise", and the refusal of
the helper package's finished answers in the chapter that asks for them. All of it runs where
the student's code runs, so it observes; it decides nothing."""

from __future__ import annotations

import functools
import gc
import importlib
import os
import threading
import types

from gradcam_course.instructor.layout import PACKAGE_ANSWERS


def hook_count(model) -> int:
    """Hooks of every kind on every module of the model."""
    count = 0
    for m in model.modules():
        count += len(m._forward_hooks) + len(m._forward_pre_hooks)
        count += len(m._backward_hooks) + len(getattr(m, "_backward_pre_hooks", {}))
    return count


def raised(call, *args, **kwargs) -> str | None:
    """The name of the exception ``call(*args, **kwargs)`` raised, or None."""
    try:
        call(*args, **kwargs)
    except Exception as err:  # the verdict decides which ones were expected
        return type(err).__name__
    return None


def attempt(call, *args, **kwargs) -> dict:
    """``{"value": call(*args, **kwargs)}``, or ``{"error": "<type>: <message>"}`` if it raised
    (message cut to 300 characters): the verdict words what the failure means."""
    try:
        return {"value": call(*args, **kwargs)}
    except Exception as err:  # noqa: BLE001 - reported to the verdict, which decides
        return {"error": f"{type(err).__name__}: {str(err)[:300]}"}


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
    student's own are all refused. This is the unhardened path's defence (plain ``nbgrader
    autograde``); under ``gradcam-course grade`` the sandbox's copy of the package does not
    contain those answers at all.
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
