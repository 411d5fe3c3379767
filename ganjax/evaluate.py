"""Feature-space sample-quality metrics for images, computed in JAX.

On features of any network: `frechet_distance` (FID, Heusel et al. 2017),
`kid` (Bińkowski et al. 2018), `precision_recall` (Kynkäänniemi et al. 2019),
`density_coverage` (Naeem et al. 2020) and `classifier_score` (the Inception
Score formula, Salimans et al. 2016). `image_metrics` runs them all. The
mode-collapse metrics for low-dimensional mixtures of Gaussians (VEEGAN /
PacGAN protocol) are `ganjax.mixture_metrics.mode_metrics`, host float64 numpy.

Every metric takes plain feature arrays, so any network can be plugged in;
`ganjax.features` provides a small classifier trained on the dataset itself::

    from ganjax import evaluate, features
    params, acc = features.train_feature_extractor(x_tr, y_tr, x_te, y_te, num_classes=10)
    scores = evaluate.image_metrics(features.make_feature_fn(params), real_images,
                                    fake_images, key=jax.random.PRNGKey(0))

Precision: all feature arithmetic is float32 (or the inputs' wider float type),
and every jitted metric function is traced under
``jax.default_matmul_precision('highest')`` (`ganjax.arrays.highest_precision`),
so every product and convolution in it, including those Flax layers and
``jnp.linalg`` emit, is true float32 on every platform; the platform default would be TF32 on recent
NVIDIA GPUs and a single bfloat16 pass on TPUs. `image_metrics` also calls the
features function under that setting. tests/test_evaluate.py checks the
compiled modules for any product below ``HIGHEST`` and compares each metric
with a float64 numpy/scipy reference; ``benchmarks/metric_platforms.py`` prints
the difference the default precision would make on a given machine.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from ganjax.arrays import as_float, highest_precision, positive_int

Array = Any
FeatureFn = Callable[[jax.Array], Any]

_CHUNK = 1024  # rows of a pairwise-distance block: 1024 x 10k floats = 40 MB


# ----------------------------------------------------------------- helpers --

def _metric_jit(fn: Callable | None = None, *, static_argnames: tuple[str, ...] = ()):
  """``jax.jit(highest_precision(fn))``: traced with every product at ``HIGHEST``.

  Every jitted metric function goes through this, so no product can be
  missed. Usable bare (``@_metric_jit``) or with ``static_argnames``.
  """
  if fn is None:
    return functools.partial(_metric_jit, static_argnames=static_argnames)
  return jax.jit(highest_precision(fn), static_argnames=static_argnames)


def _features_pair(a: Array, b: Array, name_a: str, name_b: str
                   ) -> tuple[jax.Array, jax.Array]:
  """Checks two (n, d) feature sets with the same d; returns float arrays."""
  a = as_float(a, name_a, ndim=2, allow_int=True)
  b = as_float(b, name_b, ndim=2, allow_int=True)
  if a.shape[1] != b.shape[1]:
    raise ValueError(f'{name_a} has {a.shape[1]} features per example and {name_b} has '
                     f'{b.shape[1]}; they must come from the same feature extractor.')
  dtype = jnp.promote_types(a.dtype, b.dtype)
  return a.astype(dtype), b.astype(dtype)


# ------------------------------------------------------------------- FID ---

@_metric_jit
def _statistics(feats: jax.Array) -> tuple[jax.Array, jax.Array]:
  mu = jnp.mean(feats, axis=0)
  centred = feats - mu
  cov = (centred.T @ centred) / (feats.shape[0] - 1)
  return mu, cov


def feature_statistics(feats: Array) -> tuple[jax.Array, jax.Array]:
  """Mean and unbiased covariance of (n, d) features, as pytorch-fid computes them.

  ``μ = mean_i f_i`` and ``C = Σ_i (f_i - μ)(f_i - μ)ᵀ / (n - 1)`` (the mean is
  subtracted before the product, which keeps float32 accurate). Cache the
  real data's statistics and pass them to `frechet_distance_from_stats`.
  """
  feats = as_float(feats, 'feats', ndim=2, allow_int=True)
  if feats.shape[0] < 2:
    raise ValueError(f'need at least 2 examples for a covariance, got shape {feats.shape}.')
  return _statistics(feats)


def _psd_sqrt(c: jax.Array) -> jax.Array:
  """Symmetric PSD square root of symmetrised `c` from ``eigh``, eigenvalues < 0 clipped to 0."""
  w, v = jnp.linalg.eigh(0.5 * (c + c.T))
  return (v * jnp.sqrt(jnp.maximum(w, 0.0))) @ v.T


@_metric_jit
def _frechet(mu1, cov1, mu2, cov2) -> jax.Array:
  # Tr((C1 C2)^½) = ‖S1 S2‖_*: singular values, not square roots of eigenvalues.
  tr_sqrt = jnp.sum(jnp.linalg.svd(_psd_sqrt(cov1) @ _psd_sqrt(cov2), compute_uv=False))
  diff = mu1 - mu2
  return diff @ diff + jnp.trace(cov1) + jnp.trace(cov2) - 2.0 * tr_sqrt


def frechet_distance_from_stats(mu1: Array, cov1: Array, mu2: Array, cov2: Array
                                ) -> jax.Array:
  """Fréchet distance between two Gaussians (Heusel et al. 2017, FID).

  ``d² = ‖μ₁ - μ₂‖² + Tr(C₁ + C₂ - 2 (C₁C₂)^{1/2})``.

  ``Tr((C₁C₂)^{1/2})`` is computed in-graph without a general matrix square
  root. With the symmetric PSD square roots ``S_i = C_i^{1/2}`` (from
  ``eigh``, eigenvalues below 0 from round-off clipped to 0), ``C₁C₂ =
  S₁·(S₁C₂)`` has the eigenvalues of ``(S₁C₂)·S₁ = AAᵀ`` with ``A = S₁S₂``,
  so ``Tr((C₁C₂)^{1/2}) = Σ_i σ_i(S₁S₂)``, the nuclear norm of ``S₁S₂``. The
  singular values come straight from an SVD: each is off by about ε‖A‖
  (ε = 6e-8 in float32), whereas taking the square roots of the eigenvalues
  of ``S₁C₂S₁ = AAᵀ`` would put errors of up to √ε‖A‖ = 2.4e-4‖A‖ on the
  small ones.
  Singular covariances are fine and the result is never NaN. pytorch-fid
  instead calls ``scipy.linalg.sqrtm`` on the host in float64 and adds
  ``1e-6·I`` when the product is singular. Here the arithmetic is float32
  (all products at ``HIGHEST``): on the test cases the difference from
  scipy in float64 is below about 3e-4 relative even when FD is under 1%
  of ``Tr(C)``, and for equal statistics the result is within about 2e-6·Tr(C)
  of 0 (it can be slightly negative; it is not clipped). Cost: two ``eigh``
  and one SVD of d x d matrices (d = 2048 takes about 2 s on two CPU cores), which run on
  JAX's CPU backend whatever the default device, outside an outer jit (`_on_host_cpu`).

  Returns a scalar array (jit-compatible).
  """
  mu1 = as_float(mu1, 'mu1', ndim=1, allow_int=True)
  mu2 = as_float(mu2, 'mu2', ndim=1, allow_int=True)
  cov1 = as_float(cov1, 'cov1', ndim=2, allow_int=True)
  cov2 = as_float(cov2, 'cov2', ndim=2, allow_int=True)
  d = mu1.shape[0]
  for name, shape in (('mu2', mu2.shape), ('cov1', cov1.shape), ('cov2', cov2.shape)):
    expected = (d,) if name == 'mu2' else (d, d)
    if shape != expected:
      raise ValueError(f'{name} has shape {shape}; with mu1 of shape {mu1.shape} '
                       f'it must be {expected}.')
  dtype = functools.reduce(jnp.promote_types, (mu1.dtype, mu2.dtype, cov1.dtype, cov2.dtype))
  stats = _on_host_cpu(*(x.astype(dtype) for x in (mu1, cov1, mu2, cov2)))
  return _frechet(*stats)


def _on_host_cpu(*arrays: jax.Array) -> tuple[jax.Array, ...]:
  """`arrays` on this process's CPU device, for FD's d x d eigh and SVD in LAPACK (on an
  H200, FD through cuSOLVER's float32 ones was 8.6e-4 off float64, through LAPACK 4.5e-6:
  benchmarks/NOTES.md, 15). Tracers (under an outer jit) stay where the trace runs."""
  if any(isinstance(a, jax.core.Tracer) for a in arrays):
    return arrays
  try:
    return tuple(jax.device_put(arrays, jax.local_devices(backend='cpu')[0]))
  except RuntimeError:  # JAX_PLATFORMS without cpu
    return arrays


def frechet_distance(feats_a: Array, feats_b: Array) -> jax.Array:
  """FID between two (n, d) feature sets (Heusel et al. 2017).

  ``‖μ_a - μ_b‖² + Tr(C_a + C_b - 2 (C_a C_b)^{1/2})`` with the statistics of
  `feature_statistics`; see `frechet_distance_from_stats`. FID is biased
  upwards for small n (Bińkowski et al. 2018): compare values only at equal n.
  """
  feats_a, feats_b = _features_pair(feats_a, feats_b, 'feats_a', 'feats_b')
  return frechet_distance_from_stats(*feature_statistics(feats_a),
                                     *feature_statistics(feats_b))


# ------------------------------------------------------------------- KID ---

def _polynomial_kernel(x, y, degree, gamma, coef0):
  return ((x @ y.T) * gamma + coef0) ** degree


@_metric_jit(static_argnames=('degree', 'gamma', 'coef0'))
def _mmd2(x, y, degree=3, gamma=None, coef0=1.0):
  m, n = x.shape[0], y.shape[0]
  gamma = 1.0 / x.shape[1] if gamma is None else gamma
  k_xx = _polynomial_kernel(x, x, degree, gamma, coef0)
  k_yy = _polynomial_kernel(y, y, degree, gamma, coef0)
  k_xy = _polynomial_kernel(x, y, degree, gamma, coef0)
  # Row sums first, then their sum: a two-level reduction loses less in float32.
  sum_xx = jnp.sum(jnp.sum(k_xx, axis=1)) - jnp.sum(jnp.diagonal(k_xx))
  sum_yy = jnp.sum(jnp.sum(k_yy, axis=1)) - jnp.sum(jnp.diagonal(k_yy))
  sum_xy = jnp.sum(jnp.sum(k_xy, axis=1))
  return sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * sum_xy / (m * n)


def mmd2_unbiased(x: Array, y: Array, *, degree: int = 3, gamma: float | None = None,
                  coef0: float = 1.0) -> jax.Array:
  """Unbiased MMD² with a polynomial kernel (Bińkowski et al. 2018, KID).

  ``k(a, b) = (γ a·b + c)^degree`` with ``γ = 1/d`` by default, ``c = 1``,
  ``degree = 3``, and::

    MMD² = Σ_{i≠j} k(x_i, x_j) / (m(m-1)) + Σ_{i≠j} k(y_i, y_j) / (n(n-1))
           - 2 Σ_{i,j} k(x_i, y_j) / (mn)

  i.e. the diagonals of K_XX and K_YY are removed but all of K_XY is kept:
  torch-fidelity's ``mmd2(..., mmd_est='unbiased')`` (from the MMD-GAN code)
  when m = n, which `kid` always uses. It can be negative.
  """
  x, y = _features_pair(x, y, 'x', 'y')
  if x.shape[0] < 2 or y.shape[0] < 2:
    raise ValueError(f'need at least 2 examples per set; got shapes {x.shape} and {y.shape}.')
  positive_int('degree', degree)
  return _mmd2(x, y, degree=int(degree), gamma=gamma, coef0=float(coef0))


@_metric_jit(static_argnames=('num_subsets', 'subset_size'))
def _kid(feats_a, feats_b, key, num_subsets, subset_size):
  def one_subset(k):
    ka, kb = jax.random.split(k)
    xa = feats_a[jax.random.permutation(ka, feats_a.shape[0])[:subset_size]]
    xb = feats_b[jax.random.permutation(kb, feats_b.shape[0])[:subset_size]]
    return _mmd2(xa, xb)

  values = jax.lax.map(one_subset, jax.random.split(key, num_subsets))
  return jnp.mean(values), jnp.std(values), values


def kid(feats_a: Array, feats_b: Array, num_subsets: int = 100, subset_size: int = 1000,
        *, key: jax.Array, return_values: bool = False):
  """Kernel Inception Distance (Bińkowski et al. 2018), as torch-fidelity computes it.

  For each of `num_subsets` subsets, draws ``m = min(subset_size, n_a, n_b)``
  rows of each feature set without replacement and evaluates `mmd2_unbiased`
  (cubic polynomial kernel ``k(x, y) = (x·y/d + 1)³``) on them; returns the
  mean and the standard deviation over subsets. The standard deviation is the
  population one (``ddof=0``), as torch-fidelity's ``kid_features_to_metric``
  uses ``np.std`` with its default. Two differences from torch-fidelity: it
  raises an error when ``subset_size`` exceeds a set's size where this
  shrinks ``m``, and its subsets come from ``np.random.RandomState`` so
  individual values differ unless ``m = n_a = n_b`` (every subset is then
  the whole set and the result is exact).

  Args:
    feats_a, feats_b: (n_a, d) and (n_b, d) features.
    num_subsets: number of random subsets (torch-fidelity: 100).
    subset_size: rows per subset (torch-fidelity: 1000).
    key: PRNG key choosing the subsets.
    return_values: also return the per-subset MMD² values.

  Returns:
    ``(mean, std)`` scalar arrays, or ``(mean, std, values)``.
  """
  feats_a, feats_b = _features_pair(feats_a, feats_b, 'feats_a', 'feats_b')
  num_subsets = positive_int('num_subsets', num_subsets)
  subset_size = positive_int('subset_size', subset_size, minimum=2)
  m = min(subset_size, feats_a.shape[0], feats_b.shape[0])
  if m < 2:
    raise ValueError(f'KID needs at least 2 examples per set; got shapes {feats_a.shape} '
                     f'and {feats_b.shape}.')
  mean, std, values = _kid(feats_a, feats_b, key, num_subsets, m)
  return (mean, std, values) if return_values else (mean, std)


# ----------------------------------------------- precision/recall, density --

def _sq_dists_to(row: jax.Array, points: jax.Array, points_sq: jax.Array) -> jax.Array:
  """Squared Euclidean distances from one row to every point, clipped at 0."""
  d2 = row @ row + points_sq - 2.0 * (points @ row)
  return jnp.maximum(d2, 0.0)


def _kth_neighbour_sq(x: jax.Array, ks: tuple[int, ...], chunk: int) -> list[jax.Array]:
  """Squared distance from each row of `x` to its k-th nearest other row, per k.

  The k-th neighbour excluding the point itself is the (k+1)-th smallest
  distance in the row including the point's zero distance to itself (as the
  reference implementations do; a duplicate point counts as a neighbour).
  """
  x_sq = jnp.sum(x * x, axis=1)
  kmax = max(ks)

  def row(xi):
    smallest = -jax.lax.top_k(-_sq_dists_to(xi, x, x_sq), kmax + 1)[0]  # ascending
    return jnp.stack([smallest[k] for k in ks])

  radii = jax.lax.map(row, x, batch_size=min(chunk, x.shape[0]))
  return [radii[:, i] for i in range(len(ks))]


@_metric_jit(static_argnames=('pr_k', 'dc_k', 'chunk'))
def _prdc(real, fake, pr_k, dc_k, chunk):
  # Distances are translation invariant; centring reduces float32 cancellation
  # in ‖a‖² + ‖b‖² - 2a·b.
  centre = jnp.mean(real, axis=0)
  real, fake = real - centre, fake - centre
  real_sq, fake_sq = jnp.sum(real * real, axis=1), jnp.sum(fake * fake, axis=1)
  out = {}
  real_ks = tuple(k for k in (pr_k, dc_k) if k is not None)
  real_radii = dict(zip(real_ks, _kth_neighbour_sq(real, real_ks, chunk)))
  fake_radius = _kth_neighbour_sq(fake, (pr_k,), chunk)[0] if pr_k is not None else None

  def per_fake(yj):
    d2 = _sq_dists_to(yj, real, real_sq)  # to every real point
    res = {}
    if pr_k is not None:
      res['precision'] = jnp.any(d2 <= real_radii[pr_k])
    if dc_k is not None:
      res['density'] = jnp.sum(d2 < real_radii[dc_k])
    return res

  def per_real(args):
    xi, i = args
    d2 = _sq_dists_to(xi, fake, fake_sq)  # to every fake point
    res = {}
    if pr_k is not None:
      res['recall'] = jnp.any(d2 <= fake_radius)
    if dc_k is not None:
      res['coverage'] = jnp.min(d2) < real_radii[dc_k][i]
    return res

  f = jax.lax.map(per_fake, fake, batch_size=min(chunk, fake.shape[0]))
  r = jax.lax.map(per_real, (real, jnp.arange(real.shape[0])),
                  batch_size=min(chunk, real.shape[0]))
  if pr_k is not None:
    out['precision'] = jnp.mean(f['precision'].astype(jnp.float32))
    out['recall'] = jnp.mean(r['recall'].astype(jnp.float32))
  if dc_k is not None:
    out['density'] = jnp.mean(f['density'].astype(jnp.float32)) / dc_k
    out['coverage'] = jnp.mean(r['coverage'].astype(jnp.float32))
  return out


def _check_k(name: str, k: Any, real: jax.Array, fake: jax.Array | None) -> int:
  k = positive_int(name, k)
  sizes = [real.shape[0]] + ([fake.shape[0]] if fake is not None else [])
  if min(sizes) <= k:
    raise ValueError(f'{name}={k} needs more than {k} examples per set (a k-th neighbour '
                     f'other than the point itself); got {min(sizes)}.')
  return k


def precision_recall(real_feats: Array, fake_feats: Array, k: int = 3, *,
                     chunk: int = _CHUNK) -> dict[str, float]:
  """Improved precision and recall (Kynkäänniemi et al. 2019).

  Each point ``φ`` of a set ``Φ`` gets the radius ``r(φ) = ‖φ - NN_k(φ)‖``,
  the distance to its k-th nearest neighbour in ``Φ`` other than itself; the
  manifold of ``Φ`` is the union of these balls. With ``f(y, Φ) = 1`` when
  ``‖y - φ‖ ≤ r(φ)`` for some ``φ ∈ Φ``::

    precision = mean_{y ∈ fake} f(y, real)     recall = mean_{x ∈ real} f(x, fake)

  Balls are closed (``≤``) as in the authors' code. k = 3 is the paper's
  default. Pairwise distances are computed in-graph in blocks of `chunk` rows,
  so 10k x 10k points need about ``chunk x 10k`` floats at a time.
  """
  real, fake = _features_pair(real_feats, fake_feats, 'real_feats', 'fake_feats')
  k = _check_k('k', k, real, fake)
  chunk = positive_int('chunk', chunk)
  out = _prdc(real, fake, pr_k=k, dc_k=None, chunk=chunk)
  return {name: float(v) for name, v in out.items()}


def density_coverage(real_feats: Array, fake_feats: Array, k: int = 5, *,
                     chunk: int = _CHUNK) -> dict[str, float]:
  """Density and coverage (Naeem et al. 2020).

  With ``B(x_i)`` the open ball around real point ``x_i`` of radius
  ``NND_k(x_i)``, the distance to its k-th nearest other real point::

    density  = 1/(kM) Σ_j Σ_i 1[y_j ∈ B(x_i)]       (M fake points y_j)
    coverage = 1/N Σ_i 1[∃ j: y_j ∈ B(x_i)]           (N real points x_i)

  Only real-data balls are used, which makes both robust to fake outliers.
  Density is not bounded by 1 (it is ≈1 when fake and real match). Balls are
  open (``<``), as in the authors' ``prdc`` package. k = 5 is the paper's
  default. Distances are blocked as in `precision_recall`.
  """
  real, fake = _features_pair(real_feats, fake_feats, 'real_feats', 'fake_feats')
  k = _check_k('k', k, real, None)
  chunk = positive_int('chunk', chunk)
  out = _prdc(real, fake, pr_k=None, dc_k=k, chunk=chunk)
  return {name: float(v) for name, v in out.items()}


# --------------------------------------------------------- classifier score --

@_metric_jit(static_argnames=('splits',))
def _classifier_score(probs, splits):
  n = probs.shape[0]
  scores = []
  for i in range(splits):
    part = probs[i * n // splits:(i + 1) * n // splits]
    marginal = jnp.mean(part, axis=0, keepdims=True)
    positive = part > 0
    log_ratio = (jnp.log(jnp.where(positive, part, 1.0))
                 - jnp.log(jnp.where(positive, marginal, 1.0)))
    kl = jnp.sum(jnp.where(positive, part * log_ratio, 0.0), axis=1)
    scores.append(jnp.exp(jnp.mean(kl)))
  scores = jnp.stack(scores)
  return jnp.mean(scores), jnp.std(scores)


def classifier_score(probs: Array, splits: int = 1) -> tuple[jax.Array, jax.Array]:
  """The Inception Score formula on class probabilities (Salimans et al. 2016).

  ``exp(E_x KL(p(y|x) ‖ p(y)))`` with ``p(y) = E_x p(y|x)`` over the examples
  (``0 log 0 = 0``). It lies in ``[1, C]``: 1 when every prediction equals
  the marginal, C when predictions are one-hot and spread evenly over C
  classes. As in the original code, the examples are cut into `splits`
  consecutive parts (``probs[i·n//splits : (i+1)·n//splits]``), the score is
  computed on each, and the mean and (``ddof=0``) standard deviation over
  parts are returned; the standard deviation is 0 for ``splits=1``.

  Args:
    probs: (n, C) rows of class probabilities (e.g. a softmax).
    splits: number of parts (the original code uses 10).
  """
  probs = as_float(probs, 'probs', ndim=2, allow_int=True)
  splits = positive_int('splits', splits)
  if splits > probs.shape[0]:
    raise ValueError(f'splits={splits}; valid: 1 to the number of examples, {probs.shape[0]}.')
  return _classifier_score(probs, splits)


# ------------------------------------------------------------ all at once ---

def _extract(features_fn: FeatureFn, images: Array, batch_size: int, name: str):
  """Runs `features_fn` over `images` in fixed-size batches (the last one padded).

  Each call runs under ``jax.default_matmul_precision('highest')``, so a
  features function that leaves its products' precision unset (e.g. a Flax
  network, jitted or not) computes them in true float32 here.
  """
  images = as_float(images, name, allow_int=True)
  if images.ndim == 0 or images.shape[0] == 0:
    raise ValueError(f'{name} must hold at least one example along its first axis, got '
                     f'shape {images.shape}.')
  n = images.shape[0]
  feats, probs = [], []
  for start in range(0, n, batch_size):
    batch = images[start:start + batch_size]
    valid = batch.shape[0]
    if valid < batch_size and n > batch_size:  # keep one shape: no retracing
      pad = jnp.zeros((batch_size - valid,) + batch.shape[1:], batch.dtype)
      batch = jnp.concatenate([batch, pad])
    with jax.default_matmul_precision('highest'):
      out = features_fn(batch)
    if isinstance(out, (tuple, list)):
      if len(out) != 2:
        raise ValueError(f'features_fn returned {len(out)} outputs; valid: an array of '
                         'features, or a pair (features, class_probs).')
      feats.append(jnp.asarray(out[0])[:valid])
      probs.append(jnp.asarray(out[1])[:valid])
    else:
      feats.append(jnp.asarray(out)[:valid])
  feats = jnp.concatenate(feats).reshape(n, -1)
  return feats, (jnp.concatenate(probs) if probs else None)


def image_metrics(features_fn: FeatureFn, real_images: Array, fake_images: Array, *,
                  key: jax.Array, kid_subsets: int = 100, kid_subset_size: int = 1000,
                  pr_k: int = 3, dc_k: int = 5, batch_size: int = 500) -> dict[str, float]:
  """Every feature-space metric between real and generated images.

  Returns Python floats under ``fid`` (`frechet_distance`), ``kid_mean`` and
  ``kid_std`` (`kid`), ``precision`` and ``recall`` (`precision_recall`, k =
  `pr_k`), ``density`` and ``coverage`` (`density_coverage`, k = `dc_k`) and
  ``classifier_score`` (`classifier_score` of the fake images, one split).

  Args:
    features_fn: ``images -> features`` or ``images -> (features, class_probs)``
      for a batch of images (e.g. `make_feature_fn`); with features only,
      ``classifier_score`` is left out. Features of more than 2 dimensions are
      flattened per example. It is called under
      ``jax.default_matmul_precision('highest')``.
    real_images, fake_images: image batches (any shape `features_fn` takes,
      with a leading example axis; 4-D NHWC for `ganjax.features.FeatureNet`).
    key: PRNG key for the KID subsets.
    kid_subsets, kid_subset_size: as `num_subsets`/`subset_size` of `kid`.
    pr_k, dc_k: neighbourhood sizes for precision/recall and density/coverage.
    batch_size: images per `features_fn` call.
  """
  batch_size = positive_int('batch_size', batch_size)
  real, _ = _extract(features_fn, real_images, batch_size, 'real_images')
  fake, fake_probs = _extract(features_fn, fake_images, batch_size, 'fake_images')
  real, fake = _features_pair(real, fake, 'real features', 'fake features')
  pr_k = _check_k('pr_k', pr_k, real, fake)
  dc_k = _check_k('dc_k', dc_k, real, None)
  kid_mean, kid_std = kid(real, fake, kid_subsets, kid_subset_size, key=key)
  out = {'fid': frechet_distance(real, fake), 'kid_mean': kid_mean, 'kid_std': kid_std}
  out.update(_prdc(real, fake, pr_k=pr_k, dc_k=dc_k, chunk=_CHUNK))
  if fake_probs is not None:
    out['classifier_score'] = classifier_score(fake_probs)[0]
  return {name: float(v) for name, v in out.items()}


__all__ = [
    'classifier_score', 'density_coverage', 'feature_statistics', 'frechet_distance',
    'frechet_distance_from_stats', 'image_metrics', 'kid', 'mmd2_unbiased', 'precision_recall',
]
