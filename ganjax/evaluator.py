"""`Evaluator`: scores a run's generators on their dataset's protocol during training.

* 2D mixtures: the mode metrics of `ganjax.mixture_metrics` (VEEGAN/PacGAN).
* Labelled image datasets: `ganjax.evaluate.image_metrics` of `eval_samples`
  generated images against the held-out test split, in the feature space of a
  classifier trained on the dataset's labelled training split
  (`ganjax.features`), cached under the data directory.
* Other datasets: samples only.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from absl import logging

from ganjax import data, parallel, plots
from ganjax.mixture_metrics import mode_metrics


class Evaluator:
  """Per-member metrics and sample pictures. Construct it before compiling: it validates
  ``image_metrics`` and trains (or loads) the feature extractor."""

  def __init__(self, config, dataset: data.Dataset):
    self.config, self.dataset = config, dataset
    self.features_fn, self.feature_accuracy, self.real = None, None, None
    wanted = config.image_metrics
    if dataset.mixture is not None:
      if wanted:
        raise ValueError(f'image_metrics=True needs an image dataset, not {dataset.name}.')
      return
    if wanted and not dataset.has_labels:
      raise ValueError(f'image_metrics=True needs labels to train the feature extractor, and '
                       f'dataset {dataset.name} has none; set --config.image_metrics=False.')
    if wanted is None and not dataset.has_labels:
      return
    from ganjax import features  # pylint: disable=g-import-not-at-top
    cache = os.path.join(dataset.data_dir or data.default_data_dir(), 'ganjax_features')
    self.features_fn, self.feature_accuracy = features.cached_extractor(
        dataset, cache, steps=config.feature_steps)
    self.real = dataset.eval_examples(config.eval_samples)
    logging.info('Feature extractor for %s: test accuracy %.4f.', dataset.name,
                 self.feature_accuracy)

  def __call__(self, sampler, members_host, step: int, workdir: str,
               write_samples: bool) -> list[dict]:
    """Per-member metrics (and the EMA generator's, prefixed ``ema_``)."""
    from ganjax import evaluate as metrics_lib  # pylint: disable=g-import-not-at-top
    config, mixture, results = self.config, self.dataset.mixture, []
    for i in range(config.population):
      m = parallel.member(members_host, i)
      key = jax.random.PRNGKey(config.seed + i + 1_000_003)  # fixed eval noise
      entry = {'member': i, 'seed': config.seed + i}
      generators = {'': m['g_params']}
      if config.ema_decay > 0:
        generators['ema_'] = m['ema']
      for prefix, g_params in generators.items():
        samples = np.asarray(sampler(g_params, m['g_stats'], key, config.eval_samples))
        if mixture is not None:
          scores = mode_metrics(samples, mixture.centers, mixture.std)
        elif self.features_fn is not None:
          scores = metrics_lib.image_metrics(
              self.features_fn, self.real, samples, key=key, kid_subsets=config.kid_subsets,
              kid_subset_size=config.kid_subset_size)
          scores['feature_accuracy'] = self.feature_accuracy
        else:
          scores = {}
        entry.update({prefix + k: v for k, v in scores.items()})
        if write_samples and not prefix:
          self._save_samples(samples, step, i, workdir)
      results.append(entry)
    return results

  def _save_samples(self, samples, step, member, workdir):
    suffix = f'_member{member}' if self.config.population > 1 else ''
    path = os.path.join(workdir, 'samples', f'step_{step}{suffix}.png')
    if self.dataset.mixture is not None:
      plots.save_scatter(path, samples, self.dataset.mixture.centers,
                         f'{self.config.loss} step {step}')
    else:
      plots.save_image_grid(path, samples)
