#!/usr/bin/env bash
# One entry point for the course kit. Each command sets up .venv first (idempotent).
#   bash kit.sh course   run the six notebooks in order, executed copies in runs/
#   bash kit.sh test     unit tests + every notebook under nbval at the smoke size
#   bash kit.sh setup    only create/refresh .venv
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=.venv

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV with $($PY --version)"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$(cat requirements.txt | sha1sum | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch first and pinned: an unpinned torch would pull a multi-GB CUDA build on a CPU machine.
    "$VENV/bin/python" -c "import torch" 2>/dev/null || "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q -r requirements.txt
    touch "$stamp"
  fi
  export PATH="$PWD/$VENV/bin:$PATH"
}

cmd=${1:-course}; shift || true
case "$cmd" in
  setup) setup ;;
  course) setup; python run_course.py "$@" ;;
  test) setup; python -m pytest "$@" ;;
  *) echo "usage: bash kit.sh [course|test|setup]" >&2; exit 2 ;;
esac
