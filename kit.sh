#!/usr/bin/env bash
# One entry point for the course kit. Each command sets up .venv first (idempotent).
#   bash kit.sh course   run notebooks 01-06 (with 02b and 05b) in order, executed copies in runs/
#   bash kit.sh test     unit tests + every notebook under nbval at the smoke size
#   bash kit.sh results  run the course on the real data and record results/ and the README table
#   bash kit.sh experiments  notebooks 07 (masked words), 07b (grid) and 08 (learning curve) on the real data, in results/
#   bash kit.sh levers   tools/levers.py: one change at a time to notebook 05's recipe (hours on a CPU), in results/
#   bash kit.sh regenerate   rewrite every derived file (helpers.py sections, timings, README table...); --check
#   bash kit.sh breakages  plant breakages in a throwaway copy, check the fast tests catch each (minutes; not CI)
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

# The browser test (tests/test_browser.py) drives Debian's chromium through Playwright; Playwright
# never downloads a browser. As root with apt-get, install it when missing; otherwise that test is
# skipped (and fails under CI=true).
browser() {
  command -v chromium >/dev/null && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing chromium for the browser test"
    local log; log=$(mktemp)
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
           chromium; } >"$log" 2>&1; then
      tail -n 5 "$log" >&2; echo "== could not install chromium: the browser test will not run" >&2
    fi
    rm -f "$log"
  else
    echo "== no chromium: the browser test will be skipped (as root: apt-get install chromium)" >&2
  fi
}

real_data() {
  # The real data beside the checkout (../shared/data), if there, verified and put where the kit looks.
  local shared=../shared/data
  if [ -f "$shared/SHA256SUMS" ] && { [ ! -d data/aclImdb ] || [ ! -d data/ag_news_csv ]; }; then
    (cd "$shared" && sha256sum --quiet -c SHA256SUMS)
    [ -d data/aclImdb ] || tar xzf "$shared/aclImdb_labelled.tar.gz" -C data
    [ -d data/ag_news_csv ] || cp -r "$shared/ag_news_csv" data/
  fi
  # Without AG News train.csv, pretrain on a split of test.csv; every report says so.
  [ -f data/ag_news_csv/train.csv ] || export KIT_AG_NEWS=test-split
}

cmd=${1:-course}; shift || true
case "$cmd" in
  setup) setup ;;
  course) setup; python run_course.py "$@" ;;
  test) setup; browser; python -m pytest "$@" ;;
  results)
    setup
    real_data
    python run_course.py --size "${KIT_SIZE:-quick}" --results "$@"
    python tools/regenerate.py ;;
  experiments)
    setup
    real_data
    python run_course.py --size "${KIT_SIZE:-quick}" --experiments --results "$@"
    python tools/regenerate.py ;;
  levers)
    setup
    real_data
    python tools/levers.py --size "${KIT_SIZE:-quick}" "$@"
    python tools/regenerate.py ;;
  regenerate) setup; python tools/regenerate.py "$@" ;;
  breakages) setup; python tools/breakages.py "$@" ;;
  *) echo "usage: bash kit.sh [course|test|results|experiments|levers|regenerate|breakages|setup]" >&2; exit 2 ;;
esac
