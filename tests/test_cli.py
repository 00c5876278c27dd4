"""The two sides of the package: students' modules never import the instructor's, and the
`gradcam-course` command says in one line what to install when the instructor extra is missing."""

import ast
import subprocess
import sys
from pathlib import Path

from gradcam_course.instructor import cli

PACKAGE = Path(__file__).resolve().parent.parent / "gradcam_course"
STUDENT_MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def test_student_modules_never_import_the_instructor_side():
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
                assert not any("instructor" in n for n in names), (path.name, names)
            elif isinstance(node, ast.Import):
                assert not any("instructor" in a.name for a in node.names), path.name


def test_student_modules_load_without_the_instructor_extra():
    assert {"mnist", "data", "ct", "pcam", "imagenet", "metrics", "plotting", "training"} <= set(STUDENT_MODULES)
    imports = "; ".join(f"import gradcam_course.{m}" for m in STUDENT_MODULES)
    code = (f"{imports}; import sys; print(sorted(m for m in ('nbgrader', 'jupytext', 'nbformat', "
            f"'distributed', 'gradcam_course.instructor') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_instructor_extra_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.setattr(cli, "INSTRUCTOR_MODULES", (*cli.INSTRUCTOR_MODULES, "no_such_module_here"))
    assert cli.main(["report", "01_mnist_lenet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ('gradcam-course: the instructor tools need no_such_module_here: '
                   'pip install "gradcam-course[instructor]"')


def test_unknown_chapter_is_a_clear_error(capsys):
    assert cli.main(["grade", "06_nothing"]) == 2
    err = capsys.readouterr().err
    assert "No chapter '06_nothing'" in err and "01_mnist_lenet" in err
