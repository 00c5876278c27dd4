#!/usr/bin/env bash
# Build the book into _build/html: install, write the reader pages (hidden tests removed),
# execute every chapter offline and fail on any warning or error.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
source .venv/bin/activate
# Offline unless GRADCAM_COURSE_DATA says otherwise; the kernels' environment is
# gradcam_course.instructor.release.book_env, shared with tests/test_book.py.
gradcam-course build-book "$@"
echo "[book] open _build/html/index.html"
