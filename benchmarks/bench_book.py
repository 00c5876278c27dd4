"""Time a cold build of the book, chapter by chapter.

Cold means what a fresh clone (or CI) meets: an empty Jupyter cache, so every chapter executes
and trains what it needs. The build is the one
``scripts/build_book.sh`` runs (offline, ``--warningiserror``), into a temporary folder; the
execution time of each page comes from the build's own Jupyter cache (MyST-NB records it).

    .venv/bin/python benchmarks/bench_book.py            # about 15 minutes on 2 cores
    .venv/bin/python benchmarks/bench_book.py --cells 03_resnet_covid_ct 05_cam_family

It prints a table (page, seconds) and the build's wall time; a measurement, it always exits 0
unless the build itself fails. ``--cells PAGE ...`` instead executes those pages as the build
does, one kernel each, and prints each page's slowest cells (nbclient's own timestamps): where
to look before cutting a chapter's run time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gradcam_course.instructor import release

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


def book_env(model_cache: Path) -> dict[str, str]:
    """The environment of the build's kernels, with an empty model cache (the build trains a
    model two chapters share once); writes the book pages (``book/chapters``)."""
    env = release.book_env(model_cache)
    subprocess.run([sys.executable, "-m", "gradcam_course.instructor.cli", "book-pages"], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    return env


def slowest_cells(page: str, env: dict[str, str], shown: int = 10) -> None:
    """Execute one book page as the build does and print its wall time and slowest cells."""
    from datetime import datetime

    import nbformat
    from nbclient import NotebookClient

    path = ROOT / "book" / "chapters" / f"{page}.ipynb"
    if not path.is_file():
        raise SystemExit(f"no book page {path.relative_to(ROOT)}: pages are "
                         f"{sorted(p.stem for p in path.parent.glob('*.ipynb'))}")
    nb = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits the build's environment
    try:
        start = time.perf_counter()
        NotebookClient(nb, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        wall = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)
    cells = []
    for index, cell in enumerate(nb.cells):
        stamps = cell.metadata.get("execution", {})
        began, ended = stamps.get("iopub.execute_input"), stamps.get("shell.execute_reply")
        if cell.cell_type == "code" and began and ended:
            seconds = (datetime.fromisoformat(ended.replace("Z", "+00:00"))
                       - datetime.fromisoformat(began.replace("Z", "+00:00"))).total_seconds()
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            cells.append((seconds, index, first[:80]))
    print(f"\n{page}: {wall:.0f} s to execute, {sum(c[0] for c in cells):.0f} s in cells")
    print("| cell | seconds | first line |\n|---|---|---|")
    for seconds, index, first in sorted(cells, reverse=True)[:shown]:
        print(f"| {index} | {seconds:.1f} | `{first}` |")


def build(out: Path) -> float:
    env = book_env(out / "models")
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
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", metavar="PAGE",
                        help="time these pages' cells instead of building the book")
    args = parser.parse_args()
    if args.cells:
        with tempfile.TemporaryDirectory(prefix="bench-cells-") as tmp:
            env = book_env(Path(tmp) / "models")  # shared by the pages, in the order given
            for page in args.cells:
                slowest_cells(page, env)
        return
    with tempfile.TemporaryDirectory(prefix="bench-book-") as tmp:
        wall = build(Path(tmp) / "cold")
        report("cold build (empty Jupyter cache)", wall, execution_times(Path(tmp) / "cold"))


if __name__ == "__main__":
    main()
