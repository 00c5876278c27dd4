"""nbgrader end to end, in a temporary course folder: generate, autograde a class of
submissions (right, wrong, alternative and broken ones in one run), feedback, export."""

import csv
import time

import nbformat
import pytest

import variants
from course_files import (CHAPTER, make_submission, nbgrader, solution_code, temp_course,
                          write_submission)

AUTO_POINTS = {"test_capture_values": 10, "test_capture_class_idx": 5, "test_capture_inplace": 5,
               "test_capture_hygiene": 10, "test_weights": 10, "test_map": 10,
               "test_upsample_values": 10, "test_upsample_edge_cases": 10}
FULL = sum(AUTO_POINTS.values())
TIMEOUT = 30  # per cell; the infinite loop costs one timeout


@pytest.fixture(scope="module")
def graded(root, tmp_path_factory):
    """Grade every submission in one `nbgrader autograde` run; return the per-cell scores."""
    course_dir = temp_course(root, tmp_path_factory.mktemp("course"))
    nbgrader(["generate_assignment", CHAPTER, "--force"], course_dir)
    release = nbformat.read(course_dir / "notebooks" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    source = nbformat.read(course_dir / "solutions" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    solutions = solution_code(source)

    submissions = {"solution": make_submission(release, solutions),
                   "untouched": nbformat.from_dict(release),
                   "deleted_test_cell": make_submission(release, solutions, drop={"test_map"})}
    for name, (replacements, *_rest) in {**variants.WRONG, **variants.FAULTS}.items():
        submissions[name] = make_submission(release, solutions, replacements)
    for name, replacements in variants.CORRECT.items():
        submissions[f"alt_{name}"] = make_submission(release, solutions, replacements)
    for student, nb in submissions.items():
        write_submission(course_dir, student, nb)

    start = time.perf_counter()
    run = nbgrader(["autograde", CHAPTER, f"--Execute.timeout={TIMEOUT}"], course_dir, check=False)
    seconds = time.perf_counter() - start
    print(f"\nautograde: {len(submissions)} submissions in {seconds:.0f} s "
          f"({seconds / len(submissions):.1f} s each)")

    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:
        for student in submissions:
            nb = gb.find_submission_notebook(CHAPTER, CHAPTER, student)
            scores[student] = {g.name: g.auto_score for g in nb.grades if g.name in AUTO_POINTS}
    return {"dir": course_dir, "scores": scores, "run": run, "students": list(submissions)}


def exercise_scores(scores, cells):
    return {c: scores[c] for c in cells}


def test_run_grades_every_submission(graded):
    for student in graded["students"]:
        assert (graded["dir"] / "autograded" / student / CHAPTER / f"{CHAPTER}.ipynb").is_file(), (
            f"{student} was not graded:\n{graded['run'].stdout[-3000:]}{graded['run'].stderr[-3000:]}")


def test_solution_gets_all_automatic_points(graded):
    assert graded["scores"]["solution"] == AUTO_POINTS


def test_untouched_student_notebook_gets_zero(graded):
    assert graded["scores"]["untouched"] == {c: 0 for c in AUTO_POINTS}


@pytest.mark.parametrize("name", sorted(variants.WRONG))
def test_wrong_answer_loses_only_its_exercise(graded, name):
    _, exercise, must_fail = variants.WRONG[name]
    scores = graded["scores"][name]
    assert scores[must_fail] == 0
    others = set(AUTO_POINTS) - variants.EXERCISES[exercise]
    assert {c: scores[c] for c in others} == {c: AUTO_POINTS[c] for c in others}


@pytest.mark.parametrize("name", sorted(variants.CORRECT))
def test_correct_alternative_keeps_full_points(graded, name):
    assert graded["scores"][f"alt_{name}"] == AUTO_POINTS


@pytest.mark.parametrize("name", sorted(variants.FAULTS))
def test_broken_submission_is_graded_and_contained(graded, name):
    _, exercise = variants.FAULTS[name]
    scores = graded["scores"][name]
    lost = variants.EXERCISES[exercise]
    assert {c: scores[c] for c in lost} == {c: 0 for c in lost}
    assert {c: scores[c] for c in set(AUTO_POINTS) - lost} == \
        {c: AUTO_POINTS[c] for c in set(AUTO_POINTS) - lost}


def test_deleted_test_cell_is_restored_and_graded(graded):
    scores = graded["scores"]["deleted_test_cell"]
    assert scores == AUTO_POINTS  # the cell is put back and the (correct) function passes it
    nb = nbformat.read(graded["dir"] / "autograded" / "deleted_test_cell" / CHAPTER / f"{CHAPTER}.ipynb",
                       as_version=4)
    assert any(c.metadata.get("nbgrader", {}).get("grade_id") == "test_map" for c in nb.cells)


def test_infinite_loop_was_cut_by_the_cell_timeout(graded):
    nb = nbformat.read(graded["dir"] / "autograded" / "infinite_loop" / CHAPTER / f"{CHAPTER}.ipynb",
                       as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_weights"]
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert errors and errors[0].ename in {"KeyboardInterrupt", "CellTimeoutError"}


def test_feedback_and_export(graded):
    course_dir = graded["dir"]
    nbgrader(["generate_feedback", CHAPTER], course_dir)
    html = course_dir / "feedback" / "softmax_score" / CHAPTER / f"{CHAPTER}.html"
    text = html.read_text()
    assert "raw logit" in text  # the hidden check's hint reaches the student
    nbgrader(["export", "--to", str(course_dir / "grades.csv")], course_dir)
    with open(course_dir / "grades.csv") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert set(graded["students"]) <= set(rows)
    assert float(rows["solution"]["raw_score"]) == FULL
    assert float(rows["untouched"]["raw_score"]) == 0
    assert float(rows["solution"]["max_score"]) == 100
