"""The train state and the per-device train step.

State layout (a plain dict, so Orbax saves it as is)::

    {'step': int32 scalar,
     'members': {'g_params', 'g_stats', 'd_params', 'd_stats', 'g_opt', 'd_opt', 'ema',
                 'key', 'first_nonfinite', 'skipped'}}

(`g_stats`/`d_stats`: the generator's batch-norm and the discriminator's
spectral-norm state, empty dicts when the model has none.)

Every leaf under ``members`` has a leading population axis. The step is
written per device with pmap semantics: gradients and metrics are averaged
with ``lax.pmean`` over the mesh axis ``data``; `make_step` vmaps it over the
population and compiles it once with ``jit(shard_map(...))``. With
``population_chunk`` c < population, the members run c at a time (vmapped)
in a ``lax.map`` loop: on a CPU, whose cores one member's ops already fill,
that costs less than one wide vmap (benchmarks/NOTES.md, section 10).

Randomness: member i's root key is ``PRNGKey(seed + i)``; the step folds in
the step number, then the update index, then each example's *global* index,
so every device draws noise only for its own examples and the result does not
depend on the number of devices.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from ganjax import losses, models, optimizers, parallel, penalties


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """Everything static the step needs (no arrays): the records and options it calls."""
  loss: losses.Loss
  d_loss_options: tuple[tuple[str, Any], ...]
  g_loss_options: tuple[tuple[str, Any], ...]
  penalty: penalties.Penalty
  n_dis: int
  ema_decay: float
  g_optimizer: tuple[tuple[str, Any], ...]  # (name, b1, b2) without the learning rate
  d_optimizer: tuple[tuple[str, Any], ...]
  skip_nonfinite: bool = False  # drop a member's update whose loss/grads are not finite
  population_chunk: int = 0     # members vmapped together, chunks in sequence; 0: all at once


def _split_vars(variables):
  variables = dict(variables)
  return variables.pop('params'), variables


def init_members(pair: models.ModelPair, cfg: StepConfig, example_shape, seeds, g_lrs, d_lrs):
  """Stacked initial state of all population members (host arrays)."""

  def init(seed, g_lr, d_lr):
    key = jax.random.PRNGKey(seed)
    kg, kd, root = jax.random.split(key, 3)
    g_params, g_stats = _split_vars(pair.generator.init(kg, jnp.zeros((1, pair.z_dim))))
    d_params, d_stats = _split_vars(pair.discriminator.init(kd, jnp.zeros((1,) + example_shape)))
    return {
        'g_params': g_params, 'g_stats': g_stats, 'd_params': d_params, 'd_stats': d_stats,
        'g_opt': optimizers.make(dict(cfg.g_optimizer), g_lr).init(g_params),
        'd_opt': optimizers.make(dict(cfg.d_optimizer), d_lr).init(d_params),
        'ema': g_params if cfg.ema_decay > 0 else {},
        'key': root,
        'first_nonfinite': jnp.int32(-1),  # first step with a non-finite loss or gradient
        'skipped': jnp.int32(0),           # updates dropped (skip_nonfinite)
    }

  members = jax.jit(jax.vmap(init))(jnp.asarray(seeds, jnp.int32), jnp.asarray(g_lrs),
                                    jnp.asarray(d_lrs))
  return {'step': jnp.zeros((), jnp.int32), 'members': members}


def _global_ids(n_local: int) -> jax.Array:
  return jax.lax.axis_index(parallel.AXIS) * n_local + jnp.arange(n_local)


def _example_keys(key: jax.Array, n_local: int) -> jax.Array:
  return jax.vmap(jax.random.fold_in, (None, 0))(key, _global_ids(n_local))


def make_per_device_step(pair: models.ModelPair, cfg: StepConfig) -> Callable:
  """``step(state, batch, penalty_weight) -> (state, metrics)`` for one device."""
  loss, penalty = cfg.loss, cfg.penalty
  d_opts, g_opts = dict(cfg.d_loss_options), dict(cfg.g_loss_options)
  if loss.cross_device:  # batch statistics over all devices
    d_opts['axis_name'] = g_opts['axis_name'] = parallel.AXIS
  g_tx = optimizers.make(dict(cfg.g_optimizer), 0.0)  # rates live in the optimiser states
  d_tx = optimizers.make(dict(cfg.d_optimizer), 0.0)
  gen, disc = pair.generator, pair.discriminator

  def noise(key, n):
    return jax.vmap(lambda k: jax.random.normal(k, (pair.z_dim,)))(_example_keys(key, n))

  def g_apply(g_params, g_stats, z):
    """The generator in training mode; returns (samples, updated batch-norm stats)."""
    if not g_stats:
      return gen.apply({'params': g_params}, z, train=True), g_stats
    out, new = gen.apply({'params': g_params, **g_stats}, z, train=True, mutable=list(g_stats))
    return out, dict(new)

  def d_apply(d_params, d_stats, x, update_stats=False):
    variables = {'params': d_params, **d_stats}
    if not d_stats:
      return disc.apply(variables, x)[..., 0], d_stats
    if not update_stats:
      return disc.apply(variables, x)[..., 0], d_stats
    logits, new = disc.apply(variables, x, update_stats=True, mutable=list(d_stats))
    return logits[..., 0], dict(new)

  def penalty_value(d_params, d_stats, real, fake, key):
    if penalty.term is None:
      return jnp.zeros(())
    critic = lambda x: d_apply(d_params, d_stats, x[None])[0][0]
    return penalty.term(critic, real, fake, _example_keys(key, real.shape[0]), parallel.AXIS)

  def member_step(m, step, batch, penalty_weight):
    key = jax.random.fold_in(m['key'], step)
    n_local = batch.shape[1]

    def d_update(carry, i):
      d_params, d_opt, d_stats = carry
      kz, kp = jax.random.split(jax.random.fold_in(key, i))
      real = batch[i]
      fake, _ = g_apply(m['g_params'], m['g_stats'], noise(kz, n_local))

      def loss_fn(dp):
        real_logits, stats = d_apply(dp, d_stats, real, update_stats=True)
        fake_logits, _ = d_apply(dp, stats, fake)
        value = loss.discriminator(real_logits, fake_logits, **d_opts)
        pen = penalty_value(dp, stats, real, fake, kp)
        aux = dict(d_loss=value, penalty=pen, d_real=jnp.mean(real_logits),
                   d_fake=jnp.mean(fake_logits))
        return value + penalty_weight * pen, (aux, stats)

      grads, (aux, d_stats) = jax.grad(loss_fn, has_aux=True)(d_params)
      grads = jax.lax.pmean(grads, parallel.AXIS)
      updates, d_opt = d_tx.update(grads, d_opt, d_params)
      d_params = optax.apply_updates(d_params, updates)
      if penalty.project is not None:
        d_params = penalty.project(d_params, penalty_weight)
      aux['d_grad_norm'] = optax.tree.norm(grads)
      return (d_params, d_opt, d_stats), aux

    # A Python loop, not lax.scan: on CPU, XLA runs convolution gradients inside a loop
    # 30-100x slower than outside one (benchmarks/NOTES.md); compile time grows with n_dis.
    carry = (m['d_params'], m['d_opt'], m['d_stats'])
    for i in range(cfg.n_dis):
      carry, d_aux = d_update(carry, jnp.int32(i))
    d_params, d_opt, d_stats = carry

    z = noise(jax.random.fold_in(key, cfg.n_dis), n_local)

    def g_loss_fn(gp):
      fake, g_stats = g_apply(gp, m['g_stats'], z)
      fake_logits, _ = d_apply(d_params, d_stats, fake)
      real_logits = (d_apply(d_params, d_stats, batch[-1])[0]
                     if loss.needs_real_for_generator else None)
      return loss.generator(fake_logits, real_logits, **g_opts), g_stats

    (g_loss, g_stats), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(m['g_params'])
    g_grads = jax.lax.pmean(g_grads, parallel.AXIS)
    updates, g_opt = g_tx.update(g_grads, m['g_opt'], m['g_params'])
    g_params = optax.apply_updates(m['g_params'], updates)
    ema = m['ema']
    if cfg.ema_decay > 0:
      ema = optax.incremental_update(g_params, ema, 1.0 - cfg.ema_decay)

    metrics = dict(d_aux, g_loss=g_loss, g_grad_norm=optax.tree.norm(g_grads))
    metrics = jax.lax.pmean(metrics, parallel.AXIS)
    metrics['finite'] = jnp.all(jnp.stack([jnp.isfinite(v) for v in metrics.values()]))
    new = dict(m, g_params=g_params, g_stats=g_stats, d_params=d_params, d_stats=d_stats,
               g_opt=g_opt,
               d_opt=d_opt, ema=ema)
    return new, metrics

  def per_device_step(state, batch, penalty_weight):
    old, step = state['members'], state['step']
    run = lambda m, weight: member_step(m, step, batch, weight)
    if 0 < cfg.population_chunk < penalty_weight.shape[0]:
      members, metrics = jax.lax.map(lambda args: run(*args), (old, penalty_weight),
                                     batch_size=cfg.population_chunk)
    else:
      members, metrics = jax.vmap(run)(old, penalty_weight)
    finite = metrics['finite']  # (population,), identical on every device
    if cfg.skip_nonfinite:
      keep = lambda new, prev: jnp.where(finite.reshape((-1,) + (1,) * (new.ndim - 1)), new, prev)
      members = jax.tree_util.tree_map(keep, members, old)
      members['skipped'] = old['skipped'] + (~finite).astype(jnp.int32)
    members['first_nonfinite'] = jnp.where((old['first_nonfinite'] < 0) & ~finite, step + 1,
                                           old['first_nonfinite'])
    return {'step': step + 1, 'members': members}, metrics

  return per_device_step


def make_step(pair: models.ModelPair, cfg: StepConfig, mesh, steps_per_call: int = 1
              ) -> Callable:
  """The compiled global step: jit(shard_map(vmap(per-member step))), state donated.

  With `steps_per_call` k > 1 one call runs k steps (a ``lax.scan``) on a batch
  with a leading axis of k, ``(k, n_dis, batch, ...)``, and returns the last
  step's metrics: the host dispatches and copies input once per k steps.
  """
  R = parallel.REPLICATED
  one_step = make_per_device_step(pair, cfg)
  if steps_per_call == 1:
    return parallel.data_parallel(one_step, mesh, in_specs=(R, parallel.BATCH, R),
                                  out_specs=(R, R), donate_argnums=(0,))

  def steps(state, batches, penalty_weight):
    state, metrics = jax.lax.scan(lambda s, b: one_step(s, b, penalty_weight), state, batches)
    return state, jax.tree_util.tree_map(lambda x: x[-1], metrics)

  return parallel.data_parallel(steps, mesh, in_specs=(R, parallel.STEPS_BATCH, R),
                                out_specs=(R, R), donate_argnums=(0,))


def make_sampler(pair: models.ModelPair) -> Callable:
  """jit ``(g_params, g_stats, key, n) -> samples`` for one member (evaluation mode)."""

  @functools.partial(jax.jit, static_argnums=3)
  def sample(g_params, g_stats, key, n):
    z = jax.random.normal(key, (n, pair.z_dim))
    return pair.generator.apply({'params': g_params, **g_stats}, z, train=False)

  return sample
