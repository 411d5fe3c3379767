"""Benchmark harness: the compiled train step, input pipeline, checkpoints, PyTorch.

    python -m benchmarks.bench [--quick] [--out DIR] [--only KIND,...]   # or: ./run.sh bench ...

Writes ``DIR/bench_{quick,full}.jsonl`` (one JSON record per measurement) and
``DIR/bench_{quick,full}.md`` (tables and the targets); DIR defaults to
``benchmarks/results``. ``--only input,checkpoint`` runs only those kinds of
case (step, compare, input, real_vs_synthetic, checkpoint) and adds them to
the file names. Cases run in one worker subprocess per device count
(1, 2, 8 fake CPU devices: ``XLA_FLAGS=--xla_force_host_platform_device_count``
must be set before JAX starts), so their peak memory is also separate.

Method:

* step: the config's step compiled ahead of time (``lower().compile()``, the
  compile time), a warm-up, then the median of many steps, each timed to
  ``jax.block_until_ready`` of the new state, on a synthetic batch (one device
  array, reused). WGAN runs ``n_dis`` = 5 discriminator updates per step, so
  every time is per *generator* step. Step counts follow a time budget, and
  a case predicted to be too slow for the budget is recorded as skipped.
* PyTorch: `benchmarks/torch_reference.py` (same models, same step), with
  repetitions interleaved with ganjax's in one process: k ganjax steps, k
  steps of each PyTorch variant, repeated. The variants: eager; on a GPU also
  the step captured as one CUDA graph and torch.compile (skipped, with the
  reason, where it fails or does not compile within ``torch_compile_s``).
  ratio = median ganjax time / median time of the fastest variant.
* FLOPs: counted by hand from the model shapes (`benchmarks/flops.py`); the
  report gives achieved TFLOP/s and the share of the chip's dense peak for the
  compute dtype (GFLOP/s on the CPU).
* input: ``Dataset.batch(step)`` and `data.prefetch` alone; then the step fed
  by prefetch + `parallel.shard_batch` against the reused synthetic batch,
  in interleaved blocks of steps (throughput of a block, as the train loop).
* checkpoint: `checkpoint.Checkpointer` save + wait, and the time the async
  ``save()`` call blocks the loop against one step's time.
* memory: ``ru_maxrss`` of the worker after each case (its peak so far).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform as host
import signal
import subprocess
import sys
import tempfile
import time
from typing import Iterator

from benchmarks.cases import CASES, MODELS, REPO, Budget, Skipped, plan, settings
from benchmarks.report import markdown, one_line, targets

DEFAULT_OUT = os.path.join(REPO, 'benchmarks', 'results')
PREFIX = 'BENCH '  # worker stdout lines carrying a JSON record
_JAX_PLATFORMS = {'cpu': 'cpu', 'gpu': 'cuda', 'tpu': 'tpu'}  # --platform -> JAX_PLATFORMS



# ------------------------------------------------------------------- worker --

def predicted_step_s(spec: dict, measured: dict) -> float | None:
  """A step-time guess from the model's measured classic population-1 step, or None."""
  base = measured.get(spec.get('model'))
  if base is None or spec['kind'] not in ('step', 'checkpoint'):
    return None
  factor = spec.get('population', 1)
  if spec.get('loss') == 'wgan':
    factor *= 5  # n_dis 5 and a double-backward penalty: at least 5 D updates
  return base * factor


def _is_base_step(r: dict) -> bool:
  """A measured classic, population-1, float32 step of the model's default batch, one step
  per call: the base of `predicted_step_s`."""
  return (r.get('kind') == 'step' and 'step_ms' in r and r.get('population') == 1
          and r.get('loss') == 'classic' and r.get('steps_per_call', 1) == 1
          and r.get('dtype', 'float32') == 'float32'
          and r.get('batch_size') == MODELS.get(r.get('model'), (0, 0, {}))[2].get('batch_size'))


def worker(spec: dict) -> None:
  """Runs `spec['cases']` in this process, printing one record per line."""
  from absl import logging  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)
  s, measured = spec['settings'], dict(spec.get('measured', {}))
  budget = Budget(s, spec['deadline'])
  emit = lambda r: print(PREFIX + json.dumps(r), flush=True)
  if spec['devices'] is None:
    spec['devices'] = jax.device_count()
  elif jax.device_count() != spec['devices']:
    raise RuntimeError(f'worker has {jax.device_count()} devices, expected {spec["devices"]}; '
                       'XLA_FLAGS must be set before JAX starts.')
  for case in spec['cases']:
    guess = predicted_step_s(case, measured)
    need = 3 * guess if guess is not None else 0.0
    reason = None
    if guess is not None and guess > s['max_step_s']:
      reason = f'predicted {guess:.1f} s/step > limit {s["max_step_s"]:.0f} s'
    elif need > budget.left():
      reason = f'predicted {need:.0f} s > {budget.left():.0f} s left of the time budget'
    elif budget.left() <= 0:
      reason = 'time budget spent'
    if reason:
      emit(dict(case, devices=spec['devices'], skipped=reason))
      continue
    t = time.perf_counter()
    try:
      for record in CASES[case['kind']](case, budget):
        record.setdefault('devices', spec['devices'])
        record['load_avg_1m'] = round(os.getloadavg()[0], 2)
        if _is_base_step(record):
          measured[record['model']] = record['step_ms'] / 1e3
        emit(record)
    except Skipped as e:
      emit(dict(case, devices=spec['devices'], skipped=str(e)))
    except Exception as e:  # pylint: disable=broad-except
      emit(dict(case, devices=spec['devices'], error=f'{type(e).__name__}: {e}'))
    print(f'bench: {case} took {time.perf_counter() - t:.1f}s', file=sys.stderr, flush=True)


# ------------------------------------------------------------- orchestrator --

def run_worker(devices: int | None, cases: list[dict], s: dict, deadline: float,
               measured: dict, platform: str = 'cpu') -> Iterator[dict]:
  """Runs one worker subprocess; yields its records.

  On the CPU it gets `devices` fake devices; on an accelerator (`devices` None)
  all of the platform's real ones.
  """
  flags = [f for f in os.environ.get('XLA_FLAGS', '').split()
           if not f.startswith('--xla_force_host_platform_device_count')]
  if platform == 'cpu':
    flags.append(f'--xla_force_host_platform_device_count={devices}')
  env = dict(os.environ, JAX_PLATFORMS=_JAX_PLATFORMS[platform], OMP_WAIT_POLICY=os.environ.get(
      'OMP_WAIT_POLICY', 'PASSIVE'), PYTHONPATH=os.pathsep.join(
      p for p in (REPO, os.environ.get('PYTHONPATH')) if p), XLA_FLAGS=' '.join(flags))
  spec = dict(devices=devices, cases=cases, settings=s, deadline=deadline, measured=measured)
  with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
    json.dump(spec, f)
  proc = subprocess.Popen([sys.executable, '-m', 'benchmarks.bench', '--worker', f.name], cwd=REPO,
                          env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
  got = 0
  try:
    with _kill_after(proc, deadline - time.time() + 120):
      for line in proc.stdout:
        if line.startswith(PREFIX):
          got += 1
          yield json.loads(line[len(PREFIX):])
        else:
          sys.stderr.write(line)
    proc.wait()
  finally:
    os.unlink(f.name)
  if proc.returncode:
    yield dict(kind='error', devices=devices, returncode=proc.returncode, records=got,
               error=f'worker for {devices} device(s) exited with {proc.returncode}')


@contextlib.contextmanager
def _kill_after(proc: subprocess.Popen, seconds: float):
  """Kills `proc`'s process group (this harness started it) if it outlives `seconds`."""
  def on_alarm(*_):
    os.killpg(proc.pid, signal.SIGKILL)
  previous = signal.signal(signal.SIGALRM, on_alarm)
  signal.alarm(max(1, int(seconds)))
  try:
    yield
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def environment(quick: bool, platform: str = 'cpu') -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import flax  # pylint: disable=g-import-not-at-top
  try:
    import torch  # pylint: disable=g-import-not-at-top
    torch_version = torch.__version__
  except ImportError:
    torch_version = None
  return dict(kind='env', mode='quick' if quick else 'full', platform=platform,
              jax=jax.__version__,
              flax=flax.__version__, torch=torch_version, python=host.python_version(),
              cpu_count=os.cpu_count(), machine=host.machine(), system=host.system(),
              xla_flags=os.environ.get('XLA_FLAGS', ''),
              load_avg_1m=round(os.getloadavg()[0], 2),
              date=time.strftime('%Y-%m-%d %H:%M:%S %z'),
              command=' '.join(['python -m benchmarks.bench'] + sys.argv[1:]))


def run_all(quick: bool, out: str, groups=None, s: dict | None = None,
            only: tuple[str, ...] = (), platform: str = 'cpu') -> list[dict]:
  """Runs every group (or only cases of the kinds `only`), writes the JSON lines and the
  markdown (``bench_{quick,full}[_PLATFORM][_KINDS].{jsonl,md}`` in `out`; no PLATFORM
  part for the CPU); returns the records."""
  if platform not in _JAX_PLATFORMS:
    raise ValueError(f'unknown platform {platform!r}; valid: {", ".join(_JAX_PLATFORMS)}.')
  unknown = set(only) - set(CASES)
  if unknown:
    raise ValueError(f'unknown case kinds {sorted(unknown)}; valid: {", ".join(CASES)}.')
  s = s or settings(quick)
  start = time.time()
  deadline = start + s['deadline_s']
  records, measured = [environment(quick, platform)], {}
  groups = [(d, [c for c in cases if not only or c['kind'] in only])
            for d, cases in groups or plan(quick, platform)]
  for devices, cases in [(d, cases) for d, cases in groups if cases]:
    for record in run_worker(devices, cases, s, deadline, measured, platform):
      records.append(record)
      print('bench:', one_line(record), file=sys.stderr, flush=True)
      if _is_base_step(record) and record.get('devices') == 1:
        measured[record['model']] = record['step_ms'] / 1e3
  records.append(dict(kind='total', wall_s=round(time.time() - start, 1),
                      load_avg_1m=round(os.getloadavg()[0], 2)))
  records += targets(records)
  os.makedirs(out, exist_ok=True)
  name = os.path.join(out, ('bench_quick' if quick else 'bench_full')
                      + ('' if platform == 'cpu' else f'_{platform}')
                      + ''.join(f'_{k}' for k in only))
  with open(name + '.jsonl', 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in records)
  with open(name + '.md', 'w') as f:
    f.write(markdown(records))
  print(f'bench: wrote {name}.jsonl and {name}.md ({time.time() - start:.0f}s)', file=sys.stderr)
  return records


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog='python -m benchmarks.bench', description=__doc__.split(
      '\n')[0])
  parser.add_argument('--quick', action='store_true', help='fewer cases and steps (~2 min)')
  parser.add_argument('--out', default=DEFAULT_OUT, help='output directory')
  parser.add_argument('--only', default='', help='comma-separated case kinds to run: '
                      + ', '.join(CASES))
  parser.add_argument('--deadline_s', type=float, default=None,
                      help='overall time budget in seconds (default: 150 quick, 1140 full)')
  parser.add_argument('--platform', default='cpu', choices=sorted(_JAX_PLATFORMS),
                      help='cpu (fake 1, 2 and 8 devices) or the real devices of gpu/tpu')
  parser.add_argument('--worker', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.worker:
    with open(args.worker) as f:
      worker(json.load(f))
    return
  s = settings(args.quick)
  if args.deadline_s is not None:
    s['deadline_s'] = args.deadline_s
  run_all(args.quick, args.out, s=s, only=tuple(k for k in args.only.split(',') if k),
          platform=args.platform)


if __name__ == '__main__':
  main()
