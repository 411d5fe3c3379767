"""Tests for ganjax.penalties on analytic critics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ganjax import penalties

KEY = jax.random.PRNGKey(0)


def test_linear_critic_has_gradient_norm_of_w_everywhere():
  w = jnp.array([3.0, -4.0])
  x = jax.random.normal(KEY, (16, 2))
  np.testing.assert_allclose(penalties.gradient_norms(lambda v: v @ w, x), 5.0 * np.ones(16),
                             rtol=1e-6)
  np.testing.assert_allclose(penalties.r1(lambda v: v @ w, x), 12.5, rtol=1e-6)
  np.testing.assert_allclose(penalties.wgan_gp(lambda v: v @ w, x, -x, KEY), 16.0, rtol=1e-6)
  np.testing.assert_allclose(penalties.dragan(lambda v: v @ w, x, KEY), 16.0, rtol=1e-6)


def test_values_for_two_sum_critic_on_1d_inputs():
  critic = lambda v: 2.0 * jnp.sum(v)
  real = jax.random.normal(KEY, (8, 1))
  fake = jax.random.normal(jax.random.PRNGKey(1), (8, 1))
  np.testing.assert_allclose(penalties.wgan_gp(critic, real, fake, KEY), 1.0, rtol=1e-6)
  np.testing.assert_allclose(penalties.r1(critic, real), 2.0, rtol=1e-6)
  np.testing.assert_allclose(penalties.r2(critic, fake), 2.0, rtol=1e-6)
  # One-sided: a norm of 2 > 1 is still penalised; a norm of 0.5 is not.
  np.testing.assert_allclose(penalties.wgan_gp(critic, real, fake, KEY, one_sided=True), 1.0)
  half = lambda v: 0.5 * jnp.sum(v)
  assert penalties.wgan_gp(half, real, fake, KEY, one_sided=True) == 0.0
  np.testing.assert_allclose(penalties.wgan_gp(half, real, fake, KEY), 0.25, rtol=1e-6)


def test_wgan_gp_evaluates_on_interpolates():
  # D(x) = ½‖x‖² has ∇D(x) = x, so the penalty reveals where it was evaluated.
  critic = lambda v: 0.5 * jnp.sum(v ** 2)
  real = jnp.ones((256, 3))
  fake = -jnp.ones((256, 3))
  norms_sq = penalties.wgan_gp(critic, real, fake, KEY, target=0.0, reduction='none')
  # x̂ = (2ε - 1)·1, so ‖x̂‖² = 3(2ε-1)² ≤ 3, with mean 3·E(2ε-1)² = 1.
  assert np.all(norms_sq <= 3.0 + 1e-6)
  np.testing.assert_allclose(np.mean(norms_sq), 1.0, atol=0.15)
  # Different keys give different interpolates; the same key the same ones.
  other = penalties.wgan_gp(critic, real, fake, jax.random.PRNGKey(7), target=0.0,
                            reduction='none')
  assert not np.allclose(norms_sq, other)
  np.testing.assert_array_equal(
      norms_sq, penalties.wgan_gp(critic, real, fake, KEY, target=0.0, reduction='none'))


def test_dragan_perturbs_near_data():
  critic = lambda v: 0.5 * jnp.sum(v ** 2)  # gradient = point
  real = jax.random.normal(KEY, (512, 2))
  points_norm_sq = penalties.dragan(critic, real, KEY, target=0.0, reduction='none')
  # Points stay within scale·std of the data: ‖x̃‖ ≤ ‖x‖ + 0.5·std·√2.
  bound = (np.linalg.norm(real, axis=1) + 0.5 * np.std(real) * np.sqrt(2)) ** 2
  assert np.all(points_norm_sq <= bound + 1e-5)
  assert not np.allclose(points_norm_sq, np.sum(np.asarray(real) ** 2, axis=1))


def test_finite_gradients_where_the_input_gradient_is_zero():
  # Critic D(x) = θ·‖x‖² has zero input gradient at x = 0.
  def penalty(theta, name):
    critic = lambda v: theta * jnp.sum(v ** 2)
    zeros = jnp.zeros((4, 3))
    return {'wgan_gp': lambda: penalties.wgan_gp(critic, zeros, zeros, KEY),
            'r1': lambda: penalties.r1(critic, zeros),
            'dragan': lambda: penalties.dragan(critic, zeros, KEY)}[name]()
  for name in ('wgan_gp', 'r1', 'dragan'):
    value, grad = jax.value_and_grad(penalty)(1.5, name)
    assert np.isfinite(value) and np.isfinite(grad), name
  assert jax.grad(lambda x: penalties.safe_norm(x))(jnp.zeros(3)).tolist() == [0.0] * 3


def _mlp_critic(params, x):
  h = jnp.tanh(x @ params['w1'] + params['b1'])
  return jnp.sum(h @ params['w2'])


@pytest.mark.parametrize('name', ['wgan_gp', 'r1', 'r2', 'dragan'])
def test_parameter_gradient_matches_finite_differences(name):
  with jax.enable_x64(True):
    _check_parameter_gradient(name)


def _check_parameter_gradient(name):
  k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(3), 4)
  params = {'w1': jax.random.normal(k1, (3, 5), jnp.float64),
            'b1': jax.random.normal(k2, (5,), jnp.float64),
            'w2': jax.random.normal(k3, (5, 1), jnp.float64)}
  x = jax.random.normal(k4, (6, 3), jnp.float64)

  def penalty(p):
    critic = lambda v: _mlp_critic(p, v)
    return {'wgan_gp': lambda: penalties.wgan_gp(critic, x, -x, KEY),
            'r1': lambda: penalties.r1(critic, x),
            'r2': lambda: penalties.r2(critic, x),
            'dragan': lambda: penalties.dragan(critic, x, KEY)}[name]()

  grads = jax.grad(penalty)(params)
  eps = 1e-6
  for leaf_name in ('w1', 'b1', 'w2'):
    flat = np.asarray(params[leaf_name]).ravel()
    for i in (0, flat.size - 1):
      bumped = [flat.copy(), flat.copy()]
      bumped[0][i] += eps
      bumped[1][i] -= eps
      vals = [penalty({**params, leaf_name: jnp.asarray(b).reshape(params[leaf_name].shape)})
              for b in bumped]
      fd = (vals[0] - vals[1]) / (2 * eps)
      np.testing.assert_allclose(np.asarray(grads[leaf_name]).ravel()[i], fd, rtol=1e-5,
                                 atol=1e-8)


def test_clip_weights_and_errors():
  params = {'a': jnp.array([-1.0, 0.005, 2.0]), 'b': {'c': jnp.array([[0.3]])}}
  clipped = penalties.clip_weights(params, 0.01)
  np.testing.assert_array_equal(clipped['a'], np.float32([-0.01, 0.005, 0.01]))
  np.testing.assert_array_equal(clipped['b']['c'], np.float32([[0.01]]))
  with pytest.raises(ValueError, match='positive'):
    penalties.clip_weights(params, 0.0)
  with pytest.raises(ValueError, match=r'\(4, 2\).*\(3, 2\)'):
    penalties.wgan_gp(lambda v: jnp.sum(v), jnp.zeros((4, 2)), jnp.zeros((3, 2)), KEY)
  with pytest.raises(ValueError, match='one logit'):
    penalties.r1(lambda v: v, jnp.zeros((4, 2)))
  with pytest.raises(TypeError, match='int32'):
    penalties.r1(lambda v: jnp.sum(v), jnp.zeros((4, 2), jnp.int32))


def test_flax_style_critic_with_batch_dim_and_jit():
  w = jnp.array([[1.0], [2.0], [2.0]])
  apply = lambda params, xb: xb @ params  # batch in, (batch, 1) out
  critic = lambda x: apply(w, x[None])[0, 0]
  x = jax.random.normal(KEY, (5, 3))
  np.testing.assert_allclose(jax.jit(lambda x: penalties.r1(critic, x))(x), 4.5, rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=6), st.integers(1, 9))
def test_property_linear_critic_penalties(w, n):
  w = jnp.asarray(w, jnp.float32)
  x = jax.random.normal(jax.random.PRNGKey(n), (n, w.shape[0]))
  norm = float(np.linalg.norm(np.asarray(w, np.float64)))
  critic = lambda v: v @ w
  np.testing.assert_allclose(penalties.r1(critic, x), 0.5 * norm ** 2, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(penalties.wgan_gp(critic, x, x[::-1], KEY), (norm - 1) ** 2,
                             rtol=1e-4, atol=1e-5)
  per = penalties.r1(critic, x, reduction='none')
  np.testing.assert_allclose(np.sum(per), penalties.r1(critic, x, reduction='sum'), rtol=1e-5)


@pytest.mark.parametrize('name', ['wgan_gp', 'dragan'])
def test_per_example_keys_make_draws_independent_of_batch_split(name):
  critic = lambda v: 0.5 * jnp.sum(v ** 2)  # gradient = evaluation point
  real = jax.random.normal(KEY, (8, 3))
  fake = jax.random.normal(jax.random.PRNGKey(1), (8, 3))
  keys = jax.random.split(jax.random.PRNGKey(2), 8)
  std = jnp.std(real)

  def run(sl):
    if name == 'wgan_gp':
      return penalties.wgan_gp(critic, real[sl], fake[sl], keys[sl], target=0.0,
                               reduction='none')
    return penalties.dragan(critic, real[sl], keys[sl], target=0.0, std=std, reduction='none')

  whole = run(slice(None))
  halves = jnp.concatenate([run(slice(0, 4)), run(slice(4, 8))])
  np.testing.assert_array_equal(whole, halves)
  assert len(np.unique(np.asarray(whole))) == 8
