#!/usr/bin/env bash
# The prepared GPU check (issue 14: PyTorch peers, hand-counted FLOPs, the accelerator
# targets), for a lent GPU machine whose python3 already has JAX (CUDA), flax, optax, orbax
# and PyTorch (CUDA); ml_collections travels as a wheel in .whl/ or .whl/suite/
# (tests/fetch_gpu_wheels.sh).
# Runs the harness on the real GPU (`--platform gpu --quick`): the targets' cases first
# (DCGAN-32 b512 and DCGAN-64 b256 against PyTorch eager, CUDA graph and torch.compile,
# each followed by its bfloat16 step; the MLP with 100 steps per call, synthetic and fed by
# the ring input), then the MLP b512 comparison in a process of its own, then the
# population, input, checkpoint and loss cases while the time lasts. Writes bench_quick_gpu.{jsonl,md}, bench_gpu.log, flops.txt and
# nvidia_smi.txt to OUT and prints the achieved TFLOP/s of every case and the targets.
#
#   bash benchmarks/gpu_run.sh OUT [DEADLINE_S]
#
# DEADLINE_S (default 300) is the harness's budget: no case starts after it, and the worker
# is killed 120 s after it, so the whole script takes under 8 minutes (give the run tool a
# timeout of 540 s).
set -uo pipefail
out=${1:?usage: gpu_run.sh OUT [DEADLINE_S]}
deadline=${2:-300}
mkdir -p "$out"
start=$SECONDS
if compgen -G '.whl/*.whl' >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
elif ! python3 -c 'import ml_collections' 2>/dev/null && [ -d .whl/suite ]; then
  # tests/fetch_gpu_wheels.sh's folder (what tests/gpu_run.sh installs) has it too.
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --find-links .whl/suite --target /tmp/site ml_collections || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
  --format=csv 2>&1 | tee "$out/nvidia_smi.txt"
python3 -c 'import jax, flax, optax, orbax.checkpoint, torch
print("jax", jax.__version__, jax.devices(), "flax", flax.__version__, "optax",
      optax.__version__, "torch", torch.__version__, torch.cuda.get_device_name())' || exit 1
# Leave GPU memory for PyTorch, which runs in the same process.
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
timeout $((deadline + 150)) python3 -m benchmarks.bench --platform gpu --quick \
  --deadline_s "$deadline" --out "$out" 2>&1 | tee "$out/bench_gpu.log"
if [ -f "$out/bench_quick_gpu.jsonl" ]; then
  python3 -m benchmarks.report "$out/bench_quick_gpu.jsonl" | tee "$out/flops.txt"
else
  echo "gpu_run: no bench_quick_gpu.jsonl (the harness did not finish); records so far:"
  grep '^bench: kind=' "$out/bench_gpu.log"
fi
echo "gpu_run: $((SECONDS - start)) s"
