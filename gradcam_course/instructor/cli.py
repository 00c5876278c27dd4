"""``gradcam-course``: the instructor's command line (release, book pages and build, grade, report)."""

from __future__ import annotations

import argparse
import importlib.util
import sys

#: What the instructor side needs beyond the student package (pyproject's `instructor` extra).
INSTRUCTOR_MODULES = ("nbgrader", "nbformat", "nbclient", "nbconvert", "ipykernel", "jupytext",
                      "yaml", "tqdm")
INSTALL_HINT = 'pip install "gradcam-course[instructor]"'


def missing_instructor_modules() -> list[str]:
    return [m for m in INSTRUCTOR_MODULES if importlib.util.find_spec(m) is None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gradcam-course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rel = sub.add_parser("release", help="regenerate source pairs, student notebooks and their "
                         "pairs from solutions/<chapter>/<chapter>.py (all chapters by default)")
    rel.add_argument("chapters", nargs="*")
    sub.add_parser("book-pages", help="write book/chapters/*.ipynb (hidden tests removed)")
    grd = sub.add_parser("grade", help="grade every submission of a chapter, each in its own "
                         "process and scratch folder; writes autograded/, feedback/, the "
                         "gradebook and grades_<chapter>.csv")
    grd.add_argument("chapter")
    grd.add_argument("--submitted", help="folder of <student>/<chapter>/*.ipynb (default: submitted/)")
    grd.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: cores)")
    grd.add_argument("--scheduler", metavar="ADDRESS", help="send the submissions to this Dask "
                     "scheduler (e.g. tcp://10.0.0.5:8786) instead of local jobs; its workers need "
                     "the course's Python environment, not the course folder")
    grd.add_argument("--timeout", type=float, default=600, help="wall-clock seconds per submission")
    grd.add_argument("--memory-mb", type=int, default=8192, help="address-space limit per submission")
    grd.add_argument("--fresh", action="store_true", help="grade every submission again, also "
                     "those unchanged since a run that finished them (by default they keep their "
                     "results, so an interrupted run resumes where it stopped)")
    grd.add_argument("--no-sandbox", action="store_true", help="run the kernels without the OS "
                     "sandbox (bubblewrap) where it cannot start: every student's code then runs as "
                     "you, with your files and the network in reach; the CSV and the report say "
                     "NOT SANDBOXED")
    rep = sub.add_parser("report", help="reports/<chapter>/index.html: score distribution and "
                         "the tests the class failed most, from what `grade` wrote")
    rep.add_argument("chapter")
    sub.add_parser("build-book", help="write the book pages and execute every chapter into "
                   "_build/html, offline unless GRADCAM_COURSE_DATA says otherwise; further "
                   "arguments go to `jupyter-book build`")
    args, book_args = parser.parse_known_args(argv)
    if book_args and args.command != "build-book":
        parser.error(f"unrecognized arguments: {' '.join(book_args)}")

    missing = missing_instructor_modules()
    if missing:
        print(f"gradcam-course: the instructor tools need {', '.join(missing)}: {INSTALL_HINT}",
              file=sys.stderr)
        return 2
    from . import release
    from .layout import Course

    try:
        root = Course.find(from_env=False).root
        if args.command in ("grade", "report"):
            Course(root).require_chapter(args.chapter)
        elif args.command == "release":
            for chapter in args.chapters:
                Course(root).require_chapter(chapter)
    except FileNotFoundError as err:
        print(f"gradcam-course {args.command}: {err}", file=sys.stderr)
        return 2
    if args.command == "release":
        for chapter in args.chapters or Course(root).chapters():
            student = release.release(root, chapter)
            print(f"released {chapter} -> {student.relative_to(root)} (+ .py pair)")
    elif args.command == "grade":
        import signal

        from .grade import FAILED, Interrupted, grade

        def stop(signum, frame):  # SIGTERM (a scheduler, a kill) stops like Ctrl-C: nothing lost
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        try:
            results = grade(root, args.chapter, args.submitted, args.jobs, args.timeout,
                            args.memory_mb, scheduler=args.scheduler, fresh=args.fresh,
                            sandbox=not args.no_sandbox)
        except (FileNotFoundError, RuntimeError, ValueError) as err:  # no chapter, nothing submitted, no Dask
            print(f"gradcam-course grade: {err}", file=sys.stderr)
            return 2
        except Interrupted as err:
            print(f"gradcam-course grade: {err}", file=sys.stderr)
            return 130
        failed = sum(r.status == FAILED for r in results)
        print(f"graded {len(results) - failed} of {len(results)} submissions; "
              f"see grades_{args.chapter}.csv ({failed} failed)"
              + ("; NOT SANDBOXED (--no-sandbox)" if args.no_sandbox else ""))
    elif args.command == "report":
        from .report import report

        try:
            page = report(root, args.chapter)
        except FileNotFoundError as err:
            print(f"gradcam-course report: {err}", file=sys.stderr)
            return 2
        print(f"wrote {page}")
    elif args.command == "book-pages":
        for page in release.write_book_pages(root):
            print(f"wrote {page.relative_to(root)}")
    elif args.command == "build-book":
        return release.build_book(root, book_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
