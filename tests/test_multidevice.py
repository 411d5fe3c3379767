"""The 8-device run equals the 1-device run with the same global batch.

The 8 fake CPU devices exist only in a subprocess (XLA_FLAGS must be set
before JAX starts). Both sides run on the CPU: the tolerances are for the same
platform's rounding over different device counts, not for CPU against GPU. On one
CPU device this process trains the 1-device reference itself; on a GPU or TPU
machine a second `JAX_PLATFORMS=cpu` subprocess does.
"""

import json
import os
import subprocess
import sys
import tempfile

import jax
import numpy as np
import pytest

from conftest import load_state, on_one_cpu_device, tiny_config
from ganjax import train

# SGD, not Adam: Adam divides by sqrt(v), so a parameter whose gradient is ~0 (a dead ReLU)
# moves by ±lr on the sign of rounding noise, and equal math on different device counts
# (different summation orders) can then differ by lr·steps in such parameters.
_SGD = {'g_optimizer.name': 'sgd', 'd_optimizer.name': 'sgd',
        'g_optimizer.learning_rate': 3e-3, 'd_optimizer.learning_rate': 3e-3}
CASES = {
    'wgan_gp': dict(_SGD, loss='wgan', n_dis=2),
    'relativistic_dragan': dict(_SGD, loss='relativistic', penalty='dragan', penalty_weight=1.0),
    # A population of 2, 5 steps per compiled call: the batches' step axis stays unsharded.
    'hinge_population_5_per_call': dict(_SGD, loss='hinge', population=2, steps_per_call=5),
    'classic_adam': {},
    # Packs of 4 form within each device's 8 examples; the WGAN-GP interpolates are packs.
    'wgan_gp_pack_4': dict(_SGD, loss='wgan', n_dis=1, pack=4),
    # Two look-ahead D updates inside G's loss: their gradients are averaged over devices too.
    'classic_unroll_2': dict(_SGD, unroll_steps=2),
    # PacGAN's packs: G's batch norm per pack position (g_bn_groups), groups within each
    # device's 8 examples, statistics averaged over devices: the 1-device run's groups.
    'mlp_batch_norm_pack_4_groups_4': dict(_SGD, pack=4, g_bn_groups=4,
                                           **{'model_options.batch_norm': True}),
    # DCGAN with batch norm in G: its statistics must be averaged over devices.
    'dcgan_batch_norm': dict(_SGD, dataset='digits', model='dcgan', image_metrics=False,
                             eval_samples=64, steps=6, checkpoint_every=6,
                             data_dir=os.path.join(tempfile.gettempdir(), 'ganjax_test_tfds'),
                             **{'model_options.hidden': None, 'model_options.z_dim': 8,
                                'model_options.width': 8, 'model_options.batch_norm': True}),
}

SCRIPT = r'''
import json, sys
sys.path.insert(0, 'tests')
import jax
from conftest import tiny_config
from ganjax import train
cases, root = json.loads(sys.argv[1]), sys.argv[2]
out = {'devices': jax.device_count(), 'platform': jax.default_backend()}
for name, overrides in cases.items():
  out[name] = train.train_and_evaluate(tiny_config(**overrides), f'{root}/{name}')['state_digest']
if jax.device_count() > 1:
  try:
    train.train_and_evaluate(tiny_config(batch_size=100), f'{root}/bad')
  except ValueError as e:
    out['bad_batch'] = str(e)
print('RESULT' + json.dumps(out))
'''


def _cpu_runs(root, devices):
  """Trains every case in a subprocess on `devices` CPU devices, whatever this process runs on."""
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  proc = subprocess.run([sys.executable, '-c', SCRIPT, json.dumps(CASES), root], env=env,
                        capture_output=True, text=True, timeout=600,
                        cwd=os.path.dirname(os.path.dirname(__file__)))
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = [l for l in proc.stdout.splitlines() if l.startswith('RESULT')][-1]
  out = json.loads(line[len('RESULT'):])
  assert (out['devices'], out['platform']) == (devices, 'cpu'), out
  return root, out


@pytest.fixture(scope='module')
def eight_device_runs(tmp_path_factory):
  return _cpu_runs(str(tmp_path_factory.mktemp('eight')), 8)


@pytest.fixture(scope='module')
def one_device_root(tmp_path_factory):
  """None on one CPU device (each test trains its reference here); else a CPU subprocess's."""
  if on_one_cpu_device():
    return None
  return _cpu_runs(str(tmp_path_factory.mktemp('one')), 1)[0]


def test_subprocess_has_eight_devices_and_rejects_indivisible_batch(eight_device_runs):
  _, out = eight_device_runs
  assert out['devices'] == 8
  assert 'batch_size 100' in out['bad_batch'] and '8 devices' in out['bad_batch']


@pytest.mark.parametrize('name', list(CASES))
def test_eight_devices_match_one_device(eight_device_runs, one_device_root, tmp_path, name):
  root, _ = eight_device_runs
  if one_device_root is None:
    train.train_and_evaluate(tiny_config(**CASES[name]), str(tmp_path / name))
    one_device_root = str(tmp_path)
  one = load_state(os.path.join(one_device_root, name))['members']
  eight = load_state(os.path.join(root, name))['members']
  if 'batch_norm' in name:
    assert 'batch_stats' in one['g_stats']
    means = [x for p, x in jax.tree_util.tree_leaves_with_path(one['g_stats']) if 'mean' in str(p)]
    assert means and all(np.abs(x).max() > 0 for x in means)  # running averages were updated
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5), one['g_stats'],
        eight['g_stats'])
  for k in ('g_params', 'd_params'):
    if name.endswith('adam'):  # see _SGD: all close, a few near-zero-gradient ones within lr·steps
      jax.tree_util.tree_map(lambda a, b: _mostly_close(a, b, lr=2e-4, steps=20), one[k], eight[k])
    else:
      jax.tree_util.tree_map(
          lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5), one[k], eight[k])


def _mostly_close(a, b, lr, steps):
  close = np.isclose(a, b, rtol=2e-4, atol=2e-5)
  assert close.mean() >= 0.9, close.mean()
  assert np.all(np.abs(a - b) <= 2 * lr * steps + 1e-6)
