"""``gradcam-course release`` and ``book-pages``: the files derived from one source per chapter.

``solutions/<chapter>/<chapter>.py`` (Jupytext, py:percent) is what authors edit. From it:

* ``solutions/<chapter>/<chapter>.ipynb``: its paired notebook (nbgrader's source);
* ``notebooks/<chapter>/<chapter>.ipynb`` and ``.py``: the student release, written by
  ``nbgrader generate_assignment`` and paired again with Jupytext;
* ``book/chapters/<chapter>.ipynb``: the book page, solutions folded, hidden tests removed.

The repository URL (for the Colab install cell and the Open-in-Colab badge) is configured
once, in ``_config.yml``; :func:`stamp_repository` writes it into every chapter source.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .layout import CHAPTER_ENV, ROOT_ENV, Course

HIDDEN_TESTS = re.compile(r"\n?[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*", re.S)
COLAB = "https://colab.research.google.com"


def repository(root: Path) -> tuple[str, str]:
    """(url, branch) from ``_config.yml``'s ``repository`` section."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text())
    repo = config.get("repository") or {}
    if not repo.get("url"):
        raise ValueError("_config.yml needs repository.url (the course's GitHub URL).")
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def colab_url(root: Path, chapter: str) -> str:
    url, branch = repository(root)
    path = url.split("github.com/", 1)[-1]
    return f"{COLAB}/github/{path}/blob/{branch}/notebooks/{chapter}/{chapter}.ipynb"


def stamp_repository(root: Path, chapter: str) -> bool:
    """Write the configured URL into the chapter's install cell and Colab badge."""
    source = Course(root).source_py(chapter)
    text = source.read_text()
    url, _ = repository(root)
    new = re.sub(r'^COURSE_REPO = "[^"]*"', f'COURSE_REPO = "{url}"', text, flags=re.M)
    new = re.sub(r"\(" + re.escape(COLAB) + r"/github/[^)]*\)", f"({colab_url(root, chapter)})", new)
    if new != text:
        source.write_text(new)
    return new != text


def _jupytext(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "jupytext", "--quiet", *args], check=True)


def tool_env() -> dict[str, str]:
    """The environment for running nbgrader: it calls `alembic` by name when it creates a
    gradebook, so the venv's bin must be on PATH. The course's own config sets
    GRADCAM_COURSE_ROOT, and the chapter comes from the notebook's folder, so inherited ones
    are dropped."""
    env = dict(os.environ)
    env.pop(ROOT_ENV, None)
    env.pop(CHAPTER_ENV, None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def book_env(model_cache: Path, data: str = "offline") -> dict[str, str]:
    """The environment of a book build's kernels (``build-book``, tests/test_book.py and
    benchmarks/bench_book.py build alike): the data mode, the book flag, a model cache (a model
    two chapters train from the same code, data and seed is trained once per build), matplotlib's
    inline backend (an inherited MPLBACKEND would capture no figure) and the venv's tools."""
    from gradcam_course.data import MODE_ENV
    from gradcam_course.runtime import BOOK_ENV, MODEL_CACHE_ENV

    env = dict(os.environ, **{MODE_ENV: data, BOOK_ENV: "1", MODEL_CACHE_ENV: str(model_cache)},
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("MPLBACKEND", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def build_book(root: Path, jupyter_book_args: list[str] = ()) -> int:
    """``gradcam-course build-book``: the book pages, then every chapter executed into
    ``_build/html`` with --warningiserror; the exit status of ``jupyter-book build``."""
    from gradcam_course.data import MODE_ENV
    from gradcam_course.runtime import MODEL_CACHE_ENV

    write_book_pages(root)
    cache = Path(os.environ.get(MODEL_CACHE_ENV) or root / "_build" / ".model_cache")
    env = book_env(cache, os.environ.get(MODE_ENV) or "offline")
    command = ["jupyter-book", "build", str(root), "--warningiserror", "--keep-going",
               *jupyter_book_args]
    return subprocess.run(command, cwd=root, env=env).returncode


def pair_source(root: Path, chapter: str) -> Path:
    """Write the source notebook from its .py (the .py is the one authors edit)."""
    course = Course(root)
    _jupytext("--to", "ipynb", str(course.source_py(chapter)), "-o", str(course.source(chapter)))
    return course.source(chapter)


def release(root: Path, chapter: str) -> Path:
    """nbgrader generate_assignment, then the student notebook's Jupytext pair."""
    stamp_repository(root, chapter)
    pair_source(root, chapter)
    course = Course(root)
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", chapter, "--force",
                    "--log-level=WARN"], cwd=course.autograder, env=tool_env(), check=True)
    _jupytext("--to", "py:percent", str(course.release(chapter)), "-o", str(course.release_py(chapter)))
    return course.release(chapter)


def book_page(source_nb: dict) -> dict:
    """The reader's version of a source notebook: hidden tests removed, solutions folded."""
    nb = copy.deepcopy(source_nb)
    for cell in nb["cells"]:
        meta = cell.get("metadata", {})
        grading = meta.get("nbgrader", {})
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        cell["source"] = HIDDEN_TESTS.sub("", src).rstrip()
        if grading.get("solution") or grading.get("grade"):
            tags = meta.setdefault("tags", [])
            if "hide-input" not in tags:
                tags.append("hide-input")
    return nb


def write_book_pages(root: Path) -> list[Path]:
    import nbformat

    course = Course(root)
    written = []
    for chapter in course.chapters():
        nb = nbformat.read(course.source(chapter), as_version=4)
        page = nbformat.from_dict(book_page(nb))
        target = course.book_page(chapter)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(page, target)
        written.append(target)
    return written


def copy_course(root: Path, dest: Path) -> Path:
    """A throwaway course folder (for tests and dry runs): sources, autograder, package files."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("solutions", "autograder", "notebooks"):
        if (root / name).exists():
            shutil.copytree(root / name, dest / name, ignore=shutil.ignore_patterns(
                "__pycache__", "gradebook.db", ".ipynb_checkpoints"))
    shutil.copy2(root / "_config.yml", dest / "_config.yml")
    return dest
