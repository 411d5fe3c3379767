"""The benchmark cases: configs, timing helpers and one generator per case kind.

Each ``case_*`` function runs inside a `benchmarks.bench` worker process and yields
JSON-able records; `CASES` maps a case kind to its function.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import resource
import shutil
import signal
import tempfile
import sys
import time
from typing import Any, Callable, Iterator

from benchmarks import flops

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# model key -> (config module, example shape (None: the dataset's own), fixed fields)
TEN_PER_CALL = {'steps_per_call': 10}  # amortises dispatch and input copies over 10 steps
HUNDRED_PER_CALL = {'steps_per_call': 100}
# The accelerator targets' sizes (benchmarks/report.py): model -> overrides.
GPU_SIZES = {'dcgan32': {'batch_size': 512}, 'dcgan64': {'batch_size': 256}, 'mlp': {}}
BFLOAT16 = {'dtype': 'bfloat16'}
# torch.compile's mode for the PyTorch peer (benchmarks/torch_reference.py's docstring).
TORCH_COMPILE_MODE = 'reduce-overhead'

MODELS = {
    'mlp': ('ring', (2,), {'batch_size': 512}),
    'dcgan32': ('cifar10', (32, 32, 3), {'batch_size': 64}),
    'dcgan64': ('celeba64', (64, 64, 3), {'batch_size': 64}),
    'digits': ('digits', None, {'batch_size': 64}),
}

# ------------------------------------------------------------------- config --

class Skipped(Exception):
  """A case that cannot run here; the worker records it as skipped with this reason."""


def settings(quick: bool) -> dict:
  """Time budgets (seconds) and step counts of a quick or full run."""
  if quick:
    return dict(deadline_s=150, case_s=3.0, max_step_s=15.0, min_steps=3, max_steps=50,
                compare_reps=4, compare_s=8.0, io_batches=30, blocks=4, block_steps=10,
                saves=3, torch_compile_s=100.0)
  return dict(deadline_s=1140, case_s=15.0, max_step_s=70.0, min_steps=5, max_steps=300,
              compare_reps=8, compare_s=40.0, io_batches=200, blocks=8, block_steps=25,
              saves=5, torch_compile_s=300.0)


def plan(quick: bool, platform: str = 'cpu') -> list[tuple[int, list[dict]]]:
  """(device count, cases) per worker, ordered so that every kind of case gets time.

  On the CPU the workers fake 1, 2 and 8 devices. On an accelerator (`platform`
  'gpu' or 'tpu') three workers in turn use the real devices: the targets' cases (each
  DCGAN comparison with PyTorch at `GPU_SIZES`, then the same size in bfloat16; the MLP
  with 100 steps per call, and fed by the ring input); the MLP comparison alone; then the
  population sweeps, input, checkpoint and loss cases (digits needs a prepared TFDS
  directory: left out).
  """
  from ganjax import losses  # pylint: disable=g-import-not-at-top

  def sweep(model, names, pops):
    return ([dict(kind='compare', model=model)]
            + [dict(kind='step', model=model, loss=n) for n in names if n != 'classic']
            + [dict(kind='step', model=model, population=p) for p in pops])

  if platform != 'cpu':
    models = ('mlp', 'dcgan32') + (() if quick else ('dcgan64',))
    # Each DCGAN comparison is followed by its bfloat16 step, and the cheap MLP cases come
    # early. The MLP comparison runs in a worker process of its own: its CUDA-graph peer once
    # hit an illegal memory access that left its process's GPU context unusable, taking
    # every later case in that process down with it (benchmarks/probe_cuda_graph.py).
    bf16 = lambda m: dict(kind='step', model=m, overrides={**GPU_SIZES[m], **BFLOAT16})
    cases = [dict(kind='compare', model='dcgan32', overrides=GPU_SIZES['dcgan32']),
             bf16('dcgan32'), dict(kind='step', model='mlp', overrides=HUNDRED_PER_CALL),
             dict(kind='compare', model='dcgan64', overrides=GPU_SIZES['dcgan64']),
             bf16('dcgan64'),
             dict(kind='real_vs_synthetic', model='mlp', overrides=HUNDRED_PER_CALL)]
    rest = []
    if not quick:  # the default batch (64) of the image models
      rest += [dict(kind='compare', model=m) for m in ('dcgan32', 'dcgan64')]
    rest += [dict(kind='step', model=m, population=p) for m in models for p in (1, 4, 16)]
    rest += [dict(kind='input', dataset='ring'), dict(kind='real_vs_synthetic', model='mlp')]
    rest += [dict(kind='step', model='mlp', overrides=TEN_PER_CALL),
             dict(kind='real_vs_synthetic', model='mlp', overrides=TEN_PER_CALL)]
    rest += [dict(kind='checkpoint', model=m) for m in ('mlp', 'dcgan32')]
    rest += [dict(kind='step', model=m, loss=n) for m in models
             for n in (('wgan',) if quick else losses.names()) if n != 'classic']
    mlp_compare = [dict(kind='compare', model='mlp', overrides=GPU_SIZES['mlp'])]
    return [(None, cases), (None, mlp_compare), (None, rest)]
  io = [dict(kind='input', dataset=d) for d in ('ring', 'digits')]
  io += [dict(kind='real_vs_synthetic', model=m) for m in ('mlp', 'digits')]
  io += [dict(kind='step', model='mlp', overrides=TEN_PER_CALL),
         dict(kind='real_vs_synthetic', model='mlp', overrides=TEN_PER_CALL)]
  io += [dict(kind='checkpoint', model=m) for m in ('mlp',) + (() if quick else ('dcgan32',))]
  if quick:
    return [(1, sweep('mlp', ('wgan',), (4, 16))), (2, [dict(kind='step', model='mlp')]),
            (8, [dict(kind='step', model='mlp')]), (1, sweep('dcgan32', (), ())), (1, io)]
  names, pops = losses.names(), (4, 16)
  groups = [(1, sweep('mlp', names, pops)), (1, sweep('dcgan32', names, pops)), (1, io)]
  groups += [(d, [dict(kind='step', model=m) for m in ('mlp', 'dcgan32')]) for d in (2, 8)]
  groups += [(1, sweep('dcgan64', names, pops))]
  groups += [(d, [dict(kind='step', model='dcgan64')]) for d in (2, 8)]
  return groups


def make_config(model: str, loss: str = 'classic', population: int = 1,
                overrides: dict | None = None):
  """The model's config (configs/*.py) with `loss`, `population` and `overrides`, resolved
  (a `ganjax.resolve.Resolved`).

  `overrides` maps dotted field names to values, e.g. ``{'model_options.hidden': (32,)}``.
  """
  from ganjax.resolve import resolve_config  # pylint: disable=g-import-not-at-top
  if model not in MODELS:
    raise ValueError(f'unknown benchmark model {model!r}; valid: {", ".join(MODELS)}.')
  config = importlib.import_module(f'configs.{MODELS[model][0]}').get_config()
  fields = {'loss': loss, 'population': population, **MODELS[model][2], **(overrides or {})}
  if 'dtype' in fields and 'dtype' not in config:
    raise Skipped(f"dtype={fields['dtype']}: this ganjax's config has no 'dtype' field yet "
                  '(no bfloat16 compute)')
  config.update_from_flattened_dict(
      {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
  return resolve_config(config)


# ------------------------------------------------------------------ timing --

def median(xs: list[float]) -> float:
  xs = sorted(xs)
  n = len(xs)
  if not n:
    raise ValueError('median of no measurements.')
  return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def time_calls(fn: Callable[[], Any], n: int) -> list[float]:
  """Seconds of each of `n` calls of `fn` (which must block until its work is done)."""
  out = []
  for _ in range(n):
    t = time.perf_counter()
    fn()
    out.append(time.perf_counter() - t)
  return out


def peak_rss_mb() -> float:
  """This process's peak resident memory so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return round(rss / (2**20 if sys.platform == 'darwin' else 2**10), 1)


class JaxStep:
  """A compiled train step on the default mesh, with its own (donated) state."""

  def __init__(self, model: str, loss: str = 'classic', population: int = 1, dataset=None,
               overrides: dict | None = None):
    import jax  # pylint: disable=g-import-not-at-top
    import numpy as np  # pylint: disable=g-import-not-at-top
    from ganjax import parallel, train  # pylint: disable=g-import-not-at-top
    resolved = make_config(model, loss, population, overrides)
    self.config = resolved.config
    self.mesh = parallel.make_mesh()
    parallel.check_batch(self.config.batch_size, self.mesh)
    shape = MODELS[model][1] or dataset.example_shape
    exp = train.build(resolved, shape, self.mesh)
    c = self.config
    k = c.steps_per_call  # one call runs k steps on k stacked batches
    if dataset is not None:
      host = dataset.call_batch(0, k)
    else:
      rng = np.random.default_rng(0)
      host = rng.uniform(-1, 1, (k, c.n_dis, c.batch_size) + shape).astype(np.float32)
      host = host if k > 1 else host[0]
    self.batch = parallel.batch_sharder(self.mesh, k)(host)
    self.state, self.penalty_weight = exp.state, exp.penalty_weight
    t = time.perf_counter()
    self.compiled = exp.step_fn.lower(self.state, self.batch, self.penalty_weight).compile()
    self.compile_s = time.perf_counter() - t
    self.metrics = None
    self._jax = jax
    gflop = flops.step_flops(c, shape)
    self.info = dict(model=model, loss=c.loss, penalty=c.penalty, n_dis=c.n_dis,
                     population=c.population, steps_per_call=k, devices=jax.device_count(),
                     device_kind=jax.devices()[0].device_kind,
                     batch_size=c.batch_size, dtype=c.get('dtype', 'float32'),
                     example_shape=list(shape),
                     gflop=None if gflop is None else _sig(gflop / 1e9, 5))
    if gflop is None:
      self.info['gflop_note'] = flops.unsupported(c)

  def step(self, batch=None) -> None:
    """One step, not waited for."""
    self.state, self.metrics = self.compiled(
        self.state, self.batch if batch is None else batch, self.penalty_weight)

  def sync(self) -> None:
    self._jax.block_until_ready((self.state, self.metrics))

  def blocking_step(self) -> None:
    self.step()
    self.sync()


class Budget:
  """How many steps fit a time budget, and the worker's deadline."""

  def __init__(self, s: dict, deadline: float):
    self.s, self.deadline = s, deadline

  def left(self) -> float:
    return self.deadline - time.time()

  def steps(self, step_s: float, budget_s: float | None = None) -> int:
    n = int((budget_s or self.s['case_s']) / max(step_s, 1e-6))
    n = min(n, int(0.5 * self.left() / max(step_s, 1e-6)))
    return max(self.s['min_steps'] if step_s < 1 else 1, min(self.s['max_steps'], n))

  def warmup(self, fn: Callable[[], None], max_calls: int = 6) -> float:
    """Calls `fn` at least twice, until a call is no longer much faster than the one
    before (first-call work such as cuDNN's autotuning done) or takes over 5 s, at most
    `max_calls` times; returns the last call's seconds."""
    t = time_calls(fn, 1)[0]
    for _ in range(max_calls - 1):
      previous, t = t, time_calls(fn, 1)[0]
      if t > 0.7 * previous or t > 5.0:
        break
    return t


# -------------------------------------------------------------------- cases --

def case_step(spec: dict, budget: Budget) -> Iterator[dict]:
  """The compiled step on synthetic input: compile time and median step time."""
  run = JaxStep(spec['model'], spec.get('loss', 'classic'), spec.get('population', 1),
                overrides=spec.get('overrides'))
  warm = budget.warmup(run.blocking_step)
  times = time_calls(run.blocking_step, budget.steps(warm))
  yield step_record(run, times)


def _sig(x: float, digits: int = 4) -> float:
  """`x` rounded to `digits` significant digits."""
  return float(f'{x:.{digits}g}')


def step_record(run: JaxStep, times: list[float], **extra) -> dict:
  """Times of calls -> per-step milliseconds (a call runs ``steps_per_call`` steps)."""
  ms = sorted(t * 1e3 / run.info['steps_per_call'] for t in times)
  return dict(kind='step', **run.info, input='synthetic', per='generator step',
              compile_s=round(run.compile_s, 3), steps=len(ms),
              step_ms=round(median(ms), 3), step_ms_min=round(ms[0], 3),
              step_ms_max=round(ms[-1], 3), peak_rss_mb=peak_rss_mb(), **extra)


def case_compare(spec: dict, budget: Budget) -> Iterator[dict]:
  """ganjax vs PyTorch on the same batch, repetitions interleaved: PyTorch eager on the
  CPU; on a GPU also the step captured as one CUDA graph and under torch.compile (each
  where it sets up, torch.compile within ``torch_compile_s``). The ratio is to the
  fastest PyTorch variant; every variant's time is recorded."""
  import jax  # pylint: disable=g-import-not-at-top
  run = JaxStep(spec['model'], overrides=spec.get('overrides'))
  variants = ('eager',) + (('cuda_graph', 'compile') if jax.default_backend() == 'gpu' else ())
  peers, setup_s, skipped, info = {}, {}, {}, {}
  for variant in variants:
    limit = min(budget.s['torch_compile_s'], 0.5 * budget.left())
    t = time.perf_counter()
    try:
      with _time_limit(limit if variant == 'compile' else None):
        fn, info = _torch_step(run, variant)
        time_calls(fn, 3 if variant == 'compile' else 1)  # compile / capture, CUDA graphs
      peers[variant], setup_s[variant] = fn, round(time.perf_counter() - t, 2)
    except ImportError as e:
      skipped[variant] = f'PyTorch unavailable: {e}'
      break
    except Exception as e:  # pylint: disable=broad-except
      skipped[variant] = f'{type(e).__name__}: {e}'[:300]
  if not peers:
    warm = budget.warmup(run.blocking_step)
    yield step_record(run, time_calls(run.blocking_step, budget.steps(warm)))
    yield dict(kind='compare', model=spec['model'], batch_size=run.info['batch_size'],
               skipped='; '.join(f'{v}: {why}' for v, why in skipped.items()))
    return
  tj = budget.warmup(run.blocking_step)
  tt = sum(budget.warmup(fn) for fn in peers.values())
  reps = budget.s['compare_reps']
  k = budget.steps(reps * (tj + tt), budget.s['compare_s'])
  jax_times, times, rep_ratios = [], {v: [] for v in peers}, []
  for _ in range(reps):
    j = time_calls(run.blocking_step, k)
    jax_times += j
    rep = {v: time_calls(fn, k) for v, fn in peers.items()}
    for v, t in rep.items():
      times[v] += t
    rep_ratios.append(median(j) / min(median(t) for t in rep.values()))
  ms = {v: round(median(t) * 1e3, 3) for v, t in times.items()}
  best = min(ms, key=ms.get)
  jax_ms = median(jax_times) * 1e3
  yield step_record(run, jax_times, interleaved_with='torch')
  yield dict(kind='compare', **run.info, reps=reps, steps_per_rep=k,
             ganjax_ms=round(jax_ms, 3), torch_ms=ms[best], torch_variant=best,
             torch_variants_ms=ms, torch_setup_s=setup_s, torch_skipped=skipped,
             ratio=_sig(jax_ms / ms[best]), rep_ratio_min=_sig(min(rep_ratios)),
             rep_ratio_max=_sig(max(rep_ratios)), **info, peak_rss_mb=peak_rss_mb())


@contextlib.contextmanager
def _time_limit(seconds: float | None):
  """Raises TimeoutError in the main thread after `seconds` (None: no limit)."""
  if seconds is None:
    yield
    return
  if seconds <= 0:
    raise TimeoutError('no time left in the budget')

  def on_alarm(*_):
    raise TimeoutError(f'did not finish within {seconds:.0f} s')
  previous = signal.signal(signal.SIGALRM, on_alarm)
  signal.setitimer(signal.ITIMER_REAL, seconds)
  try:
    yield
  finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def _torch_step(run: JaxStep, variant: str = 'eager') -> tuple[Callable[[], None], dict]:
  """The PyTorch reference step (`variant`: torch_reference.VARIANTS) for `run`'s config,
  on `run`'s batch; equal parameter counts."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from benchmarks import torch_reference as ref  # pylint: disable=g-import-not-at-top
  c = run.config
  if c.loss != 'classic' or c.penalty != 'none' or c.n_dis != 1:
    raise ValueError('the PyTorch reference implements the classic loss only.')
  if c.steps_per_call != 1 or c.get('dtype', 'float32') != 'float32':
    raise ValueError('the PyTorch reference runs one float32 step per call; compare with '
                     'steps_per_call=1 and dtype float32.')
  opts = {k: v for k, v in c.model_options.to_dict().items() if v is not None}
  gen, disc, z_dim = ref.make_models(c.model, tuple(run.info['example_shape']), **opts)
  members = jax.tree_util.tree_map(lambda x: x[0], run.state['members'])
  counts = {side: sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(members[k]))
            for side, k in (('generator', 'g_params'), ('discriminator', 'd_params'))}
  torch_counts = {'generator': ref.param_count(gen), 'discriminator': ref.param_count(disc)}
  if counts != torch_counts:
    raise AssertionError(f'parameter counts differ: ganjax {counts}, PyTorch {torch_counts}.')
  g_opt, d_opt = c.g_optimizer.to_dict(), c.d_optimizer.to_dict()
  if (g_opt['name'], d_opt['name']) != ('adam', 'adam') or any(
      g_opt[k] != d_opt[k] for k in ('b1', 'b2')):
    raise ValueError('the PyTorch reference uses Adam with the same betas for G and D.')
  device = 'cpu'
  if jax.default_backend() == 'gpu':
    if not torch.cuda.is_available():
      raise ImportError('JAX runs on a GPU but this PyTorch build sees no CUDA device')
    device = 'cuda'
    # XLA's default float32 precision on NVIDIA GPUs uses TF32 for dots and convolutions;
    # let cuBLAS/cuDNN do the same, and let cuDNN pick its algorithms as XLA autotunes.
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
  step = ref.make_step(gen, disc, z_dim, ema_decay=c.ema_decay, g_lr=g_opt['learning_rate'],
                       d_lr=d_opt['learning_rate'], betas=(g_opt['b1'], g_opt['b2']),
                       device=device, variant=variant, compile_mode=TORCH_COMPILE_MODE)
  real = ref.to_torch_batch(np.asarray(run.batch)[0], device)
  info = dict(torch_version=torch.__version__, torch_threads=torch.get_num_threads(),
              torch_device=device if device == 'cpu' else torch.cuda.get_device_name(),
              omp_wait_policy=os.environ.get('OMP_WAIT_POLICY', ''),
              params_generator=counts['generator'],
              params_discriminator=counts['discriminator'])
  return lambda: step(real), info


def case_input(spec: dict, budget: Budget) -> Iterator[dict]:
  """Batches per second of ``Dataset.batch(step)`` alone and through `data.prefetch`."""
  from ganjax import data  # pylint: disable=g-import-not-at-top
  c = make_config('mlp' if spec['dataset'] == 'ring' else spec['dataset'],
                  overrides=spec.get('overrides')).config
  dataset = data.Dataset(c.dataset, c.batch_size, c.n_dis, c.data_seed)
  n = budget.s['io_batches']
  dataset.batch(0)
  steps = iter(range(1, n + 1))
  direct = time_calls(lambda: dataset.batch(next(steps)), n)
  batches = data.prefetch(dataset, 0)
  next(batches)
  t = time.perf_counter()
  for _ in range(n):
    next(batches)
  prefetched = (time.perf_counter() - t) / n
  batches.close()
  for mode, s in (('batch', median(direct)), ('prefetch', prefetched)):
    yield dict(kind='input', dataset=c.dataset, mode=mode, batch_size=c.batch_size,
               n_dis=c.n_dis, batches=n, ms_per_batch=round(s * 1e3, 4),
               batches_per_s=round(1 / s, 1), examples_per_s=round(c.batch_size / s))


def case_real_vs_synthetic(spec: dict, budget: Budget) -> Iterator[dict]:
  """Step throughput fed by prefetch (batch + shard_batch in its thread) vs the reused
  synthetic batch."""
  from ganjax import data, parallel  # pylint: disable=g-import-not-at-top
  c = make_config(spec['model'], overrides=spec.get('overrides')).config
  dataset = data.Dataset(c.dataset, c.batch_size, c.n_dis, c.data_seed)
  run = JaxStep(spec['model'], dataset=dataset, overrides=spec.get('overrides'))
  per_call = run.info['steps_per_call']
  batches = data.prefetch(dataset, 0, steps=per_call,
                          put=parallel.batch_sharder(run.mesh, per_call))

  def real_step():
    run.step(next(batches))

  budget.warmup(lambda: (real_step(), run.sync()))
  budget.warmup(run.blocking_step)
  k = budget.s['block_steps']

  def block(fn) -> float:
    t = time.perf_counter()
    for _ in range(k):
      fn()
    run.sync()
    return k * per_call / (time.perf_counter() - t)

  real, synthetic = [], []
  for _ in range(budget.s['blocks']):
    real.append(block(real_step))
    synthetic.append(block(run.step))
  batches.close()
  r, s = median(real), median(synthetic)
  yield dict(kind='real_vs_synthetic', **run.info, dataset=c.dataset, blocks=len(real),
             steps_per_block=k, real_steps_per_s=round(r, 3), synthetic_steps_per_s=round(s, 3),
             overhead=_sig(1 - r / s), peak_rss_mb=peak_rss_mb())


def case_checkpoint(spec: dict, budget: Budget) -> Iterator[dict]:
  """Save + wait time, and how long ``save()`` blocks the loop against one step."""
  from absl import logging  # pylint: disable=g-import-not-at-top
  from ganjax import checkpoint  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)
  run = JaxStep(spec['model'], overrides=spec.get('overrides'))
  warm = budget.warmup(run.blocking_step)
  step_times = time_calls(run.blocking_step, budget.steps(warm))
  root = tempfile.mkdtemp(prefix='ganjax_bench_ckpt_')
  ckpt = checkpoint.Checkpointer(os.path.join(root, 'checkpoints'), every=1, keep=2)
  meta = lambda i: {'step': i, 'data_position': i, 'config': run.config.to_json()}
  calls, totals, during = [], [], []
  try:
    for i in range(budget.s['saves'] + 1):  # the first is a warm-up
      run.blocking_step()
      t = time.perf_counter()
      ckpt.save(2 * i + 1, run.state, meta(2 * i + 1), force=True)
      call = time.perf_counter() - t
      ckpt.wait()
      total = time.perf_counter() - t
      run.blocking_step()
      t = time.perf_counter()
      ckpt.save(2 * i + 2, run.state, meta(2 * i + 2), force=True)
      call2 = time.perf_counter() - t
      during_s = time_calls(run.blocking_step, 1)[0]  # a step while the save writes
      ckpt.wait()
      if i:
        calls += [call, call2]
        totals.append(total)
        during.append(during_s)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in
               os.walk(os.path.join(root, 'checkpoints', str(2 * budget.s['saves'] + 2)))
               for f in fs)
  finally:
    ckpt.close()
    shutil.rmtree(root, ignore_errors=True)
  step_ms, call_ms = median(step_times) * 1e3, median(calls) * 1e3
  yield dict(kind='checkpoint', **run.info, saves=len(totals), checkpoint_bytes=size,
             save_call_ms=round(call_ms, 3), save_call_ms_max=round(max(calls) * 1e3, 3),
             save_and_wait_ms=round(median(totals) * 1e3, 3), step_ms=round(step_ms, 3),
             step_during_save_ms=round(median(during) * 1e3, 3),
             blocks_steps=_sig(call_ms / step_ms), peak_rss_mb=peak_rss_mb())


CASES = {'step': case_step, 'compare': case_compare, 'input': case_input,
         'real_vs_synthetic': case_real_vs_synthetic, 'checkpoint': case_checkpoint}
