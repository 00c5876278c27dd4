"""The course's layout, known in this one module: the root, each chapter's paths, module names.

A chapter has one name, its folder's (``03_resnet_covid_ct``): ``solutions/<name>/``,
``notebooks/<name>/``, ``submitted/<student>/<name>/`` and the book page ``book/chapters/<name>``.
Python modules cannot start with a digit, so the chapter's modules take the same name with
``ch`` in front: ``autograder/reference/ch03_resnet_covid_ct.py`` (reference solutions),
``autograder/checks/ch03_resnet_covid_ct.py`` (hidden checks), ``tests/variants/ch03_resnet_covid_ct.py``
(student answers, right and wrong, run against the checks by ``tests/test_checks.py``) and, where a
chapter's reference has tests of its own, ``tests/test_reference_ch01_mnist_lenet.py`` and the like. The helper package's dataset module is
the one the chapter's name ends with (``mnist``, ``imagenet``, ``ct``, ``pcam``; chapter 5
reuses ``ct``).

The course root is the folder holding ``autograder/checks/``: the repository, a test's
temporary course, or the grader's scratch copy of the checks. ``GRADCAM_COURSE_ROOT`` names it
explicitly (``autograder/nbgrader_config.py`` sets it for nbgrader's kernels).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

#: The course folder, for code that runs outside it (nbgrader's kernels, a grader's scratch).
ROOT_ENV = "GRADCAM_COURSE_ROOT"
#: The chapter a kernel grades, set by ``gradcam-course grade`` (its scratch folder has no name).
CHAPTER_ENV = "GRADCAM_COURSE_CHAPTER"

#: Functions of the helper package that are an exercise's answer in one chapter: later chapters
#: use the finished versions, but in the chapter that asks for them a submission that calls or
#: imports them loses the exercise's points (the checks refuse them) and is flagged.
PACKAGE_ANSWERS = MappingProxyType({  # read-only: a submission cannot empty it for the checks
    "03_resnet_covid_ct": MappingProxyType({
        "pointing_game": "gradcam_course.metrics.pointing_game",
        "energy_pointing_game": "gradcam_course.metrics.energy_pointing_game"}),
    "04_pcam_histology": MappingProxyType({
        "insertion_deletion": "gradcam_course.metrics.insertion_deletion"}),
})
#: The words a refused call raises with; the grader flags a test cell whose error carries them.
PACKAGE_ANSWER_REFUSED = "the helper package's answer to this exercise"


def module_name(chapter: str) -> str:
    """``01_mnist_lenet`` → ``ch01_mnist_lenet``: the chapter's name as a Python module."""
    return f"ch{chapter}"


def is_course_root(path: Path) -> bool:
    return (path / "autograder" / "checks").is_dir()


def find_root(start: str | os.PathLike | None = None, from_env: bool = True) -> Path:
    """``GRADCAM_COURSE_ROOT`` if set (and ``from_env``), else the first folder at or above
    ``start`` (default: the working directory) that holds ``autograder/checks/``. The command
    line passes ``from_env=False``: it acts on the course it is run in, whatever a shell exported."""
    env = os.environ.get(ROOT_ENV) if from_env else None
    if env:
        root = Path(env).resolve()
        if not is_course_root(root):
            raise FileNotFoundError(f"{ROOT_ENV}={env} does not contain autograder/checks/.")
        return root
    here = Path(start or os.getcwd()).resolve()
    for path in (here, *here.parents):
        if is_course_root(path):
            return path
    raise FileNotFoundError(
        f"No course folder (one holding autograder/checks/) at or above {here}: run this from "
        f"the course repository, or set {ROOT_ENV} to it. Hidden tests run only in the "
        f"instructor's copy of the course.")


@dataclass(frozen=True)
class Course:
    """Every path of the course folder at ``root``."""

    root: Path

    @classmethod
    def find(cls, start: str | os.PathLike | None = None, from_env: bool = True) -> "Course":
        return cls(find_root(start, from_env))

    def chapters(self) -> list[str]:
        """The chapters, in order: every ``solutions/<name>/`` that holds ``<name>.py``."""
        folder = self.root / "solutions"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / f"{p.name}.py").is_file())

    def require_chapter(self, chapter: str) -> str:
        if chapter not in self.chapters():
            known = ", ".join(self.chapters()) or "none"
            raise FileNotFoundError(f"No chapter {chapter!r} in {self.root / 'solutions'} "
                                    f"(chapters: {known}).")
        return chapter

    # the author's source and nbgrader's release
    def source_py(self, chapter: str) -> Path:
        return self.root / "solutions" / chapter / f"{chapter}.py"

    def source(self, chapter: str) -> Path:
        return self.root / "solutions" / chapter / f"{chapter}.ipynb"

    def release(self, chapter: str) -> Path:
        return self.root / "notebooks" / chapter / f"{chapter}.ipynb"

    def release_py(self, chapter: str) -> Path:
        return self.release(chapter).with_suffix(".py")

    def book_page(self, chapter: str) -> Path:
        return self.root / "book" / "chapters" / f"{chapter}.ipynb"

    # grading
    @property
    def autograder(self) -> Path:
        return self.root / "autograder"

    @property
    def submitted_dir(self) -> Path:
        return self.root / "submitted"

    def submitted(self, student: str, chapter: str) -> Path:
        return self.submitted_dir / student / chapter / f"{chapter}.ipynb"

    def autograded(self, student: str, chapter: str) -> Path:
        return self.root / "autograded" / student / chapter / f"{chapter}.ipynb"

    def grading_record(self, student: str, chapter: str) -> Path:
        """What ``gradcam-course grade`` decided for one submission, written as soon as it knew."""
        return self.root / "autograded" / student / chapter / "grading.json"

    def feedback(self, student: str, chapter: str) -> Path:
        return self.root / "feedback" / student / chapter / f"{chapter}.html"

    @property
    def gradebook(self) -> Path:
        return self.root / "gradebook.db"

    def grades_csv(self, chapter: str) -> Path:
        return self.root / f"grades_{chapter}.csv"

    def report_dir(self, chapter: str) -> Path:
        return self.root / "reports" / chapter

    # the chapter's Python modules
    def checks_module(self, chapter: str) -> str:
        return f"autograder.checks.{module_name(chapter)}"

    def reference_module(self, chapter: str) -> str:
        return f"autograder.reference.{module_name(chapter)}"
