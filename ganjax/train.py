"""`train_and_evaluate(config, workdir)`: the training loop around the step.

1. resolve and validate the config (every bad value fails here, before compiling);
2. restore the latest checkpoint in ``workdir`` or initialise;
3. each step: this process's slice of the global batch -> a global array
   sharded over ``data`` -> the compiled step (see `ganjax.step`);
4. on their schedules: progress line + TensorBoard scalars, samples and
   metrics, async checkpoints; on SIGTERM a final checkpoint and exit.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import signal
import threading
import time
from typing import Any

import jax
import numpy as np
from absl import logging
from ml_collections import config_dict

from ganjax import checkpoint, data, losses, models, parallel, plots, step as step_lib
from ganjax.digest import digest
from ganjax.writer import MetricWriter

# Fields left as placeholders (None) in the config take these per-loss values.
# Adam betas: DCGAN's (0.5, 0.999); WGAN-GP's (0.5, 0.9) from Gulrajani et al. 2017.
_GAN = dict(penalty='none', penalty_weight=0.0, n_dis=1, b1=0.5, b2=0.999)
LOSS_DEFAULTS = {
    'classic': _GAN,
    'wgan': dict(penalty='wgan_gp', penalty_weight=10.0, n_dis=5, b1=0.5, b2=0.9),
    'hinge': _GAN,
    'least_squares': _GAN,
    'relativistic': _GAN,
}
_OPTIMIZER_DEFAULTS = ('b1', 'b2')
_POSITIVE = ('batch_size', 'steps', 'n_dis', 'population', 'log_every', 'eval_every',
             'eval_samples', 'checkpoint_every', 'keep_checkpoints', 'steps_per_call')
_MULTIPLES_OF_CALL = ('steps', 'log_every', 'eval_every', 'checkpoint_every')


# ------------------------------------------------------------------ config --

def resolve_config(config: config_dict.ConfigDict) -> config_dict.ConfigDict:
  """A validated copy with the loss's defaults filled in; raises ValueError."""
  config = config_dict.ConfigDict(config.to_dict())
  loss = losses.get(config.loss)  # ValueError naming the valid losses
  for field, value in LOSS_DEFAULTS[loss.name].items():
    targets = ([config.g_optimizer, config.d_optimizer] if field in _OPTIMIZER_DEFAULTS
               else [config])
    for target in targets:
      if target.get(field) is None:
        target[field] = value
  if config.penalty not in step_lib.PENALTIES:
    raise ValueError(f'unknown penalty {config.penalty!r}; valid: '
                     f'{", ".join(step_lib.PENALTIES)}.')
  models.check_options(config.model, config.model_options.to_dict())
  if config.dataset not in data.DATASETS:
    raise ValueError(f'unknown dataset {config.dataset!r}; valid: {", ".join(data.DATASETS)}.')
  for field in _POSITIVE:
    value = config[field]
    if not isinstance(value, int) or value <= 0:
      raise ValueError(f'{field}={value!r}; it must be a positive integer.')
  k = config.steps_per_call
  bad = [f'{name}={config[name]}' for name in _MULTIPLES_OF_CALL if config[name] % k]
  if bad:
    raise ValueError(f'steps_per_call={k} must divide {", ".join(bad)}: logs, evaluations '
                     'and checkpoints happen between calls.')
  for side in ('g_optimizer', 'd_optimizer'):
    step_lib.make_optimizer(_optimizer_spec(config[side]), 1.0)  # unknown names raise
    rates = parallel.per_member(config[side].learning_rate, config.population,
                                f'{side}.learning_rate')
    if not np.all(rates > 0):
      raise ValueError(f'{side}.learning_rate={config[side].learning_rate!r}; it must be '
                       'positive.')
  weights = parallel.per_member(config.penalty_weight, config.population, 'penalty_weight')
  if np.any(weights < 0) or (config.penalty == 'clip' and not np.all(weights > 0)):
    raise ValueError(f'penalty_weight={config.penalty_weight!r}; it must be >= 0 '
                     '(for clip: the positive clip value).')
  if not 0.0 <= config.ema_decay < 1.0:
    raise ValueError(f'ema_decay={config.ema_decay}; it must be in [0, 1).')
  split_loss_options(loss, _set_options(config.loss_options))
  population_chunk(config)
  return config


def _set_options(options: config_dict.ConfigDict) -> dict:
  """The options given a value (placeholders left as None mean 'the default')."""
  return {k: v for k, v in options.to_dict().items() if v is not None}


def _optimizer_spec(opt: config_dict.ConfigDict) -> dict:
  spec = opt.to_dict()
  spec.pop('learning_rate')
  return spec


def split_loss_options(loss: losses.Loss, options: dict) -> tuple[dict, dict]:
  """Routes each loss option to the side(s) that accept it; unknown ones raise."""
  def accepted(fn):
    return {p for p in inspect.signature(fn).parameters
            if p not in ('real_logits', 'fake_logits', 'weights', 'reduction', 'axis_name')}
  d_keys, g_keys = accepted(loss.discriminator), accepted(loss.generator)
  unknown = set(options) - d_keys - g_keys
  if unknown:
    raise ValueError(f'unknown loss_options {sorted(unknown)} for loss {loss.name}; valid: '
                     f'{", ".join(sorted(d_keys | g_keys)) or "none"}.')
  return ({k: v for k, v in options.items() if k in d_keys},
          {k: v for k, v in options.items() if k in g_keys})


def step_config(config: config_dict.ConfigDict) -> step_lib.StepConfig:
  d_opts, g_opts = split_loss_options(losses.get(config.loss), _set_options(config.loss_options))
  return step_lib.StepConfig(
      loss=config.loss, d_loss_options=tuple(sorted(d_opts.items())),
      g_loss_options=tuple(sorted(g_opts.items())), penalty=config.penalty,
      n_dis=config.n_dis, ema_decay=float(config.ema_decay),
      g_optimizer=tuple(sorted(_optimizer_spec(config.g_optimizer).items())),
      d_optimizer=tuple(sorted(_optimizer_spec(config.d_optimizer).items())),
      skip_nonfinite=bool(config.skip_nonfinite),
      population_chunk=population_chunk(config))


def population_chunk(config: config_dict.ConfigDict) -> int:
  """Members per vmapped chunk: the config's, else 4 on a CPU and all on accelerators."""
  chunk = config.get('population_chunk')
  if chunk is None:
    return min(4, config.population) if jax.default_backend() == 'cpu' else config.population
  if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0:
    raise ValueError(f'population_chunk={chunk!r}: give a positive number of members, or '
                     'None for the default (4 on a CPU, all members on accelerators).')
  return min(chunk, config.population)


def member_params(members: Any, i: int) -> dict:
  m = parallel.member(members, i)
  return {'g_params': m['g_params'], 'd_params': m['d_params'], 'ema': m['ema']}


# --------------------------------------------------------------- evaluation --

class Evaluator:
  """Scores generators: mode metrics on 2D mixtures, feature-space metrics on images.

  Image metrics compare `eval_samples` generated images against held-out real
  ones (the test split), in the feature space of a classifier trained on the
  dataset's labelled training split (`ganjax.features`), cached under the data
  directory. Construct it before compiling: it validates `image_metrics`.
  """

  def __init__(self, config, dataset: data.Dataset):
    self.config, self.dataset = config, dataset
    self.features_fn, self.feature_accuracy, self.real = None, None, None
    wanted = config.image_metrics
    if dataset.name in data.MIXTURES:
      if wanted:
        raise ValueError(f'image_metrics=True needs an image dataset, not {dataset.name}.')
      return
    if wanted and not dataset.has_labels:
      raise ValueError(f'image_metrics=True needs labels to train the feature extractor, and '
                       f'dataset {dataset.name} has none; set --config.image_metrics=False.')
    if wanted is None and not dataset.has_labels:
      return
    from ganjax import features  # pylint: disable=g-import-not-at-top
    cache = os.path.join(dataset.data_dir or data.default_data_dir(), 'ganjax_features')
    self.features_fn, self.feature_accuracy = features.cached_extractor(
        dataset, cache, steps=config.feature_steps)
    self.real = dataset.eval_examples(config.eval_samples)
    logging.info('Feature extractor for %s: test accuracy %.4f.', dataset.name,
                 self.feature_accuracy)

  def __call__(self, sampler, members_host, step: int, workdir: str,
               write_samples: bool) -> list[dict]:
    """Per-member metrics (and the EMA generator's, prefixed ``ema_``)."""
    from ganjax import evaluate as metrics_lib  # pylint: disable=g-import-not-at-top
    from ganjax.mixture_metrics import mode_metrics  # pylint: disable=g-import-not-at-top
    config, results = self.config, []
    for i in range(config.population):
      m = parallel.member(members_host, i)
      key = jax.random.PRNGKey(config.seed + i + 1_000_003)  # fixed eval noise
      entry = {'member': i, 'seed': config.seed + i}
      generators = {'': m['g_params']}
      if config.ema_decay > 0:
        generators['ema_'] = m['ema']
      for prefix, g_params in generators.items():
        samples = np.asarray(sampler(g_params, m['g_stats'], key, config.eval_samples))
        if self.dataset.name in data.MIXTURES:
          centers, std = data.mixture_centers(self.dataset.name)
          scores = mode_metrics(samples, centers, std)
        elif self.features_fn is not None:
          scores = metrics_lib.image_metrics(
              self.features_fn, self.real, samples, key=key, kid_subsets=config.kid_subsets,
              kid_subset_size=config.kid_subset_size)
          scores['feature_accuracy'] = self.feature_accuracy
        else:
          scores = {}
        entry.update({prefix + k: v for k, v in scores.items()})
        if write_samples and not prefix:
          self._save_samples(samples, step, i, workdir)
      results.append(entry)
    return results

  def _save_samples(self, samples, step, member, workdir):
    suffix = f'_member{member}' if self.config.population > 1 else ''
    path = os.path.join(workdir, 'samples', f'step_{step}{suffix}.png')
    if self.dataset.name in data.MIXTURES:
      centers, _ = data.mixture_centers(self.dataset.name)
      plots.save_scatter(path, samples, centers, f'{self.config.loss} step {step}')
    else:
      plots.save_image_grid(path, samples)


# ---------------------------------------------------------------- the loop --

@dataclasses.dataclass
class Experiment:
  """What a resolved config builds: models, initial state, the compiled step."""
  pair: models.ModelPair
  step_config: step_lib.StepConfig
  seeds: np.ndarray
  state: Any            # replicated over the mesh
  step_fn: Any          # step_fn(state, sharded_batch, penalty_weight) -> (state, metrics);
                        # runs config.steps_per_call steps on a batch with that leading axis
  penalty_weight: Any   # replicated (population,)


def build(config: config_dict.ConfigDict, example_shape: tuple[int, ...], mesh) -> Experiment:
  """Models, initial (replicated) state and the step for a *resolved* config."""
  pair = models.make(config.model, example_shape, config.model_options.to_dict())
  cfg = step_config(config)
  population = config.population
  seeds = config.seed + np.arange(population)
  g_lrs = parallel.per_member(config.g_optimizer.learning_rate, population, 'g lr')
  d_lrs = parallel.per_member(config.d_optimizer.learning_rate, population, 'd lr')
  state = parallel.replicate(
      step_lib.init_members(pair, cfg, example_shape, seeds, g_lrs, d_lrs), mesh)
  penalty_weight = parallel.replicate(
      parallel.per_member(config.penalty_weight, population, 'penalty_weight'), mesh)
  step_fn = step_lib.make_step(pair, cfg, mesh, config.steps_per_call)
  return Experiment(pair, cfg, seeds, state, step_fn, penalty_weight)


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


def train_and_evaluate(config: config_dict.ConfigDict, workdir: str) -> dict:
  """Trains (resuming from `workdir` if it holds a checkpoint); returns eval.json's content."""
  config = resolve_config(config)
  check_workdir(workdir)
  mesh = parallel.make_mesh()
  parallel.check_batch(config.batch_size, mesh)
  is_chief = jax.process_index() == 0
  dataset = data.Dataset(config.dataset, config.batch_size, config.n_dis, config.data_seed,
                         jax.process_index(), jax.process_count(), config.data_dir or None)
  evaluator = Evaluator(config, dataset)
  exp = build(config, dataset.example_shape, mesh)
  pair, state, step_fn, penalty_weight = exp.pair, exp.state, exp.step_fn, exp.penalty_weight
  population, seeds = config.population, exp.seeds

  ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'),
                                 config.checkpoint_every, config.keep_checkpoints)
  restored = ckpt.restore(checkpoint.abstract(state))
  if restored is not None:
    state, meta = restored
    logging.info('Resumed from %s at step %d.', ckpt.directory, meta['step'])
  start = int(parallel.to_host(state['step']))
  k = config.steps_per_call
  if start % k:
    raise ValueError(f'the checkpoint in {ckpt.directory} is at step {start}, which '
                     f'steps_per_call={k} does not divide; resume with a steps_per_call that '
                     'does (e.g. 1).')

  sampler = step_lib.make_sampler(pair)
  writer = MetricWriter(workdir, config.steps, enabled=is_chief)
  preemption = _Preemption()
  batches = data.prefetch(dataset, start, steps=k, put=parallel.batch_sharder(mesh, k))
  metrics, results, stopped_early, finished = None, [], False, False
  t_start = time.time()
  try:
    for done in range(start + k, config.steps + 1, k):
      state, metrics = step_fn(state, next(batches), penalty_weight)
      # Every step of the call is offered to JAX's preemption sync point, which every
      # process must reach at the same step.
      preempted = preemption.requested.is_set() or any(
          [ckpt.reached_preemption(s) for s in range(done - k + 1, done + 1)])
      force_save = done == config.steps or preempted
      saving = force_save or ckpt.should_save(done)
      if saving or done % config.log_every == 0:
        host_metrics = parallel.to_host(metrics)
        if not config.skip_nonfinite:  # never checkpoint a non-finite state
          _check_finite(parallel.to_host(state['members']['first_nonfinite']), host_metrics)
        if done % config.log_every == 0 or done == config.steps:
          _log(writer, done, host_metrics, population)
      if done % config.eval_every == 0 or done == config.steps:
        results = evaluator(sampler, parallel.to_host(state['members']), done, workdir,
                            write_samples=is_chief)
        for r in results:
          writer.write_scalars(done, {f'eval/{k}' if population == 1 else
                                      f'eval/member{r["member"]}/{k}': v
                                      for k, v in r.items() if k not in ('member', 'seed')})
      if saving:
        meta = {'step': done, 'data_position': done, 'config': config.to_json()}
        ckpt.save(done, state, meta, force=force_save)
      if preempted:
        logging.info('Preemption requested: saved step %d in %s; rerun to resume.', done,
                     ckpt.directory)
        stopped_early = True
        break
    finished = True
  finally:
    batches.close()  # stops the prefetch thread
    try:
      ckpt.close()  # waits for the queued saves; raises a failed save's error
    except Exception:  # pylint: disable=broad-except
      if finished:
        raise
      logging.exception('Closing the checkpoints after the error below also failed:')
    finally:
      writer.close()
      preemption.restore()

  final_step = int(parallel.to_host(state['step']))
  members_host = parallel.to_host(state['members'])
  if not results and not stopped_early:  # resumed at the last step: score it anyway
    results = evaluator(sampler, members_host, final_step, workdir, write_samples=is_chief)
  summary = {'step': final_step, 'loss': config.loss, 'dataset': config.dataset,
             'population': population, 'preempted': stopped_early,
             'wall_time_s': round(time.time() - t_start, 2),
             'state_digest': digest([member_params(members_host, i) for i in range(population)])}
  last = parallel.to_host(metrics) if metrics is not None else None
  members = []
  for i in range(population):
    entry = {'member': i, 'seed': int(seeds[i]),
             'state_digest': digest(member_params(members_host, i)),
             **_member_counters(members_host, i)}
    if last is not None:
      entry.update({k: float(v[i]) for k, v in last.items() if k != 'finite'})
    if i < len(results) and not stopped_early:
      entry.update({k: v for k, v in results[i].items() if k not in ('member', 'seed')})
    members.append(entry)
  summary['members'] = members
  if population == 1:
    summary.update({k: v for k, v in members[0].items() if k not in ('member',)})
  if is_chief and not stopped_early:
    with open(os.path.join(workdir, 'eval.json'), 'w') as f:
      json.dump(summary, f, indent=2)
  return summary


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


def _member_counters(members_host: Any, i: int) -> dict:
  return {'skipped_steps': int(members_host['skipped'][i])}
