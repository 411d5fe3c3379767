#!/usr/bin/env bash
# The prepared GPU check of issue 5, for a lent GPU machine whose python3 already has
# JAX (CUDA), flax, optax, orbax and PyTorch (CUDA); ml_collections travels as a wheel
# in .whl/ (see benchmarks/NOTES.md). Runs the harness on the real GPU, PyTorch on CUDA
# interleaved with ganjax, and writes bench_quick_gpu.{jsonl,md} to OUT.
#
#   bash benchmarks/gpu_run.sh OUT [DEADLINE_S]
set -uo pipefail
out=${1:?usage: gpu_run.sh OUT [DEADLINE_S]}
deadline=${2:-300}
if compgen -G '.whl/*.whl' >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
  --format=csv 2>&1 | tee "$out/nvidia_smi.txt"
python3 -c 'import jax, flax, optax, orbax.checkpoint, torch
print("jax", jax.__version__, jax.devices(), "flax", flax.__version__, "optax",
      optax.__version__, "torch", torch.__version__, torch.cuda.get_device_name())' || exit 1
# Leave GPU memory for PyTorch, which runs in the same process.
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
python3 -m benchmarks.bench --platform gpu --quick --deadline_s "$deadline" --out "$out" \
  2>&1 | tee "$out/bench_gpu.log"
