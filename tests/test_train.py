"""End-to-end training runs of a few seconds each."""

import json
import os

import jax
import numpy as np
import pytest

from conftest import load_state, tiny_config
from ganjax import losses, resolve, train
from ganjax.digest import digest


def test_run_leaves_outputs_and_eval_json(workdir):
  summary = train.train_and_evaluate(tiny_config(), workdir)
  with open(os.path.join(workdir, 'eval.json')) as f:
    on_disk = json.load(f)
  assert on_disk == json.loads(json.dumps(summary))
  for key in ('step', 'loss', 'state_digest', 'modes', 'hq_fraction'):
    assert key in on_disk
  assert on_disk['step'] == 20 and on_disk['loss'] == 'classic'
  assert len(on_disk['state_digest']) == 16
  assert sorted(os.listdir(os.path.join(workdir, 'samples'))) == ['step_20.png']
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints')))[:2] == ['10', '20']
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(workdir))
  # The digest is that of the checkpointed parameters.
  state = load_state(workdir)
  members = state['members']
  params = {k: jax.tree_util.tree_map(lambda x: x[0], members[k])
            for k in ('g_params', 'd_params', 'ema')}
  assert digest(params) == on_disk['state_digest']


def test_interrupt_and_resume_is_bitwise_identical(tmp_path):
  full = train.train_and_evaluate(tiny_config(steps=30), str(tmp_path / 'full'))
  part_dir = str(tmp_path / 'part')
  first = train.train_and_evaluate(tiny_config(steps=10), part_dir)
  assert first['step'] == 10
  resumed = train.train_and_evaluate(tiny_config(steps=30), part_dir)
  assert resumed['step'] == 30
  assert resumed['state_digest'] == full['state_digest']
  assert first['state_digest'] != full['state_digest']


# A population member equals a lone run, and chunking a population changes nothing: claims
# about arithmetic, checked at full float32 (`full_float32`). At a GPU's default (TF32)
# precision a batched (vmapped) product and an unbatched one round differently: on an H200
# members then differed from lone runs by up to ~5e-3 relative after 20 steps.
full_float32 = pytest.mark.usefixtures('highest_matmul_precision')  # fixture: conftest.py


@full_float32
def test_population_members_differ_and_match_lone_runs(tmp_path):
  pop = train.train_and_evaluate(tiny_config(population=3, seed=5), str(tmp_path / 'pop'))
  digests = [m['state_digest'] for m in pop['members']]
  assert len(set(digests)) == 3
  assert [m['seed'] for m in pop['members']] == [5, 6, 7]
  train.train_and_evaluate(tiny_config(seed=7), str(tmp_path / 'lone'))
  member = jax.tree_util.tree_map(lambda x: x[2], load_state(str(tmp_path / 'pop'))['members'])
  lone = jax.tree_util.tree_map(lambda x: x[0], load_state(str(tmp_path / 'lone'))['members'])
  for k in ('g_params', 'd_params'):
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                           member[k], lone[k])


def test_steps_per_call_trains_the_same_and_resumes_across_values(tmp_path):
  one = train.train_and_evaluate(tiny_config(), str(tmp_path / 'one'))
  five = train.train_and_evaluate(tiny_config(steps_per_call=5), str(tmp_path / 'five'))
  a, b = (load_state(str(tmp_path / d))['members'] for d in ('one', 'five'))
  for k in ('g_params', 'd_params'):
    jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6),
                           a[k], b[k])
  assert five['step'] == one['step'] == 20
  # A run stopped at step 10 with one step per call resumes with ten per call.
  part = str(tmp_path / 'part')
  train.train_and_evaluate(tiny_config(steps=10), part)
  resumed = train.train_and_evaluate(tiny_config(steps_per_call=10), part)
  assert resumed['step'] == 20
  train.train_and_evaluate(tiny_config(steps=30, checkpoint_every=5, log_every=5,
                                       eval_every=5, steps_per_call=5), str(tmp_path / 'odd'))
  with pytest.raises(ValueError, match='at step 30, which steps_per_call=20 does not divide'):
    train.train_and_evaluate(tiny_config(steps=40, steps_per_call=20, log_every=20,
                                         checkpoint_every=20), str(tmp_path / 'odd'))


@full_float32
def test_population_chunks_compute_the_same_members(tmp_path):
  # population_chunk only changes how members are batched (lax.map over vmapped chunks).
  states = {}
  for chunk in (1, 3, 4):  # 3: a chunk of 3, then the remaining member
    cfg = tiny_config(population=4, steps=6, log_every=3, checkpoint_every=6,
                      population_chunk=chunk)
    cfg.penalty, cfg.penalty_weight = 'r1', (0.0, 1.0, 2.0, 3.0)
    train.train_and_evaluate(cfg, str(tmp_path / str(chunk)))
    states[chunk] = load_state(str(tmp_path / str(chunk)))['members']
  for chunk in (3, 4):
    for k in ('g_params', 'd_params', 'g_opt'):
      jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                             states[chunk][k], states[1][k])
  assert resolve.population_chunk(tiny_config(population=16)) == (
      4 if jax.default_backend() == 'cpu' else 16)
  assert resolve.population_chunk(tiny_config(population=4, population_chunk=9)) == 4


def test_per_member_hyperparameters(tmp_path):
  # Per-member learning rates land in the optimiser states; per-member penalty weights apply.
  cfg = tiny_config(population=2, steps=4, log_every=2, checkpoint_every=2)
  cfg.g_optimizer.learning_rate = (1e-4, 3e-4)
  cfg.penalty = 'r1'
  cfg.penalty_weight = (0.0, 5.0)
  summary = train.train_and_evaluate(cfg, str(tmp_path / 'hp'))
  state = load_state(str(tmp_path / 'hp'))
  lrs = state['members']['g_opt']['hyperparams']['learning_rate']
  np.testing.assert_allclose(lrs, [1e-4, 3e-4], rtol=1e-6)
  pens = [m['penalty'] for m in summary['members']]
  assert pens[0] > 0 and pens[1] > 0  # penalty is reported unweighted for both


@pytest.mark.parametrize('field,value,match', [
    ('loss', 'wgan2', 'valid: classic, wgan, hinge'),
    ('dataset', 'imagenet', 'valid: ring, grid, gdpp_ring, digits'),
    ('penalty', 'gp', 'valid: none, wgan_gp, r1, r2, dragan, clip'),
    ('model', 'resnet', 'valid: mlp, dcgan'),
    ('batch_size', 0, 'positive integer'),
    ('steps', -5, 'positive integer'),
    ('g_optimizer.name', 'adamw2', 'valid: adam, rmsprop, sgd'),
    ('d_optimizer.learning_rate', -1.0, 'must be positive'),
    ('penalty_weight', (1.0, 2.0), 'one per population member'),
    ('loss_options.margin', 2.0, 'valid: form, generator, label_smoothing'),
    ('model_options.width', 8, r"\['width'\] do not apply to model mlp"),
    ('population_chunk', 0, 'positive number of members'),
    ('steps_per_call', 3, 'steps_per_call=3 must divide steps=20, log_every=10'),
])
def test_bad_configs_fail_before_compiling(workdir, field, value, match):
  cfg = tiny_config(**{field: value})
  with pytest.raises(ValueError, match=match):
    resolve.resolve_config(cfg)
  with pytest.raises(ValueError, match=match):
    train.train_and_evaluate(cfg, workdir)
  assert not os.path.exists(os.path.join(workdir, 'checkpoints'))


def test_loss_defaults_fill_placeholders_only():
  run = resolve.resolve_config(tiny_config(loss='wgan', penalty_weight=None))
  wgan = run.config
  assert (wgan.penalty, wgan.penalty_weight, wgan.n_dis) == ('wgan_gp', 10.0, 5)
  assert (wgan.d_optimizer.b1, wgan.d_optimizer.b2) == (0.5, 0.9)
  assert run.penalty.name == 'wgan_gp' and run.step.n_dis == 5
  np.testing.assert_array_equal(run.penalty_weight, [10.0])
  ring = resolve.resolve_config(tiny_config(loss='wgan')).config
  assert ring.penalty_weight == 0.1  # ring's λ
  explicit = resolve.resolve_config(tiny_config(loss='wgan', n_dis=2, penalty='r1')).config
  assert (explicit.penalty, explicit.n_dis) == ('r1', 2)


# One seed's outcome is too random to assert on: over seeds 0-23 on the CPU, the classic and
# least-squares losses found fewer than 4 modes on 10 seeds of 24, and another platform's
# rounding draws other outcomes (least squares found 2 on an H200). So 5 seeds train as one
# population (vmapped: about the cost of the one seed's two runs this test made before) and
# the assertions are on the population, with margins measured on those 24 seeds per loss.
# One step in, generators put their samples near the origin: 0-2 modes and 39-77 std from
# the nearest mode per seed. After 1,500 steps the fewest modes on a seed was 1 (once in
# 120 seed-runs). Drawing 5 of the 24 seeds at random, the 99.9th percentile of the mean
# distance is 41 std, and the three assertions together fail in about 0.6% of draws (all
# losses; mostly the classic loss's best seed).
RING_SEEDS = 5


@pytest.mark.parametrize('loss,dtype', [(name, 'float32') for name in losses.names()]
                         + [('hinge', 'bfloat16')])  # mixed precision meets the same bar
def test_every_loss_learns_the_ring(tmp_path, loss, dtype):
  cfg = tiny_config(loss=loss, steps=1500, batch_size=128, log_every=1500, eval_every=1500,
                    checkpoint_every=1500, eval_samples=2500, population=RING_SEEDS,
                    population_chunk=RING_SEEDS, dtype=dtype,
                    **{'model_options.hidden': (64, 64, 64), 'model_options.z_dim': 16,
                       'g_optimizer.learning_rate': 2e-4, 'd_optimizer.learning_rate': 5e-4})
  members = train.train_and_evaluate(cfg, str(tmp_path / 'run'))['members']
  modes = [m['modes'] for m in members]
  distance = np.mean([m['mode_distance'] for m in members])
  report = (loss, dtype, modes, [round(m['mode_distance'], 1) for m in members])
  assert sum(n >= 2 for n in modes) >= 3, report  # most seeds cover 2 modes or more
  assert max(modes) >= 3, report                  # some seed covers more than any start did
  assert distance < 45, report                    # samples moved to the ring (std units)
