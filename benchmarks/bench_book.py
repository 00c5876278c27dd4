"""Time a cold build of the book, chapter by chapter.

Cold means what a fresh clone (or CI) meets: an empty Jupyter cache, so every chapter executes
and trains what it needs. The build is the one
``scripts/build_book.sh`` runs (offline, ``--warningiserror``), into a temporary folder; the
execution time of each page comes from the build's own Jupyter cache (MyST-NB records it).

    .venv/bin/python benchmarks/bench_book.py            # about 15 minutes on 2 cores

It prints a table (page, seconds) and the build's wall time; a measurement, it always exits 0
unless the build itself fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 600  # the book in 10 minutes on this 2-core machine


def execution_times(build_dir: Path) -> dict[str, float]:
    """page → seconds its notebook took to execute, from ``<build>/_build/.jupyter_cache``."""
    from jupyter_cache import get_cache

    cache = get_cache(build_dir / "_build" / ".jupyter_cache")
    times = {}
    for record in cache.list_cache_records():
        seconds = (record.data or {}).get("execution_seconds")
        if seconds is not None:
            times[Path(record.uri).stem] = float(seconds)
    return dict(sorted(times.items()))


def build(out: Path) -> float:
    env = dict(os.environ, GRADCAM_COURSE_DATA="offline", GRADCAM_COURSE_BOOK="1",
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("MPLBACKEND", None)  # the kernels keep the inline backend
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    subprocess.run([sys.executable, "-m", "gradcam_course.instructor.cli", "book-pages"], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    start = time.perf_counter()
    proc = subprocess.run(["jupyter-book", "build", str(ROOT), "--path-output", str(out),
                           "--warningiserror", "--keep-going"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n")
        raise SystemExit(f"the book build failed (exit {proc.returncode})")
    return seconds


def report(title: str, wall: float, times: dict[str, float]) -> None:
    print(f"\n{title}")
    print("| page | execution (s) |\n|---|---|")
    for page, seconds in times.items():
        print(f"| {page} | {seconds:.0f} |")
    print(f"| **all pages** | **{sum(times.values()):.0f}** |")
    verdict = "PASS" if wall <= TARGET_S else "MISS"
    print(f"build wall time: {wall:.0f} s ({wall / 60:.1f} min; target ≤ {TARGET_S / 60:.0f} min: {verdict})")


def main() -> None:
    argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-book-") as tmp:
        wall = build(Path(tmp) / "cold")
        report("cold build (empty Jupyter cache)", wall, execution_times(Path(tmp) / "cold"))


if __name__ == "__main__":
    main()
