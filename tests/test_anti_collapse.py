"""Packing, unrolling, the update order and the recipe options of the 2D papers.

PacGAN (Lin et al. 2018) packs m samples per discriminator input; Unrolled GAN
(Metz et al. 2017) differentiates the generator's loss through k look-ahead
discriminator updates. Both work with every loss and penalty.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import g_objective_value as _g_loss, load_state, member_parts, tiny_config
from ganjax import data, models, optimizers, parallel, resolve, step as step_lib, train


# ------------------------------------------------------------------ packing --

def test_pack_concatenates_consecutive_examples_on_the_last_axis():
  x = jnp.arange(12.0).reshape(6, 2)
  np.testing.assert_array_equal(step_lib.pack(x, 3), [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
  assert step_lib.pack(x, 1) is x  # pack 1 is the unchanged step
  images = jnp.arange(4 * 2 * 2 * 3.0).reshape(4, 2, 2, 3)
  packed = step_lib.pack(images, 2)
  assert packed.shape == (2, 2, 2, 6) == (2,) + step_lib.packed_shape((2, 2, 3), 2)
  np.testing.assert_array_equal(packed[1, ..., :3], images[2])  # channels stacked in order
  np.testing.assert_array_equal(packed[1, ..., 3:], images[3])
  with pytest.raises(ValueError, match='do not form packs of 4'):
    step_lib.pack(x, 4)


def test_pack_one_is_the_default_step_and_packing_changes_training(tmp_path):
  base = train.train_and_evaluate(tiny_config(), str(tmp_path / 'base'))
  one = train.train_and_evaluate(tiny_config(pack=1), str(tmp_path / 'one'))
  assert one['state_digest'] == base['state_digest']
  four = train.train_and_evaluate(tiny_config(pack=4, loss='wgan', n_dis=1),
                                  str(tmp_path / 'four'))
  d_kernel = load_state(str(tmp_path / 'four'))['members']['d_params']['Dense_0']['kernel']
  assert d_kernel.shape == (1, 8, 32)  # (member, 4 packed 2D points, width)
  assert np.isfinite(four['penalty']) and four['penalty'] > 0  # interpolates are packs


def test_pack_must_divide_each_device_share():
  with pytest.raises(ValueError, match='pack=3 must divide batch_size=64'):
    resolve.resolve_config(tiny_config(pack=3))


# ---------------------------------------------------------------- unrolling --

def _tiny_parts(unroll_steps, loss='classic', with_pair=False, **options):
  cfg = tiny_config(loss=loss, unroll_steps=unroll_steps, batch_size=8,
                    **{'model_options.hidden': (6,), 'model_options.z_dim': 2,
                       'model_options.g_activation': 'tanh', 'model_options.d_activation': 'tanh',
                       'd_optimizer.name': 'sgd', 'd_optimizer.learning_rate': 0.5, **options})
  parts, m, pair = member_parts(cfg)
  return (parts, m, pair) if with_pair else (parts, m)


@pytest.mark.usefixtures('highest_matmul_precision')  # a claim about arithmetic
def test_unrolled_generator_gradient_matches_finite_differences():
  parts, m = _tiny_parts(unroll_steps=3)
  rng = np.random.default_rng(0)
  z = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)
  real = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)
  g = m['g_params']
  loss = jax.jit(lambda p: _g_loss(parts, m, p, z, real))
  grad = jax.jit(jax.grad(loss))(g)
  direction = jax.tree_util.tree_map(
      lambda x: jnp.asarray(rng.normal(size=x.shape), x.dtype), g)
  dot = sum(jnp.vdot(a, b) for a, b in zip(jax.tree_util.tree_leaves(grad),
                                           jax.tree_util.tree_leaves(direction)))
  eps = 1e-2
  shifted = lambda s: jax.tree_util.tree_map(lambda x, v: x + s * eps * v, g, direction)
  fd = (loss(shifted(1.0)) - loss(shifted(-1.0))) / (2 * eps)
  np.testing.assert_allclose(float(dot), float(fd), rtol=2e-2, atol=1e-4)
  # The look-ahead matters: without unrolling the directional derivative differs.
  plain_parts, _ = _tiny_parts(unroll_steps=0)
  plain = jax.jit(jax.grad(lambda p: _g_loss(plain_parts, m, p, z, real)))(g)
  plain_dot = sum(jnp.vdot(a, b) for a, b in zip(jax.tree_util.tree_leaves(plain),
                                                 jax.tree_util.tree_leaves(direction)))
  assert abs(float(plain_dot) - float(dot)) > 10 * (2e-2 * abs(float(dot)) + 1e-4)


def test_adams_update_is_differentiable_where_a_gradient_is_exactly_zero():
  """Adam's update of a parameter whose gradients were exactly 0 (its second moment is 0)
  has a finite derivative: sqrt's is infinite at 0 and, times 0, made it NaN."""
  tx = optimizers.make({'name': 'adam', 'b1': 0.5, 'b2': 0.999}, 1e-3)

  def after(x):  # gradients x * [1, 0]: the second parameter's is exactly 0
    params = jnp.ones(2)
    state = tx.init(params)
    for _ in range(2):
      updates, state = tx.update(x * jnp.array([1.0, 0.0]), state, params)
      params = optax.apply_updates(params, updates)
    return params

  jacobian = jax.jacobian(after)(0.3)
  assert np.all(np.isfinite(jacobian)) and jacobian[1] == 0.0, jacobian
  np.testing.assert_allclose(after(0.3), [1 - 2e-3, 1.0], rtol=1e-6)  # about lr * sign


def test_unrolled_relativistic_generator_gradient_is_finite():
  """The relativistic loss cancels D's output bias. On the CPU its gradient, and Adam's
  second moment there, are exactly 0, and the look-ahead through Adam made G's gradient NaN
  at the first step (optimizers.ADAM_EPS_ROOT); elsewhere rounding may leave them tiny."""
  parts, m = _tiny_parts(unroll_steps=2, loss='relativistic',
                         **{'d_optimizer.name': 'adam', 'd_optimizer.learning_rate': 1e-2})
  rng = np.random.default_rng(0)
  z = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)
  real = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)
  grad = jax.jit(jax.grad(lambda p: _g_loss(parts, m, p, z, real)))(m['g_params'])
  assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(grad))


@pytest.mark.usefixtures('highest_matmul_precision')  # a claim about arithmetic
def test_unrolled_minimax_objective_is_the_notebooks_negated_discriminator_loss():
  """The Unrolled GAN notebook's G minimises ``-loss`` at D after its look-ahead updates, the
  real-data term included (it reaches G through the updates). Written out here for one SGD
  look-ahead step, it matches the step's objective: the same gradient, and values that differ
  by the constant log 2 (D's fake term at logit 0, `step.g_objective`)."""
  parts, m, pair = _tiny_parts(unroll_steps=1, with_pair=True,
                               **{'loss_options.generator': 'minimax'})
  rng = np.random.default_rng(1)
  z = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)
  real = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)

  def d_loss(d_params, fake):  # the notebook's `loss`: sigmoid cross-entropy, real 1, fake 0
    logits = lambda x: pair.discriminator.apply({'params': d_params}, x)[..., 0]
    return jnp.mean(jax.nn.softplus(-logits(real)) + jax.nn.softplus(logits(fake)))

  def notebook(g_params):
    fake = pair.generator.apply({'params': g_params}, z, train=True)
    d0 = m['d_params']
    d1 = jax.tree_util.tree_map(lambda p, g: p - 0.5 * g, d0, jax.grad(d_loss)(d0, fake))
    return -d_loss(d1, fake)

  ours = lambda g: _g_loss(parts, m, g, z, real)
  g = m['g_params']
  np.testing.assert_allclose(float(ours(g)), float(notebook(g)) - np.log(2.0), rtol=1e-5)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                         jax.grad(ours)(g), jax.grad(notebook)(g))
  # Without the real-data term (G's loss on fakes alone) the gradient is another one.
  fake_only = lambda gp: -jnp.mean(jax.nn.softplus(pair.discriminator.apply(
      {'params': jax.tree_util.tree_map(
          lambda p, q: p - 0.5 * q, m['d_params'],
          jax.grad(d_loss)(m['d_params'], pair.generator.apply({'params': gp}, z,
                                                               train=True)))},
      pair.generator.apply({'params': gp}, z, train=True))[..., 0]))
  gap = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(
      jax.tree_util.tree_leaves(jax.grad(ours)(g)), jax.tree_util.tree_leaves(jax.grad(fake_only)(g))))
  assert gap > 1e-4


@pytest.mark.parametrize('order', ['alternating', 'simultaneous'])
def test_unrolling_changes_the_generator_update_only(tmp_path, order):
  """After one step D's parameters are the same with and without unrolling (the look-ahead
  updates live inside G's loss only), and G's differ, in either update order (the Unrolled
  GAN notebook unrolls with simultaneous updates)."""
  states = {}
  for k in (0, 2):
    summary = train.train_and_evaluate(
        tiny_config(steps=1, checkpoint_every=1, log_every=1, eval_every=1, unroll_steps=k,
                    update_order=order),
        str(tmp_path / str(k)))
    assert np.isfinite(summary['g_loss'])
    states[k] = load_state(str(tmp_path / str(k)))['members']
  jax.tree_util.tree_map(np.testing.assert_array_equal, states[0]['d_params'],
                         states[2]['d_params'])
  assert any(not np.array_equal(a, b) for a, b in zip(
      jax.tree_util.tree_leaves(states[0]['g_params']),
      jax.tree_util.tree_leaves(states[2]['g_params'])))


# ------------------------------------------------------------- update order --

def _first_generator_updates(order):
  """G's parameters after one step of two members that differ only in D's learning rate."""
  run = resolve.resolve_config(tiny_config(update_order=order))
  pair = run.model.make((2,), 'float32', **run.model_options)
  state = step_lib.init_members(pair, run.step, (2,), np.array([0, 0]), np.array([1e-4, 1e-4]),
                                np.array([1e-4, 1e-1]))
  batch = jnp.asarray(data.Dataset('ring', 64).batch(0))
  one_step = step_lib.make_per_device_step(pair, run.step)
  new, _ = jax.jit(jax.vmap(lambda _: one_step(state, batch, jnp.zeros(2)),
                            axis_name=parallel.AXIS))(jnp.zeros(1))
  g = new['members']['g_params']
  return [jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x: x[0, i], g)) for i in (0, 1)]


def test_simultaneous_update_uses_the_discriminator_before_its_update():
  # Simultaneous: G's first update cannot depend on D's learning rate; alternating: it does.
  a, b = _first_generator_updates('simultaneous')
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  a, b = _first_generator_updates('alternating')
  assert any(not np.array_equal(x, y) for x, y in zip(a, b))
  with pytest.raises(ValueError, match='needs n_dis=1, got n_dis=2'):
    resolve.resolve_config(tiny_config(update_order='simultaneous', n_dis=2))
  with pytest.raises(ValueError, match="update_order='both'; valid: alternating, simultaneous"):
    resolve.resolve_config(tiny_config(update_order='both'))


# -------------------------------------------------------- the recipes' parts --

def test_maxout_discriminator_takes_the_max_over_pieces():
  pair = models.get('mlp').build((2,), {'hidden': (3,), 'maxout': 5})
  x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 2)), jnp.float32)
  params = pair.discriminator.init(jax.random.PRNGKey(0), x)['params']
  assert params['Dense_0']['kernel'].shape == (2, 15)
  pre = x @ params['Dense_0']['kernel'] + params['Dense_0']['bias']
  hidden = pre.reshape(4, 3, 5).max(axis=-1)
  expected = hidden @ params['Dense_1']['kernel'] + params['Dense_1']['bias']
  np.testing.assert_allclose(pair.discriminator.apply({'params': params}, x), expected,
                             rtol=1e-6)


@pytest.mark.parametrize('shape', [(2, 128), (128, 128), (128, 2)])
def test_orthogonal_init_with_gain(shape):
  pair = models.get('mlp').build((shape[0],), {'hidden': (shape[1],), 'init': 'orthogonal',
                                               'init_scale': 1.4})
  kernel = pair.discriminator.init(jax.random.PRNGKey(0), jnp.zeros((1, shape[0])))[
      'params']['Dense_0']['kernel']
  small = min(shape)
  kernel = np.asarray(kernel, np.float64)  # the check's own product exact (not TF32 on a GPU)
  gram = kernel.T @ kernel if shape[0] >= shape[1] else kernel @ kernel.T
  np.testing.assert_allclose(gram, 1.4 ** 2 * np.eye(small), atol=1e-5)
  normal = models.get('mlp').build((2,), {'hidden': (4000,), 'init': 'normal'})
  w = normal.generator.init(jax.random.PRNGKey(0), jnp.zeros((1, 16)))['params']['Dense_0']
  assert abs(float(jnp.std(w['kernel'])) - 0.02) < 1e-3 and not np.any(w['bias'])


def test_mlp_option_errors_name_the_option():
  with pytest.raises(ValueError, match=r"model_options.g_activation='gelu'; valid: relu"):
    models.get('mlp').build((2,), {'g_activation': 'gelu'})
  with pytest.raises(ValueError, match='model_options.maxout=0'):
    models.get('mlp').build((2,), {'maxout': 0})
  with pytest.raises(ValueError, match="model_options.init='xavier'; valid: lecun, normal"):
    models.get('mlp').build((2,), {'init': 'xavier'})


def test_finite_training_set_is_visited_once_per_epoch_and_resumes_exactly():
  ds = data.Dataset('ring', 10, n_dis=2, seed=4, train_size=100)
  epoch = np.concatenate([ds.batch(s).reshape(-1, 2) for s in range(5)])
  rows = {r.tobytes() for r in epoch}
  assert len(rows) == 100 and rows == {r.tobytes() for r in ds.source.points}
  np.testing.assert_array_equal(ds.batch(7), data.Dataset('ring', 10, n_dis=2, seed=4,
                                                          train_size=100).batch(7))
  assert not np.array_equal(ds.batch(0), ds.batch(5))  # a new order in the next epoch
  with pytest.raises(ValueError, match='train_size=100 applies to 2D mixtures'):
    data.Dataset('digits', 10, train_size=100, data_dir='/nonexistent')


# ----------------------------------------------------------------- bfloat16 --

@pytest.mark.parametrize('penalty', ['none', 'wgan_gp'])
def test_bfloat16_losses_and_gradients_match_float32(penalty):
  """One D objective and its gradient in both compute dtypes, from the same float32 params:
  bf16 keeps 8 bits of mantissa, so they agree to a few percent, and the penalty's double
  backward stays finite."""
  cfg = tiny_config(loss='wgan', penalty=penalty, penalty_weight=10.0, batch_size=64,
                    **{'model_options.hidden': (64, 64)})
  run = resolve.resolve_config(cfg)
  rng = np.random.default_rng(0)
  real = jnp.asarray(rng.normal(size=(64, 2)), jnp.float32)
  fake = jnp.asarray(rng.normal(size=(64, 2)) * 0.5, jnp.float32)
  out = {}
  for dtype in ('float32', 'bfloat16'):
    pair = run.model.make((2,), dtype, **run.model_options)
    state = step_lib.init_members(pair, run.step, (2,), run.seeds, run.g_learning_rate,
                                  run.d_learning_rate)
    m = jax.tree_util.tree_map(lambda x: x[0], state['members'])
    parts = step_lib.make_per_device_step(pair, run.step)
    fn = lambda p: parts.d_step(p, m['d_opt'], m['d_stats'], real, fake, jax.random.PRNGKey(2),
                                10.0)[3]
    aux = jax.jit(jax.vmap(lambda _: fn(m['d_params']), axis_name=parallel.AXIS))(jnp.zeros(1))
    out[dtype] = {k: float(v[0]) for k, v in aux.items()}
    assert all(np.isfinite(v) for v in out[dtype].values()), out[dtype]
  for k in out['float32']:
    np.testing.assert_allclose(out['bfloat16'][k], out['float32'][k], rtol=5e-2, atol=2e-2,
                               err_msg=k)
