"""Tests for ganjax.evaluate against float64 numpy/scipy references and hand-computed values.

Tolerances: the metrics compute in float32 with every product at HIGHEST
precision (checked below on the compiled modules), so they hold on the CPU
and on GPUs alike; they allow for float32 round-off (ε = 6e-8) accumulated
over the sums, and for the summation order differing between backends, not
for TF32 or bfloat16 products (about 1e-3 relative error per product).
"""

import functools
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from ganjax import evaluate as ge, features as gf

KEY = jax.random.PRNGKey(0)


def _random_gaussian(rng, n, d, shift=0.0):
  """n samples of a correlated d-dimensional Gaussian, float32."""
  mixing = rng.normal(size=(d, d)) / np.sqrt(d)
  return (rng.normal(size=(n, d)) @ mixing + shift).astype(np.float32)


# ----------------------------------------------------------------------- FID --

def _scipy_fid(mu1, cov1, mu2, cov2):
  covmean = scipy.linalg.sqrtm(cov1 @ cov2).real
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2 * covmean))


@pytest.mark.parametrize('d', [16, 32])
def test_frechet_distance_matches_scipy(d):
  rng = np.random.default_rng(d)
  a = _random_gaussian(rng, 2000, d)
  b = _random_gaussian(rng, 2000, d, shift=0.3)
  a64, b64 = a.astype(np.float64), b.astype(np.float64)
  mu1, cov1 = a64.mean(0), np.cov(a64, rowvar=False)
  mu2, cov2 = b64.mean(0), np.cov(b64, rowvar=False)
  ref = _scipy_fid(mu1, cov1, mu2, cov2)
  f32 = lambda x: x.astype(np.float32)
  got = ge.frechet_distance_from_stats(f32(mu1), f32(cov1), f32(mu2), f32(cov2))
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(float(got), ref, rtol=1e-4)
  np.testing.assert_allclose(float(ge.frechet_distance(a, b)), ref, rtol=1e-4)
  # The statistics match numpy's (unbiased covariance, as pytorch-fid).
  mu, cov = ge.feature_statistics(a)
  np.testing.assert_allclose(mu, mu1, atol=1e-5)
  np.testing.assert_allclose(cov, cov1, atol=1e-5)
  # It is symmetric and jit-compatible.
  np.testing.assert_allclose(float(ge.frechet_distance(b, a)), ref, rtol=1e-4)
  jitted = jax.jit(ge.frechet_distance_from_stats)(mu1, cov1, mu2, cov2)
  np.testing.assert_allclose(float(jitted), ref, rtol=1e-4)


def test_frechet_distance_is_zero_for_identical_statistics():
  rng = np.random.default_rng(1)
  feats = _random_gaussian(rng, 1000, 24, shift=1.5)
  mu, cov = ge.feature_statistics(feats)
  scale = float(jnp.trace(cov))
  assert abs(float(ge.frechet_distance_from_stats(mu, cov, mu, cov))) < 1e-5 * scale
  assert abs(float(ge.frechet_distance(feats, feats))) < 1e-5 * scale


@pytest.mark.parametrize('d', [16, 64])
def test_frechet_distance_of_two_samples_of_one_distribution_matches_scipy(d):
  # The case that matters for a good generator: FD is 0.4% (d=16) and 1.1% (d=64) of
  # Tr(C), so Tr(C₁) + Tr(C₂) and 2 Tr((C₁C₂)^½) cancel to two or three digits.
  # Measured on the CPU: 9e-5 and 8e-6 relative. 1e-3 leaves room for other float32
  # eigh/SVD routines (cuSOLVER) yet fails the square roots of the eigenvalues of
  # S₁C₂S₁, which were off by 2.2e-3 and 2.6e-3 here.
  rng = np.random.default_rng(d)
  mixing = rng.normal(size=(d, d)) / np.sqrt(d)
  a = (rng.normal(size=(2000, d)) @ mixing).astype(np.float32)
  b = (rng.normal(size=(2000, d)) @ mixing).astype(np.float32)
  a64, b64 = a.astype(np.float64), b.astype(np.float64)
  mu1, cov1 = a64.mean(0), np.cov(a64, rowvar=False)
  mu2, cov2 = b64.mean(0), np.cov(b64, rowvar=False)
  ref = _scipy_fid(mu1, cov1, mu2, cov2)
  assert ref < 0.02 * np.trace(cov1)
  np.testing.assert_allclose(float(ge.frechet_distance(a, b)), ref, rtol=1e-3)


def test_frechet_distance_diagonal_closed_form():
  rng = np.random.default_rng(2)
  a, b = rng.uniform(0.1, 4.0, 20), rng.uniform(0.1, 4.0, 20)
  mu1, mu2 = rng.normal(size=20), rng.normal(size=20)
  ref = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((mu1 - mu2) ** 2)
  got = ge.frechet_distance_from_stats(mu1, np.diag(a), mu2, np.diag(b))
  np.testing.assert_allclose(float(got), ref, rtol=1e-5)
  # A mean shift alone adds ‖Δμ‖².
  same_cov = ge.frechet_distance_from_stats(mu1, np.diag(a), mu2, np.diag(a))
  np.testing.assert_allclose(float(same_cov), np.sum((mu1 - mu2) ** 2), rtol=1e-5, atol=1e-5)


def test_frechet_distance_with_singular_covariance_is_finite():
  # 10 examples in 32 dimensions: rank-9 covariances; clipped eigenvalues keep it finite.
  rng = np.random.default_rng(3)
  a, b = rng.normal(size=(10, 32)), rng.normal(size=(10, 32)) + 1.0
  got = float(ge.frechet_distance(a, b))
  assert np.isfinite(got) and got > 32.0 * 0.5  # the means alone are ~32 apart in squared norm


def test_frechet_distance_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match='same feature extractor'):
    ge.frechet_distance(np.zeros((10, 4)), np.zeros((10, 5)))
  with pytest.raises(ValueError, match=r'cov2 has shape \(3, 3\)'):
    ge.frechet_distance_from_stats(np.zeros(4), np.eye(4), np.zeros(4), np.eye(3))


# ----------------------------------------------------------------------- KID --

def _numpy_mmd2_unbiased(x, y):
  """The estimator written out in float64, one kernel entry at a time per matrix."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  d = x.shape[1]
  kern = lambda a, b: (a @ b.T / d + 1.0) ** 3
  m, n = len(x), len(y)
  k_xx, k_yy, k_xy = kern(x, x), kern(y, y), kern(x, y)
  off_xx = k_xx[~np.eye(m, dtype=bool)].sum() / (m * (m - 1))
  off_yy = k_yy[~np.eye(n, dtype=bool)].sum() / (n * (n - 1))
  return off_xx + off_yy - 2.0 * k_xy.mean()


@pytest.mark.parametrize('sizes', [(60, 60), (50, 35)])
def test_mmd2_unbiased_matches_numpy(sizes):
  rng = np.random.default_rng(4)
  x = _random_gaussian(rng, sizes[0], 16)
  y = _random_gaussian(rng, sizes[1], 16, shift=0.5)
  ref = _numpy_mmd2_unbiased(x, y)
  assert ref > 0.1  # a real difference, so the relative tolerance means something
  np.testing.assert_allclose(float(ge.mmd2_unbiased(x, y)), ref, rtol=1e-4)


def test_mmd2_unbiased_of_one_distribution_matches_numpy():
  # Same distribution, d = 64: MMD² is ~1e-3 of the kernel values, which cancel.
  # Measured on the CPU: |error| ≤ 2e-7 x the mean kernel value (float32 sums of 250k
  # entries); 2e-6 allows other summation orders.
  rng = np.random.default_rng(11)
  mixing = rng.normal(size=(64, 64)) / 8
  x = (rng.normal(size=(500, 64)) @ mixing).astype(np.float32)
  y = (rng.normal(size=(500, 64)) @ mixing).astype(np.float32)
  ref = _numpy_mmd2_unbiased(x, y)
  scale = np.mean((x.astype(np.float64) @ y.T.astype(np.float64) / 64 + 1) ** 3)
  assert abs(ref) < 1e-2 * scale
  assert abs(float(ge.mmd2_unbiased(x, y)) - ref) < 2e-6 * scale


def test_kid_on_whole_sets_is_exact_and_has_zero_std():
  rng = np.random.default_rng(5)
  x = _random_gaussian(rng, 80, 16)
  y = _random_gaussian(rng, 80, 16, shift=0.2)
  ref = _numpy_mmd2_unbiased(x, y)
  # subset_size ≥ n: every subset is the whole set drawn without replacement,
  # so every subset value is exactly the full estimate whatever the key.
  mean, std, values = ge.kid(x, y, num_subsets=3, subset_size=1000, key=KEY,
                             return_values=True)
  np.testing.assert_allclose(values, ref, rtol=1e-4)
  np.testing.assert_allclose(float(mean), ref, rtol=1e-4)
  assert float(std) < 1e-4 * abs(ref)


def test_kid_is_unbiased_and_its_std_is_the_population_std():
  rng = np.random.default_rng(6)
  x = rng.normal(size=(1000, 8)).astype(np.float32)
  y = rng.normal(size=(1000, 8)).astype(np.float32)
  mean, std, values = ge.kid(x, y, num_subsets=50, subset_size=100, key=KEY, return_values=True)
  values = np.asarray(values)
  assert values.shape == (50,)
  assert np.any(values < 0) and np.any(values > 0)
  # Same distribution: the mean over subsets is within noise of 0.
  assert abs(float(mean)) < 3 * float(std) / np.sqrt(50)
  # The biased estimator (diagonals kept) would be clearly positive here.
  biased = np.mean(_numpy_biased_mmd2(x[:100], y[:100]))
  assert biased > 10 * abs(float(mean))
  np.testing.assert_allclose(float(mean), values.mean(), rtol=1e-5)
  np.testing.assert_allclose(float(std), values.std(ddof=0), rtol=1e-5)
  # Different keys pick different subsets.
  other = ge.kid(x, y, num_subsets=50, subset_size=100, key=jax.random.PRNGKey(1))[0]
  assert float(other) != float(mean)
  # A shifted distribution is far above the noise.
  shifted = ge.kid(x, y + 0.5, num_subsets=50, subset_size=100, key=KEY)[0]
  assert float(shifted) > 20 * float(std)


def _numpy_biased_mmd2(x, y):
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  kern = lambda a, b: (a @ b.T / x.shape[1] + 1.0) ** 3
  return kern(x, x).mean() + kern(y, y).mean() - 2 * kern(x, y).mean()


def test_kid_rejects_bad_arguments():
  x = np.zeros((10, 4), np.float32)
  with pytest.raises(ValueError, match='num_subsets=0'):
    ge.kid(x, x, num_subsets=0, key=KEY)
  with pytest.raises(ValueError, match='subset_size=1'):
    ge.kid(x, x, subset_size=1, key=KEY)


# ---------------------------------------------- precision, recall, density --

REAL_1D = np.array([[0.0], [1.0], [3.0], [6.0]])
FAKE_1D = np.array([[0.5], [2.5], [9.5], [20.0]])


def test_precision_recall_density_coverage_by_hand():
  # k = 1. Real radii (nearest other real point): 0→1, 1→1, 3→2, 6→3.
  # Fake radii: 0.5→2, 2.5→2, 9.5→7, 20→10.5.
  # Precision: 0.5 ∈ B(0,1), 2.5 ∈ B(3,2); 9.5 and 20 are in no real ball → 2/4.
  # Recall: 0, 1, 3 ∈ B(0.5,2) ∪ B(2.5,2); 6 ∈ B(9.5,7) → 4/4.
  pr = ge.precision_recall(REAL_1D, FAKE_1D, k=1)
  assert pr == {'precision': 0.5, 'recall': 1.0}
  # Swapping the roles swaps the two numbers.
  assert ge.precision_recall(FAKE_1D, REAL_1D, k=1) == {'precision': 1.0, 'recall': 0.5}
  # Density: 0.5 lies in B(0,1) and B(1,1), 2.5 in B(3,2), others in none → 3/(1·4).
  # Coverage: balls of 0, 1, 3 hold a fake point; B(6,3) does not (9.5 is 3.5 away) → 3/4.
  dc = ge.density_coverage(REAL_1D, FAKE_1D, k=1)
  assert dc == {'density': 0.75, 'coverage': 0.75}
  assert all(isinstance(v, float) for v in {**pr, **dc}.values())


def test_precision_recall_density_coverage_by_hand_k2_in_2d():
  # Real: the four corners of the unit square and a far point; k = 2.
  real = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [5, 5]], np.float32)
  # Corner radii: 2nd nearest other point is an adjacent corner at distance 1.
  # (5,5): nearest others (1,1) at √32 and (1,0)/(0,1) at √41 → radius √41.
  fake = np.array([[0.5, 0.5], [2, 2], [10, 10], [5, 9]], np.float32)
  # (0.5,0.5) is √0.5 from every corner: inside all four corner balls, and √40.5 < √41
  # from (5,5), inside that ball too → 5 balls. (2,2): √2 from (1,1) > 1, √18 < √41 from
  # (5,5) → 1 ball. (10,10): √50 > √41 → none. (5,9): 4 = √16 < √41 → 1 ball.
  dc = ge.density_coverage(real, fake, k=2)
  assert dc['density'] == pytest.approx((5 + 1 + 0 + 1) / (2 * 4))
  assert dc['coverage'] == 1.0
  pr = ge.precision_recall(real, fake, k=2)
  assert pr['precision'] == 0.75
  # Fake radii (k=2): (0.5,0.5): others at √4.5, √92.5, √180.5 → √92.5; (2,2): √4.5,
  # √58, √128 → √58; (10,10): √26, √128, √180.5 → √128; (5,9): √26, √58, √92.5 → √58.
  # The corners are √0.5 from (0.5,0.5) and (5,5) is √18 from (2,2) → recall 1.
  assert pr['recall'] == 1.0


def test_ball_boundaries_closed_for_precision_open_for_density():
  # The fake point 9 is exactly at the radius 3 of the real point 6 (k = 1).
  fake = np.array([[9.0], [30.0]])
  assert ge.precision_recall(REAL_1D, fake, k=1)['precision'] == 0.5
  assert ge.density_coverage(REAL_1D, fake, k=1) == {'density': 0.0, 'coverage': 0.0}


def _numpy_prdc(real, fake, pr_k, dc_k):
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  dist = lambda a, b: np.linalg.norm(a[:, None] - b[None], axis=-1)
  d_rr, d_ff, d_rf = dist(real, real), dist(fake, fake), dist(real, fake)
  kth = lambda d, k: np.sort(d, axis=1)[:, k]
  r_pr, f_pr, r_dc = kth(d_rr, pr_k), kth(d_ff, pr_k), kth(d_rr, dc_k)
  return {
      'precision': np.mean(np.any(d_rf <= r_pr[:, None], axis=0)),
      'recall': np.mean(np.any(d_rf <= f_pr[None, :], axis=1)),
      'density': np.mean(np.sum(d_rf < r_dc[:, None], axis=0)) / dc_k,
      'coverage': np.mean(d_rf.min(axis=1) < r_dc),
  }


@pytest.mark.parametrize('chunk', [7, 1024])
def test_prdc_matches_brute_force_numpy(chunk):
  rng = np.random.default_rng(7)
  real = _random_gaussian(rng, 150, 5)
  fake = _random_gaussian(rng, 120, 5, shift=0.4)
  ref = _numpy_prdc(real, fake, pr_k=3, dc_k=5)
  got = {**ge.precision_recall(real, fake, k=3, chunk=chunk),
         **ge.density_coverage(real, fake, k=5, chunk=chunk)}
  assert got.keys() == ref.keys()
  for name in ref:
    assert got[name] == pytest.approx(ref[name], abs=1e-6), name


def test_prdc_in_64_dimensions_matches_brute_force_numpy():
  # The counts flip only if a float32 distance lands on the other side of a radius than
  # the float64 one: ~1e-7 relative, negligible for continuous random data.
  rng = np.random.default_rng(12)
  real = _random_gaussian(rng, 200, 64)
  fake = _random_gaussian(rng, 150, 64, shift=0.1)
  ref = _numpy_prdc(real, fake, pr_k=3, dc_k=5)
  got = {**ge.precision_recall(real, fake, k=3, chunk=64),
         **ge.density_coverage(real, fake, k=5, chunk=64)}
  for name in ref:
    assert got[name] == pytest.approx(ref[name], abs=1e-6), name


def test_prdc_same_distribution_and_disjoint_sets():
  rng = np.random.default_rng(8)
  real = rng.normal(size=(1000, 4)).astype(np.float32)
  fake = rng.normal(size=(1000, 4)).astype(np.float32)
  pr = ge.precision_recall(real, fake)
  dc = ge.density_coverage(real, fake)
  assert pr['precision'] > 0.6 and pr['recall'] > 0.6
  assert abs(dc['density'] - 1.0) < 0.3
  assert dc['coverage'] > 0.6
  far = fake + 100.0
  assert ge.precision_recall(real, far) == {'precision': 0.0, 'recall': 0.0}
  assert ge.density_coverage(real, far) == {'density': 0.0, 'coverage': 0.0}


def test_prdc_rejects_k_too_large():
  with pytest.raises(ValueError, match='k=4 needs more than 4 examples'):
    ge.precision_recall(REAL_1D, FAKE_1D, k=4)
  with pytest.raises(ValueError, match='k=0'):
    ge.density_coverage(REAL_1D, FAKE_1D, k=0)


# ---------------------------------------------------------- classifier score --

def test_classifier_score_extremes():
  uniform = np.full((12, 5), 0.2)
  mean, std = ge.classifier_score(uniform)
  np.testing.assert_allclose(float(mean), 1.0, rtol=1e-6)
  assert float(std) == 0.0
  one_hot = np.eye(4)[np.arange(12) % 4]
  np.testing.assert_allclose(float(ge.classifier_score(one_hot)[0]), 4.0, rtol=1e-6)
  # All examples on one class: 1 (no diversity).
  np.testing.assert_allclose(float(ge.classifier_score(np.eye(4)[np.zeros(8, int)])[0]), 1.0)


def test_classifier_score_splits_and_numpy_reference():
  # Split 1 holds classes {0, 1}, split 2 classes {2, 3}: 2 each, 4 overall.
  one_hot = np.eye(4)[[0, 1, 0, 1, 2, 3, 2, 3]]
  mean, std = ge.classifier_score(one_hot, splits=2)
  np.testing.assert_allclose([float(mean), float(std)], [2.0, 0.0], atol=1e-6)
  rng = np.random.default_rng(9)
  probs = rng.dirichlet(np.full(10, 0.3), size=300)

  def ref_score(p):
    py = p.mean(0, keepdims=True)
    return np.exp(np.mean(np.sum(p * (np.log(p) - np.log(py)), axis=1)))

  np.testing.assert_allclose(float(ge.classifier_score(probs)[0]), ref_score(probs), rtol=1e-5)
  parts = [ref_score(probs[i * 300 // 3:(i + 1) * 300 // 3]) for i in range(3)]
  mean, std = ge.classifier_score(probs, splits=3)
  np.testing.assert_allclose([float(mean), float(std)], [np.mean(parts), np.std(parts)],
                             rtol=1e-5)
  with pytest.raises(ValueError, match='splits=301'):
    ge.classifier_score(probs, splits=301)


def test_classifier_score_with_1000_classes_matches_numpy():
  # Inception-sized: 1000 classes, sparse predictions (many probabilities underflow
  # to 0 in float32). Measured on the CPU: 1e-7 relative.
  rng = np.random.default_rng(13)
  probs = rng.dirichlet(np.full(1000, 0.05), size=2000)
  marginal = probs.mean(0, keepdims=True)
  with np.errstate(divide='ignore', invalid='ignore'):
    kl = np.sum(np.where(probs > 0, probs * (np.log(probs) - np.log(marginal)), 0.0), axis=1)
  got = ge.classifier_score(probs.astype(np.float32))[0]
  np.testing.assert_allclose(float(got), np.exp(np.mean(kl)), rtol=1e-5)


# ------------------------------------------------------------------ precision --
# Every product and convolution XLA compiles for a metric must be at HIGHEST
# precision: the platform default is TF32 on recent NVIDIA GPUs and one bfloat16
# pass on TPUs. The compiled modules are the same StableHLO on every platform, so
# checking them on the CPU checks the GPU and TPU programs too. Products inside
# opaque library calls (LAPACK, cuSOLVER eigh/SVD) are not visible here; they are
# float32 routines.

_PRODUCT = re.compile(r'stablehlo\.(dot_general|convolution)\b')
_LEVELS = re.compile(r'precision = \[(\w+), (\w+)\]|#stablehlo<precision (\w+)>')


def _compiled_modules(tmp_path, fn):
  """StableHLO text of every module compiled while `fn()` runs, from empty caches.

  `jax_dump_ir_to` writes each module JAX hands to XLA (jitted functions and
  op-by-op dispatch alike) before any compilation-cache lookup.
  """
  jax.clear_caches()
  jax.config.update('jax_dump_ir_to', str(tmp_path))
  try:
    jax.block_until_ready(fn())
  finally:
    jax.config.update('jax_dump_ir_to', '')
  return {p.name: p.read_text() for p in sorted(pathlib.Path(tmp_path).glob('*.mlir'))}


def _products(modules):
  """[(module, op, precision levels)] for every dot_general and convolution."""
  found = []
  for name, text in modules.items():
    for line in text.splitlines():
      if match := _PRODUCT.search(line):
        levels = {level for groups in _LEVELS.findall(line) for level in groups if level}
        found.append((name, match.group(1), levels))
  return found


def _low_precision(modules):
  return [p for p in _products(modules) if p[2] != {'HIGHEST'}]


def test_the_precision_check_sees_default_precision_products(tmp_path):
  x = jnp.ones((4, 4))
  with jax.default_matmul_precision('default'):
    modules = _compiled_modules(tmp_path, lambda: jax.jit(lambda a: a @ a)(x))
  assert [p[1:] for p in _low_precision(modules)] == [('dot_general', {'DEFAULT'})]


@pytest.fixture(scope='module')
def tiny_feature_fn():
  """`make_feature_fn` of an untrained 2-conv `FeatureNet` (its init is not under test)."""
  net = gf.FeatureNet(num_classes=4, feature_dim=8, widths=(4, 8))
  return gf.make_feature_fn(jax.jit(net.init)(KEY, jnp.zeros((1, 8, 8, 1))))


_RNG = np.random.default_rng(14)
_A = _RNG.normal(size=(40, 6)).astype(np.float32)
_B = _RNG.normal(size=(30, 6)).astype(np.float32) + 0.3
_IMAGES = _RNG.uniform(-1, 1, size=(12, 8, 8, 1)).astype(np.float32)
_ENTRY_POINTS = {
    'feature_statistics': lambda: ge.feature_statistics(_A),
    'frechet_distance_from_stats': lambda: ge.frechet_distance_from_stats(
        _A[0], np.eye(6) + _A[:6].T @ _A[:6], _A[1], np.eye(6)),
    'frechet_distance': lambda: ge.frechet_distance(_A, _B),
    'mmd2_unbiased': lambda: ge.mmd2_unbiased(_A, _B),
    'kid': lambda: ge.kid(_A, _B, 3, 20, key=KEY),
    'precision_recall': lambda: ge.precision_recall(_A, _B),
    'density_coverage': lambda: ge.density_coverage(_A, _B),
    'classifier_score': lambda: ge.classifier_score(_RNG.dirichlet(np.ones(5), 20)),
    'make_feature_fn': lambda fn: fn(_IMAGES),
    'image_metrics': lambda fn: ge.image_metrics(
        fn, _IMAGES, _IMAGES[::-1] * 0.5, key=KEY, kid_subsets=2,
        kid_subset_size=6, batch_size=5),
}


@pytest.mark.parametrize('entry_point', sorted(_ENTRY_POINTS))
def test_every_metric_product_is_at_highest_precision(entry_point, tmp_path, tiny_feature_fn):
  run = _ENTRY_POINTS[entry_point]
  if entry_point in ('make_feature_fn', 'image_metrics'):
    run = functools.partial(run, tiny_feature_fn)
  # Under a bfloat16 default set by the caller, too: the metrics override it.
  with jax.default_matmul_precision('bfloat16'):
    modules = _compiled_modules(tmp_path, run)
  assert modules, 'nothing was compiled: the check would be vacuous'
  assert _low_precision(modules) == []
  if entry_point != 'classifier_score':  # the one metric without products
    assert _products(modules)


def test_image_metrics_runs_a_plain_features_function_at_highest_precision(tmp_path):
  # A user's network that leaves precision unset is called under 'highest'.
  w = jnp.asarray(_RNG.normal(size=(64, 5)), jnp.float32)
  features_fn = jax.jit(lambda images: images.reshape(images.shape[0], -1) @ w)
  modules = _compiled_modules(tmp_path, lambda: ge.image_metrics(
      features_fn, _IMAGES, _IMAGES * 0.5, key=KEY, kid_subsets=2, kid_subset_size=6))
  assert any('jit__lambda' in name for name, _, _ in _products(modules))
  assert _low_precision(modules) == []
