"""Seconds per submission: `gradcam-course grade --jobs 1`, `--jobs 2` (sandboxed, and with
`--no-sandbox`), and plain `nbgrader autograde`.

Builds a class of N chapter-1 submissions (the solution, with every fifth student answering one
exercise wrongly) in a throwaway course folder, grades it each way and prints the wall time,
seconds per submission, the speed-up of two jobs over one, and the sandboxed `--jobs 2` figure
next to the one measured before the sandbox (6.49 s per submission, 100 students, 2 cores;
target: within 20 %). A measurement, not a test.

    .venv/bin/python benchmarks/bench_grading.py --students 100     # about an hour on 2 cores
    .venv/bin/python benchmarks/bench_grading.py --students 10      # a few minutes
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

CHAPTER = "01_mnist_lenet"
BEFORE_SANDBOX_JOBS2 = 6.49  # s per submission, --jobs 2, 100 students, measured at 6f8d2e9


def make_class(dest: Path, n: int) -> Path:
    import nbformat

    import variants
    from course_files import make_submission, solution_code, temp_course, write_submission

    course = temp_course(ROOT, dest)
    release = nbformat.read(course / "notebooks" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    solutions = solution_code(nbformat.read(course / "solutions" / CHAPTER / f"{CHAPTER}.ipynb",
                                            as_version=4))
    wrong = list(variants.of(CHAPTER).WRONG.values())
    for i in range(n):
        replacements = wrong[(i // 5) % len(wrong)][0] if i % 5 == 4 else None
        write_submission(course, f"student{i:03d}", make_submission(release, solutions, replacements),
                         CHAPTER)
    return course


def timed(cmd: list[str], cwd: Path) -> float:
    from gradcam_course.instructor.release import tool_env

    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:])
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100)
    args = parser.parse_args()
    n = args.students
    print(f"{n} submissions of {CHAPTER} on {os.cpu_count()} cores")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        course = make_class(Path(tmp) / "course", n)
        grade = [sys.executable, "-m", "gradcam_course.instructor.cli", "grade", CHAPTER]
        for label, cmd, cwd in (
                ("gradcam-course grade --jobs 1", grade + ["--jobs", "1"], course),
                ("gradcam-course grade --jobs 2", grade + ["--jobs", "2"], course),
                ("  ... --jobs 2 --no-sandbox", grade + ["--jobs", "2", "--no-sandbox"], course),
                ("nbgrader autograde (serial)", [sys.executable, "-m", "nbgrader", "autograde",
                                                 CHAPTER, "--force"], course / "autograder")):
            for folder in ("autograded", "feedback"):  # (the records in autograded/ too: no resume)
                shutil.rmtree(course / folder, ignore_errors=True)
            seconds = timed(cmd, cwd)
            results[label] = seconds
            print(f"{label:32s} {seconds:8.1f} s  {seconds / n:6.2f} s/submission", flush=True)
    one, two = results["gradcam-course grade --jobs 1"], results["gradcam-course grade --jobs 2"]
    speedup = one / two
    print(f"speed-up of 2 jobs over 1: {speedup:.2f}x ({'PASS' if speedup >= 1.8 else 'MISS'} "
          f"against the 1.8x target)")
    before = BEFORE_SANDBOX_JOBS2
    now = two / n
    print(f"--jobs 2, sandboxed: {now:.2f} s/submission; before the sandbox {before:.2f} s: "
          f"{100 * (now / before - 1):+.0f} % ({'PASS' if now <= 1.2 * before else 'MISS'} against "
          f"the 20 % target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
