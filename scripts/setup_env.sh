#!/usr/bin/env bash
# Create .venv (if missing) and install everything the book and the tests need, with this
# machine's torch pins from constraints.txt. Re-running is cheap: it reinstalls only when
# requirements.txt, constraints.txt or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat requirements.txt constraints.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing requirements (torch is large: a few minutes on a fresh machine)"
  log=$(mktemp)
  if ! .venv/bin/pip install --disable-pip-version-check -q -r requirements.txt -c constraints.txt >"$log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -40
    echo "[setup] pip install failed (full log: $log)" >&2
    exit 1
  fi
  rm -f "$log" .venv/.installed-*
  touch "$stamp"
fi
echo "[setup] .venv ready: $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)')"
