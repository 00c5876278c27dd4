#!/usr/bin/env bash
# Build the book into _build/html: install, write the reader pages (hidden tests removed),
# execute every chapter offline and fail on any warning or error.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
source .venv/bin/activate
export GRADCAM_COURSE_DATA=${GRADCAM_COURSE_DATA:-offline}
# No MPLBACKEND here: the kernel must keep its inline backend, or no figure is captured.
unset MPLBACKEND
export GRADCAM_COURSE_BOOK=1 PYDEVD_DISABLE_FILE_VALIDATION=1
# A model trained by two chapters with the same code, data and seed is trained once per build.
export GRADCAM_COURSE_MODEL_CACHE=${GRADCAM_COURSE_MODEL_CACHE:-$PWD/_build/.model_cache}
gradcam-course book-pages
jupyter-book build . --warningiserror --keep-going "$@"
echo "[book] open _build/html/index.html"
