"""Plain nbgrader end to end (the documented unhardened path), in a temporary course folder:
generate, autograde a chapter-1 class of submissions (right, wrong, alternative and broken ones
in one run), feedback, export. Chapters 2-5 are graded end to end by `gradcam-course grade` in
test_grade_chapters.py; every variant of every chapter runs against the checks in test_checks.py."""

import csv
import time

import nbformat
import pytest

import variants
from course_files import (graded_points, make_submission, nbgrader, solution_code, temp_course,
                          write_submission)

CHAPTERS = {
    "01_mnist_lenet": {
        "hint": ("softmax_score", "raw logit"),
        # every variant is mutation-tested in test_checks.py and the whole chapter-1 class is
        # graded by test_grade.py; nbgrader itself grades one of each kind
        "e2e": {"softmax_score", "full_backward_hook", "import_error", "infinite_loop"},
    },
}
for _chapter, _spec in CHAPTERS.items():
    _spec["variants"], _spec["points"] = variants.of(_chapter), graded_points(_chapter)
TIMEOUT = 20  # per cell (the slowest grading-mode cell takes ~5 s); the infinite loop costs four


def end_to_end(chapter, kind) -> dict:
    """The variants graded through nbgrader. test_checks.py runs every variant against the checks
    directly (and test_grade.py grades a whole chapter-1 class); here each chapter names
    one wrong answer, one right alternative and one fault (`"e2e"`) to keep the nbgrader run
    short: nbgrader's pipeline is the same for every variant."""
    spec = CHAPTERS[chapter]
    variants = getattr(spec["variants"], kind, {})
    chosen = spec.get("e2e")
    return {n: v for n, v in variants.items() if chosen is None or n in chosen}


def cases(kind):
    return [(chapter, name) for chapter in CHAPTERS for name in sorted(end_to_end(chapter, kind))]


@pytest.fixture(scope="module")
def course(root, tmp_path_factory):
    course_dir = temp_course(root, tmp_path_factory.mktemp("course"))
    return {"dir": course_dir, "graded": {}}


@pytest.fixture
def graded(course, request):
    """Grade every submission of one chapter in one `nbgrader autograde` run (cached)."""
    chapter = request.param
    if chapter in course["graded"]:
        return course["graded"][chapter]
    course_dir, spec = course["dir"], CHAPTERS[chapter]
    nbgrader(["generate_assignment", chapter, "--force"], course_dir)
    release = nbformat.read(course_dir / "notebooks" / chapter / f"{chapter}.ipynb", as_version=4)
    source = nbformat.read(course_dir / "solutions" / chapter / f"{chapter}.ipynb", as_version=4)
    solutions = solution_code(source)

    submissions = {"solution": make_submission(release, solutions),
                   "untouched": nbformat.from_dict(release)}
    if chapter == "01_mnist_lenet":
        submissions["deleted_test_cell"] = make_submission(release, solutions, drop={"test_map"})
    for name, (replacements, *_rest) in {**end_to_end(chapter, "WRONG"),
                                         **end_to_end(chapter, "FAULTS")}.items():
        submissions[name] = make_submission(release, solutions, replacements)
    for name, replacements in end_to_end(chapter, "CORRECT").items():
        submissions[f"alt_{name}"] = make_submission(release, solutions, replacements)
    for student, nb in submissions.items():
        write_submission(course_dir, student, nb, chapter)

    start = time.perf_counter()
    run = nbgrader(["autograde", chapter, f"--Execute.timeout={TIMEOUT}"], course_dir, check=False)
    seconds = time.perf_counter() - start
    print(f"\nautograde {chapter}: {len(submissions)} submissions in {seconds:.0f} s "
          f"({seconds / len(submissions):.1f} s each)")

    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:
        for student in submissions:
            nb = gb.find_submission_notebook(chapter, chapter, student)
            scores[student] = {g.name: g.auto_score for g in nb.grades if g.name in spec["points"]}
    result = {"chapter": chapter, "dir": course_dir, "scores": scores, "run": run,
              "students": list(submissions), "spec": spec}
    course["graded"][chapter] = result
    return result


def autograded_nb(graded, student):
    chapter = graded["chapter"]
    return nbformat.read(graded["dir"] / "autograded" / student / chapter / f"{chapter}.ipynb",
                         as_version=4)


@pytest.mark.parametrize("graded", list(CHAPTERS), indirect=True)
def test_run_grades_every_submission(graded):
    chapter = graded["chapter"]
    for student in graded["students"]:
        assert (graded["dir"] / "autograded" / student / chapter / f"{chapter}.ipynb").is_file(), (
            f"{student} was not graded:\n{graded['run'].stdout[-3000:]}{graded['run'].stderr[-3000:]}")


@pytest.mark.parametrize("graded", list(CHAPTERS), indirect=True)
def test_solution_gets_all_automatic_points(graded):
    assert graded["scores"]["solution"] == graded["spec"]["points"]


@pytest.mark.parametrize("graded", list(CHAPTERS), indirect=True)
def test_solution_runs_every_cell_without_error(graded):
    """Every cell of the solution notebook, hidden tests included, runs in grading mode: a cell
    that is not graded (a figure, the comparison) could otherwise fail without costing a point."""
    nb = autograded_nb(graded, "solution")
    errors = [(i, o.ename, o.evalue[:200]) for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []


@pytest.mark.parametrize("graded", list(CHAPTERS), indirect=True)
def test_untouched_student_notebook_gets_zero(graded):
    assert graded["scores"]["untouched"] == {c: 0 for c in graded["spec"]["points"]}


@pytest.mark.parametrize("graded,name", cases("WRONG"), indirect=["graded"])
def test_wrong_answer_loses_only_its_exercise(graded, name):
    v, points = graded["spec"]["variants"], graded["spec"]["points"]
    _, exercise, must_fail = v.WRONG[name]
    scores = graded["scores"][name]
    assert scores[must_fail] == 0
    others = set(points) - v.EXERCISES[exercise]
    assert {c: scores[c] for c in others} == {c: points[c] for c in others}


@pytest.mark.parametrize("graded,name", cases("CORRECT"), indirect=["graded"])
def test_correct_alternative_keeps_full_points(graded, name):
    assert graded["scores"][f"alt_{name}"] == graded["spec"]["points"]


@pytest.mark.parametrize("graded,name", cases("FAULTS"), indirect=["graded"])
def test_broken_submission_is_graded_and_contained(graded, name):
    v, points = graded["spec"]["variants"], graded["spec"]["points"]
    _, exercise = v.FAULTS[name]
    scores = graded["scores"][name]
    lost = v.EXERCISES[exercise]
    assert {c: scores[c] for c in lost} == {c: 0 for c in lost}
    assert {c: scores[c] for c in set(points) - lost} == {c: points[c] for c in set(points) - lost}


@pytest.mark.parametrize("graded", ["01_mnist_lenet"], indirect=True)
def test_deleted_test_cell_is_restored_and_graded(graded):
    assert graded["scores"]["deleted_test_cell"] == graded["spec"]["points"]
    nb = autograded_nb(graded, "deleted_test_cell")
    assert any(c.metadata.get("nbgrader", {}).get("grade_id") == "test_map" for c in nb.cells)


@pytest.mark.parametrize("graded", ["01_mnist_lenet"], indirect=True)
def test_infinite_loop_was_cut_by_the_cell_timeout(graded):
    nb = autograded_nb(graded, "infinite_loop")
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_weights"]
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert errors and errors[0].ename in {"KeyboardInterrupt", "CellTimeoutError"}


@pytest.mark.parametrize("graded", list(CHAPTERS), indirect=True)
def test_feedback_and_export(graded):
    course_dir, chapter = graded["dir"], graded["chapter"]
    student, hint = graded["spec"]["hint"]
    nbgrader(["generate_feedback", chapter], course_dir)
    html = course_dir / "feedback" / student / chapter / f"{chapter}.html"
    assert hint in html.read_text()  # the hidden check's hint reaches the student
    out = course_dir / f"grades_{chapter}.csv"
    nbgrader(["export", "--to", str(out)], course_dir)
    with open(out) as f:
        rows = {(r["assignment"], r["student_id"]): r for r in csv.DictReader(f)}
    full = sum(graded["spec"]["points"].values())
    assert {(chapter, s) for s in graded["students"]} <= set(rows)
    assert float(rows[(chapter, "solution")]["raw_score"]) == full
    assert float(rows[(chapter, "untouched")]["raw_score"]) == 0
    assert float(rows[(chapter, "solution")]["max_score"]) == 100
