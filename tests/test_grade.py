"""`gradcam-course grade` on a fixture class built from the chapter-1 notebooks: right and wrong
answers, broken and hostile submissions, and the cheats that fool plain nbgrader."""

import copy
import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

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
ATTACKER = "gradcam-course-test-background-attacker"  # on the attacker's command line


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
        "many_prints": make_submission(release, sol, {"weights_solution": weights
                                                      + "\n\nfor _ in range(1000):\n    print('z' * 50_000)\n"}),
        "=1+2": make_submission(release, sol),  # a student id that a spreadsheet would run
        "fake_oom": make_submission(release, sol, {"weights_solution": zero
                                                   + "\n\nraise MemoryError('out of memory, honest')\n"}),
        # What beat the checks while they ran in the student's kernel, spelled so that no
        # pattern of the pre-scan sees it: the checks and the reference are not in the sandbox.
        "obfuscated_patch": make_submission(release, sol, {"weights_solution": zero + (
            "\n\nimport importlib\ntry:\n    _m = importlib.import_module('auto' + 'grader.che' + 'cks.com' + 'mon')\n"
            "    _m.assert_tensor = lambda *a, **k: None\nexcept ImportError as _e:\n    print(_e)\n")}),
        "calls_reference": make_submission(release, sol, {"weights_solution": (
            "import importlib\n\n\ndef gradcam_weights(gradients):\n"
            "    ref = importlib.import_module('auto' + 'grader.refer' + 'ence.ch01_mnist_lenet')\n"
            "    return ref.gradcam_weights(gradients)\n")}),
        # forges what the grader's probe reports, for every check from here on
        "forged_probe": make_submission(release, sol, {"weights_solution": zero + (
            "\n\nimport importlib\n_r = importlib.import_module('autograder.probes.run')\n"
            "_r.run = lambda module, probe, function, path: open(path, 'w').write('{\"__dict__\": []}')\n")}),
        # a detached process that outlives its kernel and attacks every notebook it can find
        "background_attacker": make_submission(release, sol, {"weights_solution": weights + (
            "\n\nimport subprocess, sys\n_attack = '''\nimport glob, os, time\nfor _ in range(900):\n"
            "    for p in glob.glob('/tmp/**/*.ipynb', recursive=True) + glob.glob('/proc/*/cwd/**/*.ipynb', recursive=True):\n"
            "        try:\n            open(p, 'w').write('{}')\n        except OSError:\n            pass\n"
            "    time.sleep(0.1)\n'''\nsubprocess.Popen([sys.executable, '-c', _attack, '" + ATTACKER + "'], "
            "start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n")}),
        # the red team's: a finished implementation, an output nbconvert cannot render, a script
        # in the feedback page, a 5 MB exception name, 3 000 nested folders, 30 000 files
        "library_answer": make_submission(release, sol, {"weights_solution": (
            "import torch\nfrom pytorch_grad_cam import GradCAM as _G\n\n\ndef gradcam_weights(gradients):\n"
            "    return torch.as_tensor(_G.get_cam_weights(None, None, None, None, None,\n"
            "                                              gradients.detach().cpu().numpy()))\n")}),
        "widget_output": make_submission(release, sol, {"weights_solution": weights + (
            "\n\nfrom IPython.display import HTML, display\n"
            "display({'application/vnd.jupyter.widget-view+json': {}}, raw=True)\n"
            "display(HTML('<script>window.stolen = document.cookie</script>'))\n")}),
        "long_exception_name": make_submission(release, sol, {"weights_solution": (
            "def gradcam_weights(gradients):\n    raise type('E' * 5_000_000, (Exception,), {})()\n")}),
        "deep_folders": make_submission(release, sol, {"weights_solution": weights + (
            "\n\nimport os\n_here = os.getcwd()\nfor _ in range(3000):\n    os.mkdir('d')\n    os.chdir('d')\n"
            "os.chdir(_here)\n")}),
        "many_files": make_submission(release, sol, {"weights_solution": weights + (
            "\n\nimport os, time\nos.mkdir('junk')\nfor _i in range(30_000):\n"
            "    open(f'junk/{_i}', 'w').close()\ntime.sleep(10)\n")}),
        # kills every process it can signal: its grader, classmates' kernels, the test runner
        "kills_everyone": make_submission(release, sol, {"weights_solution": weights + (
            "\n\nimport os, signal\nfor _pid in range(1, 100_000):\n    if _pid != os.getpid():\n"
            "        try:\n            os.kill(_pid, signal.SIGKILL)\n        except OSError:\n            pass\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")}),
        # starts processes until the sandbox refuses one (bounded here too, in case it never does)
        "fork_bomb": make_submission(release, sol, {"weights_solution": weights + (
            "\n\nimport os, time\n_n = 0\nfor _ in range(3000):\n    try:\n        if os.fork() == 0:\n"
            "            time.sleep(10)\n            os.kill(os.getpid(), 9)\n        _n += 1\n    except OSError:\n"
            "        break\nprint('forks refused after', _n)\nfor _ in range(_n):\n    os.wait()\n")}),
        # three processes that together hold more memory than the submission may (each one less);
        # the kernel offers itself to the OOM killer, so that it is the one stopped
        "memory_team": make_submission(release, sol, {"weights_solution": weights + (
            "\n\nimport os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        time.sleep(1)\n"
            "        _b = bytearray(3 * 1024**3)\n        for _i in range(0, len(_b), 4096):\n"
            "            _b[_i] = 1\n        time.sleep(60)\n        os._exit(0)\n"
            "open('/proc/self/oom_score_adj', 'w').write('1000')\ntime.sleep(60)\n")}),
        "writes_gradebook": make_submission(release, sol, {"weights_solution": weights + (
            "\n\nimport glob, sqlite3\nfor _p in glob.glob('/tmp/*/*/*/gradebook.db') + "
            "glob.glob('/tmp/*/*/*/*/gradebook.db') + glob.glob('../../../gradebook.db'):\n"
            "    print(open(_p, 'rb').read()[:16])\n"
            "    _c = sqlite3.connect(_p)\n    _c.execute('update grade set manual_score = 99')\n"
            "    _c.commit()\n")}),
    }
    # reaches the grader's folder through /proc (the kernel's grandparent) and deletes the gradebook
    subs["deletes_gradebook"] = make_submission(release, sol, {"weights_solution": weights + (
        "\n\nimport os\n_grader = open(f'/proc/{os.getppid()}/stat').read().rsplit(')', 1)[1].split()[1]\n"
        "try:\n    os.remove(f'/proc/{_grader}/cwd/gradebook.db')\nexcept OSError as _err:\n"
        "    print(_err)\n")})
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
    assert set(graded["rows"]) == (students - {"=1+2"}) | {"'=1+2"}  # never a formula in the CSV


@pytest.mark.parametrize("student", ["right", "renamed_file", "stderr_noise", "huge_output",
                                     "many_prints", "'=1+2", "memory_hog", "background_attacker",
                                     "widget_output", "deep_folders"])
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
    """It rewrites the test cells inside the kernel, but the hidden checks' verdicts run in the
    grader: the zero weights still lose their points, and the flag sends it to a person. (Its
    stripping also breaks a multi-line visible assert elsewhere: that cell's points are lost in
    the kernel, which can cost a student points but never earn them.)"""
    row = graded["rows"]["strip_asserts"]
    assert row["status"] == "flagged" and "transformers" in row["reason"]
    assert points(row)["test_weights"] == 0 and points(row)["test_map"] == POINTS["test_map"]


@pytest.mark.parametrize("student", ["obfuscated_patch", "calls_reference", "fake_oom"])
def test_cheats_the_prescan_misses_still_lose_the_points(graded, student):
    """Patching the checks or calling the reference needs them in the kernel, and they are not
    there; a MemoryError the student raises is an error in that cell, not a status."""
    row = graded["rows"][student]
    assert row["status"] == "graded", row["reason"]
    assert points(row) == {**POINTS, "test_weights": 0}


def test_outputs_that_break_pages_or_memory_are_contained(graded):
    course = graded["dir"]
    page = (course / "feedback" / "widget_output" / CHAPTER / f"{CHAPTER}.html").read_text()
    assert "<script>window.stolen" not in page  # shown as text, never a live script
    row = graded["rows"]["long_exception_name"]
    assert row["status"] == "graded" and points(row) == {**POINTS, "test_weights": 0}
    executed = course / "autograded" / "long_exception_name" / CHAPTER / f"{CHAPTER}.ipynb"
    assert executed.stat().st_size < 3_000_000  # the 5 MB name, shortened in every error output


def test_a_library_implementation_keeps_its_points_and_is_flagged(graded):
    row = graded["rows"]["library_answer"]
    assert row["status"] == "flagged" and "pytorch_grad_cam's implementation" in row["reason"]
    assert points(row) == POINTS


def test_a_submission_that_fills_its_scratch_folder_is_stopped(graded):
    row = graded["rows"]["many_files"]
    assert row["status"] == "failed"
    assert "stopped by the grader: its scratch folders held more than" in row["reason"]


def test_a_forged_probe_earns_nothing(graded):
    row = graded["rows"]["forged_probe"]
    assert row["status"] == "flagged" and "autograder" in row["reason"]
    after = list(POINTS)[list(POINTS).index("test_weights"):]  # every check run after the forgery
    assert points(row) == {g: (0 if g in after else p) for g, p in POINTS.items()}
    page = (graded["dir"] / "feedback" / "forged_probe" / CHAPTER / f"{CHAPTER}.html").read_text()
    assert "GradingError" in page and "no usable result" in page


def test_what_a_submission_starts_dies_with_it_and_harms_no_one(graded):
    left = subprocess.run(["pgrep", "-f", ATTACKER], capture_output=True, text=True).stdout.strip()
    assert left == "", f"the background attacker outlived its kernel: pids {left}"
    row = graded["rows"]["kills_everyone"]
    assert row["status"] == "failed" and "kernel died" in row["reason"]
    for student, r in graded["rows"].items():  # every honest classmate's notebook was graded
        if r["status"] != "failed":
            assert (graded["dir"] / "autograded" / grading.from_spreadsheet_safe(student) / CHAPTER
                    / f"{CHAPTER}.ipynb").stat().st_size > 10_000, student


def test_a_fork_bomb_is_refused_inside_its_sandbox(graded):
    from gradcam_course.instructor import sandbox

    if "pids" not in sandbox._own_cgroups():
        pytest.skip("no pids cgroup can be made here: a submission's processes are not limited")
    row = graded["rows"]["fork_bomb"]
    assert row["status"] == "graded" and points(row) == POINTS, row  # its answers are right
    nb = nbformat.read(graded["dir"] / "autograded" / "fork_bomb" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    text = " ".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    refused = re.search(r"forks refused after (\d+)", text)
    assert refused and int(refused.group(1)) < sandbox.MAX_PROCESSES, text[-500:]


def test_out_of_memory_is_the_sandboxs_verdict(graded):
    from gradcam_course.instructor import sandbox

    if "memory" not in sandbox._own_cgroups():
        pytest.skip("no memory cgroup can be made here: memory is limited per process only")
    row = graded["rows"]["memory_team"]
    assert row["status"] == "failed", row
    assert "kernel died" in row["reason"] and "out of memory" in row["reason"], row["reason"]
    assert "out of memory" not in graded["rows"]["fake_oom"]["reason"]  # a raised MemoryError is no status


@pytest.mark.parametrize("student,reason", [
    ("duplicated_cell", "duplicated cells: weights_solution"),
    ("edited_schema", "edited metadata"), ("invalid_json", "invalid notebook"),
    ("no_notebook", "no notebook"), ("infinite_loop", "timeout"), ("kernel_dies", "kernel died")])
def test_broken_submissions_fail_with_a_reason_not_a_zero(graded, student, reason):
    row = graded["rows"][student]
    assert row["status"] == "failed" and reason in row["reason"]
    assert row["total"] == "" and all(row[g] == "" for g in POINTS)


def test_hostile_submission_changes_no_grade(graded):
    from nbgrader.api import Gradebook

    for student in ("writes_gradebook", "deletes_gradebook"):
        row = graded["rows"][student]
        assert row["status"] == "flagged" and "gradebook" in row["reason"]
        assert points(row) == POINTS  # its own answers are right
    # the sandbox has no gradebook to find: the guard never had to restore it
    assert "restored it" not in graded["stdout"]
    with Gradebook(f"sqlite:///{graded['dir'] / 'gradebook.db'}") as gb:
        for student, r in graded["rows"].items():
            nb = gb.find_submission_notebook(CHAPTER, CHAPTER, grading.from_spreadsheet_safe(student))
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
    for student in ("huge_output", "many_prints"):  # 200 MB in one print, 50 MB in 1 000
        page = course / "feedback" / student / CHAPTER / f"{CHAPTER}.html"
        assert page.stat().st_size < 5_000_000
        assert "was longer than the grader keeps" in page.read_text()


def test_prescan_ignores_the_submissions_own_locked_flag(root, tmp_path):
    """A solution cell the student marked ``locked`` is still the student's code."""
    assignment = grading.Assignment.load(root, CHAPTER)
    nb = make_submission(assignment.release, solution_code(assignment.source),
                         {"weights_solution": "get_ipython().events.register('pre_run_cell', print)\n"})
    cell = [c for c in nb.cells if grade_id(c) == "weights_solution"][0]
    cell.metadata.nbgrader["locked"] = True
    write_submission(tmp_path, "locks_own_cell", nb, CHAPTER)
    result, notebook = grading.prepare(assignment, tmp_path / "submitted" / "locks_own_cell")
    assert notebook is not None and "get_ipython" in result.flags


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


def test_without_a_sandbox_it_refuses_or_says_so(root, tmp_path):
    """bwrap not on PATH: the command refuses and names the way out; --no-sandbox grades with
    the same verdicts and says NOT SANDBOXED in the CSV, on the console and in the report."""
    import os

    course = temp_course(root, tmp_path / "nosandbox")
    source = nbformat.read(course / "solutions" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    release = nbformat.read(course / "notebooks" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    write_submission(course, "right", make_submission(release, solution_code(source)), CHAPTER)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no /usr/bin: no bwrap
    command = [sys.executable, "-m", "gradcam_course.instructor.cli", "grade", CHAPTER,
               "--timeout", str(TIMEOUT)]
    refused = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    assert "Cannot sandbox the submissions here" in refused.stderr and "--no-sandbox" in refused.stderr
    assert not (course / f"grades_{CHAPTER}.csv").exists()
    graded = subprocess.run(command + ["--no-sandbox"], cwd=course, env=env, capture_output=True,
                            text=True, timeout=600)
    assert graded.returncode == 0, graded.stdout[-2000:] + graded.stderr[-2000:]
    assert "NOT SANDBOXED" in graded.stdout
    with open(course / f"grades_{CHAPTER}.csv") as f:
        row = next(csv.DictReader(f))
    assert row["sandbox"] == "NOT SANDBOXED" and row["status"] == "graded" and float(row["total"]) == FULL
    subprocess.run([sys.executable, "-m", "gradcam_course.instructor.cli", "report", CHAPTER],
                   cwd=course, env=env, check=True, capture_output=True, timeout=300)
    assert "NOT SANDBOXED" in (course / "reports" / CHAPTER / "index.html").read_text()


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
    assert named(["from gradcam_course import metrics as mm\nmm.pointing_game(a, b)\n"],
                 "03_resnet_covid_ct") == [answer]
    assert named(["import gradcam_course.metrics\ngradcam_course.metrics.pointing_game(a, b)\n"],
                 "03_resnet_covid_ct") == [answer]
    # honest code that only shares a name: an attribute of something else, a dict key
    assert named(["scores = {'pointing_game': 1}\nself.pointing_game = results.pointing_game\n"],
                 "03_resnet_covid_ct") == []
    assert named(["from gradcam_course.metrics import *\n"], "04_pcam_histology") == [
        "gradcam_course.metrics.insertion_deletion"]
    # the student's own function of the same name, a later chapter, code that does not parse
    assert named(["def pointing_game(cams, masks):\n    return pointing_game2(cams, masks)\n"],
                 "03_resnet_covid_ct") == []
    assert named(["from gradcam_course.metrics import pointing_game\n"], "05_cam_family") == []
    assert named(["def broken(:\n"], "03_resnet_covid_ct") == []


def test_refused_package_answer_is_reported_and_restored():
    from autograder.probes.common import refusing_package_answers

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


# --- malformed notebooks, bounded output, spreadsheet-safe CSV ----------------------------------

def _mutations(nb: dict, rng) -> dict:
    """One random damage to a notebook's JSON: a value of the wrong type, a missing key, a huge
    value, at any depth (cells, their metadata, nbgrader metadata, sources, outputs)."""
    import copy as copy_module

    nb = copy_module.deepcopy(nb)
    odd_values = [None, 0, -1, 10**30, 1.5, float("nan"), True, "", "x" * 100_000, [], [1, "a"],
                  {}, {"a": 1}, ["nbgrader"], {"nbgrader": []}]
    containers = [(None, nb)]
    for _ in range(rng.randint(1, 4)):
        parent_key, node = rng.choice(containers)
        while isinstance(node, (dict, list)) and node and rng.random() < 0.75:
            key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            if not isinstance(node[key], (dict, list)):
                break
            node = node[key]
        if isinstance(node, dict) and node:
            key = rng.choice(list(node))
            if rng.random() < 0.3:
                del node[key]
            else:
                node[key] = copy_module.deepcopy(rng.choice(odd_values))
        elif isinstance(node, list) and node:
            node[rng.randrange(len(node))] = copy_module.deepcopy(rng.choice(odd_values))
    return nb


def test_fuzzed_notebooks_fail_one_at_a_time_never_crash(root, tmp_path):
    """Hundreds of randomly damaged copies of the release notebook: each is `failed` with a reason
    or assembled for execution; preparing them never raises."""
    import json
    import random

    assignment = grading.Assignment.load(root, CHAPTER)
    release = json.loads(nbformat.writes(make_submission(assignment.release, solution_code(assignment.source))))
    rng = random.Random(0)
    outcomes = {"failed": 0, "assembled": 0}
    for i in range(300):
        folder = tmp_path / f"s{i}"
        (folder / CHAPTER).mkdir(parents=True)
        text = json.dumps(_mutations(release, rng), allow_nan=True)
        (folder / CHAPTER / f"{CHAPTER}.ipynb").write_text(text)
        result, notebook = grading.prepare(assignment, folder)
        if notebook is None:
            assert result.status == "failed" and result.reason, result
            outcomes["failed"] += 1
        else:
            nbformat.validate(nbformat.reads(notebook, as_version=4))
            outcomes["assembled"] += 1
    assert outcomes["failed"] > 100 and outcomes["assembled"] > 10, outcomes  # both paths taken


@pytest.mark.parametrize("damage,reason", [
    (lambda c: c.metadata.update(nbgrader="not a dict"), "edited metadata"),
    (lambda c: c.metadata.nbgrader.update(grade_id=["a", "list"]), "edited metadata: grade_id is list"),
    (lambda c: c.metadata.nbgrader.update(points="10"), "edited metadata: points is str"),
    (lambda c: c.update(source=5), "invalid notebook"),
    (lambda c: c.pop("cell_type"), "invalid notebook"),
])
def test_a_malformed_cell_is_a_reason(root, tmp_path, damage, reason):
    assignment = grading.Assignment.load(root, CHAPTER)
    nb = make_submission(assignment.release, solution_code(assignment.source))
    damage([c for c in nb.cells if grade_id(c) == "test_map"][0])
    folder = tmp_path / "student"
    (folder / CHAPTER).mkdir(parents=True)
    (folder / CHAPTER / f"{CHAPTER}.ipynb").write_text(json_dumps(nb))
    result, notebook = grading.prepare(assignment, folder)
    assert notebook is None and result.status == "failed" and reason in result.reason, result.reason


def json_dumps(nb) -> str:
    import json

    return json.dumps(nb)


def test_feedback_page_renders_prose_and_runs_no_student_script(tmp_path):
    """Headings, paragraphs and math of the notebook render; a script in a markdown answer, a
    raw HTML cell, an image value that breaks out of its src attribute or a LaTeX output does not."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("## Exercise 2 · Eq. 1 (10 points)\n\n$$\\alpha_k = 1$$\n\nWrite `f(x)`."),
        nbformat.v4.new_markdown_cell("My answer <script>window.md = 1</script> <img src=x onerror=alert(1)>"),
        nbformat.v4.new_raw_cell("<script>window.raw = 1</script>", metadata={"raw_mimetype": "text/html"}),
        nbformat.v4.new_code_cell("x", outputs=[
            nbformat.v4.new_output("display_data", data={"image/png": 'AAAA"><script>window.png = 1</script>'}),
            nbformat.v4.new_output("display_data", data={"text/latex": "<script>window.tex = 1</script>",
                                                         "text/plain": "latex"}),
            nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})])])
    page = tmp_path / "page.html"
    grading.write_html(nb, page)
    html = page.read_text()
    assert '<h2 id="Exercise-2' in html and "<p>Write <code>f(x)</code>.</p>" in html
    for payload in ("<script>window.md", "<img src=x", "<script>window.raw", "<script>window.png",
                    "<script>window.tex"):
        assert payload not in html, payload
    assert "My answer &lt;script&gt;" in html  # the student's text is still there, as text
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in html  # a real image is kept


def test_output_is_capped_per_cell_and_per_notebook_errors_kept():
    new = nbformat.v4
    prints = [new.new_output("stream", name="stdout", text="y" * 50_000) for _ in range(1000)]
    error = new.new_output("error", ename="AssertionError", evalue="wrong " * 10_000,
                           traceback=["frame"] * 500)
    nb = new.new_notebook(cells=[new.new_code_cell(outputs=list(prints) + [error]) for _ in range(12)])
    cut = grading.cap_outputs(nb, per_cell=200_000, per_notebook=1_000_000)
    assert cut > 0
    sizes = [len(nbformat.writes(new.new_notebook(cells=[c]))) for c in nb.cells]
    assert max(sizes) < 215_000 and sum(sizes) < 1_300_000
    for cell in nb.cells:  # the error, which decides the score, is in every cell, shortened
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert len(errors) == 1 and len(errors[0].evalue) < 5_000 and len(errors[0].traceback) <= 30
        assert "characters of output cut from this cell" in cell.outputs[-1].text
    small = new.new_notebook(cells=[new.new_code_cell(outputs=[new.new_output("stream", name="stdout", text="ok\n")])])
    assert grading.cap_outputs(small) == 0 and small.cells[0].outputs[0].text == "ok\n"


def test_csv_cells_never_run_as_formulas():
    for value in ("=1+2", "+SUM(A1)", "-2+3", "@cmd", "\t=x", "=HYPERLINK(\"http://x\")"):
        safe = grading.spreadsheet_safe(value)
        assert safe.startswith("'") and grading.from_spreadsheet_safe(safe) == value
    for value in ("alice", "o'brien", "'quoted", "", "1"):
        assert grading.spreadsheet_safe(value) == value == grading.from_spreadsheet_safe(value)


def test_regrade_updates_automatic_scores_and_keeps_manual_ones(root, tmp_path):
    """A formgrader-style manual score and comment survive a re-grade of a changed submission."""
    from nbgrader.api import Gradebook

    course = temp_course(root, tmp_path / "regrade")
    assignment = grading.Assignment.load(course, CHAPTER)
    sol = solution_code(assignment.source)

    def grade_class():
        proc = subprocess.run([sys.executable, "-m", "gradcam_course.instructor.cli", "grade", CHAPTER,
                               "--jobs", "1", "--timeout", str(TIMEOUT)], cwd=course,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    write_submission(course, "ada", make_submission(assignment.release, sol), CHAPTER)
    grade_class()
    written = sorted(assignment.manual)[0]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_grade("test_map", CHAPTER, CHAPTER, "ada").auto_score == POINTS["test_map"]
        gb.find_grade(written, CHAPTER, CHAPTER, "ada").manual_score = 12
        gb.find_comment(written, CHAPTER, CHAPTER, "ada").manual_comment = "Clear, and right."
        gb.db.commit()
    # the student hands in again, now with the ReLU forgotten
    write_submission(course, "ada", make_submission(assignment.release, sol,
                                                    variants.of(CHAPTER).WRONG["no_relu"][0]), CHAPTER)
    grade_class()
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_grade("test_map", CHAPTER, CHAPTER, "ada").auto_score == 0
        assert gb.find_grade("test_weights", CHAPTER, CHAPTER, "ada").auto_score == POINTS["test_weights"]
        assert gb.find_grade(written, CHAPTER, CHAPTER, "ada").manual_score == 12
        assert gb.find_comment(written, CHAPTER, CHAPTER, "ada").manual_comment == "Clear, and right."


def test_package_answer_is_refused_however_it_is_reached(monkeypatch):
    """Copies of the package function, a decoy put in its place, a result that computes itself
    later: each is refused while the check runs the student's function."""
    import runpy
    import types

    from autograder.probes.common import refusing_package_answers

    from gradcam_course import metrics

    cams, masks = torch.rand(2, 4, 4), torch.rand(2, 4, 4) > 0.5
    original = metrics.pointing_game
    copied = types.FunctionType(original.__code__, original.__globals__)
    rerun = runpy.run_path(metrics.__file__)["pointing_game"]
    monkeypatch.setattr(metrics, "pointing_game", lambda c, m: torch.zeros(len(c)))  # a decoy
    for student in (copied, rerun, lambda c, m: original(c, m)):
        with pytest.raises(AssertionError, match="the helper package's answer"):
            refusing_package_answers(student, "03_resnet_covid_ct")(cams, masks)

    class Lazy(dict):  # computes the curves only when the check reads them
        def __getitem__(self, key):
            return metrics.insertion_deletion(*self.args)[key]

    def lazy_insertion_deletion(model, images, maps, *args):
        result = Lazy(insertion="later")
        result.args = (model, images, maps, *args)
        return result

    got = refusing_package_answers(lazy_insertion_deletion, "04_pcam_histology")(None, None, None)
    assert type(got) is dict and got["insertion"] == "later"  # the placeholder, not the package's curves
    want = original(cams, masks)  # every copy answers again once the check is over
    assert torch.equal(copied(cams, masks), want) and torch.equal(rerun(cams, masks), want)


def test_a_stopped_or_killed_grader_loses_nothing_and_resumes(root, tmp_path):
    """Ctrl-C stops the run within seconds and keeps what finished; a grader killed outright
    (SIGKILL) keeps it too; each new run grades only what is left."""
    import json
    import signal
    import time

    course = temp_course(root, tmp_path / "resume")
    assignment = grading.Assignment.load(course, CHAPTER)
    sol = solution_code(assignment.source)
    students = [f"s{i}" for i in range(4)]
    for student in students:
        write_submission(course, student, make_submission(assignment.release, sol), CHAPTER)
    records = [grading.Course(course).grading_record(s, CHAPTER) for s in students]
    command = [sys.executable, "-m", "gradcam_course.instructor.cli", "grade", CHAPTER, "--jobs", "1",
               "--timeout", str(TIMEOUT)]

    def run_until(n_records, sig):
        proc = subprocess.Popen(command, cwd=course, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        deadline = time.monotonic() + 300
        while sum(r.is_file() for r in records) < n_records and time.monotonic() < deadline:
            time.sleep(0.2)
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        return proc.returncode, time.monotonic() - sent, out, err

    code, seconds, _, err = run_until(1, signal.SIGINT)
    assert code == 130 and seconds < 15, (code, seconds, err)
    assert "run `gradcam-course grade 01_mnist_lenet` again" in err
    done = {json.loads(r.read_text())["student"] for r in records if r.is_file()}
    with open(course / f"grades_{CHAPTER}.csv") as f:
        assert {row["student"] for row in csv.DictReader(f)} == done  # the CSV has what finished
    code, _, _, _ = run_until(len(done) + 1, signal.SIGKILL)
    assert code == -signal.SIGKILL
    kept = sum(r.is_file() for r in records)
    assert kept > len(done)
    proc = subprocess.run(command, cwd=course, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{kept} submission(s) unchanged since an earlier run" in proc.stdout
    with open(course / f"grades_{CHAPTER}.csv") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(students)
    assert all(r["status"] == "graded" and float(r["total"]) == FULL for r in rows.values())
