"""Mode-collapse metrics on 2D Gaussian mixtures (VEEGAN / PacGAN protocol).

Host-side float64 numpy: the samples are few (2,500) and low-dimensional,
and every step (distances, nearest centre, counts, KL) is float64 numpy on
the host, so this arithmetic does not depend on the accelerator (only the
generated samples do). Samples of any float type are converted to float64
first. The feature-space metrics for images are in `ganjax.evaluate`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any


def mode_metrics(samples: Array, centers: Array, std: float,
                 threshold: float = 3.0) -> dict[str, Any]:
  """Mode-collapse metrics for a mixture of K Gaussians (VEEGAN / PacGAN).

  The protocol of Srivastava et al. 2017 (VEEGAN) and Lin et al. 2018
  (PacGAN): draw 2,500 samples from the generator, assign each to its nearest
  center ``c_{a(x)}`` (Euclidean) and call it high quality (hq) when
  ``‖x - c_{a(x)}‖ ≤ threshold·std`` (threshold 3). Returns

  * ``modes`` (int): the number of centers with at least one hq sample;
  * ``hq_fraction``: ``#hq / N``;
  * ``reverse_kl``: ``KL(q ‖ U) = Σ_i q_i log(q_i K)`` (terms with ``q_i = 0``
    are 0), where ``q_i`` is the fraction of the hq samples assigned to
    center i and ``U`` is uniform over the K modes. 0 when the hq samples
    are spread evenly, ``log K`` when they all sit on one mode, and ``log K``
    by definition when there are no hq samples at all;
  * ``mode_distance``: the mean distance of a sample to its nearest center,
    in units of `std` (a smooth progress signal long before samples are hq).

  Computed on the host in float64 numpy; any number of dimensions D works.

  Args:
    samples: (N, D) generated points.
    centers: (K, D) mixture means.
    std: the standard deviation of each (isotropic) component.
    threshold: the hq radius in units of `std`.
  """
  samples = np.asarray(samples, np.float64)
  centers = np.asarray(centers, np.float64)
  if samples.ndim != 2 or centers.ndim != 2 or samples.shape[1] != centers.shape[1]:
    raise ValueError(f'samples must be (N, D) and centers (K, D) with the same D; got '
                     f'shapes {samples.shape} and {centers.shape}.')
  if samples.shape[0] == 0 or centers.shape[0] == 0:
    raise ValueError(f'need at least one sample and one center; got shapes {samples.shape} '
                     f'and {centers.shape}.')
  if not (np.isfinite(std) and std > 0):
    raise ValueError(f'std={std!r}; valid: a positive finite number.')
  if not (np.isfinite(threshold) and threshold > 0):
    raise ValueError(f'threshold={threshold!r}; valid: a positive finite number.')
  num_modes = centers.shape[0]
  dist = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)  # (N, K)
  nearest = np.argmin(dist, axis=1)
  hq = dist[np.arange(samples.shape[0]), nearest] <= threshold * std
  counts = np.bincount(nearest[hq], minlength=num_modes)
  total = counts.sum()
  if total == 0:
    reverse_kl = float(np.log(num_modes))
  else:
    q = counts[counts > 0] / total
    reverse_kl = float(np.sum(q * np.log(q * num_modes)))
  return {'modes': int(np.count_nonzero(counts)),
          'hq_fraction': float(np.mean(hq)),
          'reverse_kl': reverse_kl,
          'mode_distance': float(np.mean(dist[np.arange(samples.shape[0]), nearest]) / std)}
