"""How a hidden test cell finds its chapter's checks: ``load_checks().check_...(student_function)``.

The checks and reference solutions live in ``autograder/`` at the course root, which is never
installed. A notebook runs in ``solutions/<chapter>/``, ``notebooks/<chapter>/``, nbgrader's
``autograded/<student>/<chapter>/``, a test's temporary course or the grader's scratch folder,
so the root comes from :func:`layout.find_root` and the chapter from ``GRADCAM_COURSE_CHAPTER``
(set by ``gradcam-course grade``) or else from the name of the folder the notebook runs in.

This is the unhardened path (plain ``nbgrader autograde``, the tests): a check then runs its
probe and its verdict in the student's kernel. ``gradcam-course grade`` never calls this: it
reads the hidden cells' check names and runs each verdict in its own process (see the
instructor guide's "How it stays honest").
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

from .layout import CHAPTER_ENV, Course, module_name


def current_chapter(course: Course, cwd: str | os.PathLike | None = None) -> str:
    """The chapter being run: the working folder's name when it is a chapter's (a leftover
    variable must not make one chapter load another's checks), else ``GRADCAM_COURSE_CHAPTER``
    (the grader's scratch folder has no chapter name)."""
    here = Path(cwd or os.getcwd()).resolve()
    if (course.autograder / "checks" / f"{module_name(here.name)}.py").is_file():
        return here.name
    chapter = os.environ.get(CHAPTER_ENV)
    if chapter:
        return chapter
    raise LookupError(f"Cannot tell which chapter runs in {here}: run the notebook from its "
                      f"chapter folder, or set {CHAPTER_ENV} (e.g. 01_mnist_lenet).")


def load_checks(chapter: str | None = None) -> ModuleType:
    """Import ``autograder.checks.ch<chapter>`` from the course root (the current chapter's
    when ``chapter`` is None)."""
    course = Course.find()
    chapter = chapter or current_chapter(course)
    root = str(course.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    loaded = sys.modules.get("autograder")
    if loaded is not None and Path(loaded.__file__).resolve().parent.parent != Path(root):
        # An autograder package from another course root is cached: drop it.
        for name in [n for n in sys.modules if n == "autograder" or n.startswith("autograder.")]:
            del sys.modules[name]
    return importlib.import_module(course.checks_module(chapter))
