"""pytest for the notebooks themselves (nbval, ``--nbval-lax``: a cell passes when it runs
without an error; outputs are not compared).

``pytest`` with no arguments runs ``tests/`` and every chapter notebook (``testpaths`` in
pyproject.toml); ``pytest solutions/03_resnet_covid_ct/03_resnet_covid_ct.ipynb`` checks the one
notebook an instructor edited. The notebooks run in fast mode (``GRADCAM_COURSE_FAST=1``: tiny
training, as under nbgrader), offline unless ``GRADCAM_COURSE_DATA`` says otherwise:
- a source notebook (``solutions/``) runs every cell, its solutions and hidden tests included;
- a student notebook (``notebooks/``) runs up to its first exercise stub, included: what comes
  after needs the student's answers. The cells after it are reported as deselected.
"""

from __future__ import annotations

import os

import pytest

STUB = "raise NotImplementedError"
NOTEBOOK_ENV = ("GRADCAM_COURSE_FAST", "GRADCAM_COURSE_DATA", "MPLBACKEND")


def _is_notebook_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell"


def pytest_collection_modifyitems(config, items):
    keep, after_stub, stubbed = [], [], set()
    for item in items:
        if _is_notebook_cell(item) and "notebooks" in item.path.parts:
            if item.path in stubbed:
                after_stub.append(item)
                continue
            if STUB in item.cell.source:
                stubbed.add(item.path)
        keep.append(item)
    if after_stub:
        config.hook.pytest_deselected(items=after_stub)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """A notebook's kernel starts at its first cell's setup and copies this process's
    environment then: fast mode for it, and nothing left behind for the other tests."""
    if not _is_notebook_cell(item):
        yield
        return
    saved = {k: os.environ.get(k) for k in NOTEBOOK_ENV}
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
