"""`resolve_config`: a config checked once and turned into everything a run builds from.

Fields a config leaves as ``None`` take the registered loss's defaults
(`ganjax.losses.Loss`: penalty, weight, n_dis, Adam betas). Every bad value
raises a one-line ``ValueError`` naming the field and the valid choices here,
before anything is compiled; `train.build` then only reads the result.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from ml_collections import config_dict

from ganjax import data, losses, models, optimizers, parallel, penalties
from ganjax.step import StepConfig

_POSITIVE = ('batch_size', 'steps', 'population', 'log_every', 'eval_every', 'eval_samples',
             'checkpoint_every', 'keep_checkpoints', 'steps_per_call')
_MULTIPLES_OF_CALL = ('steps', 'log_every', 'eval_every', 'checkpoint_every')
_OPTIMIZERS = ('g_optimizer', 'd_optimizer')


@dataclasses.dataclass(frozen=True)
class Resolved:
  """A validated config and what it resolves to (records, the step's config, per-member
  arrays of shape (population,))."""
  config: config_dict.ConfigDict  # a copy with the loss's defaults filled in
  loss: losses.Loss
  penalty: penalties.Penalty
  model: models.Model
  model_options: dict[str, Any]   # the options given a value
  step: StepConfig
  seeds: np.ndarray               # member i: seed + i
  g_learning_rate: np.ndarray
  d_learning_rate: np.ndarray
  penalty_weight: np.ndarray


def resolve_config(config: config_dict.ConfigDict) -> Resolved:
  """Checks `config` and resolves it; raises ValueError naming the first bad field."""
  config = config_dict.ConfigDict(config.to_dict())
  loss = losses.get(config.loss)
  _fill_loss_defaults(config, loss)
  penalty = penalties.get(config.penalty)
  model = models.get(config.model)
  model_options = model.check_options(config.model_options.to_dict())
  data.get(config.dataset)
  for field in _POSITIVE + ('n_dis',):
    _positive_int(field, config[field])
  k = config.steps_per_call
  bad = [f'{name}={config[name]}' for name in _MULTIPLES_OF_CALL if config[name] % k]
  if bad:
    raise ValueError(f'steps_per_call={k} must divide {", ".join(bad)}: logs, evaluations '
                     'and checkpoints happen between calls.')
  population = config.population
  rates = {}
  for side in _OPTIMIZERS:
    optimizers.get(config[side].name)
    rates[side] = parallel.per_member(config[side].learning_rate, population,
                                      f'{side}.learning_rate')
    if not np.all(rates[side] > 0):
      raise ValueError(f'{side}.learning_rate={config[side].learning_rate!r}; it must be '
                       'positive.')
  weights = parallel.per_member(config.penalty_weight, population, 'penalty_weight')
  if np.any(weights < 0) or (penalty.weight_must_be_positive and not np.all(weights > 0)):
    raise ValueError(f'penalty_weight={config.penalty_weight!r}; it must be >= 0 '
                     f'(for {penalty.name}, which projects the parameters: positive).')
  if not 0.0 <= config.ema_decay < 1.0:
    raise ValueError(f'ema_decay={config.ema_decay}; it must be in [0, 1).')
  d_opts, g_opts = loss.split_options(_set_options(config.loss_options))
  step = StepConfig(
      loss=loss, d_loss_options=tuple(sorted(d_opts.items())),
      g_loss_options=tuple(sorted(g_opts.items())), penalty=penalty,
      n_dis=config.n_dis, ema_decay=float(config.ema_decay),
      g_optimizer=_optimizer_spec(config.g_optimizer),
      d_optimizer=_optimizer_spec(config.d_optimizer),
      skip_nonfinite=bool(config.skip_nonfinite),
      population_chunk=population_chunk(config))
  return Resolved(config=config, loss=loss, penalty=penalty, model=model,
                  model_options=model_options, step=step,
                  seeds=config.seed + np.arange(population),
                  g_learning_rate=rates['g_optimizer'], d_learning_rate=rates['d_optimizer'],
                  penalty_weight=weights)


def _fill_loss_defaults(config: config_dict.ConfigDict, loss: losses.Loss) -> None:
  for field in ('penalty', 'penalty_weight', 'n_dis'):
    if config.get(field) is None:
      config[field] = getattr(loss, field)
  for side in _OPTIMIZERS:
    for field, value in zip(('b1', 'b2'), loss.betas):
      if config[side].get(field) is None:
        config[side][field] = value


def _positive_int(field: str, value: Any) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise ValueError(f'{field}={value!r}; it must be a positive integer.')


def _set_options(options: config_dict.ConfigDict) -> dict:
  """The options given a value (placeholders left as None mean 'the default')."""
  return {k: v for k, v in options.to_dict().items() if v is not None}


def _optimizer_spec(opt: config_dict.ConfigDict) -> tuple[tuple[str, Any], ...]:
  """The optimiser's static settings (name, betas) without its per-member learning rate."""
  spec = opt.to_dict()
  spec.pop('learning_rate')
  return tuple(sorted(spec.items()))


def population_chunk(config: config_dict.ConfigDict) -> int:
  """Members per vmapped chunk: the config's, else 4 on a CPU and all on accelerators."""
  chunk = config.get('population_chunk')
  if chunk is None:
    return min(4, config.population) if jax.default_backend() == 'cpu' else config.population
  if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0:
    raise ValueError(f'population_chunk={chunk!r}: give a positive number of members, or '
                     'None for the default (4 on a CPU, all members on accelerators).')
  return min(chunk, config.population)
