"""The course's notebooks as the tests read them, submissions built from them, temporary courses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat

from gradcam_course.instructor import release
from gradcam_course.instructor.layout import Course

ROOT = Path(__file__).resolve().parent.parent
COURSE = Course(ROOT)
CHAPTER = "01_mnist_lenet"
MARKER_LINE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)


def nbgrader(args: list[str], course_root: Path, check: bool = True, timeout: int = 1500):
    """Run nbgrader from <course>/autograder with the venv's bin on PATH (nbgrader calls
    `alembic` by name) and return the completed process (output captured)."""
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_root / "autograder",
                          env=release.tool_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def source_nb(chapter: str, root: Path = ROOT):
    return nbformat.read(Course(root).source(chapter), as_version=4)


def release_nb(chapter: str, root: Path = ROOT):
    return nbformat.read(Course(root).release(chapter), as_version=4)


def graded_points(chapter: str) -> dict[str, float]:
    """grade_id → points of every automatically graded cell, read from the source notebook."""
    return {grade_id(c): float(c.metadata["nbgrader"]["points"]) for c in source_nb(chapter).cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


def solution_code(source_nb) -> dict[str, str]:
    """grade_id → the reference solution of each solution code cell, markers removed."""
    return {grade_id(c): MARKER_LINE.sub("", c.source) for c in source_nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}


def solution_edit(chapter: str, cell: str, *pairs: tuple[str, str]) -> dict[str, str]:
    """{cell: the chapter's own solution of `cell` with each (old, new) replaced}: a variant that
    differs from the solution exactly where the mistake (or the alternative) is."""
    code = solution_code(source_nb(chapter))[cell]
    for old, new in pairs:
        assert old in code, f"{old!r} not in the solution of {cell}"
        code = code.replace(old, new)
    return {cell: code}


def make_submission(release_nb, solutions: dict[str, str], replacements: dict[str, str] | None = None,
                    drop: set[str] = frozenset()):
    """The student notebook filled in with `solutions`, some cells replaced or deleted."""
    nb = nbformat.from_dict(release_nb)
    filled = {**solutions, **(replacements or {})}
    cells = []
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in drop:
            continue
        if gid in filled:
            cell.source = filled[gid]
        cells.append(cell)
    nb.cells = cells
    return nb


def write_submission(course_root: Path, student: str, nb, chapter: str = CHAPTER) -> Path:
    path = Course(course_root).submitted(student, chapter)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def temp_course(root: Path, dest: Path) -> Path:
    return release.copy_course(root, dest)
