"""The chapter notebooks: pairs in sync, student copies generated and clean, URL configured once,
the book pages are derived correctly. That every cell of a source notebook executes (hidden tests
included) is checked by nbval (conftest.py) and by grading the solution end to end
(test_grade_chapters.py, test_nbgrader_e2e.py)."""

import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.compare import compare_notebooks

from gradcam_course.instructor import release
from gradcam_course.instructor.layout import Course
from course_files import nbgrader, solution_code, temp_course

ROOT = Path(__file__).resolve().parent.parent
PAIRS = sorted(p for folder in ("solutions", "notebooks") for p in (ROOT / folder).glob("*/*.ipynb"))
CHAPTERS = Course(ROOT).chapters()


def source_nb(chapter):
    return nbformat.read(ROOT / "solutions" / chapter / f"{chapter}.ipynb", as_version=4)


def test_every_chapter_has_a_source_and_a_student_pair():
    for chapter in Course(ROOT).chapters():
        for folder in ("solutions", "notebooks"):
            for ext in (".py", ".ipynb"):
                assert (ROOT / folder / chapter / f"{chapter}{ext}").is_file(), (folder, ext)


@pytest.mark.parametrize("ipynb", PAIRS, ids=lambda p: str(p.relative_to(ROOT)))
def test_jupytext_pair_in_sync(ipynb):
    from_ipynb = jupytext.read(ipynb)
    from_py = jupytext.read(ipynb.with_suffix(".py"))
    compare_notebooks(from_py, from_ipynb, fmt="py:percent")  # raises on any difference


@pytest.mark.parametrize("ipynb", PAIRS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_committed_without_outputs(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_files_leak_no_solution_and_no_hidden_test(chapter):
    source = source_nb(chapter)
    # Every distinctive line of the reference solutions, and the hidden tests' markers and calls.
    # What the statement itself shows (markdown, given code) is public; the rest is secret.
    public = "\n".join(c.source for c in source.cells
                       if not c.metadata.get("nbgrader", {}).get("solution"))
    secrets = {line.strip() for code in solution_code(source).values() for line in code.splitlines()
               if len(line.strip()) > 30 and not line.strip().startswith("def ")
               and line.strip() not in public}
    secrets |= {"BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "load_checks", "check_capture"}
    assert len(secrets) > 8
    # Later chapters give earlier chapters' solutions as tools (chapter 2 has a compact
    # Grad-CAM); the instructor guide says to release them after the earlier deadline.
    files = [p for p in (ROOT / "notebooks" / chapter).rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text()
        leaked = sorted(s for s in secrets if s in text)
        assert not leaked, f"{path.relative_to(ROOT)} leaks: {leaked}"


def test_repository_url_is_configured_once():
    url, _ = release.repository(ROOT)
    for chapter in Course(ROOT).chapters():
        for folder in ("solutions", "notebooks"):
            text = (ROOT / folder / chapter / f"{chapter}.py").read_text()
            assert f'COURSE_REPO = "{url}"' in text, f"{folder}/{chapter}: run gradcam-course release"
            assert f"({release.colab_url(ROOT, chapter)})" in text
    # Outside the config and the generated/stamped notebooks, nothing names the repository.
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    others = [f for f in tracked if url.split("//")[1] in (ROOT / f).read_text(errors="ignore")
              and not f.startswith(("solutions/", "notebooks/")) and f != "_config.yml"]
    assert others == []


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_colab_badge_opens_the_student_notebook(chapter):
    link = release.colab_url(ROOT, chapter)
    assert link.endswith(f"/notebooks/{chapter}/{chapter}.ipynb")
    assert link.startswith("https://colab.research.google.com/github/")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_committed_student_notebook_equals_a_fresh_generation(tmp_path, chapter):
    tmp = temp_course(ROOT, tmp_path / "course")
    for folder in (tmp / "notebooks").iterdir():
        if folder.is_dir():
            for f in folder.iterdir():
                f.unlink()
    nbgrader(["generate_assignment", chapter, "--force"], tmp)
    fresh = nbformat.read(tmp / "notebooks" / chapter / f"{chapter}.ipynb", as_version=4)
    committed = nbformat.read(ROOT / "notebooks" / chapter / f"{chapter}.ipynb", as_version=4)
    assert fresh == committed, "notebooks/ is stale: run `gradcam-course release`"
    assert sorted(p.name for p in (tmp / "notebooks" / chapter).iterdir()) == [f"{chapter}.ipynb"], \
        "nbgrader copied extra files (the solution .py?) into the release"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_book_page_removes_hidden_tests_and_folds_solutions(chapter):
    source = source_nb(chapter)
    page = release.book_page(source)
    text = "\n".join(c["source"] for c in page["cells"])
    assert "HIDDEN TESTS" not in text and "load_checks" not in text
    assert "### BEGIN SOLUTION" in text  # solutions stay, folded
    graded = [c for c in page["cells"] if c["metadata"].get("nbgrader", {}).get("solution")
              and c["cell_type"] == "code"]
    assert graded and all("hide-input" in c["metadata"]["tags"] for c in graded)
    assert len(page["cells"]) == len(source.cells)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_points_add_up_to_100(chapter):
    source = source_nb(chapter)
    points = [c.metadata["nbgrader"]["points"] for c in source.cells
              if c.metadata.get("nbgrader", {}).get("grade")]
    assert sum(points) == 100


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_graded_cells_end_with_a_statement(chapter):
    """nbgrader reads a numeric last expression of a test cell as partial credit."""
    import ast

    source = source_nb(chapter)
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            last = ast.parse(cell.source).body[-1]
            assert not isinstance(last, ast.Expr) or isinstance(last.value, ast.Call), meta["grade_id"]


def test_colab_install_provides_every_import_of_the_student_notebooks():
    """In Colab the setup cell installs only the helper package: its declared dependencies
    (plus the standard library) must cover every module a student notebook imports."""
    import ast
    import importlib.metadata as md
    import tomllib

    declared = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-")
                for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    module_to_dists = md.packages_distributions()
    for chapter in Course(ROOT).chapters():
        nb = nbformat.read(ROOT / "notebooks" / chapter / f"{chapter}.ipynb", as_version=4)
        modules = set()
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Import):
                    modules |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    modules.add(node.module.split(".")[0])
        # google.colab exists only in Colab, where the notebooks import it behind a check.
        for module in sorted(modules - set(sys.stdlib_module_names) - {"gradcam_course", "google"}):
            dists = {d.lower().replace("_", "-") for d in module_to_dists.get(module, [])}
            assert dists & declared, f"{chapter} imports {module} ({dists}), not a dependency in pyproject.toml"
