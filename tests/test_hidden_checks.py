"""gradcam_course.instructor.layout and .hidden_checks: the course root, the chapter a notebook
runs in, and how a hidden test cell imports its chapter's checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gradcam_course.instructor import hidden_checks, layout

ROOT = Path(__file__).resolve().parent.parent


def test_course_root_walks_up_from_a_chapter_folder(monkeypatch):
    monkeypatch.delenv(layout.ROOT_ENV, raising=False)
    monkeypatch.chdir(ROOT / "solutions" / "01_mnist_lenet")
    assert layout.find_root() == ROOT
    assert layout.find_root(ROOT / "gradcam_course") == ROOT


def test_course_root_honours_the_environment(monkeypatch, tmp_path):
    other = tmp_path / "course"
    (other / "autograder" / "checks").mkdir(parents=True)
    monkeypatch.chdir(ROOT / "solutions" / "01_mnist_lenet")
    monkeypatch.setenv(layout.ROOT_ENV, str(other))
    assert layout.find_root() == other.resolve()
    monkeypatch.setenv(layout.ROOT_ENV, str(tmp_path))  # no autograder/ there
    with pytest.raises(FileNotFoundError, match=layout.ROOT_ENV):
        layout.find_root()


def test_course_root_outside_a_course(monkeypatch, tmp_path):
    monkeypatch.delenv(layout.ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="No course folder"):
        layout.find_root()


def test_one_name_per_chapter_names_every_file_of_it():
    course = layout.Course(ROOT)
    chapters = course.chapters()
    assert chapters[0] == "01_mnist_lenet" and len(chapters) >= 5
    for chapter in chapters:
        module = layout.module_name(chapter)
        assert module == "ch" + chapter
        for path in (course.source_py(chapter), course.source(chapter), course.release(chapter),
                     course.release_py(chapter), ROOT / "autograder" / "checks" / f"{module}.py",
                     ROOT / "autograder" / "reference" / f"{module}.py"):
            assert path.is_file(), path
    assert course.submitted("ada", "01_mnist_lenet") == (
        ROOT / "submitted" / "ada" / "01_mnist_lenet" / "01_mnist_lenet.ipynb")
    assert course.checks_module("01_mnist_lenet") == "autograder.checks.ch01_mnist_lenet"
    with pytest.raises(FileNotFoundError, match="chapters: 01_mnist_lenet"):
        course.require_chapter("06_nothing")


@pytest.fixture
def keep_autograder_modules(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    saved = {k: v for k, v in sys.modules.items()
             if k == "autograder" or k.startswith("autograder.")}
    yield
    for name in [k for k in sys.modules if k == "autograder" or k.startswith("autograder.")]:
        del sys.modules[name]
    sys.modules.update(saved)


def test_load_checks_finds_the_chapter_from_the_folder(monkeypatch, keep_autograder_modules):
    monkeypatch.delenv(layout.ROOT_ENV, raising=False)
    monkeypatch.delenv(layout.CHAPTER_ENV, raising=False)
    monkeypatch.chdir(ROOT / "solutions" / "01_mnist_lenet")
    checks = hidden_checks.load_checks()
    assert callable(checks.check_weights)
    assert Path(checks.__file__).resolve() == ROOT / "autograder" / "checks" / "ch01_mnist_lenet.py"
    monkeypatch.chdir(ROOT / "notebooks" / "03_resnet_covid_ct")
    assert hidden_checks.load_checks().__name__ == "autograder.checks.ch03_resnet_covid_ct"


def test_load_checks_from_the_environment_or_a_clear_error(monkeypatch, tmp_path,
                                                           keep_autograder_modules):
    monkeypatch.delenv(layout.ROOT_ENV, raising=False)
    monkeypatch.chdir(ROOT)  # the root is no chapter folder
    monkeypatch.delenv(layout.CHAPTER_ENV, raising=False)
    with pytest.raises(LookupError, match=layout.CHAPTER_ENV):
        hidden_checks.load_checks()
    monkeypatch.setenv(layout.CHAPTER_ENV, "02_vgg16_imagenet")
    assert hidden_checks.load_checks().__name__ == "autograder.checks.ch02_vgg16_imagenet"


def test_load_checks_drops_an_autograder_from_another_course(monkeypatch, tmp_path,
                                                            keep_autograder_modules):
    other = tmp_path / "course"
    for sub in ("checks", "reference"):
        (other / "autograder" / sub).mkdir(parents=True)
        (other / "autograder" / sub / "__init__.py").write_text("")
    (other / "autograder" / "__init__.py").write_text("")
    (other / "autograder" / "checks" / "ch99_other.py").write_text("WHERE = 'other course'\n")
    import autograder  # the repository's own, already cached  # noqa: F401

    monkeypatch.setenv(layout.ROOT_ENV, str(other))
    module = hidden_checks.load_checks("99_other")
    assert module.WHERE == "other course"
    assert Path(sys.modules["autograder"].__file__).resolve().parent.parent == other.resolve()
