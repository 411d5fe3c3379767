#!/usr/bin/env bash
# Rows of experiments/reproduce_2d.py on a lent GPU machine (issue 11: the PacGAN rows, the
# WGAN-GP unroll rows), within one call of the run tool. That machine has no network: what
# ganjax imports beyond its python3 travels as wheels in .whl/suite (bash
# tests/fetch_gpu_wheels.sh here first, then carry .whl/suite) and tests/gpu_site.sh installs
# it. Starts from the committed experiments/results/reproduce_2d.json and its parts file, so
# the report it writes is whole and a part run there completes a row begun elsewhere. Each
# ROW is a row key or a part of one, KEY#A-B (members A to B-1, experiments/row_parts.py: a
# row too long for one call runs as parts over several calls). They run in the order given,
# 100 steps per call; at DEADLINE_S the one in progress is preempted (SIGTERM: saved, lost
# with the machine) and the rest are not started. Finished rows and parts are in
# OUT/reproduce_2d{.json,.md,_parts.json}, with rows.log and machine.txt; the checkpoints
# stay behind. Take them into the committed results here (the parts file beside it comes too):
#   .venv/bin/python experiments/reproduce_2d.py --merge FILES_AT/reproduce_2d.json
#
#   bash experiments/gpu_rows.sh OUT DEADLINE_S ROW...
#   e.g. bash experiments/gpu_rows.sh $OUT 480 'PacGAN T1/GAN/ring' 'PacGAN T1/GAN/grid#0-5'
#
# Give the run tool a timeout of DEADLINE_S + 90 s (the install and the final report).
set -uo pipefail
out=${1:?usage: gpu_rows.sh OUT DEADLINE_S ROW...}
deadline=${2:?usage: gpu_rows.sh OUT DEADLINE_S ROW...}
shift 2
[ $# -gt 0 ] || { echo 'gpu_rows: name the rows (python3 experiments/reproduce_2d.py --list)'; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
start=$SECONDS
source tests/gpu_site.sh || exit 1  # machine.txt; what the machine lacks, from .whl/suite
work=${GPU_ROWS_WORK:-/tmp/gpu_rows}  # checkpoints: too big to bring back
mkdir -p "$work"
for f in reproduce_2d.json reproduce_2d_parts.json; do
  [ -f "$work/$f" ] || cp "experiments/results/$f" "$work/"
done
export PYTHONUNBUFFERED=1
status=0
: > "$out/rows.log"
for row in "$@"; do
  left=$((deadline - (SECONDS - start)))
  if [ "$left" -lt 30 ]; then
    echo "gpu_rows: deadline: '$row' and after not started" | tee -a "$out/rows.log"; break
  fi
  part=()
  if [[ $row == *'#'* ]]; then  # KEY#A-B
    range=${row#*#}
    part=(--members "${range%-*}" "${range#*-}")
    row=${row%%#*}
  fi
  timeout -s TERM --kill-after=60 "$left" python3 experiments/reproduce_2d.py \
    --steps_per_call 100 --out "$work" --rows "$row" "${part[@]}" 2>&1 | tee -a "$out/rows.log"
  status=${PIPESTATUS[0]}
  [ "$status" -eq 0 ] || break
done
cp "$work"/reproduce_2d.json "$work"/reproduce_2d.md "$work"/reproduce_2d_parts.json "$out/" \
  2>/dev/null
echo "gpu_rows: exit status $status; $((SECONDS - start)) s in all" | tee -a "$out/rows.log"
exit "$status"
