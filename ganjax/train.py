"""`train_and_evaluate(config, workdir)`: the training loop around the step.

Read top to bottom, a run is:

1. resolve the config (`ganjax.resolve`: every bad value fails here, before compiling);
2. build the data, the evaluator, the models, the state and the compiled step;
3. restore the latest checkpoint in ``workdir``, or start from the initial state;
4. each call of the step: this process's slice of the global batch, read ahead and
   sharded over ``data`` in a thread (`ganjax.data.prefetch`) -> the compiled step
   (`ganjax.step`);
5. on their schedules: a progress line and TensorBoard scalars, samples and metrics
   (`ganjax.evaluator`), async checkpoints; on SIGTERM a final checkpoint and exit;
6. ``eval.json`` (`ganjax.summary`).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from typing import Any

import jax
import numpy as np
from absl import logging
from ml_collections import config_dict

from ganjax import checkpoint, data, models, parallel, step as step_lib, summary as summary_lib
from ganjax import workdir as workdir_lib
from ganjax.evaluator import Evaluator
from ganjax.resolve import Resolved, resolve_config
from ganjax.writer import MetricWriter


@dataclasses.dataclass
class Experiment:
  """What a resolved config builds: models, initial state, the compiled step."""
  pair: models.ModelPair
  state: Any            # replicated over the mesh
  step_fn: Any          # step_fn(state, sharded_batch, penalty_weight) -> (state, metrics);
                        # runs config.steps_per_call steps on a batch with that leading axis
  penalty_weight: Any   # replicated (population,)


def build(run: Resolved, example_shape: tuple[int, ...], mesh) -> Experiment:
  """Models, initial (replicated) state and the compiled step of a resolved config."""
  pair = run.model.make(tuple(example_shape), run.config.dtype, **run.model_options)
  state = parallel.replicate(step_lib.init_members(
      pair, run.step, example_shape, run.seeds, run.g_learning_rate, run.d_learning_rate), mesh)
  step_fn = step_lib.make_step(pair, run.step, mesh, run.config.steps_per_call)
  return Experiment(pair, state, step_fn, parallel.replicate(run.penalty_weight, mesh))


def train_and_evaluate(config: config_dict.ConfigDict, workdir: str) -> dict:
  """Trains (resuming from `workdir` if it holds a checkpoint); returns eval.json's content.

  Holds the workdir's lock (`ganjax.workdir`) throughout: another run on it fails at once.
  """
  run = resolve_config(config)
  check_workdir(workdir)
  with workdir_lib.lock(workdir, enabled=jax.process_index() == 0):
    return _train(run, workdir)


def _setup(run: Resolved) -> tuple[Any, data.Dataset, Evaluator, Experiment]:
  """The mesh, this process's data, the evaluator and the experiment of a resolved config."""
  config = run.config
  mesh = parallel.make_mesh()
  parallel.check_batch(config.batch_size, mesh, config.pack, config.g_bn_groups)
  dataset = data.Dataset(config.dataset, config.batch_size, config.n_dis, config.data_seed,
                         jax.process_index(), jax.process_count(), config.data_dir or None,
                         config.train_size)
  return mesh, dataset, Evaluator(config, dataset), build(run, dataset.example_shape, mesh)


def _train(run: Resolved, workdir: str) -> dict:
  config = run.config
  mesh, dataset, evaluator, exp = _setup(run)
  is_chief = jax.process_index() == 0
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'),
                                 config.checkpoint_every, config.keep_checkpoints)
  state, start, changes, earlier_s = _restore_or_initial(ckpt, exp.state, config)

  k, population = config.steps_per_call, config.population
  sampler, refresh = _samplers(exp, config)
  writer = MetricWriter(workdir, config.steps, enabled=is_chief)
  preemption = _Preemption()
  batches = data.prefetch(dataset, start, steps=k, put=parallel.batch_sharder(mesh, k))
  metrics, results, preempted, finished = None, [], False, False
  t_start = time.time()
  try:
    for done in range(start + k, config.steps + 1, k):
      queued = metrics
      state, metrics = exp.step_fn(state, next(batches), exp.penalty_weight)
      # One call queued behind the running one keeps the device busy; more would only delay
      # acting on SIGTERM (the final save waits for every call dispatched).
      jax.block_until_ready(queued)
      # Every step of the call is offered to JAX's preemption sync point, which every
      # process must reach at the same step.
      preempted = preemption.requested.is_set() or any(
          [ckpt.reached_preemption(s) for s in range(done - k + 1, done + 1)])
      last = done == config.steps
      saving = last or preempted or ckpt.should_save(done)
      if saving or done % config.log_every == 0:
        host_metrics = parallel.to_host(metrics)
        if not config.skip_nonfinite:  # never checkpoint a non-finite state
          _check_finite(parallel.to_host(state['members']['first_nonfinite']), host_metrics)
        if done % config.log_every == 0 or last:
          _log(writer, done, host_metrics, population)
      if done % config.eval_every == 0 or last:
        results = evaluator(sampler, parallel.to_host(state['members']), done, workdir,
                            write_samples=is_chief, refresh=refresh)
        _log_eval(writer, done, results, population)
      if saving:
        meta = {'step': done, 'data_position': done, 'config': config.to_json(),
                'config_changes': changes,
                'train_time_s': round(earlier_s + time.time() - t_start, 1)}
        ckpt.save(done, state, meta, force=last or preempted)
      if preempted:
        logging.info('Preemption requested: saved step %d in %s; rerun to resume.', done,
                     ckpt.directory)
        break
    finished = True
  finally:
    batches.close()  # stops the prefetch thread
    try:
      ckpt.close()  # waits for the queued saves; raises a failed save's error
    except Exception as e:  # pylint: disable=broad-except
      # On a full disk the checkpoint's error replaces the loop's: it names the kept step.
      if finished or (isinstance(e, checkpoint.DiskFullError)
                      and checkpoint.is_disk_full(e.__context__)):
        raise
      logging.exception('Closing the checkpoints after the error below also failed:')
    finally:
      writer.close()
      preemption.restore()

  members_host = parallel.to_host(state['members'])
  final_step = int(parallel.to_host(state['step']))
  if not results and not preempted:  # resumed at the last step: score it anyway
    results = evaluator(sampler, members_host, final_step, workdir, write_samples=is_chief,
                        refresh=refresh)
  summary = summary_lib.summarize(
      config, members_host, final_step, parallel.to_host(metrics) if metrics is not None
      else None, results, preempted, time.time() - t_start, earlier_s)
  if changes:  # resumed with allow_config_change: what changed since the run began
    summary['config_changes'] = changes
  if is_chief and not preempted:
    summary_lib.write(workdir, summary)
  return summary


def evaluate_checkpoints(config: config_dict.ConfigDict, workdir: str) -> dict[int, list[dict]]:
  """``{step: per-member metrics}`` of every checkpoint kept in `workdir`, scored with the
  evaluation settings of `config` (``eval_bn_refresh``, ``eval_samples``...), as the run
  scores at its evaluation steps; writes nothing. Rescores a finished run after its
  evaluation settings changed, without training it again: the caller checks that `config`
  differs from the run's only in fields that cannot change the trained weights."""
  run = resolve_config(config)
  config = run.config
  _, _, evaluator, exp = _setup(run)
  sampler, refresh = _samplers(exp, config)
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), config.checkpoint_every)
  try:
    out = {}
    for step in ckpt.steps():
      members = parallel.to_host(ckpt.restore_at(step, checkpoint.abstract(exp.state))['members'])
      out[step] = evaluator(sampler, members, step, workdir, write_samples=False,
                            refresh=refresh)
    return out
  finally:
    ckpt.close()


# ----------------------------------------------------------------- helpers --

def _samplers(exp: Experiment, config: config_dict.ConfigDict) -> tuple[Any, Any]:
  """The evaluation sampler and BatchNorm refresher (``eval_bn_refresh``) of `exp`."""
  if config.eval_bn_refresh and not jax.tree_util.tree_leaves(exp.state['members']['g_stats']):
    raise ValueError(f'eval_bn_refresh={config.eval_bn_refresh} re-estimates the generator\'s '
                     'BatchNorm statistics, but this generator has no BatchNorm; set it to 0.')
  return (step_lib.make_sampler(exp.pair),
          step_lib.make_stats_refresher(exp.pair, config.eval_bn_refresh, config.batch_size,
                                        config.g_bn_groups))


def check_workdir(workdir: str) -> None:
  """Raises PermissionError (one line) unless `workdir` can be created and written."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f'.write_test_{os.getpid()}')
    with open(probe, 'w') as f:
      f.write('ok')
    os.remove(probe)
  except OSError as e:
    raise PermissionError(f'workdir {workdir} is not writable: {e.strerror or e}.') from None


def _restore_or_initial(ckpt: checkpoint.Checkpointer, initial: Any,
                        config: config_dict.ConfigDict) -> tuple[Any, int, dict, float]:
  """The newest checkpoint's state (else `initial`), its step, the config changes since
  the run began (`ganjax.workdir.check_resume`: raises for one not allowed) and the seconds
  the run had trained up to that checkpoint, over all its sittings."""
  state, changes, steps_per_call, earlier_s = initial, {}, config.steps_per_call, 0.0
  restored = ckpt.restore(checkpoint.abstract(initial))
  if restored is not None:
    state, meta = restored
    changes = workdir_lib.check_resume(meta, config.to_json(),
                                       bool(config.get('allow_config_change')), ckpt.directory)
    if changes:
      logging.warning('Resuming with a changed config (allow_config_change): %s.',
                      workdir_lib.describe(changes))
    logging.info('Resumed from %s at step %d.', ckpt.directory, meta['step'])
    earlier_s = float(meta.get('train_time_s', 0.0))  # not in checkpoints before 2026-12
  start = int(parallel.to_host(state['step']))
  if start % steps_per_call:
    raise ValueError(f'the checkpoint in {ckpt.directory} is at step {start}, which '
                     f'steps_per_call={steps_per_call} does not divide; resume with a '
                     'steps_per_call that does (e.g. 1).')
  return state, start, changes, earlier_s


class _Preemption:
  """Turns SIGTERM (how TPU VMs announce preemption) into a flag the loop checks.

  Single process only: with several processes, JAX's distributed runtime catches
  SIGTERM itself and `Checkpointer.reached_preemption` agrees on one step for all
  processes (a per-process flag could stop them at different steps and deadlock).
  """

  def __init__(self):
    self.requested = threading.Event()
    self._previous = None
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, lambda *_: self.requested.set())

  def restore(self):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _check_finite(first_nonfinite: np.ndarray, metrics: dict) -> None:
  """Raises if any member went non-finite, naming the first such step and quantities."""
  bad_members = np.flatnonzero(first_nonfinite >= 0)
  if bad_members.size:
    step = int(first_nonfinite[bad_members].min())
    bad = [k for k, v in metrics.items() if k != 'finite' and not np.all(np.isfinite(v))]
    raise FloatingPointError(
        f'non-finite {", ".join(bad) or "loss or gradient"} at step {step} (population '
        f'members {bad_members.tolist()}); stopped without saving it, the last good '
        'checkpoint is kept. Lower the learning rates, or set --config.skip_nonfinite=True.')


def _log(writer: MetricWriter, step: int, metrics: dict, population: int) -> None:
  metrics = {k: v for k, v in metrics.items() if k != 'finite'}
  means = {k: float(np.mean(v)) for k, v in metrics.items()}
  writer.write_scalars(step, means)
  if population > 1:
    for i in range(population):
      writer.write_scalars(step, {f'member{i}/{k}': float(v[i]) for k, v in metrics.items()})
  writer.progress(step, {k: means[k] for k in ('d_loss', 'g_loss', 'penalty')})


def _log_eval(writer: MetricWriter, step: int, results: list[dict], population: int) -> None:
  for r in results:
    prefix = 'eval/' if population == 1 else f'eval/member{r["member"]}/'
    writer.write_scalars(step, {prefix + k: v for k, v in r.items()
                                if k not in ('member', 'seed')})
