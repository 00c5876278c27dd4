#!/usr/bin/env bash
# Install bubblewrap, the OS sandbox `gradcam-course grade` runs each submission's kernel in
# (the grading tests need it too). Needs root (or sudo) and apt; elsewhere it says what to do.
set -euo pipefail
if command -v bwrap >/dev/null && command -v prlimit >/dev/null; then
  exit 0
fi
if command -v apt-get >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "[setup] installing bubblewrap (the grading sandbox)"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq bubblewrap util-linux >/dev/null && exit 0
fi
echo "[setup] bubblewrap is not installed and could not be installed here: install it" \
     "(Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)." \
     "Without it \`gradcam-course grade\` refuses to grade (unless --no-sandbox) and the grading tests fail." >&2
exit 1
