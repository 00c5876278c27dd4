#!/usr/bin/env bash
# Run the whole test suite (installs first): unit tests, notebook checks, the nbgrader
# pipeline end to end, and an offline book build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
bash scripts/setup_sandbox.sh
source .venv/bin/activate
export GRADCAM_COURSE_DATA=offline MPLBACKEND=Agg PYDEVD_DISABLE_FILE_VALIDATION=1
python -m pytest "$@"
