"""nbgrader end to end, in a temporary course folder, per chapter: generate, autograde a class
of submissions (right, wrong, alternative and broken ones in one run), feedback, export."""

import csv
import time

import nbformat
import pytest

import variants as variants_ch01
import variants_ch02
import variants_ch03
import variants_ch04
import variants_ch05
from course_files import make_submission, nbgrader, solution_code, temp_course, write_submission

CHAPTERS = {
    "01_mnist_lenet": {
        "variants": variants_ch01,
        "points": {"test_capture_values": 10, "test_capture_class_idx": 5, "test_capture_inplace": 5,
                   "test_capture_hygiene": 10, "test_weights": 10, "test_map": 10,
                   "test_upsample_values": 10, "test_upsample_edge_cases": 10},
        "hint": ("softmax_score", "raw logit"),
        # every variant is mutation-tested in test_checks.py and the whole chapter-1 class is
        # graded by test_grade_command.py; nbgrader itself grades one of each kind
        "e2e": {"softmax_score", "full_backward_hook", "import_error", "infinite_loop"},
    },
    "02_vgg16_imagenet": {
        "variants": variants_ch02,
        "points": {"test_vgg_logits": 15, "test_vgg_gradients": 10, "test_overlay": 15,
                   "test_counterfactual": 10, "test_guided_backprop": 15, "test_guided_gradcam": 5},
        "hint": ("overlay_bgr", "COLOR_BGR2RGB"),
        "e2e": {"overlay_bgr", "overlay_addweighted"},
    },
    "03_resnet_covid_ct": {
        "variants": variants_ch03,
        "points": {"test_class_weights": 10, "test_gradcam_values": 10, "test_gradcam_inplace": 5,
                   "test_gradcam_hooks": 10, "test_gradcam_class_idx": 5, "test_plot_gradcam": 15,
                   "test_plot_gradcam_missing": 5, "test_pointing_game": 10,
                   "test_energy_pointing_game": 10},
        "hint": ("class_idx_ignored", "own class: weights = mean gradient"),
        # every variant is mutation-tested in test_checks.py; nbgrader grades one per exercise
        "e2e": {"class_idx_ignored", "tensor_hook_gradients", "gradcam_crashes"},
    },
    "04_pcam_histology": {
        "variants": variants_ch04,
        "points": {"test_gradcam_values": 10, "test_gradcam_negative": 5, "test_saliency": 10,
                   "test_occlusion_values": 10, "test_occlusion_baseline": 5, "test_ig_values": 10,
                   "test_ig_completeness": 5, "test_ig_baseline": 5, "test_insertion_curves": 10,
                   "test_insertion_auc": 10},
        "hint": ("ig_baseline_ignored", "The path starts at the baseline"),
        "e2e": {"ig_baseline_ignored", "occlusion_one_window_at_a_time", "saliency_crashes"},
    },
    "05_cam_family": {
        "variants": variants_ch05,
        "points": {"test_plusplus_values": 10, "test_plusplus_zero_gradients": 5, "test_hirescam": 10,
                   "test_layercam": 10, "test_scorecam_values": 15, "test_scorecam_batches": 10,
                   "test_eigencam_values": 10, "test_eigencam_sign": 10},
        "hint": ("scorecam_softmax_over_images", "softmax over the channels (dim=1)"),
        "e2e": {"scorecam_softmax_over_images", "scorecam_flat_pairs_no_grad", "hirescam_crashes"},
    },
}
TIMEOUT = 30  # per cell; chapter 1's infinite loop costs one timeout


def end_to_end(chapter, kind) -> dict:
    """The variants graded through nbgrader. test_checks.py runs every variant against the checks
    directly (and test_grade_command.py grades a whole chapter-1 class); here each chapter names
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
