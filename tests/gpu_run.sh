#!/usr/bin/env bash
# The test suite on a lent GPU machine (issue 13). That machine has no network; its python3
# has jax (CUDA), flax, optax, orbax, torch, tensorboard, matplotlib, pytest and hypothesis.
# What else the suite imports travels as wheels in .whl/suite (`bash tests/fetch_gpu_wheels.sh`
# here first, then carry .whl/suite with the tree) and is installed, when missing, into
# /tmp/site. Runs pytest (in parallel when pytest-xdist is there) with
# XLA_PYTHON_CLIENT_PREALLOCATE=false; tests/conftest.py adds --xla_gpu_deterministic_ops=true
# to XLA_FLAGS. Writes machine.txt, pytest.log and junit.xml to OUT.
#
#   bash tests/gpu_run.sh OUT [DEADLINE_S [PYTEST_ARGS...]]
#
# Verbose (-v): a run stopped at its deadline still names every test that finished and how.
# DEADLINE_S (default 500) bounds pytest (give the run tool 60 s more); PYTEST_ARGS default to
# the whole suite, e.g. `bash tests/gpu_run.sh OUT 300 tests/test_train.py -k resume`.
set -uo pipefail
out=${1:?usage: gpu_run.sh OUT [DEADLINE_S [PYTEST_ARGS...]]}
deadline=${2:-500}
shift $(( $# < 2 ? $# : 2 ))
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
start=$SECONDS
source tests/gpu_site.sh || exit 1  # machine.txt; what the machine lacks, from .whl/suite
python3 -c 'import jax, flax, optax, orbax.checkpoint, tensorflow_datasets, array_record, sklearn
import ml_collections, tensorboard, matplotlib, pytest, hypothesis
print("jax", jax.__version__, jax.devices(), "flax", flax.__version__, "optax", optax.__version__,
      "tfds", tensorflow_datasets.__version__)' 2>&1 | tee -a "$out/machine.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1

export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
parallel=()
if python3 -c 'import xdist' 2>/dev/null; then
  parallel=(-n "${GPU_RUN_WORKERS:-6}")
fi
timeout --kill-after=20 "$deadline" python3 -m pytest -p no:cacheprovider -v -rfEs \
  --durations=25 --junitxml="$out/junit.xml" "${parallel[@]}" "$@" 2>&1 | tee "$out/pytest.log"
status=${PIPESTATUS[0]}
echo "gpu_run: pytest exit status $status; $((SECONDS - start)) s in all" | tee -a "$out/pytest.log"
exit "$status"
