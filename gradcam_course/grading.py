"""How graded notebooks find the instructor's hidden checks.

The checks and reference solutions live in ``autograder/`` at the course root, which is
never installed. A notebook runs in ``solutions/<chapter>/``, ``notebooks/<chapter>/``,
nbgrader's ``autograded/<student>/<chapter>/`` or a test's temporary course, so a fixed
relative path breaks somewhere: the root comes from ``GRADCAM_COURSE_ROOT`` (set by
``autograder/nbgrader_config.py``), else from walking up to the folder holding ``autograder/``.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

ROOT_ENV = "GRADCAM_COURSE_ROOT"


def _is_course_root(path: Path) -> bool:
    return (path / "autograder" / "checks").is_dir() and (path / "autograder" / "reference").is_dir()


def course_root(start: str | os.PathLike | None = None) -> Path:
    env = os.environ.get(ROOT_ENV)
    if env:
        root = Path(env).resolve()
        if not _is_course_root(root):
            raise FileNotFoundError(f"{ROOT_ENV}={env} does not contain autograder/checks/.")
        return root
    here = Path(start or os.getcwd()).resolve()
    for path in (here, *here.parents):
        if _is_course_root(path):
            return path
    raise FileNotFoundError(
        f"No autograder/ folder above {here}: hidden tests run only in the instructor's copy "
        f"of the course. Set {ROOT_ENV} to the course folder."
    )


def load_checks(chapter: str) -> ModuleType:
    """Import ``autograder.checks.<chapter>`` from the course root."""
    root = str(course_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    loaded = sys.modules.get("autograder")
    if loaded is not None and Path(loaded.__file__).resolve().parent.parent != Path(root):
        # An autograder package from another course root is cached: drop it.
        for name in [n for n in sys.modules if n == "autograder" or n.startswith("autograder.")]:
            del sys.modules[name]
    return importlib.import_module(f"autograder.checks.{chapter}")
