"""pytest for the notebooks themselves (nbval, ``--nbval-lax``: a cell passes when it runs
without an error; outputs are not compared).

``pytest`` with no arguments runs ``tests/`` and every chapter notebook (``testpaths`` in
pyproject.toml); ``pytest solutions/03_resnet_covid_ct/03_resnet_covid_ct.ipynb`` checks the one
notebook an instructor edited. The notebooks run in fast mode (``GRADCAM_COURSE_FAST=1``: tiny
training, as under nbgrader), offline unless ``GRADCAM_COURSE_DATA`` says otherwise:
- a source notebook (``solutions/``) runs every cell, its solutions and hidden tests included;
- a student notebook (``notebooks/``) runs up to its first exercise (the first cell nbgrader
  marks as a solution), not included: from there on the cells need the student's answers. The
  cells from it on are reported as deselected.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
#: Set for a notebook's kernel (fast, offline unless told otherwise, no inherited grading state).
NOTEBOOK_ENV = ("GRADCAM_COURSE_FAST", "GRADCAM_COURSE_DATA", "MPLBACKEND", "GRADCAM_COURSE_ROOT",
                "GRADCAM_COURSE_CHAPTER", "NBGRADER_EXECUTION")


def _is_notebook_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell"


def _is_student_notebook(path: Path) -> bool:
    try:
        return path.resolve().relative_to(ROOT).parts[0] == "notebooks"
    except ValueError:
        return False


def pytest_collection_modifyitems(config, items):
    keep, from_exercise, reached = [], [], set()
    for item in items:
        if _is_notebook_cell(item) and _is_student_notebook(item.path):
            if item.path not in reached and item.cell.metadata.get("nbgrader", {}).get("solution"):
                reached.add(item.path)
            if item.path in reached:
                from_exercise.append(item)
                continue
        keep.append(item)
    if from_exercise:
        config.hook.pytest_deselected(items=from_exercise)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """A notebook's kernel starts at its first cell's setup and copies this process's
    environment then: fast mode for it, and nothing left behind for the other tests."""
    if not _is_notebook_cell(item):
        yield
        return
    saved = {k: os.environ.get(k) for k in NOTEBOOK_ENV}
    for name in ("GRADCAM_COURSE_ROOT", "GRADCAM_COURSE_CHAPTER", "NBGRADER_EXECUTION"):
        os.environ.pop(name, None)  # the notebook's own folder says which course and chapter
    os.environ.update(GRADCAM_COURSE_FAST="1", MPLBACKEND="Agg")
    os.environ.setdefault("GRADCAM_COURSE_DATA", "offline")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
