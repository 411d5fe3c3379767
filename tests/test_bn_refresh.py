"""The generator's BatchNorm statistics: `bn_momentum`, `eval_bn_refresh` (ganjax/step.py
`make_stats_refresher`; PacGAN's recipe refreshes them before it samples) and `g_bn_groups`
(`generate`: PacGAN's packs come from separate generator calls)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from ganjax import checkpoint, models, parallel, resolve, step as step_lib, train

BN = {'model_options.batch_norm': True, 'model_options.hidden': (16, 16),
      'model_options.z_dim': 2, 'batch_size': 32, 'steps': 6, 'eval_every': 6,
      'checkpoint_every': 6, 'log_every': 6, 'eval_samples': 200}


def _final_members(cfg, workdir):
  summary = train.train_and_evaluate(cfg, workdir)
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), 6)
  try:
    run_state = train.build(resolve.resolve_config(cfg), (2,), parallel.make_mesh()).state
    state = ckpt.restore_at(ckpt.steps()[-1], checkpoint.abstract(run_state))
  finally:
    ckpt.close()
  return summary, jax.device_get(state['members'])


def test_bn_momentum_changes_the_running_averages_never_the_trained_weights(tmp_path):
  got = {m: _final_members(tiny_config(**BN, **{'model_options.bn_momentum': m}),
                           str(tmp_path / str(m))) for m in (0.9, 0.5)}
  (_, a), (_, b) = got[0.9], got[0.5]
  # Training-mode BatchNorm normalises with the batch's statistics and never reads the
  # running averages: the same program for the weights, so the same bits on the CPU.
  check = (np.testing.assert_array_equal if jax.default_backend() == 'cpu' else
           lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6))
  for name in ('g_params', 'd_params'):
    jax.tree_util.tree_map(check, a[name], b[name])
  means = [jax.tree_util.tree_leaves(m['g_stats'])[0] for m in (a, b)]
  assert not np.allclose(*means)


def _first_layer_stats(pair, params, z):
  h = z @ params['Dense_0']['kernel'] + params['Dense_0']['bias']
  return h.mean(0), h.var(0)


@pytest.mark.parametrize('momentum, batches', [(0.0, 1), (0.5, 3)])
def test_a_refresh_makes_the_training_steps_bn_updates_at_fixed_weights(momentum, batches):
  pair = models.get('mlp').build((2,), {'hidden': (8, 8), 'z_dim': 2, 'batch_norm': True,
                                        'bn_momentum': momentum})
  variables = pair.generator.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
  params, stats = variables['params'], {'batch_stats': variables['batch_stats']}
  key = jax.random.PRNGKey(7)
  got = step_lib.make_stats_refresher(pair, batches, 64)(params, stats, key)
  # By hand, for the first BatchNorm: pass i's noise is fold_in(key, i); each pass keeps
  # `momentum` of the old average (init: mean 0, var 1).
  mean, var = np.zeros(8), np.ones(8)
  for i in range(batches):
    z = jax.random.normal(jax.random.fold_in(key, i), (64, 2))
    m, v = _first_layer_stats(pair, params, z)
    mean, var = momentum * mean + (1 - momentum) * m, momentum * var + (1 - momentum) * v
  first = got['batch_stats']['BatchNorm_0']
  np.testing.assert_allclose(first['mean'], mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(first['var'], var, rtol=1e-5, atol=1e-6)
  assert step_lib.make_stats_refresher(pair, 0, 64)(params, stats, key) is stats


def test_a_run_samples_with_refreshed_statistics_and_keeps_its_own(tmp_path, monkeypatch):
  made, refreshed, sampled = [], [], []
  make_refresher, make_sampler = step_lib.make_stats_refresher, step_lib.make_sampler

  def refresher(pair, batches, batch_size, groups):
    made.append((batches, batch_size, groups))
    refresh = make_refresher(pair, batches, batch_size, groups)
    return lambda *a: refreshed.append(refresh(*a)) or refreshed[-1]

  def sampler(pair):
    sample = make_sampler(pair)
    return lambda params, stats, key, n: sampled.append(stats) or sample(params, stats, key, n)

  monkeypatch.setattr(step_lib, 'make_stats_refresher', refresher)
  monkeypatch.setattr(step_lib, 'make_sampler', sampler)
  _, members = _final_members(tiny_config(**BN, eval_bn_refresh=20), str(tmp_path / 'run'))
  assert made == [(20, 32, 1)] and len(sampled) == len(refreshed) == 1  # one evaluation
  assert sampled[0] is refreshed[0]
  kept, used = (jax.tree_util.tree_leaves(s)[0] for s in (members['g_stats'], refreshed[0]))
  assert not np.allclose(kept[0], used)  # the checkpoint keeps the statistics of training


def test_a_refresh_needs_a_batchnorm_generator_and_bad_values_are_refused(tmp_path):
  with pytest.raises(ValueError, match='this generator has no BatchNorm; set it to 0'):
    train.train_and_evaluate(tiny_config(eval_bn_refresh=5), str(tmp_path / 'none'))
  with pytest.raises(ValueError, match='bn_momentum=1.0; valid: a number in'):
    models.get('mlp').build((2,), {'batch_norm': True, 'bn_momentum': 1.0})
  with pytest.raises(ValueError, match='bn_momentum=-0.1; valid: a number in'):
    models.get('dcgan').build((8, 8, 1), {'batch_norm': True, 'bn_momentum': -0.1})
  with pytest.raises(ValueError, match='eval_bn_refresh'):
    train.train_and_evaluate(tiny_config(eval_bn_refresh=-1), str(tmp_path / 'neg'))


def test_groups_normalise_each_pack_position_apart_as_separate_generator_calls():
  pair = models.get('mlp').build((2,), {'hidden': (8,), 'z_dim': 2, 'batch_norm': True})
  gen = pair.generator.clone(axis_name=None)
  variables = gen.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
  z = jax.random.normal(jax.random.PRNGKey(1), (12, 2))
  out, stats = step_lib.generate(gen, variables, z, groups=3)
  calls = [gen.apply(variables, z[j::3], train=True, mutable=['batch_stats']) for j in range(3)]
  for j, (samples, _) in enumerate(calls):
    np.testing.assert_allclose(out[j::3], samples, rtol=1e-5, atol=1e-6)
  # Pack i holds the i-th sample of each call, in call order (PacGAN's compute_losses).
  packs = step_lib.pack(out, 3)
  np.testing.assert_allclose(packs[1], np.concatenate([c[0][1] for c in calls]), rtol=1e-5,
                             atol=1e-6)
  # The running averages move by the mean of the calls' updates.
  want = jax.tree_util.tree_map(lambda *x: np.mean(x, 0), *[dict(c[1]) for c in calls])
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                         stats, want)
  one, _ = step_lib.generate(gen, variables, z, groups=1)
  assert not np.allclose(one, out)  # one batch's statistics differ from each group's
  with pytest.raises(ValueError, match='g_bn_groups=3 must divide batch_size=64'):
    train.train_and_evaluate(tiny_config(g_bn_groups=3), '/nonexistent/unused')
