#!/usr/bin/env bash
# ganjax's one entry point.
#   ./run.sh [flags]             train (default: configs/ring.py, fully offline)
#   ./run.sh test [pytest args]  run the test suite
#   ./run.sh bench [args]        run the benchmark harness (installs the `bench` extra)
# Creates .venv on first use and installs ganjax[train,test] (the training codebase and the
# test tools) at the exact versions of constraints.txt; reinstalls only when setup.cfg or
# constraints.txt change.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"

ensure_env() {  # $1: comma-separated extras
  local extras=$1
  if [ ! -x "$PY" ]; then
    echo "run.sh: creating $VENV" >&2
    python3 -m venv "$VENV"
  fi
  local stamp
  stamp="$(cat setup.cfg constraints.txt | sha256sum | cut -c1-16) [$extras]"
  local stampfile="$VENV/.ganjax-installed"
  if ! grep -qxF "$stamp" "$stampfile" 2>/dev/null; then
    echo "run.sh: installing ganjax[$extras] into $VENV (pinned by constraints.txt)" >&2
    local log="$VENV/pip-install.log"
    if ! { "$PY" -m pip install --disable-pip-version-check --upgrade "pip>=24" \
           && "$PY" -m pip install --disable-pip-version-check -c constraints.txt -e ".[$extras]"; } \
         >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      echo "run.sh: installing failed; the full log is $log" >&2
      exit 1
    fi
    # Keep stamps of other extras installed under the same setup.cfg/constraints.txt.
    { grep -F "$(echo "$stamp" | cut -d' ' -f1)" "$stampfile" 2>/dev/null || true; echo "$stamp"; } \
      | sort -u > "$stampfile.new"
    mv "$stampfile.new" "$stampfile"
  fi
}

cmd=${1:-train}
case "$cmd" in
  test)
    shift
    ensure_env train,test
    exec "$PY" -m pytest "$@"
    ;;
  bench)
    shift
    ensure_env train,test,bench
    exec "$PY" -m benchmarks.bench "$@"
    ;;
  train)
    ensure_env train,test
    exec "$PY" -m ganjax.main
    ;;
  *)
    ensure_env train,test
    exec "$PY" -m ganjax.main "$@"
    ;;
esac
