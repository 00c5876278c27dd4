"""``gradcam-course``: the course's command line."""

from __future__ import annotations

import argparse
import sys

from . import course


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gradcam-course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rel = sub.add_parser("release", help="regenerate source pairs, student notebooks and their "
                         "pairs from solutions/<chapter>/<chapter>.py (all chapters by default)")
    rel.add_argument("chapters", nargs="*")
    sub.add_parser("book-pages", help="write book/chapters/*.ipynb (hidden tests removed)")
    args = parser.parse_args(argv)

    root = course.find_root()
    if args.command == "release":
        for chapter in args.chapters or course.chapters(root):
            student = course.release(root, chapter)
            print(f"released {chapter} -> {student.relative_to(root)} (+ .py pair)")
    elif args.command == "book-pages":
        for page in course.write_book_pages(root):
            print(f"wrote {page.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
