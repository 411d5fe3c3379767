"""Metric precision on this machine: ganjax's metrics vs the platform default vs float64.

Each metric is computed on fixed seeded data three ways:

* ganjax: the public function as it is (every product at ``Precision.HIGHEST``);
* default: the same jitted computation traced at the platform's default
  matmul precision (TF32 on recent NVIDIA GPUs, one bfloat16 pass on TPUs; on
  the CPU it is the same float32 arithmetic), for contrast;
* float64: a numpy/scipy (or, for the feature network, JAX x64) reference.

It prints a markdown table of the values and the differences from float64,
with ``jax.devices()[0]``. Run it on any platform:

    .venv/bin/python benchmarks/metric_platforms.py

The mode metrics (`ganjax.mixture_metrics`) are host float64 numpy, so their
"default" column is the same computation; they are listed to show it.
"""

import inspect
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import scipy.linalg  # pylint: disable=g-import-not-at-top,wrong-import-position
import scipy.spatial.distance  # pylint: disable=g-import-not-at-top,wrong-import-position

from ganjax import evaluate as ge, features as gf, mixture_metrics  # pylint: disable=g-import-not-at-top,wrong-import-position


def _at_default_precision(jitted, **static):
  """`jitted`'s Python function, jitted again and traced at the platform default."""
  raw = inspect.unwrap(jitted)  # strips jax.jit and highest_precision

  def run(*args):
    with jax.default_matmul_precision('default'):
      return jax.jit(raw, static_argnames=tuple(static))(*args, **static)
  return run


# -------------------------------------------------------------- float64 refs --

def _fd64(a, b):
  a, b = np.float64(a), np.float64(b)
  c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  return float(np.sum((a.mean(0) - b.mean(0)) ** 2)
               + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real))


def _mmd64(x, y):
  x, y = np.float64(x), np.float64(y)
  kern = lambda a, b: (a @ b.T / x.shape[1] + 1.0) ** 3
  m, n = len(x), len(y)
  k_xx, k_yy, k_xy = kern(x, x), kern(y, y), kern(x, y)
  return ((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
          + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1)) - 2 * k_xy.mean())


def _prdc64(real, fake, pr_k=3, dc_k=5):
  real, fake = np.float64(real), np.float64(fake)
  dist = scipy.spatial.distance.cdist
  d_rr, d_ff, d_rf = dist(real, real), dist(fake, fake), dist(real, fake)
  kth = lambda d, k: np.sort(d, axis=1)[:, k]
  r_pr, f_pr, r_dc = kth(d_rr, pr_k), kth(d_ff, pr_k), kth(d_rr, dc_k)
  return {'precision': np.mean(np.any(d_rf <= r_pr[:, None], axis=0)),
          'recall': np.mean(np.any(d_rf <= f_pr[None, :], axis=1)),
          'density': np.mean(np.sum(d_rf < r_dc[:, None], axis=0)) / dc_k,
          'coverage': np.mean(d_rf.min(axis=1) < r_dc)}


def _score64(probs):
  probs = np.float64(probs)
  marginal = probs.mean(0, keepdims=True)
  with np.errstate(divide='ignore', invalid='ignore'):
    kl = np.sum(np.where(probs > 0, probs * (np.log(probs) - np.log(marginal)), 0.0), axis=1)
  return float(np.exp(np.mean(kl)))


def _modes64(samples, centers, std, threshold=3.0):
  dist = scipy.spatial.distance.cdist(np.float64(samples), np.float64(centers))
  nearest, near = dist.argmin(1), dist.min(1)
  hq = near <= threshold * std
  counts = np.bincount(nearest[hq], minlength=len(centers))
  q = counts[counts > 0] / counts.sum()
  return {'modes': int(np.count_nonzero(counts)), 'hq_fraction': float(hq.mean()),
          'reverse_kl': float(np.sum(q * np.log(q * len(centers)))),
          'mode_distance': float(near.mean() / std)}


# ---------------------------------------------------------------------- data --

def _gaussian(rng, n, mixing, shift=0.0):
  return (rng.normal(size=(n, mixing.shape[0])) @ mixing + shift).astype(np.float32)


def main() -> None:
  rng = np.random.default_rng(0)
  d = 64
  mixing = rng.normal(size=(d, d)) / np.sqrt(d)
  # FD: two samples of one distribution (FD ~1% of Tr C: the cancellation of a good
  # generator) and a shifted one.
  real = _gaussian(rng, 2000, mixing)
  same = _gaussian(rng, 2000, mixing)
  shifted = _gaussian(rng, 2000, mixing, shift=0.3)
  rows = []  # (metric, float64, ganjax, default)

  fd_default = lambda a, b: _at_default_precision(ge._frechet)(  # pylint: disable=protected-access
      *_at_default_precision(ge._statistics)(jnp.asarray(a)),  # pylint: disable=protected-access
      *_at_default_precision(ge._statistics)(jnp.asarray(b)))  # pylint: disable=protected-access
  for name, fake in (('FD, same distribution (2000x64)', same),
                     ('FD, mean shifted 0.3 (2000x64)', shifted)):
    rows.append((name, _fd64(real, fake), float(ge.frechet_distance(real, fake)),
                 float(fd_default(real, fake))))

  # KID's unbiased MMD² on whole 1000x64 sets (`kid` with subset_size >= n gives this
  # value, up to the summation order of its permuted rows).
  mmd_default = _at_default_precision(ge._mmd2, degree=3, gamma=None, coef0=1.0)  # pylint: disable=protected-access
  for name, fake in (('KID MMD², mean shifted 0.3 (1000x64)', shifted),
                     ('KID MMD², same distribution (1000x64)', same)):
    x, y = real[:1000], fake[:1000]
    rows.append((name, _mmd64(x, y), float(ge.mmd2_unbiased(x, y)),
                 float(mmd_default(jnp.asarray(x), jnp.asarray(y)))))

  # Precision/recall and density/coverage, 1000 x 64 each.
  r, f = real[:1000], _gaussian(rng, 1000, mixing, shift=0.05)
  ref = _prdc64(r, f)
  got = {**ge.precision_recall(r, f), **ge.density_coverage(r, f)}
  prdc_default = _at_default_precision(ge._prdc, pr_k=3, dc_k=5, chunk=1024)  # pylint: disable=protected-access
  dflt = prdc_default(jnp.asarray(r), jnp.asarray(f))
  for name in ('precision', 'recall', 'density', 'coverage'):
    rows.append((f'{name} (1000x64)', float(ref[name]), got[name], float(dflt[name])))

  # Classifier score on Inception-sized probabilities (no products: the columns agree).
  probs = rng.dirichlet(np.full(1000, 0.05), size=5000).astype(np.float32)
  score_default = _at_default_precision(ge._classifier_score, splits=1)  # pylint: disable=protected-access
  rows.append(('classifier score (5000x1000)', _score64(probs),
               float(ge.classifier_score(probs)[0]), float(score_default(jnp.asarray(probs))[0])))

  # FeatureNet forward pass (untrained, 3 convs + 2 dense) on 500 28x28 images:
  # the largest deviation of a feature from float64, relative to the largest feature.
  net = gf.FeatureNet(num_classes=10)
  images = rng.uniform(-1, 1, size=(500, 28, 28, 1)).astype(np.float32)
  params = net.init(jax.random.PRNGKey(0), images[:1])
  features_fn = gf.make_feature_fn(params)
  feats = np.asarray(features_fn(images)[0], np.float64)
  with jax.default_matmul_precision('default'):
    feats_default = np.asarray(jax.jit(inspect.unwrap(features_fn))(images)[0], np.float64)
  feats64 = None
  if hasattr(jax, 'enable_x64'):
    with jax.enable_x64(True):
      params64 = jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.float64), params)
      feats64 = np.asarray(net.apply(params64, jnp.asarray(images, jnp.float64))[0])
  scale = np.max(np.abs(feats64 if feats64 is not None else feats))
  dev = lambda a: np.max(np.abs(a - feats64)) / scale if feats64 is not None else float('nan')

  # Mode metrics: 2,500 samples of the 8-Gaussian ring (host float64 numpy).
  angles = 2 * np.pi * np.arange(8) / 8
  centers = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
  samples = (centers[rng.integers(0, 8, 2500)] + 0.05 * rng.normal(size=(2500, 2))
             ).astype(np.float32)
  modes = mixture_metrics.mode_metrics(samples, centers, 0.05)
  modes64 = _modes64(samples, centers, 0.05)
  for name in ('hq_fraction', 'reverse_kl', 'mode_distance'):
    rows.append((f'mode metrics: {name}', modes64[name], modes[name], modes[name]))

  rel = lambda v, ref: abs(v - ref) / abs(ref) if ref != 0 else abs(v)
  print(f'jax {jax.__version__}, device: {jax.devices()[0]} '
        f'({jax.devices()[0].device_kind}), backend {jax.default_backend()}\n')
  print('| metric | float64 | ganjax (HIGHEST) | rel. diff | platform default | rel. diff |')
  print('|---|---|---|---|---|---|')
  for name, ref, got, dflt in rows:
    print(f'| {name} | {ref:.6g} | {got:.6g} | {rel(got, ref):.1e} | {dflt:.6g} | '
          f'{rel(dflt, ref):.1e} |')
  print(f'| FeatureNet features (500x28x28): max abs diff / max | | | {dev(feats):.1e} | | '
        f'{dev(feats_default):.1e} |')
  print('\nrel. diff: |value - float64| / |float64|. Count-based metrics: one example in 1000 '
        'is 1e-3; their ~1e-8 is the float32 fraction ganjax returns.')


if __name__ == '__main__':
  main()
