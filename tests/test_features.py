"""Tests for ganjax.features: the digits feature extractor, its cache and image metrics."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import data, evaluate as ge, features as gf
from ganjax.digest import digest

KEY = jax.random.PRNGKey(0)


@pytest.fixture(scope='module')
def digits_dataset(tmp_path_factory):
  return data.Dataset('digits', 64, data_dir=str(tmp_path_factory.mktemp('tfds')))


@pytest.fixture(scope='module')
def digits(digits_dataset):
  return digits_dataset.labelled('train') + digits_dataset.labelled('test')


@pytest.fixture(scope='module')
def trained(digits):
  x_tr, y_tr, x_te, y_te = digits
  return gf.train_feature_extractor(x_tr, y_tr, x_te, y_te, num_classes=10, seed=0)


def test_digits_split(digits):
  x_tr, y_tr, x_te, y_te = digits
  assert x_tr.shape == (1437, 8, 8, 1) and x_te.shape == (360, 8, 8, 1)
  assert x_tr.dtype == np.float32 and x_tr.min() == -1.0 and x_tr.max() == 1.0
  assert set(np.unique(y_te)) == set(range(10))


def test_cached_extractor_trains_once_then_loads(digits_dataset, tmp_path):
  fn, acc = gf.cached_extractor(digits_dataset, str(tmp_path), steps=50)
  files = sorted(p.name for p in tmp_path.iterdir())
  assert files == ['digits_seed0_steps50.npz', 'digits_seed0_steps50.npz.json']
  fn2, acc2 = gf.cached_extractor(digits_dataset, str(tmp_path), steps=50)
  assert acc2 == acc
  x = digits_dataset.labelled('test')[0][:20]
  np.testing.assert_array_equal(np.asarray(fn(x)[0]), np.asarray(fn2(x)[0]))


def test_cached_extractor_rejects_unlabelled_data():
  with pytest.raises(ValueError, match='dataset ring has no labels'):
    gf.cached_extractor(data.Dataset('ring', 64), '/tmp/unused')


def test_feature_extractor_accuracy_on_digits(trained, digits):
  params, accuracy = trained
  assert accuracy >= 0.95
  # The returned accuracy is what the feature function's probabilities give.
  _, _, x_te, y_te = digits
  feats, probs = gf.make_feature_fn(params)(x_te)
  assert feats.shape == (len(x_te), 64) and probs.shape == (len(x_te), 10)
  np.testing.assert_allclose(np.sum(probs, axis=1), 1.0, rtol=1e-5)
  assert float(np.mean(np.argmax(probs, axis=1) == y_te)) == pytest.approx(accuracy)


def test_feature_extractor_is_deterministic(digits):
  # The promise holds on GPUs only with deterministic XLA kernels (see the docstring).
  if (jax.default_backend() == 'gpu'
      and '--xla_gpu_deterministic_ops=true' not in os.environ.get('XLA_FLAGS', '')):
    pytest.skip('GPU without --xla_gpu_deterministic_ops=true in XLA_FLAGS: '
                'reductions are not deterministic')
  x_tr, y_tr, x_te, y_te = digits
  train = lambda seed: gf.train_feature_extractor(
      x_tr[:256], y_tr[:256], x_te[:64], y_te[:64], num_classes=10, seed=seed, steps=20,
      batch_size=32)
  (p1, a1), (p2, a2), (p3, _) = train(0), train(0), train(1)
  assert digest(p1) == digest(p2)
  assert a1 == a2
  assert digest(p1) != digest(p3)


def test_save_load_roundtrip(trained, digits, tmp_path):
  params, _ = trained
  path = tmp_path / 'feature_net.params'  # no .npz suffix: saved under exactly this name
  gf.save_params(path, params)
  assert path.exists()
  loaded = gf.load_params(path)
  assert digest(loaded) == digest(params)
  x = digits[2][:50]
  for a, b in zip(gf.make_feature_fn(params)(x), gf.make_feature_fn(loaded)(x)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_make_feature_fn_rejects_foreign_params():
  with pytest.raises(ValueError, match='not FeatureNet variables'):
    gf.make_feature_fn({'params': {'dense': {'kernel': np.zeros((2, 2))}}})


def test_train_feature_extractor_rejects_bad_labels(digits):
  x_tr, y_tr, x_te, y_te = digits
  with pytest.raises(ValueError, match='valid: 0 to num_classes - 1 = 4'):
    gf.train_feature_extractor(x_tr, y_tr, x_te, y_te, num_classes=5, steps=1)


# ------------------------------------------------------------- image metrics --

def test_image_metrics_orders_real_above_noise(trained, digits):
  params, _ = trained
  x_tr, _, x_te, _ = digits
  features = gf.make_feature_fn(params)
  kw = dict(key=KEY, kid_subsets=10, kid_subset_size=200, batch_size=128)
  noise = np.asarray(jax.random.uniform(KEY, x_te.shape, minval=-1.0, maxval=1.0))
  good = ge.image_metrics(features, x_tr[:400], x_te, **kw)
  bad = ge.image_metrics(features, x_tr[:400], noise, **kw)
  assert set(good) == {'fid', 'kid_mean', 'kid_std', 'precision', 'recall', 'density',
                       'coverage', 'classifier_score'}
  assert all(isinstance(v, float) for v in good.values())
  assert good['fid'] < 0.2 * bad['fid']
  assert good['kid_mean'] < 0.2 * bad['kid_mean']
  assert good['precision'] > 0.6 > bad['precision']
  assert good['coverage'] > bad['coverage']
  assert good['classifier_score'] > 8.0  # held-out digits: confident and spread over 10 classes
  # Each entry is the standalone metric on the same features (batching and padding change
  # nothing beyond float32 round-off: on a GPU the convolution kernels, and so the order of
  # their sums, depend on the batch size). A count-based metric may then flip one example
  # on a boundary: 1/360 of the fake set.
  real_f, _ = features(x_tr[:400])
  fake_f, fake_p = features(x_te)
  np.testing.assert_allclose(good['fid'], float(ge.frechet_distance(real_f, fake_f)), rtol=1e-4)
  np.testing.assert_allclose(good['kid_mean'], float(ge.kid(real_f, fake_f, 10, 200, key=KEY)[0]),
                             rtol=1e-4)
  one = 1.0 / len(x_te)
  assert good['precision'] == pytest.approx(ge.precision_recall(real_f, fake_f)['precision'],
                                            abs=one)
  assert good['density'] == pytest.approx(ge.density_coverage(real_f, fake_f)['density'],
                                          abs=one)
  assert good['classifier_score'] == pytest.approx(float(ge.classifier_score(fake_p)[0]),
                                                   rel=1e-5)


def test_image_metrics_with_a_features_only_function():
  rng = np.random.default_rng(10)
  real = rng.normal(size=(60, 4, 4, 1)).astype(np.float32)
  fake = rng.normal(size=(50, 4, 4, 1)).astype(np.float32)
  flatten = lambda images: images.reshape(images.shape[0], -1)
  out = ge.image_metrics(flatten, real, fake, key=KEY, kid_subsets=5, kid_subset_size=40,
                         batch_size=16)
  assert 'classifier_score' not in out
  np.testing.assert_allclose(out['fid'], float(ge.frechet_distance(flatten(real), flatten(fake))),
                             rtol=1e-4)


def test_image_metrics_takes_examples_of_any_shape():
  # Any rank with a leading example axis, as the docstring says (here 2-D feature rows).
  rng = np.random.default_rng(11)
  real = rng.normal(size=(40, 3)).astype(np.float32)
  fake = rng.normal(size=(30, 3)).astype(np.float32) + 1.0
  out = ge.image_metrics(lambda x: x, real, fake, key=KEY, kid_subsets=2, kid_subset_size=20,
                         batch_size=16)
  np.testing.assert_allclose(out['fid'], float(ge.frechet_distance(real, fake)), rtol=1e-5)
  with pytest.raises(ValueError, match=r'fake_images must hold at least one example'):
    ge.image_metrics(lambda x: x, real, np.zeros((0, 3)), key=KEY)
