"""Tests for ganjax.evaluator's Inception integration: the weights check before training,
the cached reference statistics, and the streaming final FID (FID-50k).

The FID Inception-v3 costs about 6 GFLOP per image on a CPU, so these tests swap it
for a small fixed feature function (`evaluator.inception_space` monkeypatched); the
network itself is tested in tests/test_inception.py. The missing-weights test runs
the real loader.
"""

import json
import os

import jax
import numpy as np
import pytest
from flax import traverse_util

from configs import digits as digits_config
from ganjax import data, evaluate, evaluator, inception, train

_PROJECTION = np.random.default_rng(0).normal(size=(64, 16))


@pytest.fixture(scope='module')
def tfds_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('tfds'))
  data.Dataset('digits', 64, data_dir=path)  # prepares the 8x8 digits once (offline)
  return path


class CountingSpace:
  """A stand-in for the Inception features: 16 fixed random projections of the pixels,
  through a ReLU; counts the images it embeds."""

  def __init__(self):
    self.images = 0

  def features_fn(self, images):
    images = np.asarray(images, np.float64)
    self.images += len(images)
    return np.maximum(images.reshape(len(images), -1) @ _PROJECTION, 0.0).astype(np.float32)

  def __call__(self, weights=''):
    del weights
    return evaluator.FeatureSpace('inception', 'inception-test', self.features_fn)


def _config(tfds_dir, **overrides):
  c = digits_config.get_config()
  c.data_dir = tfds_dir
  c.features = 'inception'
  c.update_from_flattened_dict(overrides)
  return c


def _numpy_stats(feats):
  feats = np.asarray(feats, np.float64)
  return feats.mean(axis=0), np.cov(feats, rowvar=False)


def test_missing_weights_fail_in_one_line_before_training(tfds_dir, tmp_path, monkeypatch):
  def compile_models(*args, **kwargs):
    raise AssertionError('reached train.build: the weights must be checked before compiling')

  monkeypatch.setattr(train, 'build', compile_models)
  missing = tmp_path / 'nowhere' / inception.FID_WEIGHTS_FILENAME
  config = _config(tfds_dir, inception_weights=str(missing))
  workdir = tmp_path / 'run'
  with pytest.raises(FileNotFoundError) as err:
    train.train_and_evaluate(config, str(workdir))
  # ganjax.main reports FileNotFoundError (and ValueError, the hash error) in one line.
  assert isinstance(err.value, inception.WeightsNotFoundError)
  assert '\n' not in str(err.value) and str(missing) in str(err.value)
  assert not (workdir / 'checkpoints').exists()
  with pytest.raises(ValueError, match="features='imagenet'; valid: classifier, inception"):
    train.train_and_evaluate(_config(tfds_dir, features='imagenet'), str(workdir))
  with pytest.raises(ValueError, match='final_eval_samples=1; valid'):
    train.train_and_evaluate(_config(tfds_dir, final_eval_samples=1), str(workdir))


def test_reference_statistics_are_cached_and_reused(tfds_dir, monkeypatch):
  space = CountingSpace()
  monkeypatch.setattr(evaluator, 'inception_space', space)
  config = _config(tfds_dir, eval_samples=300, final_eval_samples=20)
  dataset = data.Dataset('digits', 64, data_dir=tfds_dir)
  first = evaluator.Evaluator(config, dataset)
  assert space.images == dataset.num_train == 1437  # one pass: statistics and first 300
  cache = os.path.join(tfds_dir, 'ganjax_features', 'inception-test')
  assert sorted(os.listdir(cache)) == ['digits_train_first300_features.npy',
                                       'digits_train_n1437_stats.npz']
  # The cached statistics are those of every training image, computed all at once.
  train_images = dataset.labelled('train')[0]
  all_feats = space.features_fn(train_images)
  mean, cov = _numpy_stats(all_feats)
  np.testing.assert_allclose(first.reference.mean, mean, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(first.reference.cov, cov, rtol=1e-10, atol=1e-12)
  np.testing.assert_array_equal(first.reference.features, all_feats[:300])
  assert first.final_reference is first.reference

  space.images = 0
  second = evaluator.Evaluator(config, data.Dataset('digits', 64, data_dir=tfds_dir))
  assert space.images == 0  # read from the cache
  np.testing.assert_array_equal(second.reference.cov, first.reference.cov)
  np.testing.assert_array_equal(second.reference.features, first.reference.features)
  config.eval_samples = 200  # another number of kept features: only those are computed
  evaluator.Evaluator(config, dataset)
  assert space.images == 200


def test_streaming_statistics_equal_all_at_once():
  feats = np.random.default_rng(1).gamma(2.0, size=(203, 7)) + 50.0  # far from 0: cancellation
  batches = np.array_split(feats, [1, 64, 65, 150])
  acc = evaluator.StreamingStats()
  for b in batches:
    acc.update(b)
  mean, cov = acc.statistics()
  ref_mean, ref_cov = _numpy_stats(feats)
  np.testing.assert_allclose(mean, ref_mean, rtol=1e-13)
  np.testing.assert_allclose(cov, ref_cov, rtol=1e-9, atol=1e-12)
  f32_mean, f32_cov = evaluate.feature_statistics(feats.astype(np.float32))
  np.testing.assert_allclose(cov, f32_cov, rtol=2e-3, atol=1e-3)  # pytorch-fid's definition

  images = np.random.default_rng(2).uniform(-1, 1, (10, 8, 8, 1))
  seen = []

  def sample_batch(i):  # batch i of 4; the last one has 2 images too many
    batch = np.concatenate([images, images])[4 * i:4 * i + 4]
    seen.append(len(batch))
    return batch

  project = lambda x: x.reshape(len(x), -1) @ _PROJECTION
  mean, cov = evaluator.generated_statistics(sample_batch, 10, 4, project)
  assert seen == [4, 4, 4]
  ref_mean, ref_cov = _numpy_stats(project(images))
  np.testing.assert_allclose(mean, ref_mean, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(cov, ref_cov, rtol=1e-10, atol=1e-12)
  with pytest.raises(ValueError, match='at least 2 examples'):
    evaluator.StreamingStats().update(feats[:1]).statistics()


def test_final_fid_streams_batches_and_lands_in_the_results(tfds_dir, tmp_path, monkeypatch):
  monkeypatch.setattr(evaluator, 'inception_space', CountingSpace())
  monkeypatch.setattr(evaluator, 'FINAL_BATCH', 4)
  config = _config(tfds_dir, eval_samples=50, final_eval_samples=10, steps=100,
                   image_metrics=True, ema_decay=0.0)
  ev = evaluator.Evaluator(config, data.Dataset('digits', 64, data_dir=tfds_dir))
  calls = []

  def sampler(g_params, g_stats, key, n):  # a "generator": images from the key
    calls.append(n)
    return np.tanh(g_params + np.asarray(jax.random.normal(key, (n, 8, 8, 1))))

  members = {'g_params': np.zeros((1, 1, 1, 1, 1), np.float32), 'g_stats': {}, 'ema': {}}
  during = ev(sampler, members, 50, str(tmp_path), write_samples=False)
  assert calls == [50] and 'fid10' not in during[0]
  assert {'fid', 'kid_mean', 'kid_std', 'precision', 'recall', 'density',
          'coverage'} <= set(during[0])
  calls.clear()
  results = ev(sampler, members, 100, str(tmp_path), write_samples=False)
  assert calls == [50, 4, 4, 4]  # the eval samples, then the final 10 four at a time
  key = jax.random.PRNGKey(config.seed + 2_000_003)
  every = np.concatenate([sampler(np.float32(0), {}, jax.random.fold_in(key, i), 4)
                          for i in range(3)])[:10]
  ref = ev.final_reference
  expected = evaluate.frechet_distance_from_stats(
      ref.mean, ref.cov, *_numpy_stats(ev.space.features(every)))
  assert results[0]['fid10'] == pytest.approx(float(expected), rel=1e-5)
  assert evaluator.final_metric_name(50_000) == 'fid50k'
  assert json.loads(json.dumps(results))[0]['fid10'] == results[0]['fid10']


def test_sngan_config_resolves_to_chainer_gan_libs_networks():
  from configs import sngan_cifar10  # registers model family sngan_cnn
  from ganjax import models, resolve
  run = resolve.resolve_config(sngan_cifar10.get_config())
  assert (run.config.features, run.config.final_eval_samples) == ('inception', 50_000)
  assert (run.config.n_dis, run.config.batch_size, run.config.steps) == (1, 64, 100_000)
  pair = run.model.make((32, 32, 3), 'float32', **run.model_options)
  count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))
  g = jax.eval_shape(pair.generator.init, jax.random.PRNGKey(0), np.zeros((1, 128)))
  d = jax.eval_shape(pair.discriminator.init, jax.random.PRNGKey(0), np.zeros((1, 32, 32, 3)))
  # chainer-gan-lib DCGANGenerator(ch=512) and SNDCGANDiscriminator(ch=512), layer by layer:
  # dense 128 -> 4x4x512 (+BN), deconvs 512-256-128-64 (+BN), 3x3 conv to RGB; seven convs
  # 3-64-128-128-256-256-512-512 and a dense logit.
  assert count(g['params']) == 3_828_739 and count(d['params']) == 5_860_865
  # Shapes only (jax.eval_shape): on a loaded 2-core CPU compiling even an 8x8 init takes
  # tens of seconds; the layers themselves are Flax's.
  small = models.get('sngan_cnn').build((8, 8, 1), {'width': 4, 'z_dim': 3})
  x = jax.ShapeDtypeStruct((2, 8, 8, 1), np.float32)
  variables = jax.eval_shape(small.discriminator.init, jax.random.PRNGKey(0), x)
  logits, updated = jax.eval_shape(
      lambda v, x: small.discriminator.apply(v, x, update_stats=True, mutable=['batch_stats']),
      variables, x)
  power_vectors = [k for k in traverse_util.flatten_dict(updated['batch_stats'])
                   if k[-1].endswith('/u')]
  assert logits.shape == (2, 1) and len(power_vectors) == 8  # spectral norm on all 8 layers
  z = jax.ShapeDtypeStruct((2, 3), np.float32)
  g_vars = jax.eval_shape(small.generator.init, jax.random.PRNGKey(1), z)
  assert jax.eval_shape(small.generator.apply, g_vars, z).shape == (2, 8, 8, 1)
  with pytest.raises(ValueError, match='divisible by 8'):
    models.get('sngan_cnn').build((28, 28, 1))
