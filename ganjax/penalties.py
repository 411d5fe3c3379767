"""Gradient penalties and weight clipping, framework-agnostic.

Each penalty takes ``critic(x) -> logit`` for ONE example (any array shape,
returning a scalar or a size-1 array) and evaluates ``jax.vmap(jax.grad(critic))``
over the batch, so it works with Flax Linen/NNX, Equinox or a plain function::

    critic = lambda x: disc.apply(params, x[None])[0, 0]
    penalty = ganjax.penalties.r1(critic, real_images)

Gradient norms use a safe square root (zero gradient where the norm is zero),
so a penalty never produces NaN gradients. Every penalty returns the mean over
examples by default; ``reduction='sum'`` and ``'none'`` as in `ganjax.losses`.
Options are checked against the ranges their docstrings state (a traced
option cannot be checked and is used as given). Imports only jax.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from ganjax.arrays import as_float, check_range
from ganjax.losses import reduce_loss
from ganjax.registry import Registry

Array = Any
Critic = Callable[[jax.Array], jax.Array]


def safe_norm(x: jax.Array, axis=None) -> jax.Array:
  """Euclidean norm whose gradient is 0, not NaN, where the norm is 0."""
  sq = jnp.sum(jnp.square(x), axis=axis)
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def input_gradients(critic: Critic, x: Array) -> jax.Array:
  """Per-example ``∇_x critic(x)`` for a batch `x` (leading axis = examples)."""
  x = as_float(x, 'x')

  def scalar_critic(xi):
    out = jnp.asarray(critic(xi))
    if out.size != 1:
      raise ValueError(
          f'critic must map one example to one logit; it returned shape {out.shape} '
          f'for an example of shape {xi.shape}.')
    return jnp.reshape(out, ()).astype(jnp.float32)

  return jax.vmap(jax.grad(scalar_critic))(x)


def gradient_norms(critic: Critic, x: Array) -> jax.Array:
  """Per-example ``‖∇_x critic(x)‖₂`` (safe at zero)."""
  grads = input_gradients(critic, x)
  return safe_norm(grads.reshape(grads.shape[0], -1), axis=1)


def _check_same_shape(real: jax.Array, fake: jax.Array) -> None:
  if real.shape != fake.shape:
    raise ValueError(f'real shape {real.shape} and fake shape {fake.shape} differ; '
                     'interpolation needs one fake per real example.')


def _two_sided(norms: jax.Array, target: float, one_sided: bool) -> jax.Array:
  excess = norms - target
  return jnp.square(jax.nn.relu(excess) if one_sided else excess)


def _is_key_batch(key: jax.Array) -> bool:
  if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
    return key.ndim == 1
  return key.ndim == 2  # raw uint32 keys, shape (n, 2)


def _uniform(key: jax.Array, x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """U[0,1) of shape (n, *shape); with one key per example, drawn per example.

  Per-example keys make the draws independent of how a batch is split over
  devices (each device draws only its own examples' values).
  """
  n = x.shape[0]
  if _is_key_batch(key):
    if key.shape[0] != n:
      raise ValueError(f'{key.shape[0]} per-example keys for {n} examples.')
    return jax.vmap(lambda k: jax.random.uniform(k, shape, x.dtype))(key)
  return jax.random.uniform(key, (n,) + shape, x.dtype)


def _per_example_uniform(key: jax.Array, x: jax.Array) -> jax.Array:
  """One U[0,1) draw per example, shaped to broadcast against `x`."""
  return _uniform(key, x, (1,) * (x.ndim - 1))


def wgan_gp(critic: Critic, real: Array, fake: Array, key: jax.Array, *,
            target: float = 1.0, one_sided: bool = False, weights=None,
            reduction: str = 'mean') -> jax.Array:
  """WGAN-GP penalty (Gulrajani et al. 2017).

  ``E (‖∇D(x̂)‖ - target)²`` at ``x̂ = εx + (1-ε)G(z)``, ``ε ~ U[0,1]`` per
  example (`key`: one key, or one key per example). ``one_sided=True`` penalises only norms above `target`
  (``E relu(‖∇D(x̂)‖ - target)²``, Petzka et al. 2018). Multiply by λ (10 in
  the paper) in the discriminator loss. `target` must be finite and >= 0: a
  norm is never negative, and 0 is the zero-centred penalty of Thanh-Tung et
  al. 2019.
  """
  check_range('target', target, 0.0)
  real, fake = as_float(real, 'real'), as_float(fake, 'fake')
  _check_same_shape(real, fake)
  eps = _per_example_uniform(key, real)
  interpolates = eps * real + (1.0 - eps) * fake
  values = _two_sided(gradient_norms(critic, interpolates), target, one_sided)
  return reduce_loss(values, weights, reduction)


def r1(critic: Critic, real: Array, *, weights=None, reduction: str = 'mean') -> jax.Array:
  """R1 penalty (Mescheder et al. 2018): ``½ E_x ‖∇D(x)‖²`` on real data.

  Multiply by γ in the discriminator loss (the paper's ``γ/2 E‖∇D‖²`` is this
  times γ).
  """
  grads = input_gradients(critic, real)
  values = 0.5 * jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=1)
  return reduce_loss(values, weights, reduction)


def r2(critic: Critic, fake: Array, *, weights=None, reduction: str = 'mean') -> jax.Array:
  """R2 penalty (Mescheder et al. 2018): ``½ E_z ‖∇D(G(z))‖²`` on fake data."""
  return r1(critic, fake, weights=weights, reduction=reduction)


def dragan(critic: Critic, real: Array, key: jax.Array, *, scale: float = 0.5,
           target: float = 1.0, std=None, weights=None, reduction: str = 'mean'
           ) -> jax.Array:
  """DRAGAN penalty (Kodali et al. 2017).

  ``E (‖∇D(x̃)‖ - target)²`` at points near the data: ``x_p = x + scale·std(x)·u``
  with ``u ~ U[0,1)`` elementwise and ``std`` over the whole batch, then
  ``x̃ = x + α(x_p - x)`` with ``α ~ U[0,1]`` per example, as in the authors'
  reference implementation. Multiply by λ (10 in the paper). Pass `std` to
  use a precomputed data std (for example, over all devices' batches).
  `scale` must be finite and > 0 (at 0 the points are the data themselves:
  no perturbation), `target` finite and >= 0 (as in `wgan_gp`), a given
  `std` finite and >= 0.
  """
  check_range('scale', scale, 0.0, low_open=True)
  check_range('target', target, 0.0)
  if std is not None:
    check_range('std', std, 0.0)
  real = as_float(real, 'real')
  if _is_key_batch(key):
    keys = jax.vmap(jax.random.split)(key)
    noise_key, alpha_key = keys[:, 0], keys[:, 1]
  else:
    noise_key, alpha_key = jax.random.split(key)
  std = jnp.std(real) if std is None else std
  perturbed = real + scale * std * _uniform(noise_key, real, real.shape[1:])
  alpha = _per_example_uniform(alpha_key, real)
  points = real + alpha * (perturbed - real)
  values = _two_sided(gradient_norms(critic, points), target, one_sided=False)
  return reduce_loss(values, weights, reduction)


def clip_weights(params: Any, c: float) -> Any:
  """Clips every parameter to ``[-c, c]`` (original WGAN, Arjovsky et al. 2017).

  Apply to the critic's parameters after each critic update (c = 0.01 in the
  paper). `c` may be traced (a per-member weight inside a step); a concrete
  one must be finite and positive.
  """
  check_range('c', c, 0.0, low_open=True)
  return jax.tree_util.tree_map(lambda p: jnp.clip(p, -c, c), params)


# ----------------------------------------------------------------- registry --

@dataclasses.dataclass(frozen=True)
class Penalty:
  """A registered discriminator regulariser, in the one shape the train step calls.

  Attributes:
    name: the registry name (``config.penalty``).
    term: ``term(critic, real, fake, keys, axis_name) -> scalar``, added to the
      discriminator loss times the penalty weight; `keys` holds one PRNG key per
      example; `axis_name` names the data-parallel mesh axis (None outside one)
      for penalties that need statistics of the whole global batch. None: no term.
    project: ``project(d_params, weight) -> d_params``, applied after every
      discriminator update, with the penalty weight as its argument (weight
      clipping: the clip value). None: nothing.
  """
  name: str
  term: Callable[..., jax.Array] | None = None
  project: Callable[[Any, Any], Any] | None = None

  @property
  def weight_must_be_positive(self) -> bool:
    """A projection takes its weight as a size (the clip value), so 0 is no choice."""
    return self.project is not None


_REGISTRY: Registry[Penalty] = Registry('penalty')


def register(name: str, term: Callable[..., jax.Array] | None = None,
             project: Callable[[Any, Any], Any] | None = None, *,
             replace: bool = False) -> Penalty:
  """Registers a penalty `term` and/or parameter `project`ion under `name` (see `Penalty`)."""
  return _REGISTRY.add(name, Penalty(name, term, project), replace=replace)


get = _REGISTRY.get      # get(name) -> Penalty; an unknown name raises ValueError
names = _REGISTRY.names  # names() -> the registered names, in order


def _global_std(x: jax.Array, axis_name: str | None) -> jax.Array:
  """The std of all elements of `x` on every device of `axis_name` (or of `x` alone)."""
  if axis_name is None:
    return jnp.std(x)
  mean = jax.lax.pmean(jnp.mean(x), axis_name)
  mean_sq = jax.lax.pmean(jnp.mean(jnp.square(x)), axis_name)
  return jnp.sqrt(jnp.maximum(mean_sq - mean ** 2, 0.0))


register('none')
register('wgan_gp', lambda critic, real, fake, keys, axis_name: wgan_gp(critic, real, fake, keys))
register('r1', lambda critic, real, fake, keys, axis_name: r1(critic, real))
register('r2', lambda critic, real, fake, keys, axis_name: r2(critic, fake))
register('dragan', lambda critic, real, fake, keys, axis_name: dragan(
    critic, real, keys, std=_global_std(real, axis_name)))
register('clip', project=clip_weights)
