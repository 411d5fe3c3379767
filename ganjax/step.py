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
  g_optimizer: tuple[tuple[str, Any], ...]  # name, b1, b2 (and b*_per_member), no rates
  d_optimizer: tuple[tuple[str, Any], ...]
  skip_nonfinite: bool = False  # drop a member's update whose loss/grads are not finite
  population_chunk: int = 0     # members vmapped together, chunks in sequence; 0: all at once
  pack: int = 1                 # D sees packs of m samples (PacGAN); 1: single samples
  unroll_steps: int = 0         # G's loss against D after k look-ahead updates (Unrolled GAN;
  #                               the surrogate includes D's real-data loss: `g_objective`)
  update_order: str = 'alternating'  # or 'simultaneous': G's update uses the pre-update D
  #   (and, with unroll_steps, looks ahead from it), as the Unrolled GAN notebook and PacGAN do
  g_bn_groups: int = 1          # G's BatchNorm statistics per group of the batch, group j
  #   holding examples j, j+k, ... (`generate`): with pack k, position j of every pack, as
  #   PacGAN's k generator calls give

  def __post_init__(self):
    if self.update_order not in UPDATE_ORDERS:
      raise ValueError(f'update_order={self.update_order!r}; valid: {", ".join(UPDATE_ORDERS)}.')
    if self.update_order == 'simultaneous' and self.n_dis != 1:
      raise ValueError(f'update_order=simultaneous updates D and G once each from one batch; '
                       f'it needs n_dis=1, got n_dis={self.n_dis}.')


UPDATE_ORDERS = ('alternating', 'simultaneous')


def pack(x: jax.Array, m: int) -> jax.Array:
  """Packs of `m` consecutive examples, concatenated on the last axis (Lin et al. 2018).

  ``(n, ..., c) -> (n/m, ..., m·c)``: vectors become one longer vector, images
  stack their channels. ``m = 1`` returns `x` itself.
  """
  if m == 1:
    return x
  n, shape = x.shape[0], x.shape[1:]
  if n % m:
    raise ValueError(f'{n} examples do not form packs of {m}; the batch on each device must '
                     f'divide by pack={m}.')
  x = jnp.moveaxis(x.reshape((n // m, m) + shape), 1, -2)
  return x.reshape((n // m,) + shape[:-1] + (m * shape[-1],))


def packed_shape(example_shape: tuple[int, ...], m: int) -> tuple[int, ...]:
  """The shape of one pack of `m` examples of `example_shape` (what D sees)."""
  return tuple(example_shape[:-1]) + (m * example_shape[-1],)


def generate(gen, variables: dict, z: jax.Array, groups: int = 1):
  """``gen.apply(variables, z, train=True)`` with its updated BatchNorm statistics
  (``(samples, stats)``; ``{}`` without BatchNorm) for `groups` k separate batches: group j
  holds ``z[j::k]``, is normalised with its own batch statistics, and its samples return
  to their places; the running averages are updated by the mean of the k groups' updates.
  With pack k, pack i is (group 0's i-th sample, ..., group k-1's i-th), as PacGAN forms
  packs from k generator calls (pacgan/bricks.py `compute_losses`, whose BatchNorm updates
  pacgan_task.py averages). ``groups = 1``: one batch, the plain call."""
  stats = {k: v for k, v in variables.items() if k != 'params'}
  if not stats:
    return gen.apply(variables, z, train=True), stats

  def one(zs):
    out, new = gen.apply(variables, zs, train=True, mutable=list(stats))
    return out, dict(new)
  if groups == 1:
    return one(z)
  n = z.shape[0]
  if n % groups:
    raise ValueError(f'{n} noise vectors do not split into g_bn_groups={groups} groups.')
  out, new = jax.vmap(one)(jnp.swapaxes(z.reshape((n // groups, groups) + z.shape[1:]), 0, 1))
  out = jnp.swapaxes(out, 0, 1).reshape((n,) + out.shape[2:])
  return out, jax.tree_util.tree_map(lambda x: jnp.mean(x, 0), new)


def _split_vars(variables):
  variables = dict(variables)
  return variables.pop('params'), variables


def init_members(pair: models.ModelPair, cfg: StepConfig, example_shape, seeds, g_lrs, d_lrs):
  """Stacked initial state of all population members (host arrays).

  Like the learning rates, betas given per member (``b1_per_member``/``b2_per_member`` in
  an optimiser's spec, see `resolve._optimizer_spec`) go into each member's optimiser state,
  where the step's optimiser reads them.
  """
  def member_betas(spec):
    return {b: jnp.asarray(spec[f'{b}_per_member'], jnp.float32)
            for b in ('b1', 'b2') if f'{b}_per_member' in spec}

  g_spec, d_spec = dict(cfg.g_optimizer), dict(cfg.d_optimizer)

  def init(seed, g_lr, d_lr, g_betas, d_betas):
    key = jax.random.PRNGKey(seed)
    kg, kd, root = jax.random.split(key, 3)
    g_params, g_stats = _split_vars(pair.generator.init(kg, jnp.zeros((1, pair.z_dim))))
    d_input = jnp.zeros((1,) + packed_shape(example_shape, cfg.pack))
    d_params, d_stats = _split_vars(pair.discriminator.init(kd, d_input))
    return {
        'g_params': g_params, 'g_stats': g_stats, 'd_params': d_params, 'd_stats': d_stats,
        'g_opt': optimizers.make({**g_spec, **g_betas}, g_lr).init(g_params),
        'd_opt': optimizers.make({**d_spec, **d_betas}, d_lr).init(d_params),
        'ema': g_params if cfg.ema_decay > 0 else {},
        'key': root,
        'first_nonfinite': jnp.int32(-1),  # first step with a non-finite loss or gradient
        'skipped': jnp.int32(0),           # updates dropped (skip_nonfinite)
    }

  members = jax.jit(jax.vmap(init))(jnp.asarray(seeds, jnp.int32), jnp.asarray(g_lrs),
                                    jnp.asarray(d_lrs), member_betas(g_spec),
                                    member_betas(d_spec))
  return {'step': jnp.zeros((), jnp.int32), 'members': members}


def _global_ids(n_local: int) -> jax.Array:
  return jax.lax.axis_index(parallel.AXIS) * n_local + jnp.arange(n_local)


def _example_keys(key: jax.Array, n_local: int) -> jax.Array:
  return jax.vmap(jax.random.fold_in, (None, 0))(key, _global_ids(n_local))


def draw_key(member_key: jax.Array, step: jax.Array, i: int) -> jax.Array:
  """The key of draw i of a member's `step`: its i-th discriminator update (i < n_dis;
  split into the update's noise and penalty keys), the generator's noise (i = n_dis, in
  alternating order) and the generator's objective (i = n_dis + 1)."""
  return jax.random.fold_in(jax.random.fold_in(member_key, step), jnp.int32(i))


def make_per_device_step(pair: models.ModelPair, cfg: StepConfig) -> Callable:
  """``step(state, batch, penalty_weight) -> (state, metrics)`` for one device.

  Per member and step: `n_dis` discriminator updates (`d_step`), each on its own
  real batch and fresh fakes, then one generator update on `g_objective`. With
  ``pack`` m the discriminator sees packs of m samples, real and fake alike,
  everywhere (losses, penalties, unrolled updates).
  """
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
    return generate(gen, {'params': g_params, **g_stats}, z, cfg.g_bn_groups)

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

  def d_objective(d_params, d_stats, real, fake, key, penalty_weight):
    """D's loss plus the weighted penalty on (packed) real and fake examples."""
    real_logits, stats = d_apply(d_params, d_stats, real, update_stats=True)
    fake_logits, _ = d_apply(d_params, stats, fake)
    value = loss.discriminator(real_logits, fake_logits, **d_opts)
    pen = penalty_value(d_params, stats, real, fake, key)
    aux = dict(d_loss=value, penalty=pen, d_real=jnp.mean(real_logits),
               d_fake=jnp.mean(fake_logits))
    return value + penalty_weight * pen, (aux, stats)

  def d_step(d_params, d_opt, d_stats, real, fake, key, penalty_weight):
    """One discriminator update (gradients averaged over devices)."""
    grads, (aux, d_stats) = jax.grad(d_objective, has_aux=True)(
        d_params, d_stats, real, fake, key, penalty_weight)
    grads = jax.lax.pmean(grads, parallel.AXIS)
    updates, d_opt = d_tx.update(grads, d_opt, d_params)
    d_params = optax.apply_updates(d_params, updates)
    if penalty.project is not None:
      d_params = penalty.project(d_params, penalty_weight)
    aux['d_grad_norm'] = optax.tree.norm(grads)
    return d_params, d_opt, d_stats, aux

  def g_objective(g_params, g_stats, d, z, real, key, penalty_weight):
    """G's loss against discriminator ``d = (params, opt_state, stats)``.

    With `unroll_steps` k: Metz et al. 2017's surrogate, the game value at D after k more
    of its updates on this batch, differentiated through them. Beside G's loss on the
    look-ahead D's logits it holds the look-ahead D's loss on the real examples, negated:
    that term reaches G through the updates. It is ``-loss.discriminator(real_k, 0)``, the
    D loss with its fake logits at 0, so it depends on G through `real_k` alone (for the
    registered losses D's loss is a real term plus a fake term; the fake term at 0 is a
    constant). For the minimax classic loss the sum is the negated discriminator loss
    that the Unrolled GAN notebook's G minimises, less the constant log 2. A loss whose
    generator already reads the real logits (relativistic) gets no extra term. D's own
    update does not change.
    """
    fake, g_stats = g_apply(g_params, g_stats, z)
    fake = pack(fake, cfg.pack)
    d_params, d_opt, d_stats = d
    for i in range(cfg.unroll_steps):
      d_params, d_opt, d_stats, _ = d_step(d_params, d_opt, d_stats, real, fake,
                                           jax.random.fold_in(key, i), penalty_weight)
    fake_logits, _ = d_apply(d_params, d_stats, fake)
    real_logits = (d_apply(d_params, d_stats, real)[0]
                   if loss.needs_real_for_generator or cfg.unroll_steps else None)
    value = loss.generator(fake_logits, real_logits, **g_opts)
    if cfg.unroll_steps and not loss.needs_real_for_generator:
      value -= loss.discriminator(real_logits, jnp.zeros_like(fake_logits), **d_opts)
    return value, g_stats

  def member_step(m, step, batch, penalty_weight):
    n_local = batch.shape[1]
    d = (m['d_params'], m['d_opt'], m['d_stats'])
    before = d
    z_first = None
    # A Python loop, not lax.scan: on CPU, XLA runs convolution gradients inside a loop
    # 30-100x slower than outside one (benchmarks/NOTES.md); compile time grows with n_dis.
    for i in range(cfg.n_dis):
      kz, kp = jax.random.split(draw_key(m['key'], step, i))
      z = noise(kz, n_local)
      z_first = z if z_first is None else z_first
      fake, _ = g_apply(m['g_params'], m['g_stats'], z)
      *d, d_aux = d_step(*d, pack(batch[i], cfg.pack), pack(fake, cfg.pack), kp,
                         penalty_weight)

    if cfg.update_order == 'simultaneous':  # G from the same batch, against D before update
      g_d, z, real = before, z_first, batch[0]
    else:
      g_d, z, real = d, noise(draw_key(m['key'], step, cfg.n_dis), n_local), batch[-1]
    g_key = draw_key(m['key'], step, cfg.n_dis + 1)
    (g_loss, g_stats), g_grads = jax.value_and_grad(g_objective, has_aux=True)(
        m['g_params'], m['g_stats'], tuple(g_d), z, pack(real, cfg.pack), g_key, penalty_weight)
    g_grads = jax.lax.pmean(g_grads, parallel.AXIS)
    updates, g_opt = g_tx.update(g_grads, m['g_opt'], m['g_params'])
    g_params = optax.apply_updates(m['g_params'], updates)
    ema = m['ema']
    if cfg.ema_decay > 0:
      ema = optax.incremental_update(g_params, ema, 1.0 - cfg.ema_decay)

    metrics = dict(d_aux, g_loss=g_loss, g_grad_norm=optax.tree.norm(g_grads))
    metrics = jax.lax.pmean(metrics, parallel.AXIS)
    metrics['finite'] = jnp.all(jnp.stack([jnp.isfinite(v) for v in metrics.values()]))
    d_params, d_opt, d_stats = d
    new = dict(m, g_params=g_params, g_stats=g_stats, d_params=d_params, d_stats=d_stats,
               g_opt=g_opt, d_opt=d_opt, ema=ema)
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

  # The pieces, for tests that differentiate them directly (inside a named `data` axis).
  per_device_step.d_step, per_device_step.g_objective = d_step, g_objective
  per_device_step.noise = noise  # (key, n_local) -> z, inside the axis
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


def make_stats_refresher(pair: models.ModelPair, batches: int, batch_size: int,
                         groups: int = 1) -> Callable:
  """jit ``(g_params, g_stats, key) -> g_stats`` after `batches` more training-mode passes of
  `batch_size` noise through the generator at fixed weights: each moves the BatchNorm
  running averages as a training step does (the model's ``bn_momentum``), so they fit these
  weights rather than lag behind them (PacGAN's code makes 50 such updates, over its
  5,000-example monitoring stream, before it samples). The identity for ``batches = 0``
  and for a generator without BatchNorm. Pass i draws its noise from ``fold_in(key, i)``;
  `groups` as in training (`generate`)."""
  gen = pair.generator
  if hasattr(gen, 'axis_name'):  # one device's batch outside the mesh: no axis to average over
    gen = gen.clone(axis_name=None)

  @jax.jit
  def refresh(g_params, g_stats, key):
    def one(stats, i):
      z = jax.random.normal(jax.random.fold_in(key, i), (batch_size, pair.z_dim))
      return generate(gen, {'params': g_params, **stats}, z, groups)[1], None
    return jax.lax.scan(one, g_stats, jnp.arange(batches))[0]

  return lambda g_params, g_stats, key: (
      refresh(g_params, g_stats, key) if batches and g_stats else g_stats)


def make_sampler(pair: models.ModelPair) -> Callable:
  """jit ``(g_params, g_stats, key, n) -> samples`` for one member (evaluation mode)."""

  @functools.partial(jax.jit, static_argnums=3)
  def sample(g_params, g_stats, key, n):
    z = jax.random.normal(key, (n, pair.z_dim))
    return pair.generator.apply({'params': g_params, **g_stats}, z, train=False)

  return sample
