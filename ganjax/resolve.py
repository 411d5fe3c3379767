"""`resolve_config`: a config checked once and turned into everything a run builds from.

Fields a config leaves as ``None`` take the registered loss's defaults
(`ganjax.losses.Loss`: penalty, weight, n_dis, Adam betas). Every bad value
raises a one-line ``ValueError`` naming the field and the valid choices here,
before anything is compiled; `train.build` then only reads the result. The
loss's options are checked by calling its two functions once on tiny logits,
and the model's by building its modules (`make`), so each part states and
checks its own ranges (`tests/test_workdir.py` draws a bad value for every
field of `configs/default.py`).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_dict

from ganjax import data, evaluator, losses, models, optimizers, parallel, penalties
from ganjax.arrays import check_range, positive_int
from ganjax.step import StepConfig

_POSITIVE = ('batch_size', 'steps', 'population', 'log_every', 'eval_every', 'eval_samples',
             'checkpoint_every', 'keep_checkpoints', 'steps_per_call', 'pack', 'g_bn_groups')
_NON_NEGATIVE = ('unroll_steps', 'train_size', 'eval_bn_refresh')
_MULTIPLES_OF_CALL = ('steps', 'log_every', 'eval_every', 'checkpoint_every')
_OPTIMIZERS = ('g_optimizer', 'd_optimizer')
_POSITIVE_REPORTING = ('feature_steps', 'kid_subsets', 'kid_subset_size')
_SWITCHES = ('skip_nonfinite', 'allow_config_change')


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
  _check_model_options(model, model_options, data.get(config.dataset))
  for field in _POSITIVE + ('n_dis',):
    _positive_int(field, config[field])
  _check_scalars(config)
  for field in _NON_NEGATIVE:
    _positive_int(field, config[field], minimum=0)
  if config.batch_size % config.pack:
    raise ValueError(f'pack={config.pack} must divide batch_size={config.batch_size} (packs '
                     'form within each device\'s share of the batch).')
  if config.batch_size % config.g_bn_groups:
    raise ValueError(f'g_bn_groups={config.g_bn_groups} must divide batch_size='
                     f'{config.batch_size} (groups form within each device\'s share).')
  models.compute_dtype(config.dtype)
  k = config.steps_per_call
  bad = [f'{name}={config[name]}' for name in _MULTIPLES_OF_CALL if config[name] % k]
  if bad:
    raise ValueError(f'steps_per_call={k} must divide {", ".join(bad)}: logs, evaluations '
                     'and checkpoints happen between calls.')
  population = config.population
  rates = {}
  for side in _OPTIMIZERS:
    try:
      optimizers.get(config[side].name)
    except ValueError as e:
      raise ValueError(f'{side}.name: {e}') from None
    for beta in ('b1', 'b2'):  # Adam's betas; SGD's momentum (b1), RMSProp's decay (b2)
      if config[side][beta] is not None:
        check_range(f'{side}.{beta}', config[side][beta], 0.0, 1.0, high_open=True)
        _check_per_member_beta(config, side, beta)
    rates[side] = parallel.per_member(config[side].learning_rate, population,
                                      f'{side}.learning_rate')
    if not np.all(np.isfinite(rates[side]) & (rates[side] > 0)):
      raise ValueError(f'{side}.learning_rate={config[side].learning_rate!r}; it must be '
                       'positive and finite.')
  weights = parallel.per_member(config.penalty_weight, population, 'penalty_weight')
  given = np.asarray(config.penalty_weight, np.float64)  # before float32 rounds -1e-50 to -0
  if (not np.all(np.isfinite(weights)) or np.any(weights < 0) or np.any(given < 0)
      or (penalty.weight_must_be_positive and not np.all(weights > 0))):
    raise ValueError(f'penalty_weight={config.penalty_weight!r}; it must be finite and ' + (
        f'positive (for {penalty.name}, which projects the parameters: positive).'
        if penalty.weight_must_be_positive else '>= 0.'))
  if (isinstance(config.ema_decay, bool) or not isinstance(config.ema_decay, (int, float))
      or not 0.0 <= config.ema_decay < 1.0):
    raise ValueError(f'ema_decay={config.ema_decay}; it must be in [0, 1).')
  d_opts, g_opts = loss.split_options(_set_options(config.loss_options))
  _check_loss_options(loss, d_opts, g_opts)
  step = StepConfig(
      loss=loss, d_loss_options=tuple(sorted(d_opts.items())),
      g_loss_options=tuple(sorted(g_opts.items())), penalty=penalty,
      n_dis=config.n_dis, ema_decay=float(config.ema_decay),
      g_optimizer=_optimizer_spec(config.g_optimizer),
      d_optimizer=_optimizer_spec(config.d_optimizer),
      skip_nonfinite=bool(config.skip_nonfinite),
      population_chunk=population_chunk(config), pack=config.pack,
      unroll_steps=config.unroll_steps, update_order=config.update_order,
      g_bn_groups=config.g_bn_groups)
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


def _positive_int(field: str, value: Any, minimum: int = 1) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    kind = 'a positive integer' if minimum == 1 else f'an integer >= {minimum}'
    raise ValueError(f'{field}={value!r}; it must be {kind}.')


def _check_scalars(config: config_dict.ConfigDict) -> None:
  """The fields no other check reads: the name, paths, seeds, reporting sizes, switches."""
  if not isinstance(config.name, str) or not config.name:
    raise ValueError(f'name={config.name!r}; valid: a non-empty string (the default workdir '
                     'is runs/<name>).')
  if not isinstance(config.data_dir, str):
    raise ValueError(f'data_dir={config.data_dir!r}; valid: a directory path, or "" for '
                     '$TFDS_DATA_DIR or ~/tensorflow_datasets.')
  for field in _POSITIVE_REPORTING:
    _positive_int(field, config[field])
  for field in ('seed', 'data_seed'):
    positive_int(field, config[field], minimum=0)
    last = config[field] + (config.population - 1 if field == 'seed' else 0)
    if last >= 2**31:  # member seeds are int32
      raise ValueError(f'{field}={config[field]}; valid: an integer in [0, 2**31)'
                       + (' for every member (seed + population - 1)' if field == 'seed' else '')
                       + '.')
  for field in _SWITCHES:
    if not isinstance(config.get(field, False), bool):
      raise ValueError(f'{field}={config[field]!r}; valid: True or False.')
  if config.image_metrics is not None and not isinstance(config.image_metrics, bool):
    raise ValueError(f'image_metrics={config.image_metrics!r}; valid: True, False or None (on '
                     'for labelled image datasets).')
  evaluator.check_config(config)  # features, final_eval_samples, inception_weights


def _check_model_options(model: models.Model, options: dict[str, Any], source: Any) -> None:
  """Checks the model's options by the types of their defaults, or of their annotations for
  options defaulting to None (an integer option is a size: >= 1; a sequence of integers:
  widths, >= 1; a float: finite; a bool: a switch), then lets the family check them
  itself by building its modules (cheap: no parameters, nothing traced) where the dataset's
  example shape is known without reading the data (else `train.build` does, also before
  compiling)."""
  defaults, params = model.option_defaults(), inspect.signature(model.make).parameters
  for name, value in options.items():
    field = f'model_options.{name}'
    kind = _option_kind(defaults.get(name), getattr(params.get(name), 'annotation', None))
    if kind == 'bool' and not isinstance(value, bool):
      raise ValueError(f'{field}={value!r}; valid: True or False.')
    if kind == 'int':
      _positive_int(field, value)
    if kind == 'float':
      check_range(field, value)
    if kind == 'str' and not isinstance(value, str):
      raise ValueError(f'{field}={value!r}; valid: a name (a string).')
    if kind == 'ints' and (not isinstance(value, (tuple, list)) or not value or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
      raise ValueError(f'{field}={value!r}; valid: a non-empty sequence of positive integers.')
  shape = getattr(source, 'example_shape', None)  # a mixture's; images: known once opened
  if isinstance(shape, tuple):
    model.build(shape, options)


def _option_kind(default: Any, annotation: Any) -> str:
  """'bool', 'int', 'float', 'str' or 'ints' (a sequence of ints) from an option's default,
  or from its type annotation when the default is None; '' when neither tells."""
  if default is not None:
    for kind, types in (('bool', bool), ('int', int), ('float', float), ('str', str)):
      if isinstance(default, types):
        return kind
    ints = isinstance(default, (tuple, list)) and all(
        isinstance(d, int) and not isinstance(d, bool) for d in default)
    return 'ints' if ints else ''
  text = annotation if isinstance(annotation, str) else getattr(annotation, '__name__', '')
  for kind, pattern in (('ints', r'(Sequence|tuple|list)\[int'), ('bool', r'\bbool\b'),
                        ('float', r'\bfloat\b'), ('int', r'\bint\b'), ('str', r'\bstr\b')):
    if re.search(pattern, text):
      return kind
  return ''


def _check_loss_options(loss: losses.Loss, d_opts: dict, g_opts: dict) -> None:
  """Calls the loss's two functions once, eagerly, on two zero logits with the options, so
  that they check their ranges; each option alone first, so that an error names its field."""
  logits = jnp.zeros((2,), jnp.float32)
  for fn, opts in ((loss.discriminator, d_opts), (loss.generator, g_opts)):
    for name, value in list(opts.items()) + [(None, None)]:
      try:
        fn(logits, logits, **(opts if name is None else {name: value}))
      except (TypeError, ValueError) as e:
        if name is None:
          raise ValueError(f'loss_options {opts} for loss {loss.name}: {e}') from None
        message = str(e)
        raise ValueError(f'loss_options.{message}' if message.startswith(f'{name}=') else
                         f'loss_options.{name}={value!r}: {message}') from None


def _set_options(options: config_dict.ConfigDict) -> dict:
  """The options given a value (placeholders left as None mean 'the default')."""
  return {k: v for k, v in options.to_dict().items() if v is not None}


def _optimizer_spec(opt: config_dict.ConfigDict) -> tuple[tuple[str, Any], ...]:
  """The optimiser's static settings (name, betas) without its per-member learning rate.

  A beta given one value per member (a list) becomes ``b1_per_member`` (``b2_per_member``),
  a tuple that `step.init_members` puts in each member's optimiser state; ``b1`` keeps the
  first value, so that the step's optimiser (built once, its hyperparameters read from the
  state) takes b1 as a number too. A list of equal values is that one number.
  """
  spec = opt.to_dict()
  spec.pop('learning_rate')
  for beta in ('b1', 'b2'):
    if isinstance(spec[beta], (list, tuple)):
      values = tuple(float(v) for v in spec[beta])
      spec[beta] = values[0]
      if len(set(values)) > 1:
        spec[f'{beta}_per_member'] = values
  return tuple(sorted(spec.items()))


def _check_per_member_beta(config: config_dict.ConfigDict, side: str, beta: str) -> None:
  """A list of betas: one per member (or one for all), for an optimiser that takes that beta
  as a number (Adam's b1 and b2, RMSProp's b2), as `step.init_members` passes it."""
  value = config[side][beta]
  if not isinstance(value, (list, tuple)):
    return
  values = parallel.per_member(value, config.population, f'{side}.{beta}')
  if len(set(values.tolist())) == 1:
    return
  record, sentinel = optimizers.get(config[side].name), object()
  spec = {b: (v[0] if isinstance(v, (list, tuple)) else v)
          for b, v in config[side].to_dict().items()}
  try:
    used = any(v is sentinel for v in record.kwargs(
        **{b: sentinel if b == beta else spec[b] for b in ('b1', 'b2')}).values())
    jax.eval_shape(lambda b: optimizers.make({**spec, beta: b}, 1.0).init(jnp.zeros(())),
                   jnp.float32(values[0]))  # traced, as under init_members' vmap
  except Exception:  # pylint: disable=broad-except
    used = False
  if not used:
    raise ValueError(f'{side}.{beta}={value!r}: optimizer {config[side].name} does not take '
                     f'{beta} as a number, so it cannot differ per member.')


def population_chunk(config: config_dict.ConfigDict) -> int:
  """Members per vmapped chunk: the config's, else 4 on a CPU and all on accelerators."""
  chunk = config.get('population_chunk')
  if chunk is None:
    return min(4, config.population) if jax.default_backend() == 'cpu' else config.population
  if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0:
    raise ValueError(f'population_chunk={chunk!r}: give a positive number of members, or '
                     'None for the default (4 on a CPU, all members on accelerators).')
  return min(chunk, config.population)
