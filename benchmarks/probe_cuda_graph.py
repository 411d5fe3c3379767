"""Which mix of JAX and a PyTorch CUDA graph in one process hits an illegal memory access.

The first six probes all passed on an H200 (benchmarks/results/h200/probe_cuda_graph.txt);
the seventh (torch.compile first) has not run yet.

On an H200 (jax 0.11.2, torch 2.11.0+cu130) the MLP comparison's CUDA-graph peer failed with
``CUDA_ERROR_ILLEGAL_ADDRESS`` on its first replay after a ganjax step, poisoning the process
(every later JAX call failed too), while the DCGAN comparisons ran. Each probe runs in a fresh
process and prints one line: ok, or the error.

    python3 -m benchmarks.probe_cuda_graph          # all probes (GPU machine)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

PROBES = {
    'torch graph alone (MLP)': ('torch_only', {}),
    'ganjax step, then torch capture and replays (the harness order)': ('mixed', {}),
    'same, XLA command buffers off': (
        'mixed', {'XLA_FLAGS': '--xla_gpu_enable_command_buffer='}),
    'same, capture_error_mode=thread_local': ('mixed', {'PROBE_CAPTURE_MODE': 'thread_local'}),
    'same, DCGAN-32': ('mixed', {'PROBE_MODEL': 'dcgan32'}),
    'same, CUDA_LAUNCH_BLOCKING=1 (the failing kernel)': ('mixed', {'CUDA_LAUNCH_BLOCKING': '1'}),
    # Both crashed processes had run torch.compile (reduce-overhead: CUDA-graph trees) first.
    'torch.compile peer first, then the harness order': ('mixed', {'PROBE_COMPILE_FIRST': '1'}),
}


def _probe(kind: str) -> None:
  import torch  # pylint: disable=g-import-not-at-top
  from benchmarks import cases, torch_reference as ref  # pylint: disable=g-import-not-at-top
  mode = os.environ.get('PROBE_CAPTURE_MODE')
  if mode:  # the capture of torch_reference._graphed, with this error mode
    original = torch.cuda.graph
    torch.cuda.graph = lambda g, **kw: original(g, capture_error_mode=mode, **kw)
  model = os.environ.get('PROBE_MODEL', 'mlp')
  if kind == 'torch_only':
    gen, disc, z_dim = ref.make_models('mlp', (2,))
    step = ref.make_step(gen, disc, z_dim, device='cuda', variant='cuda_graph')
    real = torch.rand(512, 2, device='cuda')
    for _ in range(20):
      step(real)
    t = time.perf_counter()
    for _ in range(200):
      step(real)
    print(f'  {(time.perf_counter() - t) / 200 * 1e3:.3f} ms per replayed step (batch 512)')
    return
  run = cases.JaxStep(model, overrides=cases.GPU_SIZES[model])
  if os.environ.get('PROBE_COMPILE_FIRST'):
    compiled, _ = cases._torch_step(run, 'compile')  # pylint: disable=protected-access
    for _ in range(5):
      compiled()
      run.blocking_step()
  fn, _ = cases._torch_step(run, 'cuda_graph')  # pylint: disable=protected-access
  fn()  # capture + first replay
  for i in range(5):
    run.blocking_step()
    fn()
    print(f'  round {i} ok', flush=True)


def main() -> None:
  if len(sys.argv) > 1:
    _probe(sys.argv[1])
    return
  for name, (kind, env) in PROBES.items():
    try:
      proc = subprocess.run([sys.executable, '-m', 'benchmarks.probe_cuda_graph', kind],
                            env={**os.environ, **env}, capture_output=True, text=True,
                            timeout=90, check=False)
    except subprocess.TimeoutExpired:
      print(f'{name}: no result within 90 s', flush=True)
      continue
    err = [l for l in proc.stderr.splitlines() if 'Error' in l or 'error' in l]
    print(f'{name}: ' + ('ok ' + proc.stdout.strip() if proc.returncode == 0 else
                         f'FAILED ({proc.returncode}): ' + ' | '.join(err[-3:])[:600]),
          flush=True)
    if proc.returncode and env.get('CUDA_LAUNCH_BLOCKING'):
      print(proc.stderr[-3000:])


if __name__ == '__main__':
  main()
