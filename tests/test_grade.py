"""`gradcam-course grade` on a fixture class built from the chapter-1 notebooks: right and wrong
answers, broken and hostile submissions, and the cheats that fool plain nbgrader."""

import copy
import csv
import shutil
import subprocess
import sys

import nbformat
import pytest
import torch

import variants
from course_files import (grade_id, graded_points, make_submission, solution_code, temp_course,
                          write_submission)
from gradcam_course.instructor import grade as grading

CHAPTER = "01_mnist_lenet"
POINTS = graded_points(CHAPTER)
FULL = sum(POINTS.values())  # automatic points of chapter 1
TIMEOUT = 60  # seconds per submission (a right one takes ~7 s): the infinite loop costs this much


def class_of(release, sol):
    weights = sol["weights_solution"]
    zero = weights.replace("return gradients.mean(dim=(2, 3))", "return 0 * gradients.mean(dim=(2, 3))")
    subs = {
        "right": make_submission(release, sol),
        "wrong_map": make_submission(release, sol, variants.of(CHAPTER).WRONG["no_relu"][0]),
        "stderr_noise": make_submission(release, sol, {"weights_solution": weights.replace(
            "def gradcam_weights(gradients):",
            "import sys, warnings\n\ndef gradcam_weights(gradients):\n"
            "    print('progress: 100%|##########|', file=sys.stderr)\n"
            "    warnings.warn('deprecated, says a library')")}),
        "displayhook": make_submission(release, sol, {"weights_solution": zero.replace(
            "def gradcam_weights(gradients):",
            "import sys\n\ndef gradcam_weights(gradients):\n    sys.displayhook(10)")}),
        "strip_asserts": make_submission(release, sol, {"weights_solution": zero + (
            "\n\ndef _strip(lines):\n    return [l for l in lines if 'assert' not in l "
            "and 'load_checks' not in l]\n\nget_ipython().input_transformers_post.append(_strip)\n")}),
        "patched_allclose": make_submission(release, sol, {"weights_solution": zero + (
            "\n\nimport torch\ntorch.allclose = lambda *a, **k: True\n")}),
        "always_equal": make_submission(release, sol, {"weights_solution": (
            "class Anything(torch.Tensor):\n    def __eq__(self, other):\n        return True\n\n\n"
            "def gradcam_weights(gradients):\n"
            "    return torch.zeros(gradients.shape[:2]).as_subclass(Anything)\n")}),
        "crash_at_import": make_submission(release, sol, {"weights_solution": "import no_such_module\n"
                                                          + weights}),
        "infinite_loop": make_submission(release, sol, {"weights_solution": "while True:\n    pass\n"}),
        "kernel_dies": make_submission(release, sol, {"weights_solution": "import os\nos._exit(1)\n"}),
        "memory_hog": make_submission(release, sol, {"weights_solution": weights
                                                     + "\n\n_hog = bytearray(64 * 1024**3)\n"}),
        "huge_output": make_submission(release, sol, {"weights_solution": weights
                                                      + "\n\nprint('x' * 200_000_000)\n"}),
        "writes_gradebook": make_submission(release, sol, {"weights_solution": weights + (
            "\n\nimport glob, sqlite3\nfor _p in glob.glob('/tmp/*/*/*/gradebook.db') + "
            "glob.glob('/tmp/*/*/*/*/gradebook.db') + glob.glob('../../../gradebook.db'):\n"
            "    print(open(_p, 'rb').read()[:16])\n"
            "    _c = sqlite3.connect(_p)\n    _c.execute('update grade set manual_score = 99')\n"
            "    _c.commit()\n")}),
    }
    duplicated = make_submission(release, sol)
    cell = [c for c in duplicated.cells if grade_id(c) == "weights_solution"][0]
    duplicated.cells.insert(3, copy.deepcopy(cell))
    subs["duplicated_cell"] = duplicated
    edited = make_submission(release, sol)
    [c for c in edited.cells if grade_id(c) == "test_map"][0].metadata.nbgrader["schema_version"] = 4
    subs["edited_schema"] = edited
    return subs


@pytest.fixture(scope="module")
def graded(root, tmp_path_factory):
    course = temp_course(root, tmp_path_factory.mktemp("gradeclass"))
    release = nbformat.read(course / "notebooks" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    source = nbformat.read(course / "solutions" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    for student, nb in class_of(release, solution_code(source)).items():
        write_submission(course, student, nb, CHAPTER)
    renamed = write_submission(course, "renamed_file", make_submission(release, solution_code(source)),
                               CHAPTER)
    renamed.rename(renamed.with_name(f"{CHAPTER} (1).ipynb"))
    broken = course / "submitted" / "invalid_json" / CHAPTER
    broken.mkdir(parents=True)
    (broken / f"{CHAPTER}.ipynb").write_text('{"cells": [')
    (course / "submitted" / "no_notebook" / CHAPTER).mkdir(parents=True)
    (course / "submitted" / "no_notebook" / CHAPTER / "notes.txt").write_text("forgot it")

    proc = subprocess.run([sys.executable, "-m", "gradcam_course.instructor.cli", "grade", CHAPTER, "--jobs", "2",
                           "--timeout", str(TIMEOUT)], cwd=course, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(proc.stdout)
    with open(course / f"grades_{CHAPTER}.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    return {"dir": course, "rows": rows, "stdout": proc.stdout}


def points(row):
    return {g: float(row[g]) for g in POINTS}


def test_every_student_folder_has_a_row(graded):
    students = {p.name for p in (graded["dir"] / "submitted").iterdir()}
    assert set(graded["rows"]) == students


@pytest.mark.parametrize("student", ["right", "renamed_file", "stderr_noise", "huge_output"])
def test_right_answers_keep_every_point(graded, student):
    row = graded["rows"][student]
    assert row["status"] == "graded", row["reason"]
    assert points(row) == POINTS and float(row["total"]) == FULL


def test_wrong_answer_loses_its_exercise_only(graded):
    row = graded["rows"]["wrong_map"]
    assert row["status"] == "graded"
    assert points(row) == {**POINTS, "test_map": 0}


def test_crash_at_import_costs_that_exercise(graded):
    row = graded["rows"]["crash_at_import"]
    assert row["status"] == "graded" and points(row) == {**POINTS, "test_weights": 0}


@pytest.mark.parametrize("student,pattern", [
    ("displayhook", "sys.displayhook"), ("patched_allclose", "patched torch"),
    ("always_equal", "__eq__")])
def test_cheats_lose_the_points_and_are_flagged(graded, student, pattern):
    row = graded["rows"][student]
    assert row["status"] == "flagged" and pattern in row["reason"]
    assert points(row) == {**POINTS, "test_weights": 0}


def test_an_input_transformer_is_flagged(graded):
    """It rewrites the test cells inside the kernel, hidden checks included, so its points
    cannot be trusted either way: the flag sends it to a person."""
    row = graded["rows"]["strip_asserts"]
    assert row["status"] == "flagged" and "transformers" in row["reason"]


@pytest.mark.parametrize("student,reason", [
    ("duplicated_cell", "duplicated cells: weights_solution"),
    ("edited_schema", "edited metadata"), ("invalid_json", "invalid notebook"),
    ("no_notebook", "no notebook"), ("infinite_loop", "timeout"), ("kernel_dies", "kernel died"),
    ("memory_hog", "out of memory (limit 8192 MB): cell 'weights_solution' raised MemoryError")])
def test_broken_submissions_fail_with_a_reason_not_a_zero(graded, student, reason):
    row = graded["rows"][student]
    assert row["status"] == "failed" and reason in row["reason"]
    assert row["total"] == "" and all(row[g] == "" for g in POINTS)


def test_hostile_submission_changes_no_grade(graded):
    from nbgrader.api import Gradebook

    row = graded["rows"]["writes_gradebook"]
    assert row["status"] == "flagged" and "gradebook" in row["reason"]
    assert points(row) == POINTS  # its own answers are right
    with Gradebook(f"sqlite:///{graded['dir'] / 'gradebook.db'}") as gb:
        for student, r in graded["rows"].items():
            nb = gb.find_submission_notebook(CHAPTER, CHAPTER, student)
            assert all(g.manual_score is None for g in nb.grades), student
            if r["status"] != "failed":
                assert sum(g.auto_score or 0 for g in nb.grades) == float(r["total"]), student


def test_feedback_shows_points_and_hints_but_no_hidden_test(graded):
    course = graded["dir"]
    source = nbformat.read(course / "solutions" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    hidden = {line.strip() for c in source.cells for block in grading.HIDDEN.findall(c.source)
              for line in block.splitlines() if line.strip()}
    assert len(hidden) >= 5
    pages = list((course / "feedback").rglob("*.html"))
    assert len(pages) >= 10
    for page in pages:
        text = page.read_text()
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{page}: {leaked}"
    wrong = (course / "feedback" / "wrong_map" / CHAPTER / f"{CHAPTER}.html").read_text()
    assert "[test_map] 0 / 10 points" in wrong and "ReLU" in wrong
    huge = course / "feedback" / "huge_output" / CHAPTER / f"{CHAPTER}.html"
    assert huge.stat().st_size < 5_000_000


def test_assemble_restores_tests_and_keeps_student_cells(root):
    assignment = grading.Assignment.load(root, CHAPTER)
    sol = solution_code(assignment.source)
    nb = make_submission(assignment.release, sol, drop={"test_map"})
    nb.cells.insert(4, nbformat.v4.new_code_cell("scratch = 1  # the student's own cell"))
    ids = [grade_id(c) for c in nb.cells]
    assembled = grading.assemble(nb, assignment)
    got = [grade_id(c) for c in assembled.cells]
    want = [grade_id(c) for c in assignment.source.cells]
    assert [g for g in got if g] == [g for g in want if g]
    assert "scratch = 1  # the student's own cell" in [c.source for c in assembled.cells]
    test_map = [c for c in assembled.cells if grade_id(c) == "test_map"][0]
    assert "BEGIN HIDDEN TESTS" in test_map.source and "test_map" not in ids


def test_class_report_shows_what_the_class_missed(graded):
    course = graded["dir"]
    proc = subprocess.run([sys.executable, "-m", "gradcam_course.instructor.cli", "report", CHAPTER],
                          cwd=course, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = course / "reports" / CHAPTER
    page = (out / "index.html").read_text()
    for png in ("totals.png", "tests.png"):
        assert (out / png).stat().st_size > 5000 and png in page
    # test_weights is lost by every cheat and the crash: it tops the table, with its message
    first_row = page.split("<tr><td>")[1]
    assert first_row.startswith("test_weights")
    assert "did you apply the ReLU" in page  # the wrong map's message, for test_map
    assert "duplicated_cell: duplicated cells" in page and "displayhook: suspicious code" in page


# one of each outcome (graded, flagged, failed in the kernel, failed before it) keeps the run short
DASK_STUDENTS = ["right", "wrong_map", "displayhook", "kernel_dies", "invalid_json", "duplicated_cell"]


def test_dask_cluster_gives_the_same_grades(graded, root, tmp_path):
    """--scheduler: the same tasks on a Dask LocalCluster on loopback (two worker processes);
    the rows of grades_<chapter>.csv are identical to the local run's, byte for byte."""
    import distributed  # a requirement of the course's machines (requirements.txt)

    course = temp_course(root, tmp_path / "dask")
    for student in DASK_STUDENTS:
        shutil.copytree(graded["dir"] / "submitted" / student, course / "submitted" / student)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None, processes=True) as cluster:
        proc = subprocess.run([sys.executable, "-m", "gradcam_course.instructor.cli", "grade", CHAPTER,
                               "--scheduler", cluster.scheduler_address, "--timeout", str(TIMEOUT)],
                              cwd=course, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    local = (graded["dir"] / f"grades_{CHAPTER}.csv").read_text().splitlines()
    wanted = [local[0]] + [line for line in local[1:] if line.split(",")[0] in DASK_STUDENTS]
    assert len(wanted) == len(DASK_STUDENTS) + 1
    assert (course / f"grades_{CHAPTER}.csv").read_text().splitlines() == wanted
    assert (course / "feedback" / "wrong_map" / CHAPTER / f"{CHAPTER}.html").is_file()


def test_unreachable_scheduler_is_a_clear_error(root, tmp_path):
    course = temp_course(root, tmp_path / "nodask")
    write_submission(course, "someone", nbformat.read(
        course / "notebooks" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4), CHAPTER)
    proc = subprocess.run([sys.executable, "-m", "gradcam_course.instructor.cli", "grade", CHAPTER,
                           "--scheduler", "tcp://127.0.0.1:9"], cwd=course, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in proc.stderr
    assert "dask scheduler" in proc.stderr


# --- the chapter's answer from the helper package ---------------------------------------------

def test_package_answers_named_in_the_source():
    named = grading.package_answers_named
    answer = "gradcam_course.metrics.pointing_game"
    assert named(["from gradcam_course.metrics import pointing_game as pg\n"], "03_resnet_covid_ct") == [answer]
    assert named(["import gradcam_course.metrics as m\nf = m.energy_pointing_game\n"],
                 "03_resnet_covid_ct") == ["gradcam_course.metrics.energy_pointing_game"]
    assert named(["%time x = 1\nf = getattr(m, 'pointing_game')\n"], "03_resnet_covid_ct") == [answer]
    assert named(["from gradcam_course.metrics import *\n"], "04_pcam_histology") == [
        "gradcam_course.metrics.insertion_deletion"]
    # the student's own function of the same name, a later chapter, code that does not parse
    assert named(["def pointing_game(cams, masks):\n    return pointing_game2(cams, masks)\n"],
                 "03_resnet_covid_ct") == []
    assert named(["from gradcam_course.metrics import pointing_game\n"], "05_cam_family") == []
    assert named(["def broken(:\n"], "03_resnet_covid_ct") == []


def test_refused_package_answer_is_reported_and_restored():
    from autograder.checks.common import refusing_package_answers

    from gradcam_course import metrics
    from gradcam_course.instructor.layout import PACKAGE_ANSWER_REFUSED

    cams, masks = torch.rand(2, 4, 4), torch.rand(2, 4, 4) > 0.5
    want = metrics.pointing_game(cams, masks)
    alias = metrics.pointing_game
    for student in (alias, lambda c, m: alias(c, m)):
        with pytest.raises(AssertionError, match=PACKAGE_ANSWER_REFUSED) as err:
            refusing_package_answers(student, "03_resnet_covid_ct")(cams, masks)
        executed = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
            nbformat.v4.new_output("error", ename="AssertionError", evalue=str(err.value), traceback=[])])])
        assert grading.package_answers_called(executed) == ["gradcam_course.metrics.pointing_game"]
    assert torch.equal(alias(cams, masks), want)  # restored after the call
    assert torch.equal(refusing_package_answers(alias, "05_cam_family")(cams, masks), want)
