"""Where a train step's time goes: a `jax.profiler` trace of a few steps, summed per op.

    .venv/bin/python -m benchmarks.profile_step --model dcgan32 --batch 512 [--dtype bfloat16]

Compiles the harness's step (`benchmarks.cases.JaxStep`, synthetic input), runs it a few
times, traces `--steps` steps, and reads the trace back with `jax.profiler.ProfileData`.
It prints, per profiled device plane (the GPU's streams, or the CPU's XLA threads), the ops
that take the most time (summed over the traced steps and divided by their count), grouped
by a coarse kind (convolution, matmul, fusion, copy/transpose, reduction, other), next to
the step's wall time. On a GPU the kernel names are what CUPTI reports (cuDNN / cuBLAS /
XLA fusions); on a CPU the names are HLO ops.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KINDS = (  # first match wins
    ('convolution', re.compile(r'conv(?!ert)|cudnn|implicit_gemm|xmma_fprop|xmma_dgrad|'
                               r'xmma_wgrad|fprop|dgrad|wgrad', re.I)),  # not XLA's converts
    ('matmul', re.compile(r'gemm|dot|cublas|cutlass|sm90_xmma|matmul', re.I)),
    ('copy/transpose', re.compile(r'copy|transpose|memcpy|memset', re.I)),
    ('reduction', re.compile(r'reduce|reduction', re.I)),
    ('fusion', re.compile(r'fusion|loop_|input_|triton', re.I)),
)


def kind_of(name: str) -> str:
  for kind, pattern in KINDS:
    if pattern.search(name):
      return kind
  return 'other'


def op_times(trace_dir: str) -> dict[str, collections.Counter]:
  """{plane and line group: Counter(op name -> total seconds)} from the newest trace.

  A device plane gives two views: its 'XLA Ops' line (HLO ops, as XLA named them) and its
  stream lines (the kernels CUPTI saw: cuDNN, cuBLAS, XLA's own). The host plane gives
  XLA:CPU's ops, without the runtime's wrappers around them.
  """
  import jax  # pylint: disable=g-import-not-at-top
  files = sorted(glob.glob(os.path.join(trace_dir, '**', '*.xplane.pb'), recursive=True),
                 key=os.path.getmtime)
  if not files:
    raise FileNotFoundError(f'no *.xplane.pb under {trace_dir}')
  data = jax.profiler.ProfileData.from_file(files[-1])
  groups = collections.defaultdict(collections.Counter)
  for plane in data.planes:
    device = plane.name.startswith('/device:')
    if not device and plane.name != '/host:CPU':
      continue
    for line in plane.lines:
      if device:
        if line.name == 'XLA Ops':
          group = f'{plane.name} HLO ops'
        elif line.name.startswith('Stream'):
          group = f'{plane.name} kernels'
        else:
          continue  # modules, steps, launch summaries
      elif re.search(r'XLA|tf_Compute|Eigen', line.name):
        group = f'{plane.name} XLA ops'
      else:
        continue
      for event in line.events:
        if not event.name.startswith('ThunkExecutor'):
          groups[group][event.name] += event.duration_ns * 1e-9
  return {k: v for k, v in groups.items() if v}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--model', default='dcgan32')
  parser.add_argument('--batch', type=int, default=512)
  parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'))
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--top', type=int, default=15)
  parser.add_argument('--trace_dir', default=None, help='keep the trace here')
  args = parser.parse_args(argv)
  import jax  # pylint: disable=g-import-not-at-top
  from benchmarks.cases import JaxStep  # pylint: disable=g-import-not-at-top

  run = JaxStep(args.model, overrides={'batch_size': args.batch, 'dtype': args.dtype})
  for _ in range(5):
    run.blocking_step()
  t = time.perf_counter()
  for _ in range(args.steps):
    run.step()
  run.sync()
  wall_ms = (time.perf_counter() - t) / args.steps * 1e3
  trace_dir = args.trace_dir or tempfile.mkdtemp(prefix='ganjax_profile_')
  with jax.profiler.trace(trace_dir):
    for _ in range(args.steps):
      run.step()
    run.sync()
  gflop = run.info.get('gflop')
  print(f'{args.model} batch {args.batch} {args.dtype} on {jax.devices()[0].device_kind}: '
        f'{wall_ms:.3f} ms per step untraced'
        + (f', {gflop:.1f} GFLOP by hand, {gflop / wall_ms:.1f} TFLOP/s' if gflop else ''))
  for plane, totals in op_times(trace_dir).items():
    per_step = {name: s / args.steps * 1e3 for name, s in totals.items()}
    busy = sum(per_step.values())
    print(f'\n{plane}: {busy:.3f} ms of op time per step ({len(per_step)} distinct ops)')
    by_kind = collections.Counter()
    for name, ms in per_step.items():
      by_kind[kind_of(name)] += ms
    for kind, ms in by_kind.most_common():
      print(f'  {kind:15s} {ms:8.3f} ms  {100 * ms / busy:5.1f}%')
    print(f'  top {args.top} ops (ms per step):')
    for name, ms in sorted(per_step.items(), key=lambda kv: -kv[1])[:args.top]:
      print(f'    {ms:8.3f}  {kind_of(name):14s} {name[:110]}')


if __name__ == '__main__':
  main()
