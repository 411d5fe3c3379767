"""GAN objectives as pure functions on discriminator logits.

Every function takes logits (float arrays of any batch shape, one logit per
example) and returns an array: the mean over examples by default,
``reduction='sum'`` for the sum, ``reduction='none'`` for per-example values.
``weights`` (broadcastable to the logits) multiply the per-example values
before reduction; ``'mean'`` then divides by the number of non-zero weights
(TF-GAN's ``SUM_BY_NONZERO_WEIGHTS``), so a weight of zero removes an example.

A discriminator loss is ``real_term(D(x_i)) + fake_term(D(G(z_i)))`` per
example, so real and fake logits must have the same shape. Arithmetic is in
float32 (or the logits' wider float type) even when a model runs in bfloat16.

Every option is checked against the range its docstring states, and a bad
concrete value raises a ``ValueError`` naming it; a traced option (inside
``jit``/``grad``/``vmap``) cannot be checked and is used as given.

This module imports only jax and numpy so that any project can use it::

    import ganjax.losses as gl
    loss = gl.get('hinge')
    d_loss = loss.discriminator(d_real, d_fake)
    g_loss = loss.generator(d_fake, d_real)
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import jax
import jax.numpy as jnp

from ganjax.arrays import as_float, check_range
from ganjax.registry import Registry

Array = Any

_REDUCTIONS = ('mean', 'sum', 'none')
_CLASSIC_FORMS = ('softplus', 'bce', 'direct')
_GENERATORS = ('non_saturating', 'minimax')


# ----------------------------------------------------------------- helpers --

def _pair(real_logits: Array, fake_logits: Array) -> tuple[jax.Array, jax.Array]:
  real = as_float(real_logits, 'real_logits')
  fake = as_float(fake_logits, 'fake_logits')
  if real.shape != fake.shape:
    raise ValueError(
        f'real_logits shape {real.shape} and fake_logits shape {fake.shape} '
        'differ; this loss pairs real and fake examples, so they must match.')
  return real, fake


def reduce_loss(values: jax.Array, weights: Array | None = None,
                reduction: str = 'mean') -> jax.Array:
  """Applies per-example `weights`, then `reduction` ('mean', 'sum', 'none')."""
  if reduction not in _REDUCTIONS:
    raise ValueError(f'reduction={reduction!r}; valid: {", ".join(_REDUCTIONS)}.')
  if weights is not None:
    weights = jnp.broadcast_to(jnp.asarray(weights, values.dtype), values.shape)
    values = values * weights
  if reduction == 'none':
    return values
  total = jnp.sum(values)
  if reduction == 'sum':
    return total
  if weights is None:
    return total / max(values.size, 1)
  nonzero = jnp.sum(weights != 0).astype(values.dtype)
  return jnp.where(nonzero > 0, total / jnp.maximum(nonzero, 1), 0.0)


def _bce_with_logits(x: jax.Array, label: float | jax.Array) -> jax.Array:
  """Sigmoid cross-entropy with logits, TF's stable formula.

  ``max(x, 0) - x * label + log1p(exp(-|x|))``.
  """
  return jnp.maximum(x, 0) - x * label + jnp.log1p(jnp.exp(-jnp.abs(x)))


def _neg_log_sigmoid(x: jax.Array, form: str) -> jax.Array:
  """``-log σ(x)`` written in `form`."""
  if form == 'softplus':
    return jax.nn.softplus(-x)
  if form == 'bce':
    return _bce_with_logits(x, 1.0)
  return -jnp.log(jax.nn.sigmoid(x))  # 'direct'


def _neg_log_one_minus_sigmoid(x: jax.Array, form: str) -> jax.Array:
  """``-log(1 - σ(x))`` written in `form`."""
  if form == 'softplus':
    return jax.nn.softplus(x)
  if form == 'bce':
    return _bce_with_logits(x, 0.0)
  return -jnp.log(1.0 - jax.nn.sigmoid(x))  # 'direct'


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
  if value not in valid:
    raise ValueError(f'{name}={value!r}; valid: {", ".join(valid)}.')


# ------------------------------------------------------------------ classic --

def classic_discriminator(real_logits, fake_logits, *, form='softplus',
                          label_smoothing=0.0, weights=None, reduction='mean'):
  """The original GAN discriminator loss (Goodfellow et al. 2014).

  ``L_D = -log σ(D(x)) - log(1 - σ(D(G(z))))``, with one-sided label smoothing
  ``s`` (Salimans et al. 2016) making the real target ``1 - s``:
  ``-(1-s) log σ(D(x)) - s log(1-σ(D(x))) - log(1-σ(D(G(z))))``.

  `form` picks one of three mathematically equal ways of writing it:

  * ``'softplus'`` (default): ``softplus(-D(x)) + softplus(D(G(z)))``, using
    ``-log σ(t) = softplus(-t)`` and ``-log(1-σ(t)) = softplus(t)``.
  * ``'bce'``: sigmoid cross-entropy with logits against labels 1 and 0, with
    TF's formula ``max(t,0) - t·y + log1p(exp(-|t|))``.
  * ``'direct'``: literally ``-log(sigmoid(t))`` and ``-log(1 - sigmoid(t))``,
    the way the loss is usually written first. It is numerically unsafe in
    float32: ``σ(t)`` underflows to 0 once a real logit passes about -88
    (measured: -87.4) and ``1 - σ(t)`` rounds to 0 once a fake logit passes
    about +16.6, so the loss is ``inf`` and its gradient ``nan`` there. It
    loses precision well before: ``σ(t)`` near 1 cancels in ``1 - σ(t)`` and
    ``log σ(t)``, so it matches the stable forms to 1e-5 relative only for
    |t| ≲ 4; the relative error of ``-log(1 - σ(t))`` is ~6e-6 at t≈6,
    ~1e-4 at t≈10 and ~1e-2 at t≈15 (tests/test_losses.py measures it). ``'softplus'`` and ``'bce'``
    stay finite, to float32 precision, with finite gradients for any finite
    logit. Use ``'direct'`` only to demonstrate this.

  `label_smoothing` must be in [0, 1): at 1 the real target is 0, the
  fakes' target, and the loss no longer tells real from fake.
  """
  _check_choice('form', form, _CLASSIC_FORMS)
  check_range('label_smoothing', label_smoothing, 0.0, 1.0, high_open=True)
  real, fake = _pair(real_logits, fake_logits)
  real_term = _neg_log_sigmoid(real, form)
  if not (isinstance(label_smoothing, (int, float)) and label_smoothing == 0):
    # Written only when used: 0 * inf would turn the 'direct' form's inf into NaN.
    real_term = ((1.0 - label_smoothing) * real_term
                 + label_smoothing * _neg_log_one_minus_sigmoid(real, form))
  values = real_term + _neg_log_one_minus_sigmoid(fake, form)
  return reduce_loss(values, weights, reduction)


def classic_generator(fake_logits, real_logits=None, *, generator='non_saturating',
                      form='softplus', weights=None, reduction='mean'):
  """The original GAN generator loss (Goodfellow et al. 2014).

  * ``'non_saturating'`` (default): ``-log σ(D(G(z))) = softplus(-D(G(z)))``,
    the heuristic of section 3 of the paper, strong gradients early on.
  * ``'minimax'``: the saturating game value ``log(1 - σ(D(G(z)))) =
    -softplus(D(G(z)))``; its gradient vanishes when D confidently rejects
    fakes (large negative logits).

  `form` is as in `classic_discriminator`; `real_logits` is unused.
  """
  del real_logits
  _check_choice('generator', generator, _GENERATORS)
  _check_choice('form', form, _CLASSIC_FORMS)
  fake = as_float(fake_logits, 'fake_logits')
  if generator == 'non_saturating':
    values = _neg_log_sigmoid(fake, form)
  else:
    values = -_neg_log_one_minus_sigmoid(fake, form)
  return reduce_loss(values, weights, reduction)


# --------------------------------------------------------------------- wgan --

def wgan_discriminator(real_logits, fake_logits, *, weights=None, reduction='mean'):
  """Wasserstein GAN critic loss (Arjovsky et al. 2017).

  ``L_D = E D(G(z)) - E D(x)``: minimising it maximises the critic's estimate
  of the Wasserstein-1 distance. Needs a Lipschitz constraint: weight clipping
  or a gradient penalty (`ganjax.penalties`).
  """
  real, fake = _pair(real_logits, fake_logits)
  return reduce_loss(fake - real, weights, reduction)


def wgan_generator(fake_logits, real_logits=None, *, weights=None, reduction='mean'):
  """Wasserstein GAN generator loss (Arjovsky et al. 2017): ``-E D(G(z))``."""
  del real_logits
  return reduce_loss(-as_float(fake_logits, 'fake_logits'), weights, reduction)


# -------------------------------------------------------------------- hinge --

def hinge_discriminator(real_logits, fake_logits, *, margin=1.0, weights=None,
                        reduction='mean'):
  """Hinge loss of Geometric GAN (Lim & Ye 2017), used by SAGAN and BigGAN.

  ``L_D = E relu(m - D(x)) + E relu(m + D(G(z)))`` with margin ``m`` (1):
  only real examples scored below ``m`` and fakes above ``-m`` contribute.
  ``m`` must be finite and > 0: at 0 the loss is 0 for D ≡ 0 and scale-free
  (``L(cD) = c·L(D)``), so it has no margin to separate real from fake; a
  negative margin rewards scoring fakes above reals.
  """
  check_range('margin', margin, 0.0, low_open=True)
  real, fake = _pair(real_logits, fake_logits)
  values = jax.nn.relu(margin - real) + jax.nn.relu(margin + fake)
  return reduce_loss(values, weights, reduction)


def hinge_generator(fake_logits, real_logits=None, *, weights=None, reduction='mean'):
  """Hinge generator loss (Lim & Ye 2017): ``-E D(G(z))``."""
  del real_logits
  return reduce_loss(-as_float(fake_logits, 'fake_logits'), weights, reduction)


# ------------------------------------------------------------ least squares --

def least_squares_discriminator(real_logits, fake_logits, *, real_target=1.0,
                                fake_target=0.0, weights=None, reduction='mean'):
  """Least-squares GAN discriminator loss (Mao et al. 2017), on raw logits.

  ``L_D = ½ E (D(x) - b)² + ½ E (D(G(z)) - a)²`` with ``b = real_target`` (1)
  and ``a = fake_target`` (0), TF-GAN's defaults. ``a=-1, b=1`` with a
  generator target ``c=0`` gives the Pearson χ² variant of the paper. Both
  targets may be any finite numbers.
  """
  check_range('real_target', real_target)
  check_range('fake_target', fake_target)
  real, fake = _pair(real_logits, fake_logits)
  values = 0.5 * jnp.square(real - real_target) + 0.5 * jnp.square(fake - fake_target)
  return reduce_loss(values, weights, reduction)


def least_squares_generator(fake_logits, real_logits=None, *, target=1.0,
                            weights=None, reduction='mean'):
  """Least-squares GAN generator loss (Mao et al. 2017): ``½ E (D(G(z)) - c)²``;
  ``c = target`` (1) may be any finite number."""
  del real_logits
  check_range('target', target)
  fake = as_float(fake_logits, 'fake_logits')
  return reduce_loss(0.5 * jnp.square(fake - target), weights, reduction)


# ------------------------------------------------------------- relativistic --

def _batch_mean(x: jax.Array, axis_name: str | None) -> jax.Array:
  mean = jnp.mean(x)
  return jax.lax.pmean(mean, axis_name) if axis_name is not None else mean


def relativistic_discriminator(real_logits, fake_logits, *, label_smoothing=0.0,
                               axis_name=None, weights=None, reduction='mean'):
  """Relativistic average GAN discriminator loss (Jolicoeur-Martineau 2018).

  TF-GAN's convention (``relativistic_discriminator_loss``), per example i::

    L_D,i = BCE(D(x_i) - mean_j D(G(z_j)), 1 - s) + BCE(D(G(z_i)) - mean_j D(x_j), 0)

  with one-sided label smoothing ``s`` (default 0; TF-GAN's default is 0.25),
  in [0, 1) as for the classic loss.
  The means run over all examples passed in; inside a data-parallel step pass
  ``axis_name`` to average them over devices too (``lax.pmean``).
  """
  check_range('label_smoothing', label_smoothing, 0.0, 1.0, high_open=True)
  real, fake = _pair(real_logits, fake_logits)
  real_rel = real - _batch_mean(fake, axis_name)
  fake_rel = fake - _batch_mean(real, axis_name)
  values = _bce_with_logits(real_rel, 1.0 - label_smoothing) + _bce_with_logits(fake_rel, 0.0)
  return reduce_loss(values, weights, reduction)


def relativistic_generator(fake_logits, real_logits=None, *, axis_name=None,
                           weights=None, reduction='mean'):
  """Relativistic average GAN generator loss (Jolicoeur-Martineau 2018).

  The discriminator's objective with labels swapped, per example i::

    L_G,i = BCE(D(x_i) - mean_j D(G(z_j)), 0) + BCE(D(G(z_i)) - mean_j D(x_j), 1)

  Unlike the other generator losses it needs `real_logits`.
  """
  if real_logits is None:
    raise ValueError('the relativistic generator loss needs real_logits.')
  real, fake = _pair(real_logits, fake_logits)
  real_rel = real - _batch_mean(fake, axis_name)
  fake_rel = fake - _batch_mean(real, axis_name)
  values = _bce_with_logits(real_rel, 0.0) + _bce_with_logits(fake_rel, 1.0)
  return reduce_loss(values, weights, reduction)


# ----------------------------------------------------------------- registry --

_NOT_OPTIONS = ('real_logits', 'fake_logits', 'weights', 'reduction', 'axis_name')


@dataclasses.dataclass(frozen=True)
class Loss:
  """A registered objective: its two functions and what training needs to know of it.

  Attributes:
    name: the registry name (``--loss``).
    discriminator: ``(real_logits, fake_logits, *, <options>, weights, reduction)``.
    generator: ``(fake_logits, real_logits=None, *, <options>, weights, reduction)``.
    needs_real_for_generator: the generator loss uses `real_logits`.
    cross_device: the loss takes batch statistics (means over examples); inside a
      data-parallel step both sides get ``axis_name`` so they span all devices.
    penalty, penalty_weight, n_dis, betas: the defaults a config leaves to the loss
      (``None`` fields of `configs/default.py`): gradient penalty, its weight,
      discriminator updates per generator update, and Adam's (b1, b2).
    label: the name in experiment tables (default: `name`).
    variants: extra ``(label, options)`` rows the experiments also run.
  """
  name: str
  discriminator: Callable[..., jax.Array]
  generator: Callable[..., jax.Array]
  needs_real_for_generator: bool = False
  cross_device: bool = False
  penalty: str = 'none'
  penalty_weight: float = 0.0
  n_dis: int = 1
  betas: tuple[float, float] = (0.5, 0.999)  # DCGAN's (Radford et al. 2016)
  label: str | None = None
  variants: tuple[tuple[str, dict], ...] = ()

  def option_names(self) -> tuple[frozenset[str], frozenset[str]]:
    """The keyword options of the (discriminator, generator) functions."""
    d, g = (_keyword_defaults(fn) for fn in (self.discriminator, self.generator))
    return frozenset(d), frozenset(g)

  def option_defaults(self) -> dict[str, Any]:
    """Every option of either side with its default (a config's ``loss_options``)."""
    return {**_keyword_defaults(self.generator), **_keyword_defaults(self.discriminator)}

  def split_options(self, options: dict) -> tuple[dict, dict]:
    """Routes each option to the side(s) that accept it; an unknown option raises."""
    d_keys, g_keys = self.option_names()
    unknown = set(options) - d_keys - g_keys
    if unknown:
      named = ', '.join(f'loss_options.{k}' for k in sorted(unknown))
      raise ValueError(f'{named}: not an option of loss {self.name}; valid: '
                       f'{", ".join(sorted(d_keys | g_keys)) or "none"}.')
    return ({k: v for k, v in options.items() if k in d_keys},
            {k: v for k, v in options.items() if k in g_keys})

  def experiment_rows(self) -> tuple[tuple[str, dict], ...]:
    """``(label, options)`` of every row the experiments run for this loss."""
    return ((self.label or self.name, {}),) + tuple(self.variants)


def _keyword_defaults(fn: Callable[..., Any]) -> dict[str, Any]:
  return {p.name: p.default for p in inspect.signature(fn).parameters.values()
          if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _NOT_OPTIONS}


_REGISTRY: Registry[Loss] = Registry('loss')


def register(name: str, discriminator: Callable[..., jax.Array],
             generator: Callable[..., jax.Array], *, replace: bool = False, **fields) -> Loss:
  """Registers a loss pair under `name`; `fields` are `Loss`'s other attributes.

  Its options are the keyword parameters of the two functions, so a config's
  ``loss_options`` reach it with no other edit::

      ganjax.losses.register('my_loss', my_d, my_g, penalty='r1', penalty_weight=1.0)
  """
  return _REGISTRY.add(name, Loss(name, discriminator, generator, **fields), replace=replace)


get = _REGISTRY.get      # get(name) -> Loss; an unknown name raises ValueError
names = _REGISTRY.names  # names() -> the registered names, in order


register('classic', classic_discriminator, classic_generator,
         label='classic (non-saturating)',
         variants=(('classic (minimax)', {'generator': 'minimax'}),))
# WGAN-GP's defaults: λ = 10, five critic updates, Adam (0.5, 0.9) (Gulrajani et al. 2017).
register('wgan', wgan_discriminator, wgan_generator, penalty='wgan_gp', penalty_weight=10.0,
         n_dis=5, betas=(0.5, 0.9), label='wgan-gp')
register('hinge', hinge_discriminator, hinge_generator)
register('least_squares', least_squares_discriminator, least_squares_generator,
         label='least squares')
register('relativistic', relativistic_discriminator, relativistic_generator,
         needs_real_for_generator=True, cross_device=True)


__all__ = ['Loss', 'get', 'names', 'reduce_loss', 'register'] + [
    f'{n}_{side}' for n in names() for side in ('discriminator', 'generator')]
