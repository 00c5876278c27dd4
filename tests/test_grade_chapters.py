"""`gradcam-course grade --jobs 2` end to end for chapters 2-5, in a temporary course folder: the
solution, the untouched student notebook, and per chapter one wrong answer, one right
alternative and one fault (every variant is run against the checks directly in
test_checks.py; chapter 1's whole class is in test_grade.py, plain nbgrader in
test_nbgrader_e2e.py). Grade ids and points are read from the source notebooks."""

import csv
import subprocess
import sys

import nbformat
import pytest

import variants
from course_files import (graded_points, make_submission, release_nb, solution_code, source_nb,
                          temp_course, write_submission)
from gradcam_course.instructor.layout import Course

CHAPTERS = {
    "02_vgg16_imagenet": {
        "hint": ("overlay_bgr", "COLOR_BGR2RGB"),
        "e2e": {"overlay_bgr", "overlay_addweighted"},
    },
    "03_resnet_covid_ct": {
        "hint": ("class_idx_ignored", "own class: weights = mean gradient"),
        "e2e": {"class_idx_ignored", "tensor_hook_gradients", "gradcam_crashes",
                "package_pointing_games", "package_pointing_game_obfuscated"},
    },
    "04_pcam_histology": {
        "hint": ("ig_baseline_ignored", "The path starts at the baseline"),
        "e2e": {"ig_baseline_ignored", "occlusion_one_window_at_a_time", "saliency_crashes",
                "package_insertion_deletion"},
    },
    "05_cam_family": {
        "hint": ("scorecam_softmax_over_images", "softmax over the channels (dim=1)"),
        "e2e": {"scorecam_softmax_over_images", "scorecam_flat_pairs_no_grad", "hirescam_crashes"},
    },
}
#: Submissions that use the chapter's answer from the helper package, and what the flag names.
PACKAGE_ANSWER_USERS = {
    ("03_resnet_covid_ct", "package_pointing_games"): ["gradcam_course.metrics.energy_pointing_game",
                                                       "gradcam_course.metrics.pointing_game"],
    ("03_resnet_covid_ct", "package_pointing_game_obfuscated"): ["gradcam_course.metrics.pointing_game"],
    ("04_pcam_histology", "package_insertion_deletion"): ["gradcam_course.metrics.insertion_deletion"],
}


def chosen(chapter, kind) -> dict:
    return {n: v for n, v in getattr(variants.of(chapter), kind, {}).items()
            if n in CHAPTERS[chapter]["e2e"]}


def cases(kind):
    return [(chapter, name) for chapter in CHAPTERS for name in sorted(chosen(chapter, kind))]


_graded: dict = {}


@pytest.fixture
def graded(root, tmp_path_factory, request):
    """Every submission of one chapter in one `gradcam-course grade --jobs 2` run, in a course
    folder of its own (cached)."""
    chapter = request.param
    if chapter in _graded:
        return _graded[chapter]
    course_dir = temp_course(root, tmp_path_factory.mktemp(chapter))
    release, solutions = release_nb(chapter, course_dir), solution_code(source_nb(chapter, course_dir))
    submissions = {"solution": make_submission(release, solutions), "untouched": release}
    for name, (replacements, *_rest) in {**chosen(chapter, "WRONG"), **chosen(chapter, "FAULTS")}.items():
        submissions[name] = make_submission(release, solutions, replacements)
    for name, replacements in chosen(chapter, "CORRECT").items():
        submissions[f"alt_{name}"] = make_submission(release, solutions, replacements)
    for student, nb in submissions.items():
        write_submission(course_dir, student, nb, chapter)
    proc = subprocess.run([sys.executable, "-m", "gradcam_course.instructor.cli", "grade", chapter,
                           "--jobs", "2", "--timeout", "300"], cwd=course_dir, capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(proc.stdout)
    with open(Course(course_dir).grades_csv(chapter)) as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    _graded[chapter] = {"chapter": chapter, "rows": rows, "points": graded_points(chapter),
                        "variants": variants.of(chapter), "dir": course_dir}
    return _graded[chapter]


def scores(graded, student) -> dict[str, float]:
    row = graded["rows"][student]
    assert row["status"] in ("graded", "flagged"), (student, row["status"], row["reason"])
    return {g: float(row[g]) for g in graded["points"]}


@pytest.mark.parametrize("graded", list(CHAPTERS), indirect=True)
def test_solution_gets_every_point_and_runs_without_error(graded):
    row = graded["rows"]["solution"]
    assert row["status"] == "graded", row["reason"]
    assert scores(graded, "solution") == graded["points"]
    assert float(row["total"]) == sum(graded["points"].values())
    # every cell, hidden tests included: a figure or comparison cell could fail without a point
    nb = nbformat.read(Course(graded["dir"]).autograded("solution", graded["chapter"]), as_version=4)
    errors = [(i, o.ename, o.evalue[:200]) for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []


@pytest.mark.parametrize("graded", list(CHAPTERS), indirect=True)
def test_untouched_student_notebook_gets_zero(graded):
    assert scores(graded, "untouched") == {g: 0 for g in graded["points"]}


@pytest.mark.parametrize("graded,name", cases("WRONG"), indirect=["graded"])
def test_wrong_answer_loses_only_its_exercise(graded, name):
    v, points = graded["variants"], graded["points"]
    _, exercise, must_fail = v.WRONG[name]
    got = scores(graded, name)
    assert got[must_fail] == 0
    others = set(points) - v.EXERCISES[exercise]
    assert {c: got[c] for c in others} == {c: points[c] for c in others}
    expected_flag = PACKAGE_ANSWER_USERS.get((graded["chapter"], name))
    row = graded["rows"][name]
    if expected_flag:
        assert row["status"] == "flagged", row
        assert row["reason"].startswith("uses the helper package's answer to an exercise of this "
                                        "chapter: " + ", ".join(expected_flag)), row["reason"]
    else:
        assert row["status"] == "graded", row["reason"]


@pytest.mark.parametrize("graded,name", cases("CORRECT"), indirect=["graded"])
def test_correct_alternative_keeps_full_points(graded, name):
    assert scores(graded, f"alt_{name}") == graded["points"]


@pytest.mark.parametrize("graded,name", cases("FAULTS"), indirect=["graded"])
def test_broken_submission_is_graded_and_contained(graded, name):
    v, points = graded["variants"], graded["points"]
    _, exercise = v.FAULTS[name]
    got, lost = scores(graded, name), v.EXERCISES[exercise]
    assert {c: got[c] for c in lost} == {c: 0 for c in lost}
    assert {c: got[c] for c in set(points) - lost} == {c: points[c] for c in set(points) - lost}


@pytest.mark.parametrize("graded", list(CHAPTERS), indirect=True)
def test_feedback_carries_the_hidden_checks_hint(graded):
    student, hint = CHAPTERS[graded["chapter"]]["hint"]
    page = Course(graded["dir"]).feedback(student, graded["chapter"]).read_text()
    assert hint in page and "BEGIN HIDDEN TESTS" not in page
