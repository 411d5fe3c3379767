"""`Evaluator`: scores a run's generators on their dataset's protocol during training.

* 2D mixtures: the mode metrics of `ganjax.mixture_metrics` (VEEGAN/PacGAN).
* Image datasets, in the feature space that ``config.features`` names:

  - ``'classifier'`` (default): `ganjax.evaluate.image_metrics` of
    ``eval_samples`` generated images against the held-out test split, in the
    feature space of a small classifier trained on the dataset's labelled
    training split (`ganjax.features`), cached under the data directory. Fast
    and offline, but comparable only with other ganjax numbers.
  - ``'inception'``: pool3 features of the FID Inception-v3
    (`ganjax.inception`, pytorch-fid's weights file), comparable with published
    FID/KID. ``fid`` is the FID of ``eval_samples`` generated images against the
    mean and covariance of the whole training split; ``kid_*``, ``precision``,
    ``recall``, ``density`` and ``coverage`` compare them with the features of
    the split's first ``eval_samples`` images. Both references are computed
    once and cached (`reference`). The network has no classifier head, so
    there is no Inception Score.
* Other datasets (no labels, classifier features): samples only.

``config.final_eval_samples`` N > 0 adds, once, at the last step, the FID of N
generated images against the whole training split's statistics, under
``fid50k`` for N = 50,000 (`final_metric_name`): with ``features='inception'``
that is the FID-50k of the SNGAN/StudioGAN tables. The N images are generated
and embedded `FINAL_BATCH` at a time and their statistics accumulated on the
host in float64 (`StreamingStats`), so memory does not grow with N. Feature
networks run at full float32 precision on every platform (their products at
``Precision.HIGHEST``).

Reference cache, next to the classifier's (``<data_dir>/ganjax_features/``)::

  <space>/<dataset>_<split>_n<size>_stats.npz        mean, cov (float64), count
  <space>/<dataset>_<split>_first<k>_features.npy    the first k images' features (float32)

where ``<space>`` names the network: ``inception-<SHA-256 of the weights file>``
or ``classifier_seed0_steps<feature_steps>``. Files are written atomically.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import jax
import numpy as np
from absl import logging

from ganjax import data, parallel, plots
from ganjax.mixture_metrics import mode_metrics

FEATURE_SPACES = ('classifier', 'inception')
FINAL_BATCH = 500   # generated images per sampler call in the final FID
READ_CHUNK = 500    # dataset images per feature call while computing a reference


def check_config(config) -> tuple[str, int]:
  """``(features, final_eval_samples)``; ValueError (one line) for a bad value of them or
  of ``inception_weights``. Reads no file."""
  kind = config.get('features', 'classifier')
  if kind not in FEATURE_SPACES:
    raise ValueError(f'features={kind!r}; valid: {", ".join(FEATURE_SPACES)}.')
  final = config.get('final_eval_samples', 0)
  if isinstance(final, bool) or not isinstance(final, int) or final < 0 or final == 1:
    raise ValueError(f'final_eval_samples={final!r}; valid: 0 (off) or an integer >= 2 '
                     '(50000: FID-50k).')
  weights = config.get('inception_weights', '')
  if not isinstance(weights, str):
    raise ValueError(f'inception_weights={weights!r}; valid: a path to the weights file, or '
                     '"" for the cached copy (downloaded once).')
  return kind, final


def final_metric_name(n: int) -> str:
  """The eval.json key of the final FID of `n` samples: ``fid50k``, ``fid10k``, ``fid500``."""
  return f'fid{n // 1000}k' if n % 1000 == 0 else f'fid{n}'


# ------------------------------------------------------------ feature spaces --

@dataclasses.dataclass(frozen=True)
class FeatureSpace:
  """A feature network: `name` ('classifier' or 'inception'), `key` (its cache directory,
  naming the network's identity) and ``features_fn(images) -> features`` or
  ``(features, class_probs)``."""
  name: str
  key: str
  features_fn: Callable[[Any], Any]

  def features(self, images) -> np.ndarray:
    """``(n, d)`` float32 features of `images`, every product at ``Precision.HIGHEST``."""
    with jax.default_matmul_precision('highest'):
      out = self.features_fn(images)
    if isinstance(out, (tuple, list)):
      out = out[0]
    return np.asarray(out, np.float32).reshape(len(images), -1)


def inception_space(weights: str = '', batch_size: int = 50) -> FeatureSpace:
  """The FID Inception-v3 with the published weights: `weights` is the file's path, or ''
  for the cached copy (``$GANJAX_CACHE``, else ``~/.cache/ganjax``), downloaded once.

  Raises `ganjax.inception.WeightsNotFoundError` (a FileNotFoundError) when there is no
  file and no download, `WeightsHashError` (a ValueError) for another file: one line each.
  """
  from ganjax import inception  # pylint: disable=g-import-not-at-top
  from ganjax.torch_state_dict import read_torch_state_dict  # pylint: disable=g-import-not-at-top
  sha256 = inception.FID_WEIGHTS_SHA256
  path = inception.weights_file(weights or None, sha256=sha256)
  variables = inception.state_dict_to_variables(read_torch_state_dict(path))
  return FeatureSpace('inception', f'inception-{sha256}',
                      inception.make_features_fn(variables, batch_size))


# ---------------------------------------------------------------- statistics --

class StreamingStats:
  """Mean and unbiased covariance of feature rows added a batch at a time.

  Float64 on the host, merged with Chan et al.'s pairwise update: each batch's own
  mean and centred scatter ``M2_b``, then ``M2 += M2_b + δδᵀ·n·n_b/(n+n_b)`` with
  ``δ`` the difference of the means, so no raw second moments cancel. The result
  equals `ganjax.evaluate.feature_statistics` of all rows at once (pytorch-fid's
  ``np.cov``, ``n - 1`` in the denominator) to float64 round-off.
  """

  def __init__(self):
    self.count, self.mean, self.m2 = 0, None, None

  def update(self, feats) -> 'StreamingStats':
    f = np.asarray(feats, np.float64)
    f = f.reshape(len(f), -1)
    n_b = len(f)
    if n_b == 0:
      return self
    if self.mean is not None and f.shape[1] != self.mean.shape[0]:
      raise ValueError(f'features of width {f.shape[1]} after width {self.mean.shape[0]}.')
    mean_b = f.mean(axis=0)
    centred = f - mean_b
    m2_b = centred.T @ centred
    if self.count == 0:
      self.count, self.mean, self.m2 = n_b, mean_b, m2_b
      return self
    n = self.count + n_b
    delta = mean_b - self.mean
    self.mean = self.mean + delta * (n_b / n)
    self.m2 = self.m2 + m2_b + np.outer(delta, delta) * (self.count * n_b / n)
    self.count = n
    return self

  def statistics(self) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, covariance)`` in float64."""
    if self.count < 2:
      raise ValueError(f'need at least 2 examples for a covariance, got {self.count}.')
    return self.mean, self.m2 / (self.count - 1)


def generated_statistics(sample_batch: Callable[[int], Any], n: int, batch_size: int,
                         features: Callable[[Any], np.ndarray]
                         ) -> tuple[np.ndarray, np.ndarray]:
  """Mean and covariance of the features of `n` generated images, `batch_size` at a time.

  ``sample_batch(i)`` returns batch i (`batch_size` images; the last batch's surplus is
  dropped), ``features(images)`` their ``(k, d)`` features. At most one batch of images
  and its features exist at a time.
  """
  acc = StreamingStats()
  for i in range(-(-n // batch_size)):
    images = np.asarray(sample_batch(i))[:n - i * batch_size]
    acc.update(features(images))
  return acc.statistics()


@dataclasses.dataclass(frozen=True)
class Reference:
  """A split's feature statistics (float64) over `count` images, and the float32
  features of its first images (None when none were asked for)."""
  mean: np.ndarray
  cov: np.ndarray
  count: int
  features: np.ndarray | None


def _split_reader(dataset: data.Dataset, split: str
                  ) -> tuple[int, Callable[[np.ndarray], np.ndarray]]:
  """``(size, read(indices) -> images in [-1, 1])`` of a split of a TFDS image dataset."""
  try:
    return dataset.split_reader(split)
  except ValueError:
    raise ValueError(f'dataset {dataset.name} has no {split} split of images to compute '
                     'reference feature statistics from.') from None


def _save_atomic(path: str, write: Callable[[Any], None]) -> None:
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'wb') as f:
    write(f)
  os.replace(tmp, path)  # concurrent runs never read half a file


def reference(dataset: data.Dataset, split: str, space: FeatureSpace, cache_dir: str,
              keep: int = 0, chunk: int = READ_CHUNK) -> Reference:
  """`split`'s feature statistics over all its images, and the features of its first
  `keep` images, from the cache under ``<cache_dir>/<space.key>/`` or computed once (in
  chunks of `chunk` images, statistics in float64) and cached."""
  size, read = _split_reader(dataset, split)
  keep = min(keep, size)
  directory = os.path.join(cache_dir, space.key)
  stem = os.path.join(directory, f'{dataset.name}_{split}')
  stats_path, feats_path = f'{stem}_n{size}_stats.npz', f'{stem}_first{keep}_features.npy'
  stats = feats = None
  if os.path.exists(stats_path):
    with np.load(stats_path) as f:
      stats = (f['mean'], f['cov'], int(f['count']))
  if keep and os.path.exists(feats_path):
    feats = np.load(feats_path)
  if stats is None or (keep and feats is None):
    stop = size if stats is None else keep
    logging.info('Computing %s features of %d %s %s images (cached in %s).', space.name, stop,
                 dataset.name, split, directory)
    acc, kept = StreamingStats(), []
    for start in range(0, stop, chunk):
      f = space.features(read(np.arange(start, min(start + chunk, stop))))
      if stats is None:
        acc.update(f)
      if start < keep:
        kept.append(f[:keep - start])
    os.makedirs(directory, exist_ok=True)
    if stats is None:
      stats = (*acc.statistics(), acc.count)
      _save_atomic(stats_path, lambda f: np.savez(f, mean=stats[0], cov=stats[1],
                                                   count=stats[2]))
    if keep and feats is None:
      feats = np.concatenate(kept)[:keep]
      _save_atomic(feats_path, lambda f: np.save(f, feats))
  return Reference(stats[0], stats[1], stats[2], feats if keep else None)


# ---------------------------------------------------------------- evaluator --

class Evaluator:
  """Per-member metrics and sample pictures. Construct it before compiling: it validates
  ``image_metrics``, ``features`` and ``final_eval_samples``, loads the feature network
  (the Inception weights, or the classifier it trains once) and its cached references, so
  a missing weights file fails here, in one line, before any training."""

  def __init__(self, config, dataset: data.Dataset):
    self.config, self.dataset = config, dataset
    self.space, self.feature_accuracy, self.real = None, None, None
    self.reference, self.final_reference, self.metrics_on = None, None, False
    kind, final = check_config(config)
    wanted = config.image_metrics
    if dataset.mixture is not None:
      if wanted:
        raise ValueError(f'image_metrics=True needs an image dataset, not {dataset.name}.')
      if final:
        raise ValueError(f'final_eval_samples={final} needs an image dataset, not '
                         f'{dataset.name}; set --config.final_eval_samples=0.')
      return
    inception = kind == 'inception'
    if not inception and not dataset.has_labels:
      if wanted:
        raise ValueError(f'image_metrics=True needs labels to train the feature extractor, '
                         f'and dataset {dataset.name} has none; set '
                         '--config.image_metrics=False or --config.features=inception.')
      if final:
        raise ValueError(f'final_eval_samples={final} with features=classifier needs labels '
                         f'to train the feature extractor, and dataset {dataset.name} has '
                         'none; set --config.features=inception.')
    self.metrics_on = bool(wanted if wanted is not None else inception or dataset.has_labels)
    if not self.metrics_on and not final:
      return
    cache = os.path.join(dataset.data_dir or data.default_data_dir(), 'ganjax_features')
    if inception:
      self.space = inception_space(config.get('inception_weights', ''))
    else:
      from ganjax import features  # pylint: disable=g-import-not-at-top
      fn, self.feature_accuracy = features.cached_extractor(
          dataset, cache, steps=config.feature_steps)
      self.space = FeatureSpace('classifier', f'classifier_seed0_steps{config.feature_steps}',
                                fn)
      logging.info('Feature extractor for %s: test accuracy %.4f.', dataset.name,
                   self.feature_accuracy)
    if self.metrics_on:
      if inception:
        self.reference = reference(dataset, 'train', self.space, cache,
                                   keep=config.eval_samples)
      else:
        self.real = dataset.eval_examples(config.eval_samples)
    if final:
      self.final_reference = (self.reference if self.reference is not None else
                              reference(dataset, 'train', self.space, cache))

  def __call__(self, sampler, members_host, step: int, workdir: str,
               write_samples: bool, refresh=None) -> list[dict]:
    """Per-member metrics (and the EMA generator's, prefixed ``ema_``); at the last step
    also the final FID (`final_fid`). `refresh` (``ganjax.step.make_stats_refresher``:
    ``eval_bn_refresh``) re-estimates each generator's BatchNorm statistics before it
    samples; the state keeps its own."""
    from ganjax import evaluate as metrics_lib  # pylint: disable=g-import-not-at-top
    config, mixture, results = self.config, self.dataset.mixture, []
    final = self.final_reference is not None and step >= config.steps
    for i in range(config.population):
      m = parallel.member(members_host, i)
      key = jax.random.PRNGKey(config.seed + i + 1_000_003)  # fixed eval noise
      final_key = jax.random.PRNGKey(config.seed + i + 2_000_003)
      entry = {'member': i, 'seed': config.seed + i}
      generators = {'': m['g_params']}
      if config.ema_decay > 0:
        generators['ema_'] = m['ema']
      for prefix, g_params in generators.items():
        g_stats = m['g_stats'] if refresh is None else refresh(
            g_params, m['g_stats'], jax.random.PRNGKey(config.seed + i + 3_000_003))
        samples = np.asarray(sampler(g_params, g_stats, key, config.eval_samples))
        if mixture is not None:
          scores = mode_metrics(samples, mixture.centers, mixture.std)
        elif self.metrics_on and self.space.name == 'classifier':
          scores = metrics_lib.image_metrics(
              self.space.features_fn, self.real, samples, key=key,
              kid_subsets=config.kid_subsets, kid_subset_size=config.kid_subset_size)
          scores['feature_accuracy'] = self.feature_accuracy
        elif self.metrics_on:
          scores = self._reference_metrics(samples, key)
        else:
          scores = {}
        if final:
          name = final_metric_name(config.final_eval_samples)
          scores[name] = self.final_fid(sampler, g_params, g_stats, final_key)
          logging.info('Member %d%s: %s = %.4f (%s features).', i, prefix and ' (EMA)', name,
                       scores[name], self.space.name)
        entry.update({prefix + k: v for k, v in scores.items()})
        if write_samples:
          self._save_samples(samples, step, i, workdir, prefix)
      results.append(entry)
    return results

  def _reference_metrics(self, samples: np.ndarray, key: jax.Array) -> dict[str, float]:
    """FID against the whole split's statistics; KID, precision/recall, density/coverage
    against its first images' features."""
    from ganjax import evaluate as metrics_lib  # pylint: disable=g-import-not-at-top
    ref, config = self.reference, self.config
    fake = self.space.features(samples)
    mean, cov = StreamingStats().update(fake).statistics()
    kid_mean, kid_std = metrics_lib.kid(ref.features, fake, config.kid_subsets,
                                        config.kid_subset_size, key=key)
    out = {'fid': metrics_lib.frechet_distance_from_stats(ref.mean, ref.cov, mean, cov),
           'kid_mean': kid_mean, 'kid_std': kid_std}
    out.update(metrics_lib.precision_recall(ref.features, fake))
    out.update(metrics_lib.density_coverage(ref.features, fake))
    return {k: float(v) for k, v in out.items()}

  def final_fid(self, sampler, g_params, g_stats, key: jax.Array) -> float:
    """FID of ``final_eval_samples`` images of this generator against the training split,
    generated `FINAL_BATCH` at a time (batch i from ``fold_in(key, i)``)."""
    from ganjax import evaluate as metrics_lib  # pylint: disable=g-import-not-at-top
    n = self.config.final_eval_samples
    batch = min(FINAL_BATCH, n)
    mean, cov = generated_statistics(
        lambda i: sampler(g_params, g_stats, jax.random.fold_in(key, i), batch), n, batch,
        self.space.features)
    ref = self.final_reference
    return float(metrics_lib.frechet_distance_from_stats(ref.mean, ref.cov, mean, cov))

  def _save_samples(self, samples, step, member, workdir, prefix=''):
    """``samples/step_<step>[_member<i>][_ema].png``."""
    suffix = (f'_member{member}' if self.config.population > 1 else '') + (
        '_ema' if prefix else '')
    path = os.path.join(workdir, 'samples', f'step_{step}{suffix}.png')
    if self.dataset.mixture is not None:
      plots.save_scatter(path, samples, self.dataset.mixture.centers,
                         f'{self.config.loss} step {step}' + (' (EMA generator)' if prefix
                                                              else ''))
    else:
      plots.save_image_grid(path, samples)
