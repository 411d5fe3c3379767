"""Adding a part is one registration: a loss defined here trains with no other edit.

The registries of losses, penalties, models, datasets and optimisers share one
shape (`get`, `names`, `register`) and one generated error for unknown names.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from ganjax import data, losses, models, optimizers, penalties, resolve, train
from ganjax.registry import Registry


def squared_hinge_discriminator(real_logits, fake_logits, *, margin=1.0, weights=None,
                                reduction='mean'):
  """``E relu(m - D(x))² + E relu(m + D(G(z)))²``: defined outside the package."""
  values = (jnp.square(jax.nn.relu(margin - real_logits))
            + jnp.square(jax.nn.relu(margin + fake_logits)))
  return losses.reduce_loss(values, weights, reduction)


def squared_hinge_generator(fake_logits, real_logits=None, *, weights=None, reduction='mean'):
  del real_logits
  return losses.reduce_loss(-fake_logits, weights, reduction)


@pytest.fixture
def squared_hinge():
  loss = losses.register('squared_hinge', squared_hinge_discriminator, squared_hinge_generator,
                         penalty='r1', penalty_weight=0.5, n_dis=2, betas=(0.0, 0.9))
  yield loss
  losses._REGISTRY.remove('squared_hinge')  # pylint: disable=protected-access


def test_a_registered_loss_trains_end_to_end(squared_hinge, tmp_path):
  assert 'squared_hinge' in losses.names() and losses.get('squared_hinge') is squared_hinge
  run = resolve.resolve_config(tiny_config(loss='squared_hinge',
                                           **{'loss_options.margin': 2.0}))
  # The record's defaults fill the config's placeholders; its options reach its functions.
  assert (run.config.penalty, run.config.n_dis, run.config.d_optimizer.b1) == ('r1', 2, 0.0)
  assert run.step.d_loss_options == (('margin', 2.0),) and run.step.g_loss_options == ()
  summary = train.train_and_evaluate(tiny_config(loss='squared_hinge', penalty_weight=None),
                                     str(tmp_path / 'run'))
  assert summary['loss'] == 'squared_hinge' and summary['step'] == 20
  assert summary['penalty'] > 0 and np.isfinite(summary['d_loss'])


def test_a_registered_loss_runs_in_the_comparison_experiment(squared_hinge, tmp_path):
  from experiments import compare_losses  # pylint: disable=g-import-not-at-top
  out = tmp_path / 'results'
  compare_losses.main(['--quick', '--datasets', 'ring', '--losses', 'squared_hinge',
                       '--seeds', '2', f'--out={out}'])
  report = (out / 'compare_losses.md').read_text()
  assert report.count('| squared_hinge |') == 1


def test_every_kind_shares_the_registry_shape():
  for module, kind in ((losses, 'loss'), (penalties, 'penalty'), (models, 'model'),
                       (data, 'dataset'), (optimizers, 'optimizer')):
    assert module.names() and all(isinstance(n, str) for n in module.names())
    assert module.get(module.names()[0]) is not None
    with pytest.raises(ValueError, match=f'unknown {kind} \'nope\'; valid: '
                                         f'{", ".join(module.names())}.'):
      module.get('nope')


def test_registry_refuses_silent_replacement():
  reg = Registry('widget')
  reg.add('a', 1)
  with pytest.raises(ValueError, match="widget 'a' is already registered"):
    reg.add('a', 2)
  reg.add('a', 3, replace=True)
  assert reg.get('a') == 3 and reg.names() == ('a',)
  with pytest.raises(ValueError, match='non-empty string'):
    reg.add('', 4)


def test_a_registered_penalty_and_model_are_usable(tmp_path):
  """A penalty and a model family registered from outside the package train too."""
  from ganjax import penalties as gp  # pylint: disable=g-import-not-at-top
  gp.register('double_r1', lambda critic, real, fake, keys, axis_name: 2 * gp.r1(critic, real))
  models.register('tiny_mlp', lambda shape, dtype, *, z_dim=3: models.make_mlp(
      shape, dtype, z_dim=z_dim, hidden=(8,)))
  try:
    cfg = tiny_config(penalty='double_r1', penalty_weight=1.0, model='tiny_mlp',
                      **{'model_options.hidden': None, 'model_options.z_dim': None})
    summary = train.train_and_evaluate(cfg, str(tmp_path / 'run'))
    assert summary['penalty'] > 0 and summary['step'] == 20
  finally:
    gp._REGISTRY.remove('double_r1')  # pylint: disable=protected-access
    models._REGISTRY.remove('tiny_mlp')  # pylint: disable=protected-access
